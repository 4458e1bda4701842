/**
 * The Deno side of the cross-process ping-pong: adopts the socket the
 * runner left open across `exec` (one end of a socketpair), then sends
 * every fd it receives straight back (with the same byte) and closes its
 * copy, until end of stream.
 *
 *   deno run --allow-ffi bench/peers/echo_child.ts <inherited fd> [sync|async]
 *
 * `async` uses `send`/`recv`; `async-spin` does the same with the poller's
 * bounded spin (50 µs) turned on.
 *
 * @module
 */

import { configurePoller, type ReceivedMessage, type SendOptions, UnixSocket } from "../../mod.ts";

/** The async methods, when the library has them. */
interface AsyncSocket {
  send(data: Uint8Array, options?: SendOptions): Promise<number>;
  recv(options?: { maxBytes?: number }): Promise<ReceivedMessage | null>;
}

/** The spin budget of the `async-spin` mode. */
const SPIN_MICROSECONDS = 50;

const [fd, mode = "sync"] = Deno.args;
if (
  fd === undefined || !/^\d+$/.test(fd) ||
  (mode !== "sync" && mode !== "async" && mode !== "async-spin")
) {
  console.error("usage: echo_child.ts <inherited fd> [sync|async|async-spin]");
  Deno.exit(2);
}

using socket = UnixSocket.from(Number(fd));
if (mode === "sync") {
  for (;;) {
    const message = socket.recvSync({ maxBytes: 1 });
    if (message === null) break;
    socket.sendSync(message.data, { fds: message.fds });
    for (const fd of message.fds) fd.close();
  }
} else {
  if (mode === "async-spin") configurePoller({ spinMicroseconds: SPIN_MICROSECONDS });
  const asyncSocket = socket as unknown as AsyncSocket;
  for (;;) {
    const message = await asyncSocket.recv({ maxBytes: 1 });
    if (message === null) break;
    await asyncSocket.send(message.data, { fds: message.fds });
    for (const fd of message.fds) fd.close();
  }
}
