/**
 * Operations on fd numbers: `fstat`/`lstat`, descriptor and status flags,
 * duplicate, close, open, pipe, read and write. Everything returns numbers;
 * the public classes wrap them.
 *
 * @module
 */

import { libc } from "../../ffi/libc.ts";
import { cString } from "./checks.ts";
import { errnoError } from "./errors.ts";
import { check, failure, syscall, WOULD_BLOCK, type WouldBlock } from "./syscall.ts";

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

// Off-heap: the kernel writes the struct at this address.
const statBuffer = new Uint8Array(new ArrayBuffer(256));
const statView = new DataView(statBuffer.buffer);

function readStatBuffer(): FdStat {
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
 * `fstat(fd)`.
 *
 * @param fd The fd.
 * @returns The fields fdpass uses.
 */
export function statFd(fd: number): FdStat {
  check(() => libc().lib.fstat(fd, statBuffer), "fstat");
  return readStatBuffer();
}

/**
 * `lstat(path)`.
 *
 * @param path The path, NUL-terminated.
 * @param name The path as text, for errors.
 * @returns The stat, or `null` when the path does not exist.
 */
export function lstatPath(path: Uint8Array, name: string): FdStat | null {
  const { lib, layout, errno } = libc();
  for (;;) {
    if (lib.lstat(path, statBuffer) === 0) return readStatBuffer();
    const e = errno[0]!;
    if (e === layout.errno.ENOENT) return null;
    if (e !== layout.errno.EINTR) throw errnoError(e, "lstat", name);
  }
}

/**
 * `fcntl(fd, cmd, arg)`, checked.
 *
 * @param fd The fd.
 * @param cmd The command.
 * @param arg The argument.
 * @returns The result.
 */
export function fcntlFd(fd: number, cmd: number, arg: number): number {
  const rc = libc().fcntl(fd, cmd, arg);
  if (rc < 0) throw errnoError(libc().errno[0]!, "fcntl");
  return rc;
}

/**
 * Whether `FD_CLOEXEC` is set.
 *
 * @param fd The fd.
 * @returns The flag.
 */
export function getCloseOnExec(fd: number): boolean {
  const c = libc().layout.constants;
  return (fcntlFd(fd, c.F_GETFD, 0) & c.FD_CLOEXEC) !== 0;
}

/**
 * Sets or clears `FD_CLOEXEC`.
 *
 * @param fd The fd.
 * @param value The flag.
 */
export function setCloseOnExec(fd: number, value: boolean): void {
  const c = libc().layout.constants;
  const flags = fcntlFd(fd, c.F_GETFD, 0);
  fcntlFd(fd, c.F_SETFD, value ? flags | c.FD_CLOEXEC : flags & ~c.FD_CLOEXEC);
}

/**
 * The status flags of the open file description (`F_GETFL`).
 *
 * @param fd The fd.
 * @returns The flags.
 */
export function statusFlags(fd: number): number {
  return fcntlFd(fd, libc().layout.constants.F_GETFL, 0);
}

/**
 * Whether `O_NONBLOCK` is set on the open file description.
 *
 * @param fd The fd.
 * @returns The flag.
 */
export function getNonblocking(fd: number): boolean {
  return (statusFlags(fd) & libc().layout.constants.O_NONBLOCK) !== 0;
}

/**
 * Sets or clears `O_NONBLOCK` on the open file description (shared with
 * every holder of it).
 *
 * @param fd The fd.
 * @param value The flag.
 */
export function setNonblocking(fd: number, value: boolean): void {
  const c = libc().layout.constants;
  const flags = statusFlags(fd);
  fcntlFd(fd, c.F_SETFL, value ? flags | c.O_NONBLOCK : flags & ~c.O_NONBLOCK);
}

/**
 * A new close-on-exec number for the same open file description.
 *
 * @param fd The fd.
 * @returns The new number, owned by the caller.
 */
export function dupFd(fd: number): number {
  return fcntlFd(fd, libc().layout.constants.F_DUPFD_CLOEXEC, 0);
}

/**
 * Closes `fd`. Never retried: Linux frees the number even when `close`
 * fails with `EINTR` (close(2), "Dealing with error returns").
 *
 * @param fd The fd.
 * @throws {ErrnoError} `EBADF` only: the number was not open.
 */
export function closeFd(fd: number): void {
  const { lib, layout, errno } = libc();
  if (lib.close(fd) !== 0 && errno[0] === layout.errno.EBADF) {
    throw errnoError(layout.errno.EBADF!, "close");
  }
}

/**
 * `open(path, flags, mode)`, `EINTR` retried.
 *
 * @param path The path, NUL-terminated.
 * @param flags The `O_*` flags.
 * @param mode Permission bits for a created file.
 * @param name The path as text, for errors.
 * @returns The new fd number.
 */
export function openPath(path: Uint8Array, flags: number, mode: number, name: string): number {
  return syscall(() => libc().open(path, flags, mode), "open", name) as number;
}

/**
 * Creates a pipe, both ends close-on-exec.
 *
 * @returns `[readEnd, writeEnd]` numbers.
 */
export function pipeFds(): [number, number] {
  const { lib, layout } = libc();
  const pair = new Int32Array(2);
  if (layout.features.pipe2) {
    check(() => lib.pipe2!(pair, layout.constants.O_CLOEXEC), "pipe2");
    return [pair[0]!, pair[1]!];
  }
  // No pipe2 (macOS): set FD_CLOEXEC right after, racy with a concurrent
  // fork+exec as everywhere without pipe2.
  check(() => lib.pipe(pair), "pipe");
  try {
    setCloseOnExec(pair[0]!, true);
    setCloseOnExec(pair[1]!, true);
  } catch (error) {
    lib.close(pair[0]!);
    lib.close(pair[1]!);
    throw error;
  }
  return [pair[0]!, pair[1]!];
}

/**
 * One `read` (`EINTR` retried).
 *
 * @param fd The fd.
 * @param buffer Where the bytes go.
 * @returns Bytes read (0 at end of file), or {@linkcode WOULD_BLOCK}.
 */
export function readStep(fd: number, buffer: Uint8Array): number | WouldBlock {
  const { lib } = libc();
  for (;;) {
    const n = Number(lib.read(fd, buffer, BigInt(buffer.byteLength)));
    if (n >= 0) return n;
    if (failure("read") === WOULD_BLOCK) return WOULD_BLOCK;
  }
}

/**
 * One `write` (`EINTR` retried).
 *
 * @param fd The fd.
 * @param data The bytes.
 * @returns Bytes written, or {@linkcode WOULD_BLOCK}.
 */
export function writeStep(fd: number, data: Uint8Array): number | WouldBlock {
  const { lib } = libc();
  for (;;) {
    const n = Number(lib.write(fd, data, BigInt(data.byteLength)));
    if (n >= 0) return n;
    if (failure("write") === WOULD_BLOCK) return WOULD_BLOCK;
  }
}

/**
 * One `pread` at `offset` (`EINTR` retried); the fd's own offset is left alone.
 *
 * @param fd The fd.
 * @param buffer Where the bytes go.
 * @param offset The file offset.
 * @returns Bytes read (0 at end of file), or {@linkcode WOULD_BLOCK}.
 */
export function preadStep(fd: number, buffer: Uint8Array, offset: number): number | WouldBlock {
  const { lib } = libc();
  for (;;) {
    const n = Number(lib.pread(fd, buffer, BigInt(buffer.byteLength), BigInt(offset)));
    if (n >= 0) return n;
    if (failure("pread") === WOULD_BLOCK) return WOULD_BLOCK;
  }
}

/**
 * The current file offset (`lseek(fd, 0, SEEK_CUR)`).
 *
 * @param fd The fd.
 * @returns The offset, or -1 for fds without one (pipes, sockets).
 */
export function fileOffset(fd: number): number {
  const { lib, layout } = libc();
  const offset = lib.lseek(fd, 0n, layout.constants.SEEK_CUR);
  return offset < 0n ? -1 : Number(offset);
}

const linkBuffer = new Uint8Array(new ArrayBuffer(4096));
const decoder = new TextDecoder();

/**
 * What `/proc/self/fd/N` points to (Linux): a path, or a pseudo-name such
 * as `pipe:[123]` or `anon_inode:[eventfd]`. Read with libc's `readlink`,
 * so it needs no Deno read permission.
 *
 * @param fd The fd.
 * @returns The link target, or `null` where the platform has no
 * `/proc/self/fd` or the link cannot be read.
 */
export function fdPath(fd: number): string | null {
  const { lib, layout } = libc();
  if (!layout.features.procSelfFd) return null;
  const link = cString(`/proc/self/fd/${fd}`, "fd");
  const n = Number(lib.readlink(link, linkBuffer, BigInt(linkBuffer.byteLength)));
  if (n < 0) return null;
  return decoder.decode(linkBuffer.subarray(0, n));
}
