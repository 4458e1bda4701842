/**
 * One fd per message in Perl IO::FDPass's wire convention: a single zero
 * byte carries exactly one fd. Interoperates with `IO::FDPass::send` and
 * `IO::FDPass::recv`, and with Stevens' `write_fd`/`read_fd`.
 *
 * @module
 */

import { type FdLike, fdNumberOf } from "../core/checks.ts";
import { socketTypeOf } from "../core/socket_calls.ts";
import { recvBlocking, sendMessageSync } from "../core/transfer.ts";
import { OwnedFd } from "../owned_fd.ts";
import type { UnixSocket } from "../unix_socket.ts";

const ZERO_BYTE = new Uint8Array(1);

function checkSocket(socket: UnixSocket | number): void {
  if (typeof socket === "number") return;
  if (typeof socket !== "object" || socket === null || !("recvSync" in socket)) {
    throw new TypeError(`Argument "socket" must be a UnixSocket or an fd number`);
  }
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
  checkSocket(socket);
  const fds = [fdNumberOf(fd, "fd")];
  if (typeof socket === "number") {
    const number = fdNumberOf(socket, "socket");
    sendMessageSync(number, socketTypeOf(number, "socket"), ZERO_BYTE, fds, null);
  } else {
    // Through the socket, so that its send order and state hold.
    socket.sendSync(ZERO_BYTE, { fds });
  }
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
  checkSocket(socket);
  let message;
  if (typeof socket === "number") {
    const number = fdNumberOf(socket, "socket");
    const type = socketTypeOf(number, "socket");
    message = recvBlocking(number, type, 1, 1, false, (n) => new OwnedFd(n));
  } else {
    message = socket.recvSync({ maxBytes: 1, maxFds: 1 });
  }
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
