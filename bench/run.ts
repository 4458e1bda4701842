/**
 * The fdpass benchmark runner: the library next to C, Perl IO::FDPass and
 * Python 3 on the same work, measured in one run on one machine.
 *
 *   deno run --allow-ffi --allow-read --allow-write --allow-run --allow-env bench/run.ts [--smoke] [--json] [--baseline DIR] [--svg PATH]
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
 * - the same with 16, 64 and 253 fds per message (1 and 64 give the cost of
 *   each extra fd);
 * - 64 KiB of data + 1 fd (received until all bytes are in);
 * - cross-process ping-pong: a child echoes the fd back (the library's child
 *   is a Deno script on the sync API, `peers/echo_child.ts`; C, Perl and
 *   Python fork their own);
 * - the library's async `send`/`recv` on the same items, when it has them;
 * - the library's zero-allocation `recvIntoSync()` on the in-process items
 *   (data into one reused buffer, fd numbers into one reused `Int32Array`),
 *   and its async form `recvInto()`.
 *
 * More rows put the figures in context:
 *
 * - Go (`peers/unixrights.go`, `net.UnixConn.WriteMsgUnix`/`ReadMsgUnix`
 *   with `syscall.UnixRights`), built with `go build` (Debian's
 *   `golang-go`, standard library only, offline, caches under
 *   `.bench-build/go/`) on every item; its ping-pong child is the program
 *   itself, re-executed with the socket in `exec.Cmd.ExtraFiles`;
 * - "C epoll": the C ping-pong on nonblocking sockets, each side waiting in
 *   `epoll_wait` before every `recvmsg` (the fair anchor for an event loop);
 * - "Deno native": `Deno.listen`/`Deno.connect` on a Unix socket path,
 *   1 byte each way and no fds (`peers/deno_native.ts`): the floor of
 *   Deno's event loop for the ping-pong;
 * - Node's `child_process.send(msg, handle)` (`peers/node_send.mjs`), under
 *   `node` (20 or later) and the same code under this Deno, which stalls
 *   after a few exchanges: that row says "stalls after N exchanges".
 *
 * The 1,000 concurrent pairs (`peers/concurrent_child.ts`: each pair
 * ping-pongs 1 byte + 1 fd, then 1 byte back) are measured for the library
 * and for Go (goroutines, on every core and with `GOMAXPROCS=1`), in turns
 * over several runs, with the median messages/s, the spread, and CPU
 * seconds (user + system) per message.
 *
 * The run ends with a markdown table of ratios (the library's ops/s ÷ each
 * implementation's, per work item) with the machine, date and command, and
 * writes an SVG bar chart of the headline rows (the 1-fd round trip and the
 * ping-pong) to `.bench-build/results.svg`, and also to `--svg PATH` when
 * given (the README's picture is `--svg bench/results.svg`).
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
 * VmRSS and `Deno.memoryUsage().heapUsed` after a warm-up and after each
 * tenth of 1,000,000 round trips with an fd (5,000 with `--smoke`): async
 * ones, where every message is taken by the poller, and sync ones.
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

import nodeProcess from "node:process";
import { parseArgs } from "@std/cli";
import * as fdpass from "../mod.ts";
import type { OwnedFd, ReceivedInto, ReceivedMessage, SendOptions } from "../mod.ts";
import {
  BUILD_DIR,
  buildC,
  buildGo,
  checkNode,
  checkPerl,
  checkPython,
  DENO_NATIVE_PEER,
  ECHO_CHILD,
  limited,
  machine,
  machineLine,
  median,
  MEMORY_CHILD,
  type Missing,
  NODE_PEER,
  PERL_PEER,
  PYTHON_PEER,
  run,
  runPeer,
} from "./support.ts";

const USAGE =
  "usage: deno run --allow-ffi --allow-read --allow-write --allow-run --allow-env bench/run.ts [--smoke] [--json] [--baseline DIR] [--svg PATH]";

const args = parseArgs(Deno.args, {
  boolean: ["smoke", "json", "help"],
  string: ["baseline", "svg"],
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
    id: "roundtrip-64",
    title: "in-process round trip, 1 byte + 64 fds",
    fds: 64,
    bytes: 1,
    crossProcess: false,
    iterations: smoke ? 500 : 10_000,
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

const MEMORY_ROUND_TRIPS = smoke ? 5_000 : 1_000_000;

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
type Library = Pick<
  typeof fdpass,
  "UnixSocket" | "openFd" | "borrowFd" | "configurePoller" | "pollerStats" | "waitWritable"
>;

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
const goProgram = buildGo();
const node = checkNode();

/** A row that stops answering (Node's `child_process.send` under Deno). */
class Stalled extends Error {}

const pingPongOnly = (item: WorkItem) =>
  item.crossProcess ? null : "n/a: cross-process ping-pong only";

/** Runs `peers/node_send.mjs`; "stalled N" on stdout becomes {@linkcode Stalled}. */
function nodeSend(command: string, args: string[]): number {
  const result = run(command, args, 120);
  if (result === null) throw new Error(`${command} is not installed`);
  const stalled = result.stdout.match(/^stalled (\d+)/m);
  if (stalled) throw new Stalled(`stalls after ${stalled[1]} exchanges`);
  const ns = Number(result.stdout.trim().split(/\s+/)[0]);
  if (!result.success || !Number.isFinite(ns) || ns <= 0) {
    throw new Error(`${command} ${args.join(" ")} failed: ${result.stderr.trim()}`);
  }
  return ns;
}
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

/** Why a row cannot run when this checkout's `UnixSocket` lacks `name`, or `null`. */
function missingMethod(name: string): string | null {
  const prototype = fdpass.UnixSocket.prototype as unknown as Record<string, unknown>;
  return typeof prototype[name] === "function" ? null : `not available (UnixSocket has no ${name})`;
}

/** The row of this checkout's zero-allocation receive. */
const RECV_INTO_ROW = "fdpass (sync, recvIntoSync)";
/** The row of its async form. */
const RECV_INTO_ASYNC_ROW = "fdpass (async, recvInto)";

const implementations: Implementation[] = [
  library,
  ...(baselineRows === null ? [] : [baselineRows[0]]),
  {
    name: RECV_INTO_ROW,
    missing: missingMethod("recvIntoSync"),
    notApplicable: (item) => item.crossProcess ? "n/a: in-process items only" : null,
    measure: (item) => libraryInProcessInto(item),
  },
  libraryAsync,
  ...(baselineRows === null ? [] : [baselineRows[1]]),
  {
    name: RECV_INTO_ASYNC_ROW,
    missing: missingMethod("recvInto"),
    notApplicable: (item) => item.crossProcess ? "n/a: in-process items only" : null,
    measure: (item) => libraryInProcessIntoAsync(item),
  },
  {
    name: "fdpass (async, 50 µs spin)",
    missing: hasAsync ? null : "not available yet (UnixSocket has no send/recv)",
    notApplicable: (item) =>
      item.crossProcess ? null : "n/a: in process the data is always ready, nothing spins",
    measure: (item) => libraryPingPong(current, "async-spin", item),
  },
  {
    name: "fdpass (async, epoll fallback)",
    missing: hasAsync ? null : "not available yet (UnixSocket has no send/recv)",
    notApplicable: (item) =>
      item.crossProcess ? null : "n/a: the backends differ only in how a wait sleeps",
    measure: (item) => libraryPingPong(current, "async-epoll", item),
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
    name: "C epoll (cc -O2)",
    missing: missingReason(cProgram),
    notApplicable: pingPongOnly,
    measure: (item) =>
      Promise.resolve(runPeer(cProgram as string, ["pingpong-epoll", String(item.iterations)])),
  },
  {
    name: "Go net.UnixConn",
    missing: missingReason(goProgram),
    notApplicable: () => null,
    measure: (item) =>
      Promise.resolve(runPeer(
        goProgram as string,
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
  {
    name: "Deno native Unix socket (no fds)",
    missing: null,
    notApplicable: pingPongOnly,
    measure: (item) => {
      const args = [
        "run",
        "--quiet",
        "--allow-read",
        "--allow-write",
        "--allow-net",
        "--allow-run",
        DENO_NATIVE_PEER.pathname,
        String(item.iterations),
      ];
      const ns = runPeer(Deno.execPath(), args, (fields) => {
        const switches = Number(fields[2]);
        if (Number.isFinite(switches)) recordSwitches("Deno native Unix socket", switches);
      });
      return Promise.resolve(ns);
    },
  },
  {
    name: "Node child_process.send",
    missing: missingReason(node),
    notApplicable: pingPongOnly,
    measure: (item) =>
      Promise.resolve(nodeSend("node", [NODE_PEER.pathname, String(item.iterations)])),
  },
  {
    name: `Deno ${Deno.version.deno} child_process.send`,
    missing: null,
    notApplicable: pingPongOnly,
    measure: (item) =>
      Promise.resolve(
        nodeSend(Deno.execPath(), ["run", "-A", NODE_PEER.pathname, String(item.iterations)]),
      ),
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

/**
 * What the `recvInto` rows share: a socketpair, the payload and its fds
 * (`/dev/null` repeated), and the receive buffers reused for every message:
 * 64 KiB of data (as `recvSync()`'s default `maxBytes`), 253 fd numbers,
 * one result. Disposing closes the pair and `/dev/null`.
 */
interface IntoFixture extends Disposable {
  readonly a: fdpass.UnixSocket;
  readonly b: fdpass.UnixSocket;
  readonly data: Uint8Array;
  readonly options: SendOptions;
  readonly buffer: Uint8Array;
  readonly fds: Int32Array;
  readonly result: ReceivedInto;
  /** Closes the fd numbers of the message just received into `fds`. */
  closeReceived(): void;
}

function intoFixture(item: WorkItem): IntoFixture {
  const { OwnedFd, openFd, UnixSocket } = fdpass;
  const [a, b] = UnixSocket.pair();
  const devNull = openFd("/dev/null");
  const fds = new Int32Array(253);
  const result: ReceivedInto = { bytes: 0, fds: 0, truncated: false, credentials: null };
  return {
    a,
    b,
    data: new Uint8Array(item.bytes),
    options: { fds: new Array<OwnedFd>(item.fds).fill(devNull) },
    buffer: new Uint8Array(64 * 1024),
    fds,
    result,
    closeReceived(): void {
      for (let j = 0; j < result.fds; j++) OwnedFd.closeNumber(fds[j]!);
    },
    [Symbol.dispose](): void {
      a.close();
      b.close();
      devNull.close();
    },
  };
}

/** The sync round trip with `recvIntoSync()` into the fixture's buffers. */
function libraryInProcessInto(item: WorkItem): Promise<number> {
  using f = intoFixture(item);
  const loop = (n: number) => {
    for (let i = 0; i < n; i++) {
      f.a.sendSync(f.data, f.options);
      for (let got = 0; got < item.bytes; got += f.result.bytes) {
        if (f.b.recvIntoSync(f.buffer, f.fds, f.result) === null) {
          throw new Error("Unexpected end of stream");
        }
        f.closeReceived();
      }
    }
  };
  loop(warmupOf(item.iterations));
  const start = performance.now();
  loop(item.iterations);
  return Promise.resolve((performance.now() - start) * 1e6 / item.iterations);
}

/**
 * The async round trip with `recvInto()` into the fixture's buffers,
 * receiving while `send()` sends (64 KiB may not fit in one send).
 */
async function libraryInProcessIntoAsync(item: WorkItem): Promise<number> {
  using f = intoFixture(item);
  const receive = async () => {
    for (let got = 0; got < item.bytes; got += f.result.bytes) {
      if (await f.b.recvInto(f.buffer, f.fds, f.result) === null) {
        throw new Error("Unexpected end of stream");
      }
      f.closeReceived();
    }
  };
  const loop = async (n: number) => {
    for (let i = 0; i < n; i++) await Promise.all([f.a.send(f.data, f.options), receive()]);
  };
  await loop(warmupOf(item.iterations));
  const start = performance.now();
  await loop(item.iterations);
  return (performance.now() - start) * 1e6 / item.iterations;
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
  mode: "sync" | "async" | "async-spin" | "async-epoll",
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
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } finally {
    child.close();
  }
  let switchesBefore = 0;
  let switchesAfter = 0;
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
      const defaultBackend = mode === "async-epoll" ? await pollerBackend(checkout) : undefined;
      if (defaultBackend !== undefined) configurePoller({ backend: "epoll" });
      try {
        await loopAsync(warmupOf(item.iterations));
        switchesBefore = contextSwitches();
        const start = performance.now();
        await loopAsync(item.iterations);
        elapsed = performance.now() - start;
        switchesAfter = contextSwitches();
      } finally {
        configurePoller({
          spinMicroseconds: 0,
          ...(defaultBackend === undefined ? {} : { backend: defaultBackend }),
        });
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
  if (mode !== "sync" && checkout.root === undefined) {
    // This checkout's echo child reports its own switches over its life.
    const report = JSON.parse(new TextDecoder().decode(output.stdout).trim().split("\n").at(-1)!);
    recordSwitches(
      `fdpass (${mode})`,
      (switchesAfter - switchesBefore) / item.iterations +
        report.contextSwitches / report.messages,
    );
  }
  return elapsed * 1e6 / item.iterations;
}

/** Context switches of every thread of this process (getrusage(2): voluntary + involuntary). */
function contextSwitches(): number {
  const usage = nodeProcess.resourceUsage();
  return usage.voluntaryContextSwitches + usage.involuntaryContextSwitches;
}

/** The backend the checkout's poller uses by default (after a wait has started it). */
async function pollerBackend(checkout: Checkout): Promise<"io_uring" | "epoll" | "poll"> {
  await checkout.library.waitWritable(2);
  const stats = checkout.library.pollerStats() as { backend: "io_uring" | "epoll" | "poll" };
  return stats.backend;
}

/** Context switches per round trip (both processes) of each ping-pong run, by row. */
const switchesByRow = new Map<string, number[]>();
function recordSwitches(row: string, perRoundTrip: number): void {
  const list = switchesByRow.get(row) ?? [];
  list.push(perRoundTrip);
  switchesByRow.set(row, list);
}

/** One cell of the results table. */
interface Result {
  item: string;
  title: string;
  implementation: string;
  /** "ok", "missing", "n/a", "failed" or "stalled" (stopped answering; not a failure). */
  status: "ok" | "missing" | "n/a" | "failed" | "stalled";
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
        if (error instanceof Stalled) {
          row.status = "stalled";
          row.note = error.message;
          continue;
        }
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

// Memory: RSS and JS heap over many round trips with an fd, async (through
// the poller) and sync, each in a fresh process.
interface MemoryReading {
  roundTrips: number;
  rss: number;
  heap: number;
  /** V8's reservation: its young generation grows with the allocation rate, and RSS with it. */
  heapTotal: number;
  external: number;
}
interface MemoryResult {
  mode: "async" | "sync";
  roundTrips: number;
  gcBeforeReadings: boolean;
  /** After the warm-up, then after each tenth of the round trips. */
  readings: MemoryReading[];
  /** Last reading minus first. */
  rssGrowth: number;
  heapGrowth: number;
  /** Highest reading minus lowest. */
  rssRange: number;
  heapRange: number;
  rssPeak: number;
  heapPeak: number;
  /** Waits the poller made (async: two per round trip, every message taken by a report). */
  pollerWaits: number;
  backend: string;
}
function measureMemory(mode: "async" | "sync"): MemoryResult | { mode: string; error: string } {
  const [program, programArgs] = limited(Deno.execPath(), [
    "run",
    "--quiet",
    "--allow-ffi",
    "--allow-read",
    "--v8-flags=--expose-gc",
    MEMORY_CHILD.pathname,
    String(MEMORY_ROUND_TRIPS),
    mode,
  ], 900);
  const output = new Deno.Command(program, { args: programArgs, stdin: "null" }).outputSync();
  const text = new TextDecoder().decode(output.stdout);
  if (!output.success) {
    failures++;
    return {
      mode,
      error: new TextDecoder().decode(output.stderr).trim() || "the memory child failed",
    };
  }
  const { gc, readings, pollerWaits, backend } = JSON.parse(text) as {
    gc: boolean;
    readings: MemoryReading[];
    pollerWaits: number;
    backend: string;
  };
  const first = readings[0]!;
  const last = readings[readings.length - 1]!;
  const rss = readings.map((r) => r.rss);
  const heap = readings.map((r) => r.heap);
  return {
    mode,
    roundTrips: MEMORY_ROUND_TRIPS,
    gcBeforeReadings: gc,
    readings,
    rssGrowth: last.rss - first.rss,
    heapGrowth: last.heap - first.heap,
    rssRange: Math.max(...rss) - Math.min(...rss),
    heapRange: Math.max(...heap) - Math.min(...heap),
    rssPeak: Math.max(...rss),
    heapPeak: Math.max(...heap),
    pollerWaits,
    backend,
  };
}
const memory = [measureMemory("async"), measureMemory("sync")];
log("  done: memory");

// 1,000 pairs exchanging messages at once through the async API, and the
// same in Go; the runs take turns and the median run is reported.
const CONCURRENT_PAIRS = 1000;
const CONCURRENT_ROUNDS = smoke ? 5 : 100;
const CONCURRENT_RUNS = smoke ? 1 : 5;
/** What the library's and Go's concurrent-pairs runs both report. */
type ConcurrentSummary = Pick<
  ConcurrentResult,
  | "pairs"
  | "rounds"
  | "messages"
  | "seconds"
  | "messagesPerSecond"
  | "cpuUserSeconds"
  | "cpuSystemSeconds"
>;
interface ConcurrentResult {
  pairs: number;
  rounds: number;
  messages: number;
  seconds: number;
  messagesPerSecond: number;
  cpuUserSeconds: number;
  cpuSystemSeconds: number;
  backend: string;
  threadsBefore: number | null;
  threadsDuring: number;
  maxRegisteredFds: number;
  pollerWaits: number;
  maxOutstandingWaits: number;
}
/** The runs of one implementation and their medians. */
interface ConcurrentRuns<T extends ConcurrentSummary> {
  name: string;
  runs: T[];
  /** The run with the median messages/s. */
  median: T;
  messagesPerSecond: number;
  /** Lowest and highest messages/s of the runs. */
  min: number;
  max: number;
  /** Median CPU seconds (user + system) per message, and its parts (medians too). */
  cpuPerMessage: number;
  userPerMessage: number;
  systemPerMessage: number;
}

function summarizeRuns<T extends ConcurrentSummary>(name: string, runs: T[]): ConcurrentRuns<T> {
  const rates = runs.map((r) => r.messagesPerSecond);
  const sorted = [...runs].sort((a, b) => a.messagesPerSecond - b.messagesPerSecond);
  return {
    name,
    runs,
    median: sorted[(sorted.length - 1) >> 1]!,
    messagesPerSecond: median(rates),
    min: Math.min(...rates),
    max: Math.max(...rates),
    cpuPerMessage: median(runs.map((r) => (r.cpuUserSeconds + r.cpuSystemSeconds) / r.messages)),
    userPerMessage: median(runs.map((r) => r.cpuUserSeconds / r.messages)),
    systemPerMessage: median(runs.map((r) => r.cpuSystemSeconds / r.messages)),
  };
}

/**
 * The library's run; `backend` picks the poller's backend (default: the
 * library's choice), `receive` the receive (`recv()` by default, or the
 * zero-allocation `recvInto()`).
 */
function concurrentLibraryRun(
  backend: "epoll" | "default" = "default",
  receive: "recv" | "recvInto" = "recv",
): ConcurrentResult {
  const [program, programArgs] = limited(Deno.execPath(), [
    "run",
    "--quiet",
    "--allow-ffi",
    "--allow-read",
    CONCURRENT_CHILD.pathname,
    String(CONCURRENT_PAIRS),
    String(CONCURRENT_ROUNDS),
    backend,
    receive,
  ], 300);
  const output = new Deno.Command(program, { args: programArgs, stdin: "null" }).outputSync();
  if (!output.success) {
    throw new Error(
      new TextDecoder().decode(output.stderr).trim() || "the concurrent child failed",
    );
  }
  return JSON.parse(new TextDecoder().decode(output.stdout)) as ConcurrentResult;
}

/** Go's run; `threads` sets GOMAXPROCS (default: one per CPU). */
function concurrentGoRun(program: string, threads?: number): ConcurrentSummary {
  const goArgs = ["concurrent", String(CONCURRENT_PAIRS), String(CONCURRENT_ROUNDS)];
  const result = threads === undefined
    ? run(program, goArgs)
    : run("env", [`GOMAXPROCS=${threads}`, program, ...goArgs]);
  if (result === null || !result.success) {
    throw new Error(result?.stderr.trim() || "the Go program failed");
  }
  return JSON.parse(result.stdout) as ConcurrentSummary;
}

type ConcurrentOutcome<T extends ConcurrentSummary> = ConcurrentRuns<T> | {
  name: string;
  error: string;
};

/** The poller backend the library's concurrent row gets by default. */
const defaultPoller = hasAsync ? await pollerBackend(current) : null;

/** Runs the implementations in turn, `CONCURRENT_RUNS` times. */
function measureConcurrent(): {
  library: ConcurrentOutcome<ConcurrentResult>;
  libraryInto: ConcurrentOutcome<ConcurrentResult>;
  libraryEpoll: ConcurrentOutcome<ConcurrentResult>;
  go: ConcurrentOutcome<ConcurrentSummary>;
  goOneThread: ConcurrentOutcome<ConcurrentSummary>;
} {
  const contenders: {
    name: string;
    skip: string | null;
    measure: () => ConcurrentSummary;
    runs: ConcurrentSummary[];
    error: string | null;
  }[] = [
    {
      name: "fdpass (async)",
      skip: hasAsync ? null : "async API not available",
      measure: () => concurrentLibraryRun(),
      runs: [],
      error: null,
    },
    {
      name: "fdpass (async, recvInto)",
      skip: !hasAsync
        ? "async API not available"
        : missingMethod("recvInto") !== null
        ? missingMethod("recvInto")
        : smoke
        ? "full run only"
        : null,
      measure: () => concurrentLibraryRun("default", "recvInto"),
      runs: [],
      error: null,
    },
    {
      name: "fdpass (async, epoll backend)",
      skip: defaultPoller === null
        ? "async API not available"
        : defaultPoller !== "io_uring"
        ? `n/a: the default backend is ${defaultPoller}`
        : smoke
        ? "full run only"
        : null,
      measure: () => concurrentLibraryRun("epoll"),
      runs: [],
      error: null,
    },
    {
      name: "Go (goroutines)",
      skip: typeof goProgram === "object" ? `missing: ${goProgram.missing}` : null,
      measure: () => concurrentGoRun(goProgram as string),
      runs: [],
      error: null,
    },
    {
      name: "Go (goroutines, GOMAXPROCS=1)",
      skip: typeof goProgram === "object"
        ? `missing: ${goProgram.missing}`
        : smoke
        ? "full run only"
        : null,
      measure: () => concurrentGoRun(goProgram as string, 1),
      runs: [],
      error: null,
    },
  ];
  for (let round = 0; round < CONCURRENT_RUNS; round++) {
    for (const c of contenders) {
      if (c.skip !== null || c.error !== null) continue;
      try {
        c.runs.push(c.measure());
      } catch (error) {
        c.error = error instanceof Error ? error.message : String(error);
        failures++;
      }
    }
  }
  const outcome = <T extends ConcurrentSummary>(i: number): ConcurrentOutcome<T> => {
    const c = contenders[i]!;
    const problem = c.skip ?? c.error;
    return problem !== null
      ? { name: c.name, error: problem }
      : summarizeRuns(c.name, c.runs as T[]);
  };
  return {
    library: outcome(0),
    libraryInto: outcome(1),
    libraryEpoll: outcome(2),
    go: outcome(3),
    goOneThread: outcome(4),
  };
}
const concurrentPairs = measureConcurrent();
log("  done: concurrent pairs (library and Go)");

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
/** ops/s of `row` divided by ops/s of `other` on `item`. */
function speedOf(item: string, row: string, other: string): number | null {
  const find = (name: string) =>
    results.find((r) => r.item === item && r.implementation === name)?.opsPerSecond ?? null;
  const mine = find(row);
  const theirs = find(other);
  return mine === null || theirs === null ? null : mine / theirs;
}

/** Nanoseconds each fd beyond the first adds to a round trip: 1 and 64 fds, medians. */
function perExtraFd(row: string): number | null {
  const ns = (item: string) =>
    results.find((r) => r.item === item && r.implementation === row)?.nsPerOp ?? null;
  const one = ns("roundtrip-1");
  const many = ns("roundtrip-64");
  return one === null || many === null ? null : (many - one) / 63;
}

const targets = [
  {
    name: "sync in-process round trip, library vs C",
    ratio: ratioFor("roundtrip-1", "C (cc -O2)"),
    atLeast: 0.85,
  },
  {
    name: "sync in-process round trip with recvIntoSync, library vs C",
    ratio: speedOf("roundtrip-1", RECV_INTO_ROW, "C (cc -O2)"),
    atLeast: 0.9,
  },
  ...[library.name, RECV_INTO_ROW].map((row) => {
    const perFd = perExtraFd(row);
    const cPerFd = perExtraFd("C (cc -O2)");
    return {
      name: `cost per extra fd (1 to 64 fds per message), ${row} ${
        perFd === null ? "-" : perFd.toFixed(0)
      } ns vs C ${cPerFd === null ? "-" : cPerFd.toFixed(0)} ns: C's cost ÷ the library's`,
      // At most 1.2x C's cost per fd: at least 1 / 1.2 as a ratio of costs.
      ratio: perFd === null || cPerFd === null ? null : cPerFd / perFd,
      atLeast: 0.83,
    };
  }),
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
  const nativePing = results.find((r) =>
    r.item === "pingpong" && r.implementation === "Deno native Unix socket (no fds)"
  )?.opsPerSecond ?? null;
  // Goal: at most 1.5x Deno's native ping-pong time, that is at least 1/1.5 of its speed.
  const nativeRatio = asyncPing !== null && nativePing !== null ? asyncPing / nativePing : null;
  targets.push({
    name:
      "async cross-process ping-pong vs Deno native Unix sockets (no spin; within 1.5x its time)",
    ratio: nativeRatio,
    atLeast: 0.67,
    met: nativeRatio === null ? null : nativeRatio >= 0.67,
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

{
  const { library: lib, go } = concurrentPairs;
  const ratio = "error" in lib || "error" in go
    ? null
    : lib.messagesPerSecond / go.messagesPerSecond;
  targets.push({
    name: `${
      CONCURRENT_PAIRS.toLocaleString("en-US")
    } concurrent pairs, library vs Go (messages/s)`,
    ratio,
    atLeast: 0.8,
    met: ratio === null ? null : ratio >= 0.8,
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
      concurrentPairs,
      contextSwitchesPerRoundTrip: Object.fromEntries(switchesByRow),
      targets,
    },
    null,
    2,
  ));
} else {
  printTables();
  printRatioTable();
}
writeChart();
if (failures > 0) Deno.exit(1);

/** Median context switches per round trip of each ping-pong row, with the poller backend in use. */
function switchLines(): string[] {
  if (switchesByRow.size === 0) return [];
  // Every ping-pong row has run: the poller is started.
  const backend = (current.library.pollerStats() as { backend: string }).backend;
  const labels: Record<string, string> = {
    "fdpass (async)": `fdpass (async, ${backend})`,
    "fdpass (async-spin)": `fdpass (async, ${backend}, ${SPIN_MICROSECONDS} µs spin)`,
    "fdpass (async-epoll)": "fdpass (async, epoll fallback)",
  };
  const lines = [
    "Context switches per cross-process ping-pong round trip, both processes (getrusage(2),",
    "every thread, voluntary + involuntary; median of the rounds, lowest–highest):",
  ];
  for (const [row, values] of switchesByRow) {
    const sorted = [...values].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)]!;
    lines.push(
      `- ${labels[row] ?? row}: ${median.toFixed(2)} (${sorted[0]!.toFixed(2)}–${
        sorted.at(-1)!.toFixed(2)
      })`,
    );
  }
  const stats = current.library.pollerStats() as { fallbackReason?: string | null };
  if (stats.fallbackReason) lines.push(`io_uring refused here: ${stats.fallbackReason}`);
  return lines;
}

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
      : r.status === "stalled"
      ? [r.note!, "", ""]
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
  const switches = switchLines();
  if (switches.length > 0) lines.push(...switches, "");
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
  for (const m of memory) {
    if ("error" in m) {
      lines.push(`Memory (${m.mode}): failed: ${m.error}`);
      lines.push("");
      continue;
    }
    lines.push(
      `Memory, ${number.format(m.roundTrips)} ${m.mode} round trips (1 byte + 1 fd${
        m.mode === "async"
          ? " each way, every message taken by the poller"
          : ", received and closed"
      }) in a fresh process${m.gcBeforeReadings ? ", gc() before each reading" : ""}:`,
    );
    lines.push("| | after warm-up | at the end | growth | lowest to highest | peak |");
    lines.push("| --- | ---: | ---: | ---: | ---: | ---: |");
    const first = m.readings[0]!;
    const last = m.readings[m.readings.length - 1]!;
    lines.push(
      `| RSS (VmRSS) | ${mib(first.rss)} | ${mib(last.rss)} | ${signedMib(m.rssGrowth)} | ${
        mib(m.rssRange)
      } | ${mib(m.rssPeak)} |`,
    );
    lines.push(
      `| JS heap used | ${mib(first.heap)} | ${mib(last.heap)} | ${signedMib(m.heapGrowth)} | ${
        mib(m.heapRange)
      } | ${mib(m.heapPeak)} |`,
    );
    const row = (label: string, pick: (r: MemoryReading) => number) => {
      const values = m.readings.map(pick);
      lines.push(
        `| ${label} | ${mib(values[0]!)} | ${mib(values.at(-1)!)} | ${
          signedMib(values.at(-1)! - values[0]!)
        } | ${mib(Math.max(...values) - Math.min(...values))} | ${mib(Math.max(...values))} |`,
      );
    };
    row("JS heap reserved (heapTotal)", (r) => r.heapTotal);
    row("external (array buffers)", (r) => r.external);
    const series = (pick: (r: MemoryReading) => number) =>
      m.readings.map((r) => (pick(r) / 2 ** 20).toFixed(2)).join(", ");
    lines.push(
      `RSS after the warm-up and after each tenth of the round trips: ${series((r) => r.rss)} MiB`,
    );
    lines.push(`JS heap used at the same points: ${series((r) => r.heap)} MiB`);
    lines.push(`JS heap reserved at the same points: ${series((r) => r.heapTotal)} MiB`);
    if (m.mode === "async") {
      lines.push(
        `Poller: ${m.backend}, ${number.format(m.pollerWaits)} waits (warm-up included)`,
      );
    }
    lines.push("");
  }
  const { library: lib, go } = concurrentPairs;
  if ("error" in lib) {
    lines.push(`Concurrent pairs: failed: ${lib.error}`);
  } else {
    const c = lib.median;
    lines.push(
      `${
        number.format(c.pairs)
      } socketpairs exchanging messages at once (async, ${c.rounds} ping-pongs each, 1 fd per ping), the library's median run of ${lib.runs.length}:`,
    );
    lines.push(
      `${number.format(Math.round(c.messagesPerSecond))} messages/s (${
        number.format(c.messages)
      } in ${c.seconds.toFixed(2)} s); CPU ${c.cpuUserSeconds.toFixed(2)} s user + ${
        c.cpuSystemSeconds.toFixed(2)
      } s system; poller ${c.backend}; threads ${c.threadsBefore} before, at most ${c.threadsDuring} during; up to ${
        number.format(c.maxRegisteredFds)
      } fds registered, ${
        number.format(c.pollerWaits)
      } poller waits, at most ${c.maxOutstandingWaits} outstanding`,
    );
  }
  lines.push("");
  lines.push(concurrentTable(concurrentPairs).join("\n"));
  if (!("error" in lib) && !("error" in go)) {
    lines.push(
      `fdpass ÷ Go: ${(lib.messagesPerSecond / go.messagesPerSecond).toFixed(2)}x messages/s, ${
        (lib.cpuPerMessage / go.cpuPerMessage).toFixed(2)
      }x CPU per message`,
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

/**
 * The concurrent-pairs table: median messages/s with the spread of the
 * runs, and CPU per message, for the library and Go.
 */
function concurrentTable(c: typeof concurrentPairs): string[] {
  const number = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  const µs = (seconds: number) => `${(seconds * 1e6).toFixed(2)} µs`;
  const lines = [
    `| ${
      number.format(CONCURRENT_PAIRS)
    } concurrent pairs, ${CONCURRENT_ROUNDS} ping-pongs each | messages/s (median) | lowest–highest | CPU per message (user + system) |`,
    "| --- | ---: | ---: | ---: |",
  ];
  for (const row of [c.library, c.libraryInto, c.libraryEpoll, c.go, c.goOneThread]) {
    if ("error" in row) {
      lines.push(`| ${row.name} | ${row.error} | | |`);
      continue;
    }
    lines.push(
      `| ${row.name} | ${number.format(row.messagesPerSecond)} | ${number.format(row.min)}–${
        number.format(row.max)
      } | ${µs(row.cpuPerMessage)} (${µs(row.userPerMessage)} + ${µs(row.systemPerMessage)}) |`,
    );
  }
  lines.push(
    `Runs per implementation: ${CONCURRENT_RUNS}, taken in turn. Go uses every core (GOMAXPROCS = CPUs) unless stated; the library's async API runs on one JavaScript thread.`,
  );
  return lines;
}

/** The command line of this run, for the README. */
function commandLine(): string {
  const rest = Deno.args.filter((arg) => arg !== "--smoke" && arg !== "--");
  return [`deno task bench:${smoke ? "smoke" : "full"}`, ...rest].join(" ");
}

/**
 * The README's table: for each work item, the library's ops/s divided by
 * each implementation's (above 1 the library is faster), sync and async.
 */
function printRatioTable(): void {
  const others = implementations.filter((impl) =>
    impl !== library && impl !== libraryAsync && impl.missing === null
  );
  const lines = [
    "",
    `Ratios (fdpass ops/s ÷ implementation ops/s; above 1 fdpass is faster), ${
      smoke ? "smoke run, not for quoting" : "median of the rounds"
    }`,
    `Machine: ${machineLine(box)}`,
    `Command: ${commandLine()}`,
    "",
    `| work item | fdpass | ${others.map((impl) => impl.name).join(" | ")} |`,
    `| --- | --- | ${others.map(() => "---:").join(" | ")} |`,
  ];
  for (const item of items) {
    for (const self of hasAsync ? [library, libraryAsync] : [library]) {
      const mine = results.find((r) => r.item === item.id && r.implementation === self.name);
      const cells = others.map((impl) => {
        const theirs = results.find((r) => r.item === item.id && r.implementation === impl.name)!;
        if (theirs.status === "stalled") return theirs.note!;
        if (theirs.status !== "ok" || mine?.status !== "ok") return theirs.status;
        return `${(mine.opsPerSecond! / theirs.opsPerSecond!).toFixed(2)}`;
      });
      lines.push(`| ${item.title} | ${self.name.replace("fdpass ", "")} | ${cells.join(" | ")} |`);
    }
  }
  for (const impl of implementations.filter((impl) => impl.missing !== null)) {
    lines.push(`${impl.name}: missing (${impl.missing})`);
  }
  lines.push("");
  lines.push(...concurrentTable(concurrentPairs));
  const { library: lib, go } = concurrentPairs;
  if (!("error" in lib) && !("error" in go)) {
    lines.push(
      `fdpass ÷ Go: ${(lib.messagesPerSecond / go.messagesPerSecond).toFixed(2)} (messages/s)`,
    );
  }
  const switches = switchLines();
  if (switches.length > 0) lines.push("", ...switches);
  console.log(lines.join("\n"));
}

/** Escapes text for SVG. */
function xml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/**
 * Writes a horizontal bar chart (ops/s) of the headline items, hand-written
 * SVG, to `.bench-build/results.svg` and to `--svg PATH` when given.
 */
function writeChart(): void {
  // The chart's rows: implementation names as in the results.
  const chartRows = [
    library.name,
    libraryAsync.name,
    "C (cc -O2)",
    "C epoll (cc -O2)",
    "Go net.UnixConn",
    "Python socket.send_fds",
    "Perl IO::FDPass",
    "Deno native Unix socket (no fds)",
    "Node child_process.send",
  ];
  const headline = items.filter((item) => item.id === "roundtrip-1" || item.id === "pingpong");
  const width = 760;
  const labelWidth = 250;
  const barArea = width - labelWidth - 110;
  const barHeight = 18;
  const parts: string[] = [];
  let y = 50;
  for (const item of headline) {
    const rows = chartRows.map((name) =>
      results.find((r) => r.item === item.id && r.implementation === name)
    ).filter((r): r is Result => r !== undefined && r.status === "ok");
    const top = Math.max(...rows.map((r) => r.opsPerSecond!), 1);
    parts.push(`<text x="10" y="${y}" font-weight="bold">${xml(item.title)} (ops/s)</text>`);
    y += 12;
    for (const r of rows) {
      const w = Math.max(1, Math.round(r.opsPerSecond! / top * barArea));
      const fill = r.implementation.startsWith("fdpass") ? "#2f6fb0" : "#9aa5b1";
      parts.push(
        `<text x="${labelWidth - 8}" y="${y + 13}" text-anchor="end">${
          xml(r.implementation)
        }</text>`,
        `<rect x="${labelWidth}" y="${y}" width="${w}" height="${barHeight}" fill="${fill}"/>`,
        `<text x="${labelWidth + w + 6}" y="${y + 13}">${
          Math.round(r.opsPerSecond!).toLocaleString("en-US")
        }</text>`,
      );
      y += barHeight + 6;
    }
    y += 24;
  }
  const svg = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${
      y + 10
    }" viewBox="0 0 ${width} ${y + 10}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="10" y="22" font-size="13">${xml(`fdpass benchmarks: ${machineLine(box)}`)}</text>`,
    ...parts,
    `</svg>`,
    "",
  ].join("\n");
  Deno.mkdirSync(BUILD_DIR, { recursive: true });
  const paths = [new URL("results.svg", BUILD_DIR).pathname, ...(args.svg ? [args.svg] : [])];
  for (const path of paths) {
    Deno.writeTextFileSync(path, svg);
    log(`chart: ${path}`);
  }
  // The copy in the repository is kept as `deno fmt` (part of `deno task
  // check`) lays SVG out.
  if (args.svg) {
    const formatted = new Deno.Command(Deno.execPath(), { args: ["fmt", "-q", args.svg] })
      .outputSync();
    if (!formatted.success) log(`chart: deno fmt ${args.svg} failed; run it by hand`);
  }
}
