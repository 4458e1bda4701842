/**
 * The memory part of the benchmarks, in a fresh process so that nothing the
 * runner did before skews the figures: RSS (VmRSS) and JS heap before and
 * after many sync round trips (send 1 byte + 1 fd, receive, close), with a
 * reading after each quarter. Prints the readings as JSON.
 *
 *   deno run --allow-ffi --v8-flags=--expose-gc bench/peers/memory_child.ts <round trips>
 *
 * @module
 */

import { openFd, UnixSocket } from "../../mod.ts";
import { residentBytes } from "../support.ts";

const total = Number(Deno.args[0]);
if (!Number.isInteger(total) || total < 4) {
  console.error("usage: memory_child.ts <round trips>");
  Deno.exit(2);
}

const gc = (globalThis as { gc?: () => void }).gc;

function reading(): { roundTrips: number; rss: number; heap: number } {
  gc?.();
  return { roundTrips: done, rss: residentBytes(), heap: Deno.memoryUsage().heapUsed };
}

const [a, b] = UnixSocket.pair();
using devNull = openFd("/dev/null");
const one = new Uint8Array([120]);
const options = { fds: [devNull] };
let done = 0;

function roundTrips(n: number): void {
  for (let i = 0; i < n; i++) {
    a.sendSync(one, options);
    const message = b.recvSync();
    if (message === null || message.fds.length !== 1) throw new Error("Lost the fd");
    message.fds[0]!.close();
  }
  done += n;
}

// Warm up first: the message buffers and compiled code are not growth.
roundTrips(10_000);
done = 0;
const readings = [reading()];
for (let quarter = 1; quarter <= 4; quarter++) {
  roundTrips(Math.floor(total * quarter / 4) - done);
  readings.push(reading());
}
a.close();
b.close();
console.log(JSON.stringify({ gc: gc !== undefined, readings }));
