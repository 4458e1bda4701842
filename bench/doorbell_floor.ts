/**
 * The floor of the async cross-process ping-pong: the poller's io_uring
 * backend driven by hand, with raw `read`/`write` of one byte and no fds,
 * so that the cost of the doorbell itself can be told from the cost of the
 * layers above it (poller, drivers, send queue, message parsing, fds).
 *
 *   deno run --allow-ffi --allow-run bench/doorbell_floor.ts [round trips] [io_uring|epoll]
 *
 * Prints one JSON object: ns per round trip, and this process's user and
 * system CPU per round trip in µs. Compare with `bench/peers/deno_native.ts`
 * (Deno's own sockets) and the library's async ping-pong in
 * `deno task bench:full`.
 *
 * @module
 */

import process from "node:process";
import type { Backend } from "../src/async/backend.ts";
import { EpollBackend } from "../src/async/epoll_backend.ts";
import { UringBackend } from "../src/async/uring_backend.ts";
import {
  closeFd,
  readStep,
  setCloseOnExec,
  setNonblocking,
  writeStep,
} from "../src/core/fd_ops.ts";
import { socketPair } from "../src/core/socket_calls.ts";
import { WOULD_BLOCK } from "../src/core/syscall.ts";

const [first, second, third] = Deno.args;

function makeBackend(name: string | undefined): Backend {
  return name === "epoll" ? new EpollBackend() : new UringBackend();
}

/** One byte in, parked in the backend until the fd is readable. */
async function readOne(backend: Backend, fd: number, buffer: Uint8Array): Promise<number> {
  for (;;) {
    const n = readStep(fd, buffer);
    if (n !== WOULD_BLOCK) return n;
    // Edge-triggered registrations stay armed: once, as the poller does.
    if (!backend.matches(fd, true, false)) backend.arm(fd, true, false);
    const count = await backend.wait(new Map(), 10_000);
    if (count < 0) throw new Error("the backend's wait failed");
    backend.events(count, () => {});
  }
}

function writeOne(fd: number, buffer: Uint8Array): void {
  if (writeStep(fd, buffer) !== 1) throw new Error("a one-byte write did not complete");
}

const buffer = new Uint8Array(1);
if (first === "child" && second !== undefined) {
  const fd = Number(second);
  setNonblocking(fd, true);
  const backend = makeBackend(third);
  while (await readOne(backend, fd, buffer) === 1) writeOne(fd, buffer);
  backend.close();
} else {
  const roundTrips = Number(first ?? 20_000);
  const backendName = second ?? "io_uring";
  const [mine, theirs] = socketPair("stream");
  setCloseOnExec(theirs, false);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--allow-ffi",
      import.meta.filename!,
      "child",
      String(theirs),
      backendName,
    ],
    stdin: "null",
  }).spawn();
  setNonblocking(mine, true);
  const backend = makeBackend(backendName);
  const loop = async (n: number) => {
    for (let i = 0; i < n; i++) {
      writeOne(mine, buffer);
      if (await readOne(backend, mine, buffer) !== 1) throw new Error("the child ended");
    }
  };
  await loop(Math.floor(roundTrips / 10) + 1);
  const cpu = process.cpuUsage();
  const start = performance.now();
  await loop(roundTrips);
  const elapsed = performance.now() - start;
  const used = process.cpuUsage(cpu);
  backend.close();
  closeFd(mine);
  closeFd(theirs);
  await child.status;
  console.log(JSON.stringify({
    backend: backendName,
    nsPerRoundTrip: Math.round(elapsed * 1e6 / roundTrips),
    userMicrosecondsPerRoundTrip: Number((used.user / roundTrips).toFixed(2)),
    systemMicrosecondsPerRoundTrip: Number((used.system / roundTrips).toFixed(2)),
  }));
}
