/**
 * The memory part of the benchmarks, in a fresh process so that nothing the
 * runner did before skews the figures: RSS (VmRSS) and JS heap (after
 * `gc()`) at eleven points of many round trips with an fd, the first after
 * a warm-up of a tenth as many and then after each tenth. Prints the
 * readings as JSON.
 *
 *   deno run --allow-ffi --v8-flags=--expose-gc bench/peers/memory_child.ts <round trips> [sync|async]
 *
 * - `sync`: `sendSync` 1 byte + 1 fd, `recvSync`, close the received fd.
 * - `async` (the default): a ping-pong through the poller. Each side's
 *   `recv()` is pending before the other side sends, so every message is
 *   taken by the poller's readiness report: A sends 1 byte + 1 fd with
 *   `send()`, B receives it with `recv()`, sends the fd back and closes its
 *   copy, A receives it and closes it.
 *
 * @module
 */

import { openFd, pollerStats, UnixSocket } from "../../mod.ts";
import { residentBytes } from "../support.ts";

const total = Number(Deno.args[0]);
const mode = Deno.args[1] ?? "async";
if (!Number.isInteger(total) || total < 10 || (mode !== "sync" && mode !== "async")) {
  console.error("usage: memory_child.ts <round trips, at least 10> [sync|async]");
  Deno.exit(2);
}

const gc = (globalThis as { gc?: () => void }).gc;

interface Reading {
  roundTrips: number;
  /** VmRSS. */
  rss: number;
  /** JS heap in use. */
  heap: number;
  /** JS heap reserved by V8 (its young generation grows and shrinks with the allocation rate). */
  heapTotal: number;
  /** Memory outside the JS heap that JS objects hold (array buffers). */
  external: number;
}

function reading(): Reading {
  gc?.();
  const usage = Deno.memoryUsage();
  return {
    roundTrips: done,
    rss: residentBytes(),
    heap: usage.heapUsed,
    heapTotal: usage.heapTotal,
    external: usage.external,
  };
}

const [a, b] = UnixSocket.pair();
using devNull = openFd("/dev/null");
const one = new Uint8Array([120]);
const options = { fds: [devNull] };
let done = 0;

function check(message: { fds: { close(): void }[] } | null): void {
  if (message === null || message.fds.length !== 1) throw new Error("Lost the fd");
  message.fds[0]!.close();
}

function roundTripsSync(n: number): void {
  for (let i = 0; i < n; i++) {
    a.sendSync(one, options);
    check(b.recvSync());
  }
  done += n;
}

async function roundTripsAsync(n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const ping = b.recv({ maxBytes: 1 });
    await a.send(one, options);
    const message = await ping;
    const pong = a.recv({ maxBytes: 1 });
    await b.send(one, { fds: message!.fds });
    check(message);
    check(await pong);
  }
  done += n;
}

const roundTrips = mode === "sync" ? roundTripsSync : roundTripsAsync;
const waitsBefore = pollerStats().waits;
// Warm up first (a tenth more): the message buffers, the poller, compiled
// code and the heap's young generation grown to its working size are not growth.
await roundTrips(Math.max(1_000, Math.floor(total / 10)));
done = 0;
const readings = [reading()];
for (let tenth = 1; tenth <= 10; tenth++) {
  await roundTrips(Math.floor(total * tenth / 10) - done);
  readings.push(reading());
}
a.close();
b.close();
const stats = pollerStats();
console.log(JSON.stringify({
  mode,
  gc: gc !== undefined,
  readings,
  pollerWaits: stats.waits - waitsBefore,
  backend: stats.backend,
}));
