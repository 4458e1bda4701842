/**
 * File descriptors: {@linkcode OwnedFd} owns and closes its number,
 * {@linkcode BorrowedFd} lends the same operations over a number somebody
 * else owns (stdio, inherited fds).
 *
 * @module
 */

import { libc } from "../ffi/libc.ts";
import { checkFdNumber, throwErrno } from "./errors.ts";
import { cString, pathString, retryKind, waitSync } from "./sys.ts";
import { fdToFsFile, fdToNetSocket } from "./convert.ts";
import type { Socket } from "node:net";
import { existingPoller } from "./poller.ts";
import { readAsync, writeAsync } from "./async_ops.ts";
import { readableFromFd, writableFromFd } from "./streams.ts";

function closedWhileWaiting(): Error {
  return new Deno.errors.BadResource("The fd was closed while an operation waited on it");
}

/** What an fd refers to, from `fstat`. */
export type FdKind =
  | "file"
  | "directory"
  | "socket"
  | "pipe"
  | "character"
  | "block"
  | "symlink"
  | "unknown";

/** What `fstat` says about an fd. */
export interface FdStat {
  /** What the fd refers to. */
  readonly kind: FdKind;
  /** `st_mode`: type and permission bits. */
  readonly mode: number;
  /** `st_size` in bytes (meaningful for regular files). */
  readonly size: number;
  /** `st_dev`. */
  readonly dev: bigint;
  /** `st_ino`. */
  readonly ino: bigint;
}

const statBuffer = new Uint8Array(256);
const statView = new DataView(statBuffer.buffer);

/**
 * Reads the `struct stat` that was just written to the shared stat buffer.
 *
 * @returns The fields fdpass uses.
 */
export function readStatBuffer(): FdStat {
  const { layout } = libc();
  const s = layout.stat;
  const c = layout.constants;
  const mode = s.modeSize === 4
    ? statView.getUint32(s.mode, true)
    : statView.getUint16(s.mode, true);
  const dev = s.devSize === 8
    ? statView.getBigUint64(s.dev, true)
    : BigInt(statView.getUint32(s.dev, true));
  let kind: FdKind;
  switch (mode & c.S_IFMT) {
    case c.S_IFREG:
      kind = "file";
      break;
    case c.S_IFDIR:
      kind = "directory";
      break;
    case c.S_IFSOCK:
      kind = "socket";
      break;
    case c.S_IFIFO:
      kind = "pipe";
      break;
    case c.S_IFCHR:
      kind = "character";
      break;
    case c.S_IFBLK:
      kind = "block";
      break;
    case c.S_IFLNK:
      kind = "symlink";
      break;
    default:
      kind = "unknown";
  }
  return {
    kind,
    mode,
    size: Number(statView.getBigInt64(s.fileSize, true)),
    dev,
    ino: statView.getBigUint64(s.ino, true),
  };
}

/**
 * `lstat(path)` into the shared stat buffer.
 *
 * @param path The path.
 * @returns The stat, or `null` when the path does not exist.
 */
export function lstatPath(path: string): FdStat | null {
  const { lib, layout, errno } = libc();
  if (lib.lstat(cString(path, "path"), statBuffer) === 0) {
    return readStatBuffer();
  }
  if (errno[0] === layout.errno.ENOENT) return null;
  throwErrno("lstat", path);
}

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
    const fd = this.fd;
    if (libc().lib.fstat(fd, statBuffer) !== 0) throwErrno("fstat");
    return readStatBuffer();
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
    const { layout } = libc();
    return (this.#fcntl(layout.constants.F_GETFD, 0) &
      layout.constants.FD_CLOEXEC) !== 0;
  }

  set closeOnExec(value: boolean) {
    const c = libc().layout.constants;
    const flags = this.#fcntl(c.F_GETFD, 0);
    this.#fcntl(
      c.F_SETFD,
      value ? flags | c.FD_CLOEXEC : flags & ~c.FD_CLOEXEC,
    );
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
    const c = libc().layout.constants;
    return (this.#fcntl(c.F_GETFL, 0) & c.O_NONBLOCK) !== 0;
  }

  set nonblocking(value: boolean) {
    const c = libc().layout.constants;
    const flags = this.#fcntl(c.F_GETFL, 0);
    this.#fcntl(
      c.F_SETFL,
      value ? flags | c.O_NONBLOCK : flags & ~c.O_NONBLOCK,
    );
  }

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
    const { lib, layout } = libc();
    for (;;) {
      const n = Number(lib.read(fd, buffer, BigInt(buffer.byteLength)));
      if (n > 0) return n;
      if (n === 0) return null;
      const retry = retryKind();
      if (retry === "wait") waitSync(fd, layout.constants.POLLIN);
      else if (retry === "no") throwErrno("read");
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
    const { lib, layout } = libc();
    for (;;) {
      const n = Number(lib.write(fd, data, BigInt(data.byteLength)));
      if (n >= 0) return n;
      const retry = retryKind();
      if (retry === "wait") waitSync(fd, layout.constants.POLLOUT);
      else if (retry === "no") throwErrno("write");
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
      return readAsync(this.fd, buffer, options?.signal);
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
      return writeAsync(this.fd, data, options?.signal);
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
    const c = libc().layout.constants;
    return new OwnedFd(this.#fcntl(c.F_DUPFD_CLOEXEC, 0));
  }

  #fcntl(cmd: number, arg: number): number {
    const rc = libc().fcntl(this.fd, cmd, arg);
    if (rc < 0) throwErrno("fcntl");
    return rc;
  }
}

// Closes fds whose owner was garbage-collected without close(). The
// backstop is there for bugs; owners should close explicitly.
const registry = new FinalizationRegistry<number>((fd) => {
  libc().lib.close(fd);
});

// Registering with the FinalizationRegistry (and unregistering on close)
// costs about 350 ns in Deno 2.9, a tenth of a whole fd round trip, and most
// received fds are closed within the same task. New fds therefore wait in
// this list and are registered at the next microtask checkpoint, or when
// the list is full, if they are still open by then. A forgotten fd is thus
// covered at most one flush later; closed ones never touch the registry.
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
      OwnedFd.#registerPending();
    } else if (!flushQueued) {
      // One microtask at a time: a long synchronous loop flushes through
      // the batch limit above and never piles up queued callbacks.
      flushQueued = true;
      queueMicrotask(() => {
        flushQueued = false;
        OwnedFd.#registerPending();
      });
    }
  }

  #registered = false;

  /** Registers the waiting fds that are still open. */
  static #registerPending(): void {
    for (const owned of unregistered) {
      if (owned.#fd >= 0) {
        registry.register(owned, owned.#fd, owned);
        owned.#registered = true;
      }
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
    const { lib, layout, errno } = libc();
    // Linux frees the number even when close() fails with EINTR, so it is
    // never retried (close(2), "Dealing with error returns").
    if (lib.close(fd) !== 0 && errno[0] === layout.errno.EBADF) {
      throwErrno("close");
    }
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
    return this.#readable ??= readableFromFd(this);
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
    return this.#writable ??= writableFromFd(this);
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
    return fdToFsFile(this);
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
    return fdToNetSocket(this);
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
  const bytes = cString(p, "path");
  for (;;) {
    const fd = libc().open(bytes, flags, mode);
    if (fd >= 0) return new OwnedFd(fd);
    if (retryKind() !== "now") throwErrno("open", p);
  }
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
  const { lib, layout } = libc();
  const pair = new Int32Array(2);
  if (lib.pipe2 !== null) {
    if (lib.pipe2(pair, layout.constants.O_CLOEXEC) !== 0) throwErrno("pipe2");
    return [new OwnedFd(pair[0]!), new OwnedFd(pair[1]!)];
  }
  // macOS has no pipe2: set FD_CLOEXEC right after (racy with a concurrent
  // fork/exec, as everywhere without pipe2).
  if (lib.pipe(pair) !== 0) throwErrno("pipe");
  const ends: [OwnedFd, OwnedFd] = [new OwnedFd(pair[0]!), new OwnedFd(pair[1]!)];
  ends[0].closeOnExec = true;
  ends[1].closeOnExec = true;
  return ends;
}
