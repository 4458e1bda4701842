/**
 * The Deno side of the cross-process ping-pong: adopts the socket the
 * runner left open across `exec` (one end of a socketpair), then sends
 * every fd it receives straight back (with the same byte) and closes its
 * copy, until end of stream.
 *
 *   deno run --allow-ffi bench/peers/echo_child.ts <inherited fd> [sync|async|async-spin|async-epoll]
 *
 * `async` uses `send`/`recv` with the default poller backend (io_uring
 * where the kernel allows it); `async-spin` does the same with the poller's
 * bounded spin (50 µs) turned on; `async-epoll` with the epoll backend.
 *
 * At the end it prints `{"contextSwitches": n, "messages": m}`: its own
 * context switches over its life (getrusage(2), every thread, voluntary
 * plus involuntary) and the messages it answered.
 *
 * @module
 */

import process from "node:process";
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
  !["sync", "async", "async-spin", "async-epoll"].includes(mode)
) {
  console.error("usage: echo_child.ts <inherited fd> [sync|async|async-spin|async-epoll]");
  Deno.exit(2);
}

using socket = UnixSocket.from(Number(fd));
let messages = 0;
if (mode === "sync") {
  for (;;) {
    const message = socket.recvSync({ maxBytes: 1 });
    if (message === null) break;
    socket.sendSync(message.data, { fds: message.fds });
    for (const fd of message.fds) fd.close();
    messages++;
  }
} else {
  if (mode === "async-spin") configurePoller({ spinMicroseconds: SPIN_MICROSECONDS });
  if (mode === "async-epoll") configurePoller({ backend: "epoll" });
  const asyncSocket = socket as unknown as AsyncSocket;
  for (;;) {
    const message = await asyncSocket.recv({ maxBytes: 1 });
    if (message === null) break;
    await asyncSocket.send(message.data, { fds: message.fds });
    for (const fd of message.fds) fd.close();
    messages++;
  }
}
const usage = process.resourceUsage();
console.log(JSON.stringify({
  contextSwitches: usage.voluntaryContextSwitches + usage.involuntaryContextSwitches,
  messages,
}));
