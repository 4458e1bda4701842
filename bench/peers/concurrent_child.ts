/**
 * 1,000 connected socketpairs exchanging messages at once through the
 * async API, in a fresh process: reports messages per second, CPU time and
 * the process' thread count, to show that the shared poller stays one
 * waiting call (one blocking thread) however many sockets wait.
 *
 *   deno run --allow-ffi bench/peers/concurrent_child.ts <pairs> <rounds> [default|io_uring|epoll|poll] [recv|recvInto]
 *
 * Every pair runs `rounds` ping-pongs: side A sends 1 byte + 1 fd, side B
 * receives it, closes the fd and answers with 1 byte. With `recvInto`,
 * both sides receive with `recvInto()` into buffers of their own that they
 * reuse (and B closes the fd number), instead of `recv()`. All pairs run at the
 * same time, so most receives wait in the poller. Prints one JSON object,
 * with CPU seconds (user and system) and the poller's backend.
 *
 * @module
 */

import process from "node:process";
import {
  configurePoller,
  openFd,
  OwnedFd,
  pollerStats,
  type ReceivedInto,
  UnixSocket,
} from "../../mod.ts";
import { readProcFile } from "../support.ts";

const pairs = Number(Deno.args[0] ?? 1000);
const rounds = Number(Deno.args[1] ?? 100);
// The poller's backend; the default is the library's choice.
const backend = Deno.args[2] as "default" | "io_uring" | "epoll" | "poll" | undefined;
if (backend !== undefined && backend !== "default") configurePoller({ backend });
const into = Deno.args[3] === "recvInto";

function threads(): number | null {
  const match = readProcFile("/proc/self/status")?.match(/^Threads:\s+(\d+)/m);
  return match ? Number(match[1]) : null;
}

const sockets = Array.from({ length: pairs }, () => UnixSocket.pair());
using devNull = openFd("/dev/null");
const one = new Uint8Array([1]);
const threadsBefore = threads();
let threadsDuring = 0;
let maxRegistered = 0;
const sampler = setInterval(() => {
  threadsDuring = Math.max(threadsDuring, threads() ?? 0);
  maxRegistered = Math.max(maxRegistered, pollerStats().registeredFds);
}, 20);

async function side(a: UnixSocket, b: UnixSocket): Promise<void> {
  const answer = (async () => {
    for (let i = 0; i < rounds; i++) {
      const message = await b.recv({ maxBytes: 1 });
      for (const fd of message!.fds) fd.close();
      await b.send(one);
    }
  })();
  for (let i = 0; i < rounds; i++) {
    await a.send(one, { fds: [devNull] });
    await a.recv({ maxBytes: 1 });
  }
  await answer;
}

/** The same with `recvInto()`: each side's buffers are its own, reused every round. */
async function sideInto(a: UnixSocket, b: UnixSocket): Promise<void> {
  const answer = (async () => {
    const buffer = new Uint8Array(1);
    const fds = new Int32Array(1);
    const result: ReceivedInto = { bytes: 0, fds: 0, truncated: false, credentials: null };
    for (let i = 0; i < rounds; i++) {
      await b.recvInto(buffer, fds, result);
      for (let j = 0; j < result.fds; j++) OwnedFd.closeNumber(fds[j]!);
      await b.send(one);
    }
  })();
  const buffer = new Uint8Array(1);
  const result: ReceivedInto = { bytes: 0, fds: 0, truncated: false, credentials: null };
  for (let i = 0; i < rounds; i++) {
    await a.send(one, { fds: [devNull] });
    await a.recvInto(buffer, null, result);
  }
  await answer;
}

const cpuBefore = process.cpuUsage();
const start = performance.now();
await Promise.all(sockets.map(([a, b]) => into ? sideInto(a, b) : side(a, b)));
const seconds = (performance.now() - start) / 1000;
const cpu = process.cpuUsage(cpuBefore);
clearInterval(sampler);
for (const [a, b] of sockets) {
  a.close();
  b.close();
}
const stats = pollerStats();
console.log(JSON.stringify({
  pairs,
  rounds,
  messages: pairs * rounds * 2,
  seconds,
  messagesPerSecond: (pairs * rounds * 2) / seconds,
  cpuUserSeconds: cpu.user / 1e6,
  cpuSystemSeconds: cpu.system / 1e6,
  threadsBefore,
  threadsDuring,
  backend: stats.backend,
  maxRegisteredFds: maxRegistered,
  pollerWaits: stats.waits,
  maxOutstandingWaits: stats.maxOutstandingWaits,
}));
