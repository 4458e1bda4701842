/**
 * {@linkcode EventFd}: a kernel counter behind an fd (`eventfd`, Linux) for
 * wake-ups between threads and processes. Send it alongside shared memory
 * so that a peer can say "there is new data" and the other side can wait
 * for it, synchronously or in the shared poller.
 *
 * @module
 */

import { libc } from "../../ffi/libc.ts";
import { checkOptions, checkSignal, describeValue } from "../core/checks.ts";
import {
  fdPath,
  getNonblocking,
  readStep,
  setNonblocking,
  statFd,
  writeStep,
} from "../core/fd_ops.ts";
import { check, waitSync, WOULD_BLOCK } from "../core/syscall.ts";
import { waitOn } from "../async/handle.ts";
import type { WaitOptions } from "../async/wait.ts";
import { adoptFd, OwnedFd } from "../owned_fd.ts";

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

/** Options for {@linkcode EventFd.wait}: the same as for `waitReadable`. */
export type EventFdWaitOptions = WaitOptions;

// eventfd(2): the counter is a u64 and can hold at most 2^64 - 2.
const MAX_COUNTER = 0xffff_ffff_ffff_fffen;

function requireEventfd(): void {
  const { layout } = libc();
  if (!layout.features.eventfd) {
    throw new Deno.errors.NotSupported(`eventfd is not available on ${layout.name}`);
  }
}

/** What `/proc/self/fd/N` names an eventfd (fs/eventfd.c). */
const EVENTFD_LINK = "anon_inode:[eventfd]";

/**
 * Throws unless `fd` is an eventfd. Where `/proc/self/fd` exists the link
 * names it exactly; elsewhere an anonymous inode (no file type bits) is the
 * best `fstat` can tell.
 */
function checkEventfd(fd: number): void {
  const link = fdPath(fd);
  if (link !== null) {
    if (link === EVENTFD_LINK) return;
    throw new TypeError(
      `Argument "fd" (fd ${fd}) must be an eventfd, not ${
        link.startsWith("anon_inode:") ? `an ${link.slice(11)}` : `a ${statFd(fd).kind}`
      }`,
    );
  }
  const kind = statFd(fd).kind;
  if (kind !== "unknown") {
    throw new TypeError(`Argument "fd" (fd ${fd}) must be an eventfd, not a ${kind}`);
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
    checkOptions(options);
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
    let fd = -1;
    check(() => fd = lib.eventfd!(initialValue, flags), "eventfd");
    return new EventFd(new OwnedFd(fd));
  }

  /**
   * Adopts an eventfd, such as one received in a message. Ownership moves
   * to the new object. Whether it is in semaphore mode was fixed by its
   * creator.
   *
   * It puts the fd in nonblocking mode, so that no read or write can block
   * the thread. `O_NONBLOCK` belongs to the open file description, which
   * the sender shares: the sender's copy becomes nonblocking too (an
   * fdpass {@linkcode EventFd} on the other side copes with either; other
   * code reading it with a blocking `read` gets `EAGAIN` instead of
   * waiting). An fd that is not an eventfd (a pidfd, an epoll fd, a
   * timerfd, a file) is refused and left alone.
   *
   * @param fd An {@linkcode OwnedFd} (ownership moves) or a number (now owned).
   * @returns The eventfd.
   * @throws {TypeError} When the fd is not an eventfd.
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
    return new EventFd(adoptFd(fd, (n) => {
      requireEventfd();
      checkEventfd(n);
      if (!getNonblocking(n)) setNonblocking(n, true);
    }));
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
    this.#buffer[0] = value;
    while (writeStep(fd, this.#bytes) === WOULD_BLOCK) {
      waitSync(fd, libc().layout.constants.POLLOUT);
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
    return readStep(this.fd, this.#bytes) === WOULD_BLOCK ? null : this.#buffer[0]!;
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
    checkOptions(options);
    const signal = checkSignal(options.signal);
    for (;;) {
      if (signal?.aborted) throw signal.reason;
      const value = this.tryWait();
      if (value !== null) return value;
      // Holds the owner, not its number, and fails if it is closed meanwhile.
      await waitOn(this.#handle, false, signal);
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
