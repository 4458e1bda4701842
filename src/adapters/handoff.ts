/**
 * Hand-off of owned fds to ordinary Deno code: `Deno.FsFile` through
 * `/proc/self/fd` and `node:net` sockets. They take a structural owner and
 * know no class.
 *
 * Deno 2 cannot wrap a raw fd in a `Deno.FsFile` or `Deno.Conn`;
 * `net.Socket({ fd })` and reopening through `/proc/self/fd/N` (proc(5))
 * are the two ways that work.
 *
 * @module
 */

import { Socket } from "node:net";

export type { Socket };
import { libc } from "../../ffi/libc.ts";
import { fileOffset, statFd, statusFlags } from "../core/fd_ops.ts";
import { getIntOption } from "../core/socket_calls.ts";

/** What the hand-off needs from an fd owner. */
export interface HandOffOwner {
  /** The fd number; throws once closed. */
  readonly fd: number;
  /** Closes the fd. */
  close(): void;
  /** Gives up ownership without closing. */
  release(): number;
}

/**
 * Reopens an owned fd as a `Deno.FsFile` and closes the fd.
 *
 * A pipe or FIFO is reopened without ever blocking: opening one end of a
 * FIFO waits for the other end (fifo(7)), so the opposite end is opened
 * first for a moment, which cannot wait because the fd itself is such an
 * end.
 *
 * @param owner The fd; closed on success.
 * @returns The file, positioned at the fd's offset.
 */
export function toFsFile(owner: HandOffOwner): Deno.FsFile {
  const { layout } = libc();
  const c = layout.constants;
  if (!layout.features.procSelfFd) {
    throw new Deno.errors.NotSupported(
      `toFsFile() needs /proc/self/fd, which ${layout.name} does not have`,
    );
  }
  const fd = owner.fd;
  const kind = statFd(fd).kind;
  if (kind !== "file" && kind !== "pipe") {
    throw new TypeError(
      `Cannot reopen a ${kind} fd as a Deno.FsFile: only files and pipes can be reopened`,
    );
  }
  const flags = statusFlags(fd);
  const mode = flags & c.O_ACCMODE;
  const read = mode !== c.O_WRONLY;
  const write = mode !== c.O_RDONLY;
  const path = `/proc/self/fd/${fd}`;
  let file: Deno.FsFile;
  try {
    // The other end, held while this end opens (not needed read-write).
    const other = kind === "pipe" && read !== write
      ? Deno.openSync(path, { read: !read, write: !write })
      : null;
    try {
      file = Deno.openSync(path, { read, write, append: (flags & c.O_APPEND) !== 0 });
    } finally {
      other?.close();
    }
  } catch (error) {
    if (error instanceof Deno.errors.PermissionDenied) {
      throw new Deno.errors.PermissionDenied(
        `toFsFile() reopens the file through ${path}, which needs the receiving user's own access to it; a receiver without it (privilege separation) must use the fd itself: readSync()/read(), readable, or writable`,
        { cause: error },
      );
    }
    throw error;
  }
  if (kind === "file") {
    const offset = fileOffset(fd);
    if (offset > 0) file.seekSync(offset, Deno.SeekMode.Start);
  }
  owner.close();
  return file;
}

/**
 * Wraps a socket or a pipe in a `node:net` `Socket`, which then
 * owns it. A listening socket (TCP or Unix) is refused with a `TypeError`
 * and stays with `owner`: `net.Socket` would take it without complaint and
 * then neither read nor accept, while a server serves it.
 *
 * @param owner The fd; released to the socket.
 * @returns The socket.
 */
export function toNetSocket(owner: HandOffOwner): Socket {
  const fd = owner.fd;
  const kind = statFd(fd).kind;
  if (kind !== "socket" && kind !== "pipe") {
    throw new TypeError(
      `Cannot wrap a ${kind} fd in a net.Socket: it must be a socket or a pipe`,
    );
  }
  const c = libc().layout.constants;
  // socket(7): SO_ACCEPTCONN reads non-zero once listen() was called.
  if (kind === "socket" && getIntOption(fd, c.SOL_SOCKET, c.SO_ACCEPTCONN) !== 0) {
    throw new TypeError(
      `Cannot wrap a listening socket (fd ${fd}) in a net.Socket: serve it with net.createServer().listen({ fd }) or http.createServer().listen({ fd }) instead`,
    );
  }
  const socket = new Socket({ fd, readable: true, writable: true });
  owner.release();
  return socket;
}
