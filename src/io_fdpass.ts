/**
 * One fd per message in Perl IO::FDPass's wire convention: a single zero
 * byte carries exactly one fd. Interoperates with `IO::FDPass::send` and
 * `IO::FDPass::recv`, and with Stevens' `write_fd`/`read_fd`.
 *
 * @module
 */

import { type FdLike, fdNumberOf, recvOnFd, sendOnFd } from "./transfer.ts";
import type { OwnedFd } from "./fd.ts";
import type { UnixSocket } from "./unix_socket.ts";
import { socketTypeOf } from "./socket_fd.ts";

const ZERO_BYTE = new Uint8Array(1);

function socketOf(socket: UnixSocket | number): [number, ReturnType<typeof socketTypeOf>] {
  if (typeof socket === "number") {
    const fd = fdNumberOf(socket, "socket");
    return [fd, socketTypeOf(fd, "socket")];
  }
  if (typeof socket !== "object" || socket === null || !("type" in socket)) {
    throw new TypeError(`Argument "socket" must be a UnixSocket or an fd number`);
  }
  return [socket.fd, socket.type];
}

/**
 * Sends one fd with a single zero byte, as `IO::FDPass::send` does.
 *
 * @param socket A {@linkcode UnixSocket} or a socket fd number.
 * @param fd The fd to send; it stays open here.
 *
 * @example Send to a peer that uses IO::FDPass
 * ```ts
 * import { openFd, recvFd, sendFd, UnixSocket } from "@fdpass/fdpass";
 * import { assertEquals } from "@std/assert";
 *
 * const [a, b] = UnixSocket.pair();
 * using devNull = openFd("/dev/null");
 * sendFd(a, devNull);
 * using received = recvFd(b);
 * assertEquals(received.kind, "character");
 * a.close();
 * b.close();
 * ```
 */
export function sendFd(socket: UnixSocket | number, fd: FdLike): void {
  const [number, type] = socketOf(socket);
  const fds = [fdNumberOf(fd, "fd")];
  sendOnFd(number, type, ZERO_BYTE, fds, null);
}

/**
 * Receives one fd sent with a single zero byte, as `IO::FDPass::recv`
 * does. Anything else (no fd, several fds, a non-zero byte) closes what
 * arrived and throws.
 *
 * @param socket A {@linkcode UnixSocket} or a socket fd number.
 * @returns The received fd, close-on-exec.
 *
 * @example Receive from a peer that uses IO::FDPass
 * ```ts
 * import { pipe, recvFd, sendFd, UnixSocket } from "@fdpass/fdpass";
 * import { assertEquals } from "@std/assert";
 *
 * const [a, b] = UnixSocket.pair();
 * const [r, w] = pipe();
 * sendFd(a.fd, w.fd);
 * w.close();
 * using writer = recvFd(b.fd);
 * writer.writeAllSync("ok");
 * writer.close();
 * assertEquals(r.readSync(new Uint8Array(2)), 2);
 * r.close();
 * a.close();
 * b.close();
 * ```
 */
export function recvFd(socket: UnixSocket | number): OwnedFd {
  const [number, type] = socketOf(socket);
  const message = recvOnFd(number, type, 1, 1, false);
  if (message === null) {
    throw new Deno.errors.UnexpectedEof(
      "recvFd() reached end of stream before an fd arrived",
    );
  }
  const byte = message.data[0];
  if (message.data.byteLength !== 1 || byte !== 0 || message.fds.length !== 1) {
    for (const fd of message.fds) fd.close();
    throw new Deno.errors.InvalidData(
      `recvFd() expected one zero byte with one fd, received ${message.data.byteLength} byte${
        message.data.byteLength === 1 ? "" : "s"
      } (${byte ?? "none"}) with ${message.fds.length} fds`,
    );
  }
  return message.fds[0]!;
}
