/**
 * File descriptors: {@linkcode OwnedFd} owns and closes its number,
 * {@linkcode BorrowedFd} lends the same operations over a number somebody
 * else owns (stdio, inherited fds).
 *
 * @module
 */

import { libc } from "../ffi/libc.ts";
import { checkFdNumber, checkSignal, cString, describeValue, pathString } from "./core/checks.ts";
import { closedWhileWaiting } from "./core/errors.ts";
import {
  closeFd,
  dupFd,
  type FdKind,
  type FdStat,
  getCloseOnExec,
  getNonblocking,
  openPath,
  pipeFds,
  readStep,
  setCloseOnExec,
  setNonblocking,
  statFd,
  writeStep,
} from "./core/fd_ops.ts";
import { waitSync, WOULD_BLOCK } from "./core/syscall.ts";
import { readAsync, writeAsync } from "./async/drivers.ts";
import { existingPoller } from "./async/poller.ts";
import { readableFrom, writableTo } from "./adapters/streams.ts";
import { toFsFile, toNetSocket } from "./adapters/handoff.ts";
import type { Socket } from "./adapters/handoff.ts";

export type { FdKind, FdStat };

/**
 * The operations every holder of an fd number may perform. See
 * {@linkcode OwnedFd} and {@linkcode BorrowedFd}.
 */
export abstract class Descriptor {
  /** The fd number. Throws a `TypeError` once an owned fd is closed. */
  abstract get fd(): number;

  /**
   * What the fd refers to, from `fstat`.
   *
   * @example Kind of a pipe
   * ```ts
   * import { pipe } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const [r, w] = pipe();
   * assertEquals(r.kind, "pipe");
   * r.close();
   * w.close();
   * ```
   */
  get kind(): FdKind {
    return this.stat().kind;
  }

  /**
   * `fstat` of the fd.
   *
   * @returns The kind, mode, size, device and inode.
   *
   * @example Size of an open file
   * ```ts
   * import { openFd } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const path = Deno.makeTempFileSync();
   * Deno.writeTextFileSync(path, "12345");
   * using file = openFd(path);
   * assertEquals(file.stat().size, 5);
   * Deno.removeSync(path);
   * ```
   */
  stat(): FdStat {
    return statFd(this.fd);
  }

  /**
   * Whether the fd is closed when the process calls `exec` (`FD_CLOEXEC`).
   * Every fd fdpass creates or receives starts with it set.
   *
   * @example Let a child inherit an fd
   * ```ts
   * import { openFd } from "@fdpass/fdpass";
   * import { assert } from "@std/assert";
   *
   * using file = openFd("/dev/null");
   * assert(file.closeOnExec);
   * file.closeOnExec = false;
   * assert(!file.closeOnExec);
   * ```
   */
  get closeOnExec(): boolean {
    return getCloseOnExec(this.fd);
  }

  set closeOnExec(value: boolean) {
    setCloseOnExec(this.fd, value);
  }

  /**
   * Whether the open file description is in nonblocking mode
   * (`O_NONBLOCK`). This is shared with every other fd and process that
   * holds the same file description.
   *
   * @example Switch to nonblocking mode
   * ```ts
   * import { pipe } from "@fdpass/fdpass";
   * import { assert } from "@std/assert";
   *
   * const [r, w] = pipe();
   * r.nonblocking = true;
   * assert(r.nonblocking);
   * r.close();
   * w.close();
   * ```
   */
  get nonblocking(): boolean {
    return getNonblocking(this.fd);
  }

  set nonblocking(value: boolean) {
    setNonblocking(this.fd, value);
  }

  /** Whether the fd was closed or released (always `false` for a borrowed fd). */
  abstract get closed(): boolean;

  /**
   * Reads into `buffer`, blocking until some bytes are there (also in
   * nonblocking mode, by waiting with `poll`).
   *
   * @param buffer Where to put the bytes.
   * @returns The number of bytes read, or `null` at end of file.
   *
   * @example Read from a pipe
   * ```ts
   * import { pipe } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const [r, w] = pipe();
   * w.writeSync(new TextEncoder().encode("hi"));
   * w.close();
   * const buf = new Uint8Array(8);
   * assertEquals(r.readSync(buf), 2);
   * assertEquals(r.readSync(buf), null);
   * r.close();
   * ```
   */
  readSync(buffer: Uint8Array): number | null {
    if (!(buffer instanceof Uint8Array)) {
      throw new TypeError(`Argument "buffer" must be a Uint8Array`);
    }
    const fd = this.fd;
    if (buffer.byteLength === 0) return 0;
    for (;;) {
      const n = readStep(fd, buffer);
      if (n !== WOULD_BLOCK) return n === 0 ? null : n;
      waitSync(fd, libc().layout.constants.POLLIN);
    }
  }

  /**
   * Writes some of `data`, blocking until at least one byte is written.
   *
   * @param data The bytes.
   * @returns The number of bytes written, which may be less than
   * `data.byteLength`; see {@linkcode Descriptor.writeAllSync}.
   *
   * @example Write to a pipe
   * ```ts
   * import { pipe } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const [r, w] = pipe();
   * assertEquals(w.writeSync(new Uint8Array([1, 2, 3])), 3);
   * r.close();
   * w.close();
   * ```
   */
  writeSync(data: Uint8Array): number {
    if (!(data instanceof Uint8Array)) {
      throw new TypeError(`Argument "data" must be a Uint8Array`);
    }
    const fd = this.fd;
    if (data.byteLength === 0) return 0;
    for (;;) {
      const n = writeStep(fd, data);
      if (n !== WOULD_BLOCK) return n;
      waitSync(fd, libc().layout.constants.POLLOUT);
    }
  }

  /**
   * Writes all of `data`, or a string as UTF-8.
   *
   * @param data The bytes or text.
   *
   * @example Write a line to stdout
   * ```ts
   * import { borrowFd } from "@fdpass/fdpass";
   *
   * borrowFd(1).writeAllSync("hello from fd 1\n");
   * ```
   */
  writeAllSync(data: Uint8Array | string): void {
    let bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    while (bytes.byteLength > 0) {
      bytes = bytes.subarray(this.writeSync(bytes));
    }
  }

  /**
   * Reads into `buffer` without blocking the thread: waits for readability
   * in the shared poller, then reads.
   *
   * @param buffer Where to put the bytes.
   * @param options An abort signal.
   * @returns The number of bytes read, or `null` at end of file.
   *
   * @example Read a pipe asynchronously
   * ```ts
   * import { pipe } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const [r, w] = pipe();
   * const pending = r.read(new Uint8Array(8));
   * w.writeAllSync("hi");
   * assertEquals(await pending, 2);
   * r.close();
   * w.close();
   * ```
   */
  read(buffer: Uint8Array, options?: { signal?: AbortSignal }): Promise<number | null> {
    try {
      if (!(buffer instanceof Uint8Array)) {
        throw new TypeError(`Argument "buffer" must be a Uint8Array`);
      }
      const signal = checkSignal(options?.signal);
      this.fd;
      // The operation holds this object, not its number, until it settles.
      return readAsync(this, buffer, signal);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Writes some of `data` without blocking the thread.
   *
   * @param data The bytes.
   * @param options An abort signal.
   * @returns The number of bytes written (at least one).
   *
   * @example Write to a pipe asynchronously
   * ```ts
   * import { pipe } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const [r, w] = pipe();
   * assertEquals(await w.write(new Uint8Array([1, 2])), 2);
   * r.close();
   * w.close();
   * ```
   */
  write(data: Uint8Array, options?: { signal?: AbortSignal }): Promise<number> {
    try {
      if (!(data instanceof Uint8Array)) {
        throw new TypeError(`Argument "data" must be a Uint8Array`);
      }
      const signal = checkSignal(options?.signal);
      this.fd;
      return writeAsync(this, data, signal);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Duplicates the fd (`F_DUPFD_CLOEXEC`): a new number for the same open
   * file description, owned by the caller.
   *
   * @returns The new owned fd, close-on-exec.
   *
   * @example Duplicate stdout
   * ```ts
   * import { borrowFd } from "@fdpass/fdpass";
   * import { assertNotEquals } from "@std/assert";
   *
   * using copy = borrowFd(1).dup();
   * assertNotEquals(copy.fd, 1);
   * ```
   */
  dup(): OwnedFd {
    return new OwnedFd(dupFd(this.fd));
  }
}

// Closes fds whose owner was garbage-collected without close(). The
// backstop is there for bugs; owners should close explicitly. An owner with
// a pending operation is held by that operation (src/async/handle.ts), so
// it is never collected while the operation waits.
const registry = new FinalizationRegistry<number>((fd) => {
  existingPoller()?.forget(fd, closedWhileWaiting);
  libc().lib.close(fd);
});

// Registering with the FinalizationRegistry (and unregistering on close)
// costs about 350 ns in Deno 2.9, a tenth of a whole fd round trip, and most
// received fds are closed within the same task. New fds therefore wait in
// this list and are registered at the next microtask checkpoint if they are
// still open by then. A full list (a long synchronous loop) drops its
// closed fds, and registers the open ones once they are half of it or more,
// so that the list stays bounded; closed ones never touch the registry.
const unregistered: OwnedFd[] = [];
let flushQueued = false;
const REGISTER_BATCH = 256;

/**
 * An fd this object owns: it is closed by {@linkcode OwnedFd.close}, by
 * `using`, or, as a backstop, when the object is garbage-collected.
 *
 * @example Own an fd and close it with `using`
 * ```ts
 * import { openFd } from "@fdpass/fdpass";
 * import { assertEquals } from "@std/assert";
 *
 * {
 *   using file = openFd("/dev/null");
 *   assertEquals(file.kind, "character");
 * } // closed here
 * ```
 */
export class OwnedFd extends Descriptor {
  #fd: number;

  /**
   * Takes ownership of an fd number, such as one inherited from a parent.
   *
   * @param fd The fd number; it will be closed by this object.
   */
  constructor(fd: number) {
    super();
    this.#fd = checkFdNumber(fd, "fd");
    unregistered.push(this);
    if (unregistered.length >= REGISTER_BATCH) {
      OwnedFd.#registerPending(REGISTER_BATCH / 2);
    } else if (!flushQueued) {
      // One microtask at a time: a long synchronous loop flushes through
      // the batch limit above and never piles up queued callbacks.
      flushQueued = true;
      queueMicrotask(() => {
        flushQueued = false;
        OwnedFd.#registerPending(0);
      });
    }
  }

  #registered = false;

  /**
   * Drops the closed fds from the waiting list, and registers the open ones
   * when at least `least` of them are left. A full list in a long
   * synchronous loop is mostly fds closed since (dropped) and the fds of the
   * message being received (still waiting): registering those now would
   * cost the registry's price for fds that are closed moments later.
   */
  static #registerPending(least: number): void {
    let open = 0;
    for (const owned of unregistered) {
      if (owned.#fd >= 0) unregistered[open++] = owned;
    }
    unregistered.length = open;
    if (open === 0 || open < least) return;
    for (const owned of unregistered) {
      registry.register(owned, owned.#fd, owned);
      owned.#registered = true;
    }
    unregistered.length = 0;
  }

  #unregister(): void {
    if (this.#registered) {
      registry.unregister(this);
      this.#registered = false;
    }
  }

  /**
   * The fd number.
   *
   * @throws {TypeError} When the fd was closed or released.
   */
  get fd(): number {
    if (this.#fd < 0) {
      throw new TypeError("Cannot use the fd: it is closed or released");
    }
    return this.#fd;
  }

  /** Whether {@linkcode OwnedFd.close} or {@linkcode OwnedFd.release} was called. */
  get closed(): boolean {
    return this.#fd < 0;
  }

  /**
   * Closes an fd number that the caller owns, without an `OwnedFd` around
   * it: for the numbers `UnixSocket.recvIntoSync()` delivers, in
   * loops that allocate nothing. The same as `new OwnedFd(fd).close()`:
   * async operations still waiting on the number reject with
   * `Deno.errors.BadResource`, and `close` is not retried (Linux frees the
   * number even when it fails with `EINTR`).
   *
   * @param fd The fd number.
   * @throws {ErrnoError} `EBADF` when the number was not open.
   *
   * @example Close the fds received into an Int32Array
   * ```ts
   * import { openFd, OwnedFd, UnixSocket } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const [a, b] = UnixSocket.pair();
   * using devNull = openFd("/dev/null");
   * a.sendSync("x", { fds: [devNull, devNull] });
   * const fds = new Int32Array(4);
   * const { fds: count } = b.recvIntoSync(new Uint8Array(8), fds)!;
   * assertEquals(count, 2);
   * for (let i = 0; i < count; i++) OwnedFd.closeNumber(fds[i]!);
   * a.close();
   * b.close();
   * ```
   */
  static closeNumber(fd: number): void {
    if (typeof fd !== "number" || (fd | 0) !== fd || fd < 0) checkFdNumber(fd, "fd");
    existingPoller()?.forget(fd, closedWhileWaiting);
    closeFd(fd);
  }

  /**
   * Closes the fd. Calling it again does nothing.
   *
   * @example Close twice
   * ```ts
   * import { openFd } from "@fdpass/fdpass";
   * import { assert } from "@std/assert";
   *
   * const file = openFd("/dev/null");
   * file.close();
   * file.close();
   * assert(file.closed);
   * ```
   */
  close(): void {
    const fd = this.#fd;
    if (fd < 0) return;
    this.#fd = -1;
    this.#unregister();
    // Reject async operations still waiting on this fd, and take it out of
    // the poller before the number can be reused.
    existingPoller()?.forget(fd, closedWhileWaiting);
    closeFd(fd);
  }

  /**
   * Gives up ownership without closing: the caller now owns the number.
   *
   * @returns The fd number.
   *
   * @example Hand the number to code that closes it itself
   * ```ts
   * import { openFd, OwnedFd } from "@fdpass/fdpass";
   *
   * const n = openFd("/dev/null").release();
   * new OwnedFd(n).close();
   * ```
   */
  release(): number {
    const fd = this.fd;
    this.#fd = -1;
    this.#unregister();
    existingPoller()?.forget(fd, closedWhileWaiting);
    return fd;
  }

  /**
   * A byte `ReadableStream` over the fd (pipes, sockets, files). The stream
   * owns the fd from the first read: it closes it at end of file, on
   * cancel, or on error.
   *
   * @example Decode a pipe as text
   * ```ts
   * import { pipe } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const [r, w] = pipe();
   * w.writeAllSync("streamed");
   * w.close();
   * let text = "";
   * for await (const chunk of r.readable.pipeThrough(new TextDecoderStream())) text += chunk;
   * assertEquals(text, "streamed");
   * ```
   */
  get readable(): ReadableStream<Uint8Array> {
    return this.#readable ??= readableFrom(this);
  }

  /**
   * A `WritableStream` over the fd with backpressure: each chunk is written
   * out before the next is taken. Closing or aborting the stream closes
   * the fd.
   *
   * @example Write text into a pipe
   * ```ts
   * import { pipe } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const [r, w] = pipe();
   * const writer = w.writable.getWriter();
   * await writer.write(new TextEncoder().encode("abc"));
   * await writer.close();
   * assertEquals(r.readSync(new Uint8Array(8)), 3);
   * r.close();
   * ```
   */
  get writable(): WritableStream<Uint8Array> {
    return this.#writable ??= writableTo(this);
  }

  #readable: ReadableStream<Uint8Array> | undefined;
  #writable: WritableStream<Uint8Array> | undefined;

  /**
   * Reopens the fd as a `Deno.FsFile` through `/proc/self/fd` (Linux;
   * regular files and pipes), then closes this fd. The file gets a new open
   * file description at the same offset: later reads no longer move the
   * offset other holders see. Deno 2.9 treats `/proc/self/fd` as a special
   * path that needs `--allow-all`; without it this throws
   * `Deno.errors.NotCapable` and the fd stays open and owned here.
   *
   * Reopening checks the receiving user's own access to the file: a
   * process that could not open the file itself (privilege separation by
   * operating-system user) gets `Deno.errors.PermissionDenied`, and should
   * read through the fd instead ({@linkcode Descriptor.readSync},
   * {@linkcode Descriptor.read}, {@linkcode OwnedFd.readable}). A pipe whose
   * other end is gone is reopened without blocking: reads then see end of
   * file.
   *
   * @returns The file.
   *
   * @example Read a received file through Deno's API (run with --allow-all)
   * ```ts ignore
   * import { openFd } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const path = Deno.makeTempFileSync();
   * Deno.writeTextFileSync(path, "data");
   * using file = openFd(path).toFsFile();
   * const buf = new Uint8Array(4);
   * file.readSync(buf);
   * assertEquals(new TextDecoder().decode(buf), "data");
   * Deno.removeSync(path);
   * ```
   */
  toFsFile(): Deno.FsFile {
    return toFsFile(this);
  }

  /**
   * Wraps a socket fd in a `node:net` `Socket`. Ownership moves to the
   * socket: `socket.destroy()` closes the fd.
   *
   * @returns The socket.
   *
   * @example Talk over a socketpair with node:net
   * ```ts
   * import { UnixSocket } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const [a, b] = UnixSocket.pair();
   * const socket = b.toOwnedFd().toNetSocket();
   * const received = new Promise((resolve) => socket.once("data", resolve));
   * a.sendSync("ping");
   * assertEquals(new TextDecoder().decode(await received as Uint8Array), "ping");
   * socket.destroy();
   * a.close();
   * ```
   */
  toNetSocket(): Socket {
    return toNetSocket(this);
  }

  /** Closes the fd; lets `using` manage it. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Shows the fd in `console.log` and the REPL. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.#fd < 0 ? "OwnedFd { closed }" : `OwnedFd { fd: ${this.#fd} }`;
  }
}

/**
 * An fd number this object does not own: it never closes it. Use it for
 * 0, 1, 2 and fds inherited from a parent that other code keeps using.
 *
 * @example Write to stderr
 * ```ts
 * import { BorrowedFd } from "@fdpass/fdpass";
 *
 * new BorrowedFd(2).writeAllSync("");
 * ```
 */
export class BorrowedFd extends Descriptor {
  readonly #fd: number;

  /**
   * Borrows an fd number; see {@linkcode borrowFd}.
   *
   * @param fd The fd number.
   */
  constructor(fd: number) {
    super();
    this.#fd = checkFdNumber(fd, "fd");
  }

  /** The fd number. */
  get fd(): number {
    return this.#fd;
  }

  /** Always `false`: a borrowed fd is never closed by this object. */
  get closed(): boolean {
    return false;
  }

  /** Shows the fd in `console.log` and the REPL. */
  [Symbol.for("Deno.customInspect")](): string {
    return `BorrowedFd { fd: ${this.#fd} }`;
  }
}

/**
 * Borrows an fd number the process already has (0, 1, 2, inherited fds),
 * without taking ownership.
 *
 * @param fd The fd number.
 * @returns A borrowed fd that never closes the number.
 *
 * @example Check what stdin is
 * ```ts
 * import { borrowFd } from "@fdpass/fdpass";
 *
 * console.log(borrowFd(0).kind);
 * ```
 */
export function borrowFd(fd: number): BorrowedFd {
  return new BorrowedFd(fd);
}

/** Options for {@linkcode openFd}. */
export interface OpenFdOptions {
  /**
   * Open for reading.
   *
   * @default {true} unless `write` or `append` is set
   */
  read?: boolean;
  /**
   * Open for writing.
   *
   * @default {false}
   */
  write?: boolean;
  /**
   * Append to the end (implies `write`).
   *
   * @default {false}
   */
  append?: boolean;
  /**
   * Create the file if it does not exist.
   *
   * @default {false}
   */
  create?: boolean;
  /**
   * Fail if the file exists (with `create`).
   *
   * @default {false}
   */
  createNew?: boolean;
  /**
   * Truncate to zero length.
   *
   * @default {false}
   */
  truncate?: boolean;
  /**
   * Permission bits for a created file.
   *
   * @default {0o666}
   */
  mode?: number;
  /**
   * Fail unless the path is a directory (`O_DIRECTORY`).
   *
   * @default {false}
   */
  directory?: boolean;
  /**
   * Fail if the last path component is a symbolic link (`O_NOFOLLOW`).
   *
   * @default {false}
   */
  noFollow?: boolean;
  /**
   * Open in nonblocking mode.
   *
   * @default {false}
   */
  nonblocking?: boolean;
}

/**
 * Opens a file and returns the owned fd, close-on-exec.
 *
 * @param path The path.
 * @param options How to open it.
 * @returns The owned fd.
 *
 * @example Open a file read-only
 * ```ts
 * import { openFd } from "@fdpass/fdpass";
 * import { assertEquals } from "@std/assert";
 *
 * using fd = openFd("/dev/null");
 * assertEquals(fd.readSync(new Uint8Array(1)), null);
 * ```
 */
export function openFd(path: string | URL, options: OpenFdOptions = {}): OwnedFd {
  const p = pathString(path, "path");
  const c = libc().layout.constants;
  const write = options.write === true || options.append === true;
  const read = options.read ?? !write;
  if (!read && !write) {
    throw new TypeError(
      `Argument "options" must allow reading or writing: read, write and append are all false`,
    );
  }
  let flags = c.O_CLOEXEC |
    (read && write ? c.O_RDWR : write ? c.O_WRONLY : c.O_RDONLY);
  if (options.append) flags |= c.O_APPEND;
  if (options.create || options.createNew) flags |= c.O_CREAT;
  if (options.createNew) flags |= c.O_EXCL;
  if (options.truncate) flags |= c.O_TRUNC;
  if (options.directory) flags |= c.O_DIRECTORY;
  if (options.noFollow) flags |= c.O_NOFOLLOW;
  if (options.nonblocking) flags |= c.O_NONBLOCK;
  const mode = options.mode ?? 0o666;
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) {
    throw new RangeError(
      `Option "mode" must be an integer from 0 to 0o7777, received ${mode}`,
    );
  }
  return new OwnedFd(openPath(cString(p, "path"), flags, mode, p));
}

/**
 * Creates a pipe, both ends close-on-exec.
 *
 * @returns `[readEnd, writeEnd]`.
 *
 * @example Pass data through a pipe
 * ```ts
 * import { pipe } from "@fdpass/fdpass";
 * import { assertEquals } from "@std/assert";
 *
 * const [r, w] = pipe();
 * w.writeAllSync("x");
 * const buf = new Uint8Array(1);
 * assertEquals(r.readSync(buf), 1);
 * r.close();
 * w.close();
 * ```
 */
export function pipe(): [OwnedFd, OwnedFd] {
  const [r, w] = pipeFds();
  return [new OwnedFd(r), new OwnedFd(w)];
}

/**
 * Takes ownership of an fd given as an {@linkcode OwnedFd} (ownership moves:
 * the given object is released) or a number (now owned), after `check`
 * accepted it. The one adopt-an-fd rule of `UnixSocket.from`,
 * `MemFd.from` and `EventFd.from`.
 *
 * @param fd The fd.
 * @param check Throws when the fd is not the right kind; nothing is taken then.
 * @returns The owned fd.
 */
export function adoptFd(fd: OwnedFd | number, check: (fd: number) => void): OwnedFd {
  if (typeof fd !== "number" && !(fd instanceof OwnedFd)) {
    throw new TypeError(
      `Argument "fd" must be an OwnedFd or an fd number, received ${describeValue(fd)}`,
    );
  }
  const number = typeof fd === "number" ? checkFdNumber(fd, "fd") : fd.fd;
  check(number);
  return typeof fd === "number" ? new OwnedFd(fd) : new OwnedFd(fd.release());
}
