/**
 * Hand-off of owned fds to ordinary Deno code: `Deno.FsFile` through
 * `/proc/self/fd` and `node:net` sockets.
 *
 * Deno 2 cannot wrap a raw fd in a `Deno.FsFile` or `Deno.Conn`, and
 * `node:fs` maps its own fds; `net.Socket({ fd })` and reopening through
 * `/proc/self/fd/N` are the two ways that work (see
 * `../shared/reference/deno-ffi.md` section 3).
 *
 * @module
 */

import { Socket } from "node:net";
import { libc } from "../ffi/libc.ts";
import { throwErrno } from "./errors.ts";
import type { OwnedFd } from "./fd.ts";

/**
 * Reopens an owned fd as a `Deno.FsFile` and closes the fd.
 *
 * @param owned The fd; closed on success.
 * @returns The file, positioned at the fd's offset.
 */
export function fdToFsFile(owned: OwnedFd): Deno.FsFile {
  const { lib, layout } = libc();
  const c = layout.constants;
  if (Deno.build.os !== "linux") {
    throw new Deno.errors.NotSupported(
      "toFsFile() needs /proc/self/fd, which only Linux has",
    );
  }
  const kind = owned.kind;
  if (kind !== "file" && kind !== "pipe") {
    throw new TypeError(
      `Cannot reopen a ${kind} fd as a Deno.FsFile: only files and pipes can be reopened`,
    );
  }
  const fd = owned.fd;
  const access = libc().fcntl(fd, c.F_GETFL, 0);
  if (access < 0) throwErrno("fcntl");
  const mode = access & c.O_ACCMODE;
  const file = Deno.openSync(`/proc/self/fd/${fd}`, {
    read: mode !== c.O_WRONLY,
    write: mode !== c.O_RDONLY,
    append: (access & c.O_APPEND) !== 0,
  });
  if (kind === "file") {
    const offset = lib.lseek(fd, 0n, c.SEEK_CUR);
    if (offset > 0n) file.seekSync(Number(offset), Deno.SeekMode.Start);
  }
  owned.close();
  return file;
}

/**
 * Wraps a socket fd in a `node:net` `Socket`, which then owns it.
 *
 * @param owned The fd; released to the socket.
 * @returns The socket.
 */
export function fdToNetSocket(owned: OwnedFd): Socket {
  const kind = owned.kind;
  if (kind !== "socket" && kind !== "pipe") {
    throw new TypeError(
      `Cannot wrap a ${kind} fd in a net.Socket: it must be a socket or a pipe`,
    );
  }
  const socket = new Socket({ fd: owned.fd, readable: true, writable: true });
  owned.release();
  return socket;
}
