/**
 * {@linkcode EventFd}: a kernel counter behind an fd (`eventfd`, Linux) for
 * wake-ups between threads and processes. Send it alongside shared memory
 * so that a peer can say "there is new data" and the other side can wait
 * for it, synchronously or in the shared poller.
 *
 * @module
 */

import { libc } from "../ffi/libc.ts";
import { describeValue, throwErrno } from "./errors.ts";
import { BorrowedFd, OwnedFd } from "./fd.ts";
import { fdNumberOf } from "./transfer.ts";
import { waitReadable } from "./poller.ts";
import { retryKind, waitSync } from "./sys.ts";

/** Options for {@linkcode EventFd.create}. */
export interface EventFdOptions {
  /**
   * The counter's starting value, from 0 to 2^32 - 1.
   *
   * @default {0}
   */
  initialValue?: number;
  /**
   * Semaphore mode (`EFD_SEMAPHORE`): each wait takes 1 off the counter
   * and returns `1n`, instead of taking the whole count.
   *
   * @default {false}
   */
  semaphore?: boolean;
}

/** Options for {@linkcode EventFd.wait}. */
export interface EventFdWaitOptions {
  /** Cancels the wait; the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

// eventfd(2): the counter is a u64 and can hold at most 2^64 - 2.
const MAX_COUNTER = 0xffff_ffff_ffff_fffen;

function requireEventfd(): void {
  if (Deno.build.os !== "linux" || libc().lib.eventfd === null) {
    throw new Deno.errors.NotSupported(
      `eventfd is only supported on Linux, not on ${Deno.build.os}`,
    );
  }
}

/**
 * An event counter (`eventfd`), owned by this object. {@linkcode EventFd.signal}
 * adds to the counter; {@linkcode EventFd.wait} and
 * {@linkcode EventFd.waitSync} wait until it is non-zero, then take it
 * (or 1 in semaphore mode). Linux only.
 *
 * The fd is close-on-exec and nonblocking: waits go through `poll`/the
 * shared poller, so an async wait never ties up a thread. Send it to
 * another process like any fd and adopt it there with
 * {@linkcode EventFd.from}.
 *
 * @example Signal and wait
 * ```ts
 * import { EventFd } from "@fdpass/fdpass";
 * import { assertEquals } from "@std/assert";
 *
 * using events = EventFd.create();
 * const woken = events.wait();
 * events.signal();
 * events.signal(2n);
 * assertEquals(await woken, 3n);
 * ```
 */
export class EventFd {
  readonly #handle: OwnedFd;
  readonly #buffer = new BigUint64Array(1);
  readonly #bytes = new Uint8Array(this.#buffer.buffer);

  /**
   * Use {@linkcode EventFd.create} or {@linkcode EventFd.from}.
   *
   * @param handle The owned fd.
   */
  private constructor(handle: OwnedFd) {
    this.#handle = handle;
  }

  /**
   * Creates an eventfd, close-on-exec and nonblocking.
   *
   * @param options Initial value and semaphore mode.
   * @returns The eventfd.
   * @throws {Deno.errors.NotSupported} Outside Linux.
   *
   * @example A semaphore with two permits
   * ```ts
   * import { EventFd } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * using permits = EventFd.create({ initialValue: 2, semaphore: true });
   * assertEquals(permits.tryWait(), 1n);
   * assertEquals(permits.tryWait(), 1n);
   * assertEquals(permits.tryWait(), null);
   * ```
   */
  static create(options: EventFdOptions = {}): EventFd {
    if (typeof options !== "object" || options === null) {
      throw new TypeError(
        `Argument "options" must be an object, received ${describeValue(options)}`,
      );
    }
    const initialValue = options.initialValue ?? 0;
    if (typeof initialValue !== "number") {
      throw new TypeError(
        `Option "initialValue" must be a number, received ${describeValue(initialValue)}`,
      );
    }
    if (!Number.isInteger(initialValue) || initialValue < 0 || initialValue > 0xffff_ffff) {
      throw new RangeError(
        `Option "initialValue" must be an integer from 0 to 4294967295, received ${initialValue}`,
      );
    }
    const semaphore = options.semaphore ?? false;
    if (typeof semaphore !== "boolean") {
      throw new TypeError(
        `Option "semaphore" must be a boolean, received ${describeValue(semaphore)}`,
      );
    }
    requireEventfd();
    const { lib, layout } = libc();
    const c = layout.constants;
    const flags = c.EFD_CLOEXEC | c.EFD_NONBLOCK | (semaphore ? c.EFD_SEMAPHORE : 0);
    const fd = lib.eventfd!(initialValue, flags);
    if (fd < 0) throwErrno("eventfd");
    return new EventFd(new OwnedFd(fd));
  }

  /**
   * Adopts an eventfd, such as one received in a message, and puts it in
   * nonblocking mode (a flag of the open file, so the sender's copy
   * becomes nonblocking too; fdpass's own {@linkcode EventFd} copes with
   * either). Ownership moves to the new object. Whether it is in
   * semaphore mode was fixed by its creator.
   *
   * @param fd An {@linkcode OwnedFd} (ownership moves) or a number (now owned).
   * @returns The eventfd.
   * @throws {TypeError} When the fd is a file, pipe, socket or device.
   *
   * @example Adopt a received eventfd
   * ```ts
   * import { EventFd, UnixSocket } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const [a, b] = UnixSocket.pair();
   * using mine = EventFd.create();
   * a.sendSync("events", { fds: [mine] });
   * using theirs = EventFd.from(b.recvSync()!.fds[0]!);
   * theirs.signal(5n);
   * assertEquals(mine.waitSync(), 5n);
   * a.close();
   * b.close();
   * ```
   */
  static from(fd: OwnedFd | number): EventFd {
    if (typeof fd !== "number" && !(fd instanceof OwnedFd)) {
      throw new TypeError(
        `Argument "fd" must be an OwnedFd or an fd number, received ${describeValue(fd)}`,
      );
    }
    const number = fdNumberOf(fd, "fd");
    const borrowed = new BorrowedFd(number);
    // An eventfd is an anonymous inode with no file type bits (fstat).
    const kind = borrowed.kind;
    if (kind !== "unknown") {
      throw new TypeError(`Argument "fd" (fd ${number}) must be an eventfd, not a ${kind}`);
    }
    borrowed.nonblocking = true;
    return new EventFd(typeof fd === "number" ? new OwnedFd(fd) : new OwnedFd(fd.release()));
  }

  /**
   * The fd number; send it with `sendSync(data, { fds: [events] })`.
   *
   * @throws {TypeError} After {@linkcode EventFd.close}.
   */
  get fd(): number {
    return this.#handle.fd;
  }

  /** Whether {@linkcode EventFd.close} was called. */
  get closed(): boolean {
    return this.#handle.closed;
  }

  /**
   * Adds `n` to the counter, waking waiters. If that would take the
   * counter past 2^64 - 2, blocks until a waiter takes it.
   *
   * @param n How much to add, from 0 to 2^64 - 2.
   *
   * @example Add 3
   * ```ts
   * import { EventFd } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * using events = EventFd.create();
   * events.signal(3n);
   * assertEquals(events.tryWait(), 3n);
   * ```
   */
  signal(n: bigint | number = 1n): void {
    let value: bigint;
    if (typeof n === "bigint") {
      value = n;
    } else if (typeof n === "number" && Number.isSafeInteger(n)) {
      value = BigInt(n);
    } else {
      throw new TypeError(
        `Argument "n" must be a bigint or a safe integer, received ${describeValue(n)}`,
      );
    }
    if (value < 0n || value > MAX_COUNTER) {
      throw new RangeError(
        `Argument "n" must be from 0 to 18446744073709551614, received ${value}`,
      );
    }
    const fd = this.fd;
    const { lib, layout } = libc();
    this.#buffer[0] = value;
    for (;;) {
      if (Number(lib.write(fd, this.#bytes, 8n)) === 8) return;
      const retry = retryKind();
      if (retry === "wait") waitSync(fd, layout.constants.POLLOUT);
      else if (retry === "no") throwErrno("write");
    }
  }

  /**
   * Takes the counter if it is non-zero, without waiting.
   *
   * @returns The counter (1n in semaphore mode), or `null` when it is 0.
   *
   * @example Nothing pending
   * ```ts
   * import { EventFd } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * using events = EventFd.create();
   * assertEquals(events.tryWait(), null);
   * ```
   */
  tryWait(): bigint | null {
    const fd = this.fd;
    const { lib } = libc();
    for (;;) {
      if (Number(lib.read(fd, this.#bytes, 8n)) === 8) return this.#buffer[0]!;
      const retry = retryKind();
      if (retry === "wait") return null;
      if (retry === "no") throwErrno("read");
    }
  }

  /**
   * Blocks the thread until the counter is non-zero, then takes it.
   *
   * @returns The counter (1n in semaphore mode).
   *
   * @example Take a pending count
   * ```ts
   * import { EventFd } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * using events = EventFd.create({ initialValue: 4 });
   * assertEquals(events.waitSync(), 4n);
   * ```
   */
  waitSync(): bigint {
    const POLLIN = libc().layout.constants.POLLIN;
    for (;;) {
      const value = this.tryWait();
      if (value !== null) return value;
      waitSync(this.fd, POLLIN);
    }
  }

  /**
   * Waits in the shared poller until the counter is non-zero, then takes
   * it. Several processes or tasks may wait on the same eventfd: each
   * count goes to one of them, the others keep waiting.
   *
   * @param options An abort signal.
   * @returns The counter (1n in semaphore mode).
   *
   * @example Give up after a timeout
   * ```ts
   * import { EventFd } from "@fdpass/fdpass";
   * import { assertRejects } from "@std/assert";
   *
   * using events = EventFd.create();
   * await assertRejects(
   *   () => events.wait({ signal: AbortSignal.timeout(10) }),
   *   DOMException,
   * );
   * ```
   */
  async wait(options: EventFdWaitOptions = {}): Promise<bigint> {
    const signal = options?.signal;
    for (;;) {
      if (signal?.aborted) throw signal.reason;
      const value = this.tryWait();
      if (value !== null) return value;
      await waitReadable(this.fd, { signal });
    }
  }

  /**
   * Closes the fd. Calling it again does nothing; a pending
   * {@linkcode EventFd.wait} rejects with `Deno.errors.BadResource`.
   *
   * @example Close twice
   * ```ts
   * import { EventFd } from "@fdpass/fdpass";
   * import { assert } from "@std/assert";
   *
   * const events = EventFd.create();
   * events.close();
   * events.close();
   * assert(events.closed);
   * ```
   */
  close(): void {
    this.#handle.close();
  }

  /** Closes; lets `using` manage the eventfd. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Shows the fd in `console.log` and the REPL. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.#handle.closed ? "EventFd { closed }" : `EventFd { fd: ${this.#handle.fd} }`;
  }
}
