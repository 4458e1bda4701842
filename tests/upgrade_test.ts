/**
 * Tests of {@linkcode Upgrader}: upgrades of a `node:http` server under
 * load (fresh and keep-alive connections, no failed request, no fd leaked
 * in any generation), failed successors, the one-upgrade-at-a-time rule,
 * inherited and created listeners, and systemd socket activation through
 * `systemd-socket-activate`.
 *
 * The test process has no `--allow-net`: the servers listen on abstract
 * Unix sockets and the client speaks HTTP/1.1 over {@linkcode UnixSocket}.
 *
 * @module
 */

import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { borrowFd, listenTcp, UnixSocket, Upgrader } from "../mod.ts";
import { decoder, leakCheckedTest, startPoller, within } from "./helpers.ts";

await startPoller();

// spawn() starts every child through /bin/sh.
const GENERATION_PERMISSIONS = [
  "--allow-ffi",
  "--allow-env",
  `--allow-run=/bin/sh,${Deno.execPath()}`,
];
const SUCCESSOR_PERMISSIONS = ["--allow-ffi", "--allow-env"];
const fixture = (name: string): string => new URL(`./fixtures/${name}`, import.meta.url).pathname;

// ---------------------------------------------------------------------------
// A minimal HTTP/1.1 client over Unix sockets.

interface Response {
  status: number;
  body: string;
  close: boolean;
}

/** Sends GET / and reads one response; `null` when the peer hung up before a byte. */
async function request(socket: UnixSocket): Promise<Response | null> {
  await socket.send("GET / HTTP/1.1\r\nhost: test\r\n\r\n");
  let buffered = new Uint8Array(0);
  const append = (data: Uint8Array): void => {
    const next = new Uint8Array(buffered.length + data.length);
    next.set(buffered);
    next.set(data, buffered.length);
    buffered = next;
  };
  for (;;) {
    const text = decoder.decode(buffered);
    const end = text.indexOf("\r\n\r\n");
    if (end >= 0) {
      const [statusLine, ...lines] = text.slice(0, end).split("\r\n");
      const headers = new Map(lines.map((line) => {
        const colon = line.indexOf(":");
        return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()];
      }));
      const length = Number(headers.get("content-length"));
      if (buffered.length - (end + 4) >= length) {
        return {
          status: Number(statusLine!.split(" ")[1]),
          body: text.slice(end + 4, end + 4 + length),
          close: headers.get("connection")?.toLowerCase() === "close",
        };
      }
    }
    const message = await socket.recv({ maxBytes: 4096 });
    if (message === null) {
      if (buffered.length === 0) return null;
      throw new Error(`Connection closed in the middle of a response: ${JSON.stringify(text)}`);
    }
    append(message.data);
  }
}

/** Counts of a load run. */
interface LoadResult {
  ok: number;
  failed: number;
  retried: number;
  errors: string[];
  servedBy: Map<string, number>;
}

/**
 * Requests in a loop until stopped: `fresh` workers connect for every
 * request, `keepAlive` workers reuse a connection until the server says
 * `connection: close`. As every HTTP client does (RFC 9112 section 9.3.1),
 * a request on a reused connection that the server closed before sending
 * a byte is retried once on a fresh connection.
 */
/** A running load: its counts so far, and stop(). */
interface Load {
  result: LoadResult;
  stop(): Promise<LoadResult>;
}

function load(address: { abstract: string }, fresh: number, keepAlive: number): Load {
  const result: LoadResult = { ok: 0, failed: 0, retried: 0, errors: [], servedBy: new Map() };
  let stopped = false;
  const count = (response: Response): void => {
    if (response.status === 200) {
      result.ok++;
      result.servedBy.set(response.body, (result.servedBy.get(response.body) ?? 0) + 1);
    } else {
      result.failed++;
      result.errors.push(`status ${response.status}`);
    }
  };
  const fail = (error: unknown): void => {
    result.failed++;
    if (result.errors.length < 10) result.errors.push(String(error));
  };
  const freshWorker = async (): Promise<void> => {
    while (!stopped) {
      try {
        using socket = await UnixSocket.connect(address);
        const response = await request(socket);
        if (response === null) throw new Error("Fresh connection closed before a response");
        count(response);
      } catch (error) {
        fail(error);
      }
    }
  };
  const keepAliveWorker = async (): Promise<void> => {
    let socket: UnixSocket | null = null;
    while (!stopped) {
      try {
        let response: Response | null = null;
        if (socket !== null) {
          response = await request(socket).catch(() => null);
          if (response === null) {
            result.retried++;
            socket.close();
            socket = null;
          }
        }
        if (socket === null) {
          socket = await UnixSocket.connect(address);
          response = await request(socket);
          if (response === null) throw new Error("Fresh connection closed before a response");
        }
        count(response!);
        if (response!.close) {
          socket.close();
          socket = null;
        }
      } catch (error) {
        fail(error);
        socket?.close();
        socket = null;
      }
    }
    socket?.close();
  };
  const workers = [
    ...Array.from({ length: fresh }, freshWorker),
    ...Array.from({ length: keepAlive }, keepAliveWorker),
  ];
  return {
    result,
    async stop(): Promise<LoadResult> {
      stopped = true;
      await Promise.all(workers);
      return result;
    },
  };
}

// ---------------------------------------------------------------------------
// Generations of tests/fixtures/upgrade_server.ts, read through their shared stdout.

interface Event {
  event: string;
  pid: number;
  [key: string]: unknown;
}

/** The JSON lines of a stream, with a bounded wait for the next matching one. */
/** The events read so far, the end of the stream, and a bounded wait. */
interface EventReader {
  events: Event[];
  done: Promise<void>;
  next(predicate: (event: Event) => boolean, what: string): Promise<Event>;
}

function eventReader(stream: ReadableStream<Uint8Array>): EventReader {
  const events: Event[] = [];
  const waiter: { wake: (() => void) | null } = { wake: null };
  const done = (async () => {
    let pending = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      pending += chunk;
      let newline;
      while ((newline = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        if (line.startsWith("{")) events.push(JSON.parse(line));
        waiter.wake?.();
      }
    }
    waiter.wake?.();
  })();
  return {
    events,
    done,
    async next(predicate: (event: Event) => boolean, what: string): Promise<Event> {
      let seen = 0;
      return await within(
        (async () => {
          for (;;) {
            const found = events.slice(seen).find(predicate);
            if (found !== undefined) return found;
            seen = events.length;
            await new Promise<void>((resolve) => waiter.wake = resolve);
          }
        })(),
        15_000,
        what,
      );
    },
  };
}

/**
 * Checks one generation's exit report: every fd it opened is closed, the
 * inherited ones too. A generation that was upgraded may keep one fd of
 * kind "unknown": Deno's pidfd of the successor, which still runs, closed
 * when the process exits (Deno gives no way to close it earlier).
 */
function assertNoLeak(exit: Event, upgraded: boolean): void {
  const start = exit.startFds as number[];
  const end = exit.endFds as number[];
  const inherited = exit.inheritedFds as number[];
  const kinds = exit.kinds as Record<string, string>;
  let leaked = end.filter((fd) => !start.includes(fd));
  const pidfd = leaked.find((fd) => kinds[fd] === "unknown");
  if (upgraded && pidfd !== undefined) leaked = leaked.filter((fd) => fd !== pidfd);
  assertEquals(
    {
      leaked,
      inheritedStillOpen: end.filter((fd) => inherited.includes(fd)),
    },
    { leaked: [], inheritedStillOpen: [] },
    `generation ${exit.pid} leaked fds`,
  );
}

/** Whether a process runs (and is not a zombie). */
function isRunning(pid: number): boolean {
  // Deno refuses /proc/<pid> without --allow-all; ps reads it for us.
  const { stdout } = new Deno.Command("ps", { args: ["-o", "stat=", "-p", String(pid)] })
    .outputSync();
  const state = decoder.decode(stdout).trim();
  return state !== "" && !state.startsWith("Z");
}

function abstractName(what: string): string {
  return `fdpass-upgrade-test-${what}-${Deno.pid}-${Math.random().toString(36).slice(2)}`;
}

leakCheckedTest(
  "Upgrader serves HTTP through three upgrades under load: no failed request, old generations exit, no fd leaked",
  async () => {
    const name = abstractName("load");
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        "--no-lock",
        ...GENERATION_PERMISSIONS,
        fixture("upgrade_server.ts"),
        name,
        JSON.stringify(GENERATION_PERMISSIONS),
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const reader = eventReader(child.stdout);
    const pids: number[] = [];
    let traffic: Load | undefined;
    try {
      let current = await reader.next((e) => e.event === "ready", "the first generation");
      assertEquals([current.inherited, current.hasParent], [false, false]);
      traffic = load({ abstract: name }, 4, 4);
      pids.push(current.pid);
      for (let i = 0; i < 3; i++) {
        await new Promise((resolve) => setTimeout(resolve, 300));
        Deno.kill(current.pid, "SIGHUP");
        const previous = current.pid;
        current = await reader.next(
          (e) => e.event === "ready" && e.pid !== previous && !pids.includes(e.pid),
          `generation ${i + 2}`,
        );
        assertEquals([current.inherited, current.hasParent], [true, true]);
        pids.push(current.pid);
        assertNoLeak(
          await reader.next((e) => e.event === "exit" && e.pid === previous, "an exit"),
          true,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
      const result = await traffic.stop();
      Deno.kill(current.pid, "SIGTERM");
      assertNoLeak(
        await reader.next((e) => e.event === "exit" && e.pid === current.pid, "the end"),
        false,
      );
      await within(reader.done, 10_000, "the generations' stdout to close");
      console.log(
        `${result.ok} requests served by ${pids.length} generations, ${result.failed} failed, ` +
          `${result.retried} keep-alive retries`,
      );
      assertEquals(result.failed, 0, result.errors.join("\n"));
      // Every generation served: the load really ran across the upgrades.
      assertEquals([...result.servedBy.keys()].map(Number).sort(), [...pids].sort());
      assert(result.ok > 100, `only ${result.ok} requests`);
      assertEquals(reader.events.filter((e) => e.event === "upgrade-failed"), []);
      assert((await child.status).success);
    } finally {
      await traffic?.stop();
      for (const pid of [child.pid, ...pids]) if (isRunning(pid)) Deno.kill(pid, "SIGKILL");
      await child.status;
      await reader.done.catch(() => {});
    }
  },
);

/** An upgrader in this process whose successor is upgrade_successor.ts in `mode`. */
function startUpgrader(
  mode: string,
  readyTimeoutMilliseconds = 5_000,
): { upgrader: Upgrader; report: UnixSocket } {
  const upgrader = Upgrader.start({
    command: Deno.execPath(),
    args: [
      "run",
      "--quiet",
      "--no-lock",
      ...SUCCESSOR_PERMISSIONS,
      fixture("upgrade_successor.ts"),
      mode,
    ],
    readyTimeoutMilliseconds,
    upgradeSignal: null,
  });
  const [report, theirs] = UnixSocket.pair("seqpacket");
  upgrader.listener("report", () => theirs.toOwnedFd()).close();
  return { upgrader, report };
}

async function readReport(report: UnixSocket): Promise<Record<string, unknown>> {
  const message = await within(report.recv(), 10_000, "the successor's report");
  if (message === null) throw new Error("The successor sent no report");
  return JSON.parse(decoder.decode(message.data));
}

leakCheckedTest(
  "upgrade() rejects when the successor crashes, and the old generation keeps serving",
  async () => {
    const { upgrader, report } = startUpgrader("crash");
    // An abstract name: no socket file for close() to remove.
    const address = { abstract: abstractName("crash") };
    using listener = UnixSocket.listen(address);
    upgrader.listener("http", () => borrowFd(listener.fd).dup()).close();
    await upgrader.ready();
    const error = await assertRejects(() => upgrader.upgrade(), Error, "exited with code 3");
    assert(error.message.includes("before it was ready"), error.message);
    assert((await readReport(report)).pid !== Deno.pid);
    // Still serving: the listening socket accepts, and another upgrade may start.
    using client = UnixSocket.connectSync(address);
    using _accepted = listener.acceptSync();
    client.sendSync("still here");
    await assertRejects(() => upgrader.upgrade(), Error, "exited with code 3");
    await readReport(report);
    report.close();
    upgrader.close();
  },
);

leakCheckedTest(
  "upgrade() kills a successor that is not ready in time and rejects with Deno.errors.TimedOut",
  async () => {
    const { upgrader, report } = startUpgrader("hang", 1_500);
    await upgrader.ready();
    const upgrade = upgrader.upgrade();
    const { pid } = await readReport(report);
    assert(isRunning(pid as number));
    await assertRejects(() => upgrade, Deno.errors.TimedOut, "was not ready within 1500 ms");
    assertEquals(isRunning(pid as number), false);
    report.close();
    upgrader.close();
  },
);

leakCheckedTest(
  "A second upgrade() while one runs is refused with Deno.errors.Busy; close() abandons the first",
  async () => {
    const { upgrader, report } = startUpgrader("hang");
    await upgrader.ready();
    const first = upgrader.upgrade();
    first.catch(() => {});
    const { pid } = await readReport(report);
    await assertRejects(() => upgrader.upgrade(), Deno.errors.Busy, "already in progress");
    upgrader.close();
    await assertRejects(() => first, Error, "abandoned");
    assertEquals(isRunning(pid as number), false);
    report.close();
  },
);

leakCheckedTest(
  "A successor inherits listeners by name and creates the ones it was not passed",
  async () => {
    const { upgrader, report } = startUpgrader("ready");
    let calls = 0;
    const http = upgrader.listener("http", () => {
      calls++;
      return listenTcp();
    });
    // Asking again returns the same socket without calling the factory.
    upgrader.listener("http", () => {
      calls++;
      return listenTcp();
    }).close();
    assertEquals(calls, 1);
    await upgrader.ready();
    const result = await upgrader.upgrade();
    const seen = await readReport(report);
    assertEquals(seen.pid, result.pid);
    assertEquals(seen.hasParent, true);
    assertEquals(seen.created, ["admin"]);
    assertEquals((seen.identity as Record<string, string>).http, String(http.stat().ino));
    await within(upgrader.exiting, 1_000, "exiting");
    await assertRejects(() => upgrader.upgrade(), Error, "already upgraded");
    // The successor exits after ready(); then Deno closes its pidfd here.
    for (let i = 0; isRunning(result.pid) && i < 200; i++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    http.close();
    report.close();
    upgrader.close();
  },
);

leakCheckedTest("Upgrader.start() and listener() check their arguments", () => {
  assertThrows(() => Upgrader.start({ upgradeSignal: null }), TypeError, "permissions");
  using upgrader = Upgrader.start({ permissions: ["--allow-ffi"], upgradeSignal: null });
  assertThrows(() => upgrader.listener("fdpass-upgrade", () => 0), RangeError, "uses it");
  assertThrows(() => upgrader.listener("a:b", () => 0), RangeError, "without");
  assertThrows(
    () => upgrader.listener("x", () => "no" as unknown as number),
    TypeError,
    "must return an OwnedFd",
  );
  upgrader.close();
  assertThrows(() => upgrader.listener("x", () => 0), TypeError, "closed");
});

const socketActivate = "/usr/bin/systemd-socket-activate";
let hasSocketActivate = true;
try {
  Deno.statSync(socketActivate);
} catch {
  hasSocketActivate = false;
  console.warn(`upgrade_test.ts: ${socketActivate} is missing: the systemd test is skipped`);
}

leakCheckedTest(
  "Under systemd-socket-activate the first generation takes its listener from systemd and an upgrade still works",
  async () => {
    const name = abstractName("systemd");
    const child = new Deno.Command(socketActivate, {
      args: [
        "-l",
        `@${name}`,
        "--fdname=http",
        Deno.execPath(),
        "run",
        "--quiet",
        "--no-lock",
        ...GENERATION_PERMISSIONS,
        fixture("upgrade_server.ts"),
        `${name}-unused`,
        JSON.stringify(GENERATION_PERMISSIONS),
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const reader = eventReader(child.stdout);
    let last = 0;
    try {
      // systemd-socket-activate binds, and starts the program on the first connection.
      let socket: UnixSocket | null = null;
      for (let i = 0; socket === null; i++) {
        socket = await UnixSocket.connect({ abstract: name }).catch((error) => {
          if (i > 200) throw error;
          return null;
        });
        if (socket === null) await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const first = await reader.next((e) => e.event === "ready", "the first generation");
      last = first.pid;
      assertEquals([first.inherited, first.hasParent], [true, false]);
      assertEquals((await request(socket))?.body, String(first.pid));
      socket.close();

      Deno.kill(first.pid, "SIGHUP");
      const second = await reader.next((e) => e.event === "ready" && e.pid !== first.pid, "gen 2");
      last = second.pid;
      assertEquals([second.inherited, second.hasParent], [true, true]);
      assertNoLeak(
        await reader.next((e) => e.event === "exit" && e.pid === first.pid, "exit"),
        true,
      );
      {
        using again = await UnixSocket.connect({ abstract: name });
        assertEquals((await request(again))?.body, String(second.pid));
      }
      Deno.kill(second.pid, "SIGTERM");
      assertNoLeak(
        await reader.next((e) => e.event === "exit" && e.pid === second.pid, "exit"),
        false,
      );
      await within(reader.done, 10_000, "the generations' stdout to close");
      assert((await child.status).success);
    } finally {
      for (const pid of [child.pid, last]) {
        if (pid !== 0 && isRunning(pid)) Deno.kill(pid, "SIGKILL");
      }
      await child.status;
      await reader.done.catch(() => {});
    }
  },
  { ignore: !hasSocketActivate },
);
