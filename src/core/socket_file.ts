/**
 * The lifetime of a socket file: bind a path (replacing a stale socket file
 * only), remember the file's identity, and remove it on close only if it is
 * still the one this process bound.
 *
 * @module
 */

import { libc } from "../../ffi/libc.ts";
import { cString } from "./checks.ts";
import { errnoError } from "./errors.ts";
import { formatAddress, type UnixAddress } from "./address.ts";
import { lstatPath } from "./fd_ops.ts";
import { bindFd, connectStep, createUnixSocket, type SocketType } from "./socket_calls.ts";

/** A socket file this process created, identified by device and inode. */
export interface SocketFile {
  /** The path, NUL-terminated. */
  readonly path: Uint8Array;
  /** The path as text, for messages. */
  readonly name: string;
  /** `st_dev` at bind time. */
  readonly dev: bigint;
  /** `st_ino` at bind time. */
  readonly ino: bigint;
}

/**
 * Whether a process accepts on the socket file at `address`: a probe
 * connect that the kernel refuses (`ECONNREFUSED`) means the file is
 * stale, left by a process that died.
 *
 * @param address The path.
 * @param type The type to probe with.
 * @returns `true` when something listens (or answers) there.
 */
function isLive(address: string | Uint8Array, type: SocketType): boolean {
  const probe = createUnixSocket(type, true);
  try {
    connectStep(probe, address);
    // Connected, in progress, or a full backlog: somebody is there.
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.ConnectionRefused) return false;
    // A live socket of another type answers EPROTOTYPE.
    if ((error as { code?: string }).code === "EPROTOTYPE") return true;
    throw error;
  } finally {
    libc().lib.close(probe);
  }
}

/**
 * Binds `fd` to `address` and, for a path, remembers the socket file's
 * identity so that close removes it only if it is still ours.
 *
 * @param fd The socket.
 * @param address The address.
 * @param type The socket's type (for probing an existing file).
 * @param removeExisting Whether a stale socket file at the path may be
 * replaced. A live socket is `Deno.errors.AddrInUse`; a path that is not a
 * socket is never removed.
 * @returns What to unlink on close, or `null` for abstract names.
 */
export function bindAndRemember(
  fd: number,
  address: UnixAddress,
  type: SocketType,
  removeExisting: boolean,
): SocketFile | null {
  const isPath = typeof address === "string" || address instanceof Uint8Array;
  const path = isPath ? cString(address, "address") : null;
  const name = formatAddress(address);
  if (removeExisting && isPath) {
    const existing = lstatPath(path!, name);
    if (existing !== null) {
      if (existing.kind !== "socket") {
        throw new TypeError(
          `Cannot remove "${name}" before binding: it is a ${existing.kind}, not a socket`,
        );
      }
      if (isLive(address, type)) {
        throw new Deno.errors.AddrInUse(
          `Cannot replace "${name}": a process is listening on it (removeExisting replaces only a stale socket file)`,
        );
      }
      unlinkPath(path!, name);
    }
  }
  bindFd(fd, address);
  if (!isPath) return null;
  const stat = lstatPath(path!, name);
  return stat === null ? null : { path: path!, name, dev: stat.dev, ino: stat.ino };
}

function unlinkPath(path: Uint8Array, name: string): void {
  const { lib, layout, errno } = libc();
  if (lib.unlink(path) !== 0 && errno[0] !== layout.errno.ENOENT) {
    throw errnoError(errno[0]!, "unlink", name);
  }
}

/**
 * Removes a socket file if it is still the one this process bound.
 *
 * @param file The path and identity recorded at bind time.
 */
export function unlinkIfSame(file: SocketFile): void {
  const stat = lstatPath(file.path, file.name);
  if (stat !== null && stat.dev === file.dev && stat.ino === file.ino) {
    unlinkPath(file.path, file.name);
  }
}
