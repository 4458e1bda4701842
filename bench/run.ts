/**
 * The fdpass benchmark runner: the library next to C, Perl IO::FDPass and
 * Python 3 on the same work, measured in one run on one machine.
 *
 *   deno run --allow-ffi --allow-read --allow-write --allow-run --allow-env bench/run.ts [--smoke] [--json] [--baseline DIR]
 *
 * The peers are built and run on the spot: the C program in
 * `peers/roundtrip.c` is compiled with `cc -O2` into `.bench-build/`,
 * `peers/io_fdpass.pl` runs under `perl` with IO::FDPass
 * (`libio-fdpass-perl`), `peers/socket_fds.py` under `python3` with
 * `socket.send_fds`/`recv_fds`. A peer that is not installed is reported as
 * "missing", never estimated. Every implementation does the same work:
 *
 * - in-process round trip on a stream socketpair: send 1 byte + 1 fd,
 *   receive it, close the received fd;
 * - the same with 16 and with 253 fds per message;
 * - 64 KiB of data + 1 fd (received until all bytes are in);
 * - cross-process ping-pong: a child echoes the fd back (the library's child
 *   is a Deno script on the sync API, `peers/echo_child.ts`; C, Perl and
 *   Python fork their own);
 * - the library's async `send`/`recv` on the same items, when it has them.
 *
 * IO::FDPass sends exactly one byte and one fd per message, so it runs the
 * 1-fd round trip and the ping-pong only. Python's `recv_fds` is called as
 * users call it, without `MSG_CMSG_CLOEXEC`.
 *
 * Each measurement runs a warm-up of a tenth of its iterations first; the
 * implementations take turns over several rounds and the median round is
 * reported. The `lib/impl` column is the library's operations per second
 * divided by the implementation's: above 1 the library is faster. The
 * memory section runs `peers/memory_child.ts` in a fresh process (with
 * `--expose-gc`, so garbage is collected before each reading) and reads
 * VmRSS and `Deno.memoryUsage().heapUsed` before and after 1,000,000 sync
 * round trips (20,000 with `--smoke`).
 *
 * `--smoke` runs few iterations (well under a minute) so that CI keeps the
 * runner working; its figures are not meant to be quoted. `--json` prints
 * the results as JSON instead of tables.
 *
 * `--baseline DIR` compares this checkout with another checkout of fdpass
 * in the same run (say, the commit before a refactor): the runner imports
 * `DIR/mod.ts` and adds the rows "fdpass baseline (sync)" and "fdpass
 * baseline (async)", which do the same in-process work with that module's
 * `UnixSocket` and `openFd` and the ping-pong with that checkout's own
 * `bench/peers/echo_child.ts`. They take their turns in every round like
 * the other implementations. The results then end with "this checkout /
 * baseline": the ratio of the median ops/s of the rounds (above 1 this
 * checkout is faster), with the lowest and highest ratio of the same round's
 * pair of measurements as the spread.
 *
 * @module
 */

import { parseArgs } from "@std/cli";
import * as fdpass from "../mod.ts";
import type { OwnedFd, ReceivedMessage, SendOptions } from "../mod.ts";
import {
  buildC,
  checkPerl,
  checkPython,
  ECHO_CHILD,
  limited,
  machine,
  machineLine,
  median,
  MEMORY_CHILD,
  type Missing,
  PERL_PEER,
  PYTHON_PEER,
  runPeer,
} from "./support.ts";

const USAGE =
  "usage: deno run --allow-ffi --allow-read --allow-write --allow-run --allow-env bench/run.ts [--smoke] [--json] [--baseline DIR]";

const args = parseArgs(Deno.args, {
  boolean: ["smoke", "json", "help"],
  string: ["baseline"],
  alias: { h: "help" },
});
if (args.help) {
  console.log(USAGE);
  Deno.exit(0);
}
const smoke = args.smoke;

/** One piece of work every implementation does. */
interface WorkItem {
  readonly id: string;
  readonly title: string;
  /** Fds per message (in-process items). */
  readonly fds: number;
  /** Data bytes per message (in-process items). */
  readonly bytes: number;
  readonly crossProcess: boolean;
  readonly iterations: number;
  readonly rounds: number;
}

const items: WorkItem[] = [
  {
    id: "roundtrip-1",
    title: "in-process round trip, 1 byte + 1 fd",
    fds: 1,
    bytes: 1,
    crossProcess: false,
    iterations: smoke ? 20_000 : 200_000,
    rounds: smoke ? 1 : 5,
  },
  {
    id: "roundtrip-16",
    title: "in-process round trip, 1 byte + 16 fds",
    fds: 16,
    bytes: 1,
    crossProcess: false,
    iterations: smoke ? 2_000 : 40_000,
    rounds: smoke ? 1 : 3,
  },
  {
    id: "roundtrip-253",
    title: "in-process round trip, 1 byte + 253 fds",
    fds: 253,
    bytes: 1,
    crossProcess: false,
    iterations: smoke ? 200 : 4_000,
    rounds: smoke ? 1 : 3,
  },
  {
    id: "data-64k",
    title: "in-process round trip, 64 KiB + 1 fd",
    fds: 1,
    bytes: 64 * 1024,
    crossProcess: false,
    iterations: smoke ? 2_000 : 40_000,
    rounds: smoke ? 1 : 3,
  },
  {
    id: "pingpong",
    title: "cross-process ping-pong, 1 byte + 1 fd each way",
    fds: 1,
    bytes: 1,
    crossProcess: true,
    iterations: smoke ? 1_000 : 20_000,
    // Wakeups across two processes are noisy on small machines.
    rounds: smoke ? 1 : 5,
  },
];

const CONCURRENT_CHILD = new URL("./peers/concurrent_child.ts", import.meta.url);

const MEMORY_ROUND_TRIPS = smoke ? 20_000 : 1_000_000;

/** The spin budget of the "async, spin" rows. */
const SPIN_MICROSECONDS = 50;

/** The library's async methods, when it has them. */
interface AsyncSocket {
  send(data: Uint8Array, options?: SendOptions): Promise<number>;
  recv(options?: { maxBytes?: number }): Promise<ReceivedMessage | null>;
}

/**
 * What the runner uses of a checkout's `mod.ts`: this checkout's, or the
 * baseline's (imported at run time, so typed as this one's public API).
 */
type Library = Pick<typeof fdpass, "UnixSocket" | "openFd" | "borrowFd" | "configurePoller">;

/** A checkout whose library the runner measures. */
interface Checkout {
  readonly library: Library;
  /** Its `bench/peers/echo_child.ts`. */
  readonly echoChild: string;
  /** The working directory of its echo child (`undefined`: this process's). */
  readonly root: string | undefined;
  /** Whether its `UnixSocket` has `send`/`recv`. */
  readonly hasAsync: boolean;
}

function hasAsyncMethods(library: Library): boolean {
  const proto = library.UnixSocket.prototype as unknown as Record<string, unknown>;
  return typeof proto.send === "function" && typeof proto.recv === "function";
}

const current: Checkout = {
  library: fdpass,
  echoChild: ECHO_CHILD.pathname,
  root: undefined,
  hasAsync: hasAsyncMethods(fdpass),
};
const hasAsync = current.hasAsync;

/** Loads the checkout given with `--baseline`, or `null` without it. */
async function loadBaseline(dir: string | undefined): Promise<Checkout | null> {
  if (dir === undefined) return null;
  if (dir === "") {
    console.error(`--baseline needs a directory\n${USAGE}`);
    Deno.exit(2);
  }
  let root: string;
  try {
    root = Deno.realPathSync(dir);
  } catch (error) {
    console.error(`Cannot use "${dir}" as the baseline: ${error}`);
    Deno.exit(2);
  }
  const rootUrl = "file://" + root + "/";
  const echoChild = new URL("bench/peers/echo_child.ts", rootUrl).pathname;
  try {
    Deno.statSync(echoChild);
  } catch {
    console.error(`The baseline "${root}" has no bench/peers/echo_child.ts`);
    Deno.exit(2);
  }
  const library = await import(new URL("mod.ts", rootUrl).href) as Library;
  return { library, echoChild, root, hasAsync: hasAsyncMethods(library) };
}

const baseline = await loadBaseline(args.baseline);
const baselineDir = baseline?.root ?? null;

/** An implementation: runs one work item and returns ns per operation. */
interface Implementation {
  readonly name: string;
  /** Why it cannot run at all (not installed), or `null`. */
  readonly missing: string | null;
  /** Why it does not apply to this item, or `null` if it does. */
  notApplicable(item: WorkItem): string | null;
  measure(item: WorkItem): Promise<number>;
}

function missingReason(check: true | Missing | string): string | null {
  return typeof check === "object" ? check.missing : null;
}

const cProgram = buildC();
const perl = checkPerl();
const python = checkPython();

/** The library's sync and async rows for one checkout. */
function libraryImplementations(
  checkout: Checkout,
  label: string,
): [sync: Implementation, async: Implementation] {
  return [
    {
      name: `${label} (sync)`,
      missing: null,
      notApplicable: () => null,
      measure: (item) =>
        item.crossProcess
          ? libraryPingPong(checkout, "sync", item)
          : libraryInProcess(checkout.library, item),
    },
    {
      name: `${label} (async)`,
      missing: checkout.hasAsync ? null : "not available yet (UnixSocket has no send/recv)",
      notApplicable: () => null,
      measure: (item) =>
        item.crossProcess
          ? libraryPingPong(checkout, "async", item)
          : libraryInProcessAsync(checkout.library, item),
    },
  ];
}

const [library, libraryAsync] = libraryImplementations(current, "fdpass");
const baselineRows = baseline === null ? null : libraryImplementations(baseline, "fdpass baseline");

/** The pairs compared in "this checkout / baseline". */
const baselinePairs = baselineRows === null ? [] : [
  { mode: "sync", current: library.name, baseline: baselineRows[0].name },
  { mode: "async", current: libraryAsync.name, baseline: baselineRows[1].name },
] as const;

const implementations: Implementation[] = [
  library,
  ...(baselineRows === null ? [] : [baselineRows[0]]),
  libraryAsync,
  ...(baselineRows === null ? [] : [baselineRows[1]]),
  {
    name: "fdpass (async, 50 µs spin)",
    missing: hasAsync ? null : "not available yet (UnixSocket has no send/recv)",
    notApplicable: (item) =>
      item.crossProcess ? null : "n/a: in process the data is always ready, nothing spins",
    measure: (item) => libraryPingPong(current, "async-spin", item),
  },
  {
    name: "C (cc -O2)",
    missing: missingReason(cProgram),
    notApplicable: () => null,
    measure: (item) =>
      Promise.resolve(runPeer(
        cProgram as string,
        item.crossProcess
          ? ["pingpong", String(item.iterations)]
          : ["roundtrip", String(item.iterations), String(item.fds), String(item.bytes)],
      )),
  },
  {
    name: "Perl IO::FDPass",
    missing: missingReason(perl),
    notApplicable: (item) =>
      item.fds === 1 && item.bytes === 1 ? null : "n/a: one byte and one fd per message",
    measure: (item) =>
      Promise.resolve(runPeer("perl", [
        PERL_PEER.pathname,
        item.crossProcess ? "pingpong" : "roundtrip",
        String(item.iterations),
      ])),
  },
  {
    name: "Python socket.send_fds",
    missing: missingReason(python),
    notApplicable: () => null,
    measure: (item) =>
      Promise.resolve(runPeer(
        "python3",
        item.crossProcess ? [PYTHON_PEER.pathname, "pingpong", String(item.iterations)] : [
          PYTHON_PEER.pathname,
          "roundtrip",
          String(item.iterations),
          String(item.fds),
          String(item.bytes),
        ],
      )),
  },
];

function warmupOf(iterations: number): number {
  return Math.floor(iterations / 10) + 1;
}

/** The library's sync receive. */
interface SyncReceiver {
  recvSync(): ReceivedMessage | null;
}

/** Receives until `bytes` bytes are in, closing every fd that arrives. */
function receiveAllSync(socket: SyncReceiver, bytes: number): void {
  let got = 0;
  while (got < bytes) {
    const message = socket.recvSync();
    if (message === null) throw new Error("Unexpected end of stream");
    for (const fd of message.fds) fd.close();
    got += message.data.byteLength;
  }
}

async function receiveAll(socket: AsyncSocket, bytes: number): Promise<void> {
  let got = 0;
  while (got < bytes) {
    const message = await socket.recv();
    if (message === null) throw new Error("Unexpected end of stream");
    for (const fd of message.fds) fd.close();
    got += message.data.byteLength;
  }
}

function libraryInProcess(library: Library, item: WorkItem): Promise<number> {
  const [a, b] = library.UnixSocket.pair();
  using devNull = library.openFd("/dev/null");
  try {
    const data = new Uint8Array(item.bytes);
    const options = { fds: new Array<OwnedFd>(item.fds).fill(devNull) };
    const loop = (n: number) => {
      for (let i = 0; i < n; i++) {
        a.sendSync(data, options);
        receiveAllSync(b, item.bytes);
      }
    };
    loop(warmupOf(item.iterations));
    const start = performance.now();
    loop(item.iterations);
    return Promise.resolve((performance.now() - start) * 1e6 / item.iterations);
  } finally {
    a.close();
    b.close();
  }
}

async function libraryInProcessAsync(library: Library, item: WorkItem): Promise<number> {
  const [a, b] = library.UnixSocket.pair();
  using devNull = library.openFd("/dev/null");
  try {
    const sender = a as unknown as AsyncSocket;
    const receiver = b as unknown as AsyncSocket;
    const data = new Uint8Array(item.bytes);
    const options = { fds: new Array<OwnedFd>(item.fds).fill(devNull) };
    const loop = async (n: number) => {
      for (let i = 0; i < n; i++) {
        // Send and receive concurrently: 64 KiB may not fit in one send.
        await Promise.all([sender.send(data, options), receiveAll(receiver, item.bytes)]);
      }
    };
    await loop(warmupOf(item.iterations));
    const start = performance.now();
    await loop(item.iterations);
    return (performance.now() - start) * 1e6 / item.iterations;
  } finally {
    a.close();
    b.close();
  }
}

/**
 * Ping-pong with a Deno child: the child's end of a socketpair is left open
 * across exec, so nothing waits on an accept (a child that fails to start
 * shows up as end of stream here).
 */
async function libraryPingPong(
  checkout: Checkout,
  mode: "sync" | "async" | "async-spin",
  item: WorkItem,
): Promise<number> {
  const { borrowFd, configurePoller, openFd, UnixSocket } = checkout.library;
  const [parent, child] = UnixSocket.pair();
  let process: Deno.ChildProcess;
  try {
    borrowFd(child.fd).closeOnExec = false;
    const [program, programArgs] = limited(Deno.execPath(), [
      "run",
      "--quiet",
      "--allow-ffi",
      checkout.echoChild,
      String(child.fd),
      mode,
    ], 300);
    process = new Deno.Command(program, {
      args: programArgs,
      // The baseline's child runs under the baseline's deno.json.
      ...(checkout.root === undefined ? {} : { cwd: checkout.root }),
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
  } finally {
    child.close();
  }
  using devNull = openFd("/dev/null");
  const one = new Uint8Array([120]);
  const options = { fds: [devNull] };
  const check = (message: ReceivedMessage | null) => {
    if (message === null || message.fds.length !== 1) {
      throw new Error("The echo child ended or lost the fd");
    }
    message.fds[0]!.close();
  };
  const loopSync = (n: number) => {
    for (let i = 0; i < n; i++) {
      parent.sendSync(one, options);
      check(parent.recvSync({ maxBytes: 1 }));
    }
  };
  const asyncParent = parent as unknown as AsyncSocket;
  const loopAsync = async (n: number) => {
    for (let i = 0; i < n; i++) {
      await asyncParent.send(one, options);
      check(await asyncParent.recv({ maxBytes: 1 }));
    }
  };
  let elapsed: number;
  try {
    if (mode === "sync") {
      // The first message also waits for the child to start.
      loopSync(warmupOf(item.iterations));
      const start = performance.now();
      loopSync(item.iterations);
      elapsed = performance.now() - start;
    } else {
      configurePoller({ spinMicroseconds: mode === "async-spin" ? SPIN_MICROSECONDS : 0 });
      try {
        await loopAsync(warmupOf(item.iterations));
        const start = performance.now();
        await loopAsync(item.iterations);
        elapsed = performance.now() - start;
      } finally {
        configurePoller({ spinMicroseconds: 0 });
      }
    }
  } catch (error) {
    parent.close();
    const output = await process.output();
    throw new Error(
      `Ping-pong with the Deno child failed: ${new TextDecoder().decode(output.stderr)}`,
      { cause: error },
    );
  }
  parent.close();
  const output = await process.output();
  if (!output.success) {
    throw new Error(`The echo child failed: ${new TextDecoder().decode(output.stderr)}`);
  }
  return elapsed * 1e6 / item.iterations;
}

/** One cell of the results table. */
interface Result {
  item: string;
  title: string;
  implementation: string;
  /** "ok", "missing", "n/a" or "failed". */
  status: "ok" | "missing" | "n/a" | "failed";
  note: string | null;
  nsPerOp: number | null;
  opsPerSecond: number | null;
  /** The library's (sync) ops/s divided by this implementation's. */
  libraryRatio: number | null;
  rounds: number[];
}

const log = (line: string) => {
  if (!args.json) console.error(line);
};

const box = machine();
log(`fdpass benchmarks${smoke ? " (smoke mode: figures not for quoting)" : ""}`);
log(`machine: ${machineLine(box)}`);

const results: Result[] = [];
let failures = 0;
for (const item of items) {
  const rows = implementations.map((impl): Result => {
    const skip = impl.missing ?? impl.notApplicable(item);
    return {
      item: item.id,
      title: item.title,
      implementation: impl.name,
      status: impl.missing !== null ? "missing" : skip !== null ? "n/a" : "ok",
      note: skip,
      nsPerOp: null,
      opsPerSecond: null,
      libraryRatio: null,
      rounds: [],
    };
  });
  for (let round = 0; round < item.rounds; round++) {
    for (const [i, impl] of implementations.entries()) {
      const row = rows[i]!;
      if (row.status !== "ok") continue;
      try {
        row.rounds.push(await impl.measure(item));
      } catch (error) {
        row.status = "failed";
        row.note = error instanceof Error ? error.message : String(error);
        failures++;
      }
    }
  }
  for (const row of rows) {
    if (row.status !== "ok") continue;
    row.nsPerOp = median(row.rounds);
    row.opsPerSecond = 1e9 / row.nsPerOp;
  }
  const base = rows[0]!.opsPerSecond;
  for (const row of rows) {
    if (row.opsPerSecond !== null && base !== null) row.libraryRatio = base / row.opsPerSecond;
  }
  results.push(...rows);
  log(`  done: ${item.title}`);
}

// Memory: RSS and JS heap around many sync round trips, in a fresh process.
interface MemoryReading {
  roundTrips: number;
  rss: number;
  heap: number;
}
const memory = (() => {
  const [program, programArgs] = limited(Deno.execPath(), [
    "run",
    "--quiet",
    "--allow-ffi",
    "--v8-flags=--expose-gc",
    MEMORY_CHILD.pathname,
    String(MEMORY_ROUND_TRIPS),
  ], 600);
  const output = new Deno.Command(program, { args: programArgs, stdin: "null" }).outputSync();
  const text = new TextDecoder().decode(output.stdout);
  if (!output.success) {
    failures++;
    return { error: new TextDecoder().decode(output.stderr).trim() || "the memory child failed" };
  }
  const { gc, readings } = JSON.parse(text) as { gc: boolean; readings: MemoryReading[] };
  const first = readings[0]!;
  const last = readings[readings.length - 1]!;
  return {
    roundTrips: MEMORY_ROUND_TRIPS,
    gcBeforeReadings: gc,
    readings,
    rssGrowth: last.rss - first.rss,
    heapGrowth: last.heap - first.heap,
    rssPeak: Math.max(...readings.map((r) => r.rss)),
    heapPeak: Math.max(...readings.map((r) => r.heap)),
  };
})();
log("  done: memory");

// 1,000 pairs exchanging messages at once through the async API.
const CONCURRENT_PAIRS = 1000;
const CONCURRENT_ROUNDS = smoke ? 5 : 100;
interface ConcurrentResult {
  pairs: number;
  rounds: number;
  messages: number;
  seconds: number;
  messagesPerSecond: number;
  cpuUserSeconds: number;
  cpuSystemSeconds: number;
  threadsBefore: number | null;
  threadsDuring: number;
  maxRegisteredFds: number;
  pollerWaits: number;
  maxOutstandingWaits: number;
}
const concurrent = ((): ConcurrentResult | { error: string } => {
  if (!hasAsync) return { error: "async API not available" };
  const [program, programArgs] = limited(Deno.execPath(), [
    "run",
    "--quiet",
    "--allow-ffi",
    CONCURRENT_CHILD.pathname,
    String(CONCURRENT_PAIRS),
    String(CONCURRENT_ROUNDS),
  ], 300);
  const output = new Deno.Command(program, { args: programArgs, stdin: "null" }).outputSync();
  if (!output.success) {
    failures++;
    return {
      error: new TextDecoder().decode(output.stderr).trim() || "the concurrent child failed",
    };
  }
  return JSON.parse(new TextDecoder().decode(output.stdout)) as ConcurrentResult;
})();
log("  done: concurrent pairs");

/** One cell of "this checkout / baseline". */
interface BaselineComparison {
  item: string;
  title: string;
  mode: "sync" | "async";
  /** This checkout's median ops/s divided by the baseline's; above 1 this checkout is faster. */
  ratio: number | null;
  /** The lowest and highest ratio of the two rows' measurements in the same round. */
  min: number | null;
  max: number | null;
  /** The ratio in each round. */
  rounds: number[];
  /** Why there is no ratio (a row failed or is missing), or `null`. */
  note: string | null;
}

function compareWithBaseline(): BaselineComparison[] {
  const comparisons: BaselineComparison[] = [];
  for (const item of items) {
    for (const pair of baselinePairs) {
      const find = (name: string) =>
        results.find((r) => r.item === item.id && r.implementation === name)!;
      const now = find(pair.current);
      const before = find(pair.baseline);
      const comparison: BaselineComparison = {
        item: item.id,
        title: item.title,
        mode: pair.mode,
        ratio: null,
        min: null,
        max: null,
        rounds: [],
        note: null,
      };
      if (now.status !== "ok" || before.status !== "ok") {
        const bad = now.status !== "ok" ? now : before;
        comparison.note = `${bad.implementation}: ${bad.status}`;
      } else {
        // ops/s ratio = ns/op of the baseline over ns/op of this checkout.
        comparison.ratio = before.nsPerOp! / now.nsPerOp!;
        comparison.rounds = now.rounds.map((ns, i) => before.rounds[i]! / ns);
        comparison.min = Math.min(...comparison.rounds);
        comparison.max = Math.max(...comparison.rounds);
      }
      comparisons.push(comparison);
    }
  }
  return comparisons;
}
const baselineComparisons = compareWithBaseline();

// Targets from the issues, as ratios measured in this run.
function ratioFor(item: string, implementation: string): number | null {
  return results.find((r) => r.item === item && r.implementation === implementation)
    ?.libraryRatio ?? null;
}
const targets = [
  {
    name: "sync in-process round trip, library vs C",
    ratio: ratioFor("roundtrip-1", "C (cc -O2)"),
    atLeast: 0.85,
  },
  {
    name: "sync in-process round trip, library vs Perl IO::FDPass",
    ratio: ratioFor("roundtrip-1", "Perl IO::FDPass"),
    atLeast: 1.15,
  },
  {
    name: "sync in-process round trip, library vs Python",
    ratio: ratioFor("roundtrip-1", "Python socket.send_fds"),
    atLeast: 2.5,
  },
].map((t) => ({ ...t, met: t.ratio === null ? null : t.ratio >= t.atLeast }));
if (hasAsync) {
  const asyncRatio = ratioFor("roundtrip-1", "fdpass (async)");
  targets.push({
    name: "async in-process round trip vs sync",
    ratio: asyncRatio === null ? null : 1 / asyncRatio,
    atLeast: 0.7,
    met: asyncRatio === null ? null : 1 / asyncRatio >= 0.7,
  });
  const asyncPing = results.find((r) =>
    r.item === "pingpong" && r.implementation === "fdpass (async)"
  )?.opsPerSecond ?? null;
  const cPing = results.find((r) => r.item === "pingpong" && r.implementation === "C (cc -O2)")
    ?.opsPerSecond ?? null;
  const ratio = asyncPing !== null && cPing !== null ? asyncPing / cPing : null;
  targets.push({
    name: "async cross-process ping-pong vs C (no spin)",
    ratio,
    atLeast: 0.5,
    met: ratio === null ? null : ratio >= 0.5,
  });
  const spinPing = results.find((r) =>
    r.item === "pingpong" && r.implementation === "fdpass (async, 50 µs spin)"
  )?.opsPerSecond ?? null;
  const spinRatio = spinPing !== null && cPing !== null ? spinPing / cPing : null;
  targets.push({
    name: `async cross-process ping-pong vs C (${SPIN_MICROSECONDS} µs spin)`,
    ratio: spinRatio,
    atLeast: 2,
    met: spinRatio === null ? null : spinRatio >= 2,
  });
}

if (args.json) {
  console.log(JSON.stringify(
    {
      machine: box,
      mode: smoke ? "smoke" : "full",
      async: hasAsync ? "available" : "not available yet",
      results,
      ...(baselineDir === null ? {} : {
        baseline: { dir: baselineDir, thisCheckoutOverBaseline: baselineComparisons },
      }),
      memory,
      concurrent,
      targets,
    },
    null,
    2,
  ));
} else {
  printTables();
}
if (failures > 0) Deno.exit(1);

function printTables(): void {
  const number = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  const signedMib = (bytes: number) => `${bytes >= 0 ? "+" : ""}${mib(bytes)}`;
  const lines = [
    `Machine: ${machineLine(box)}`,
    `Mode: ${smoke ? "smoke (few iterations; not for quoting)" : "full"}`,
    "",
    "| work item | implementation | ops/s | ns/op | lib/impl |",
    "| --- | --- | ---: | ---: | ---: |",
  ];
  for (const r of results) {
    if (r.implementation === "fdpass (async)" && r.status === "missing") continue;
    const cells = r.status === "ok"
      ? [
        number.format(r.opsPerSecond!),
        number.format(r.nsPerOp!),
        `${r.libraryRatio!.toFixed(2)}x`,
      ]
      : r.status === "failed"
      ? ["failed", "", ""]
      : [r.status === "missing" ? "missing" : "n/a", "", ""];
    lines.push(`| ${r.title} | ${r.implementation} | ${cells.join(" | ")} |`);
  }
  lines.push("");
  lines.push("lib/impl: the library's (sync) ops/s divided by this implementation's; above 1 the");
  lines.push("library is faster. Each figure is the median of the rounds in this run.");
  if (!hasAsync) lines.push("async: not available yet");
  for (const impl of implementations) {
    if (impl.missing !== null && !(impl.name === "fdpass (async)")) {
      lines.push(`${impl.name}: missing: ${impl.missing}`);
    }
  }
  for (const r of results.filter((r) => r.status === "failed")) {
    lines.push(`${r.implementation}, ${r.title}: failed: ${r.note}`);
  }
  lines.push("");
  if (baselineDir !== null) {
    lines.push(`This checkout / baseline (${baselineDir}), ops/s:`);
    lines.push("| work item | rounds | sync | async |");
    lines.push("| --- | ---: | ---: | ---: |");
    const cell = (c: BaselineComparison | undefined) =>
      c === undefined || c.ratio === null
        ? (c?.note ?? "-")
        : `${c.ratio.toFixed(3)}x (${c.min!.toFixed(3)}–${c.max!.toFixed(3)})`;
    for (const item of items) {
      const of = (mode: string) =>
        baselineComparisons.find((c) => c.item === item.id && c.mode === mode);
      lines.push(
        `| ${item.title} | ${item.rounds} | ${cell(of("sync"))} | ${cell(of("async"))} |`,
      );
    }
    lines.push("Median of the rounds' ops/s of this checkout divided by the baseline's; above 1");
    lines.push("this checkout is faster. In brackets: the lowest and highest ratio of one round.");
    lines.push("");
  }
  if ("error" in memory) {
    lines.push(`Memory: failed: ${memory.error}`);
  } else {
    lines.push(
      `Memory, ${
        number.format(memory.roundTrips)
      } sync round trips (1 byte + 1 fd) in a fresh process${
        memory.gcBeforeReadings ? ", gc() before each reading" : ""
      }:`,
    );
    lines.push("| | before | after | growth | peak |");
    lines.push("| --- | ---: | ---: | ---: | ---: |");
    const first = memory.readings[0]!;
    const last = memory.readings[memory.readings.length - 1]!;
    lines.push(
      `| RSS (VmRSS) | ${mib(first.rss)} | ${mib(last.rss)} | ${signedMib(memory.rssGrowth)} | ${
        mib(memory.rssPeak)
      } |`,
    );
    lines.push(
      `| JS heap used | ${mib(first.heap)} | ${mib(last.heap)} | ${
        signedMib(memory.heapGrowth)
      } | ${mib(memory.heapPeak)} |`,
    );
    const series = (pick: (r: MemoryReading) => number) =>
      memory.readings.map((r) => (pick(r) / 2 ** 20).toFixed(1)).join(", ");
    lines.push(`RSS at 0, 1/4, 1/2, 3/4 and all of the round trips: ${series((r) => r.rss)} MiB`);
    lines.push(`JS heap at the same points: ${series((r) => r.heap)} MiB`);
  }
  lines.push("");
  if ("error" in concurrent) {
    lines.push(`Concurrent pairs: failed: ${concurrent.error}`);
  } else {
    const c = concurrent;
    lines.push(
      `${
        number.format(c.pairs)
      } socketpairs exchanging messages at once (async, ${c.rounds} ping-pongs each, 1 fd per ping):`,
    );
    lines.push(
      `${number.format(Math.round(c.messagesPerSecond))} messages/s (${
        number.format(c.messages)
      } in ${c.seconds.toFixed(2)} s); CPU ${c.cpuUserSeconds.toFixed(2)} s user + ${
        c.cpuSystemSeconds.toFixed(2)
      } s system; threads ${c.threadsBefore} before, at most ${c.threadsDuring} during; up to ${
        number.format(c.maxRegisteredFds)
      } fds registered, ${
        number.format(c.pollerWaits)
      } poller waits, at most ${c.maxOutstandingWaits} outstanding`,
    );
  }
  // The development goals are a comparison for the full run only: smoke
  // figures are not for quoting, and a goal not reached is not a failure.
  if (!smoke) {
    lines.push("");
    lines.push("Compared with the development goals (library speed ÷ peer speed, this run):");
    for (const t of targets) {
      const ratio = t.ratio === null ? "not measured" : `${t.ratio.toFixed(2)}x`;
      lines.push(`- ${t.name}: ${ratio} (goal ${t.atLeast}x)`);
    }
  }
  console.log(lines.join("\n"));
}
