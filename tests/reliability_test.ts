/**
 * Reliability: fd ownership across queued and pending operations, received
 * and sent bytes that must not share memory, the poller under hostile
 * conditions (full datagram peers, bad signals, fds closed behind its back,
 * thundering herds), sync sends next to async ones, hostile fds, and a few
 * smaller edge cases. Every wait is bounded, so that a regression fails a
 * test instead of hanging the run.
 *
 * @module
 */

import {
  assert,
  assertEquals,
  assertFalse,
  assertInstanceOf,
  assertLess,
  assertStrictEquals,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import process from "node:process";
import {
  borrowFd,
  configurePoller,
  EventFd,
  type FdLike,
  openFd,
  type OwnedFd,
  pipe,
  pollerStats,
  UnixSocket,
  waitReadable,
  waitWritable,
} from "../mod.ts";
import type { UnixAddress } from "../mod.ts";
import { libc } from "../ffi/libc.ts";
import { startedPollerStats } from "../src/async/wait.ts";
import {
  decoder,
  encoder,
  fillSendBuffer,
  fillUntilWaiting,
  hasCommand,
  isReady,
  leakCheckedTest,
  macrotask,
  rejectionOf,
  spawnDeno,
  StopReason,
  tempSocketPath,
  track,
  within,
} from "./helpers.ts";

// The poller's own fds (the epoll fd and its wake eventfd) live as long as
// the process: create them before the first fd census (a wait on stderr
// creates them and returns at once).
await waitWritable(2);

// ---------------------------------------------------------------------------
// Helpers: bounded waits only.

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** How a promise settled: `"resolved"` or the error's name. */
function outcomeOf(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => "resolved",
    (error) => (error instanceof Error ? error.name : String(error)),
  );
}

/** Receives, without blocking, everything queued on `socket` right now. */
function drainQueued(socket: UnixSocket): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  while (isReady(socket.fd)) {
    const message = socket.recvSync({ maxBytes: 1 << 20 });
    if (message === null) break;
    for (const fd of message.fds) fd.close();
    chunks.push(message.data);
  }
  return chunks;
}

/** Bytes `i % 251`, so that a lost, doubled or inserted run shows. */
function patterned(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = i % 251;
  return bytes;
}

/** The index of the first byte where `actual` differs from `expected`, or -1. */
function firstDifference(actual: Uint8Array, expected: Uint8Array): number {
  const n = Math.min(actual.byteLength, expected.byteLength);
  for (let i = 0; i < n; i++) if (actual[i] !== expected[i]) return i;
  return actual.byteLength === expected.byteLength ? -1 : n;
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}

/** Whether `error` is one of the library's typed errors for a dead fd. */
function isTypedFdError(error: unknown): boolean {
  return error instanceof Deno.errors.BadResource ||
    (error instanceof Error && typeof (error as { errno?: unknown }).errno === "number");
}

/** Closes a raw fd number behind the library's back. */
function closeBehindTheBack(fd: number): void {
  // node:fs closeSync() cannot do it in Deno 2.9: it only closes fds that
  // node:fs opened itself (anything else is EBADF).
  assertEquals(libc().lib.close(fd), 0, `close(${fd})`);
}

/**
 * Records uncaught errors and unhandled rejections (and keeps them from
 * failing whichever test runs next), so that a test can assert there were
 * none.
 */
function captureUncaught(): { errors: unknown[]; stop(): void } {
  const errors: unknown[] = [];
  const onError = (event: ErrorEvent): void => {
    errors.push(event.error);
    event.preventDefault();
  };
  const onRejection = (event: PromiseRejectionEvent): void => {
    errors.push(event.reason);
    event.preventDefault();
  };
  globalThis.addEventListener("error", onError);
  globalThis.addEventListener("unhandledrejection", onRejection);
  return {
    errors,
    stop(): void {
      globalThis.removeEventListener("error", onError);
      globalThis.removeEventListener("unhandledrejection", onRejection);
    },
  };
}

// ---------------------------------------------------------------------------
// Ownership

leakCheckedTest("send() queued behind a waiting send holds its own copies of the fds", async () => {
  const [a, b] = UnixSocket.pair();
  const path = Deno.makeTempFileSync({ prefix: "fdpass-reliability-" });
  const received: OwnedFd[] = [];
  let first: Promise<number> | undefined;
  let second: Promise<number> | undefined;
  try {
    await fillSendBuffer(a);
    const waiters = pollerStats().waiters;
    first = a.send("x");
    first.catch(() => {});
    await macrotask();
    assertEquals(pollerStats().waiters, waiters + 1, "the first send waits for room");
    const file = openFd(path);
    const original = file.stat();
    const number = file.fd;
    second = a.send("y", { fds: [file] });
    second.catch(() => {});
    // The caller closes its fd right after the call; another file takes the
    // number before the queued send gets its turn.
    file.close();
    using decoy = openFd("/dev/null");
    assertEquals(decoy.fd, number, "the decoy must reuse the closed fd's number");
    let text = "";
    while (received.length === 0) {
      const message = await within(b.recv({ maxBytes: 1 << 20 }), 5_000, "the queued message");
      if (message === null) break;
      text += decoder.decode(message.data);
      received.push(...message.fds);
    }
    assertEquals(await within(first, 5_000, "the first send"), 1);
    assertEquals(await within(second, 5_000, "the queued send"), 1);
    assert(text.endsWith("xy"), `received ${JSON.stringify(text.slice(-4))} at the end`);
    assertEquals(received.length, 1);
    const got = received[0]!.stat();
    assertEquals(
      { kind: got.kind, dev: got.dev, ino: got.ino },
      { kind: original.kind, dev: original.dev, ino: original.ino },
      "the fd sent with the queued message is the original file, not the decoy",
    );
  } finally {
    a.close();
    b.close();
    for (const fd of received) fd.close();
    await first?.catch(() => {});
    await second?.catch(() => {});
    Deno.removeSync(path);
  }
});

leakCheckedTest(
  "send() calls queued on a socket that is then closed reject with BadResource and reach no later socket",
  async () => {
    const [a, b] = UnixSocket.pair();
    let replacement: [UnixSocket, UnixSocket] | undefined;
    try {
      await fillSendBuffer(a);
      const number = a.fd;
      const outcomes = Promise.all([
        outcomeOf(a.send("first")),
        outcomeOf(a.send("second")),
        outcomeOf(a.send("third")),
      ]);
      a.close();
      // A new socket takes the number before the queued sends get their turn.
      replacement = UnixSocket.pair();
      const [c, d] = replacement;
      assert(c.fd === number || d.fd === number, "a new socket must reuse the closed number");
      const peer = c.fd === number ? d : c;
      const results = await within(outcomes, 5_000, "the queued sends");
      let stray = "";
      for (;;) {
        try {
          const message = await peer.recv({ signal: AbortSignal.timeout(100) });
          if (message === null) break;
          stray += decoder.decode(message.data);
        } catch {
          break;
        }
      }
      assertEquals(
        { results, stray },
        { results: ["BadResource", "BadResource", "BadResource"], stray: "" },
      );
    } finally {
      a.close();
      b.close();
      replacement?.[0].close();
      replacement?.[1].close();
    }
  },
);

/**
 * Runs the "closed by another waiter" scenario: `firstWaiter` and then a
 * `recv()` wait on a seqpacket socket; one message arrives; the first
 * waiter's continuation closes the socket and makes a new pair whose end
 * reuses the number, with a message queued for it.
 *
 * @returns How the `recv()` settled and what the new socket still holds.
 */
async function closedByAnotherWaiter(
  firstWaiter: (b: UnixSocket) => Promise<unknown>,
): Promise<{ outcome: string; left: string }> {
  const [a, b] = UnixSocket.pair("seqpacket");
  let replacement: [UnixSocket, UnixSocket] | undefined;
  try {
    const number = b.fd;
    const first = firstWaiter(b);
    const second = b.recv();
    const secondOutcome = second.then(
      (message) => {
        for (const fd of message?.fds ?? []) fd.close();
        return message === null ? "null" : `message ${decoder.decode(message.data)}`;
      },
      (error) => (error instanceof Error ? error.name : String(error)),
    );
    await macrotask();
    const continued = first.then(() => {
      b.close();
      replacement = UnixSocket.pair("seqpacket");
      const [c, d] = replacement;
      const reused = c.fd === number ? c : d.fd === number ? d : null;
      (reused === c ? d : c).sendSync("for the new socket");
      return reused;
    });
    a.sendSync("only");
    const reused = await within(continued, 5_000, "the first waiter");
    if (reused === null) throw new Error("A new socket must reuse the closed number");
    const outcome = await within(secondOutcome, 5_000, "the pending recv()");
    let left = "nothing";
    try {
      const message = await reused.recv({ signal: AbortSignal.timeout(500) });
      left = message === null ? "end" : decoder.decode(message.data);
    } catch {
      // Nothing queued any more.
    }
    return { outcome, left };
  } finally {
    a.close();
    b.close();
    replacement?.[0].close();
    replacement?.[1].close();
  }
}

leakCheckedTest(
  "recv() resumed after another waiter closed the socket rejects and takes nothing from the socket that reused the number",
  async (t) => {
    const expected = { outcome: "BadResource", left: "for the new socket" };
    await t.step("the other waiter is a recv()", async () => {
      const result = await closedByAnotherWaiter(async (b) => {
        const message = await b.recv();
        assertEquals(decoder.decode(message!.data), "only");
      });
      assertEquals(result, expected);
    });
    await t.step("the other waiter is a waitReadable()", async () => {
      // The pending recv() may take the message from the original socket
      // when it is reported readable, before the other waiter's close: that
      // is its own message. It must never take the new socket's.
      const result = await closedByAnotherWaiter((b) => waitReadable(b));
      assert(
        result.outcome === "BadResource" || result.outcome === "message only",
        `the pending recv() settled with ${result.outcome}`,
      );
      assertEquals(result.left, expected.left);
    });
  },
);

leakCheckedTest("a pending OwnedFd.read() keeps its owner alive until it settles", async () => {
  const child = spawnDeno("reliability_gc_read_child.ts", [], {
    flags: ["--v8-flags=--expose-gc"],
    timeoutMs: 15_000,
  });
  const result = await child.done;
  assertEquals(result.code, 0, `the child failed or was killed: ${result.stderr}`);
  const report = JSON.parse(result.stdout.trim().split("\n").at(-1)!);
  assertEquals(report, { settled: true, outcome: { n: 4, text: "data" }, writeError: null });
});

leakCheckedTest(
  "a pending recv() keeps its socket open after the UnixSocket is dropped, until it settles",
  async () => {
    const child = spawnDeno("reliability_gc_recv_child.ts", [], {
      flags: ["--v8-flags=--expose-gc"],
      timeoutMs: 15_000,
    });
    const result = await child.done;
    assertEquals(result.code, 0, `the child failed or was killed: ${result.stderr}`);
    const report = JSON.parse(result.stdout.trim().split("\n").at(-1)!);
    assertEquals(report, {
      settled: true,
      outcome: { text: "data", fds: ["character"] },
      sendError: null,
    });
  },
);

leakCheckedTest(
  "20,000 async round trips with fds through the poller leave the JS heap and the poller as they were",
  async () => {
    const count = 20_000;
    const child = spawnDeno("reliability_heap_child.ts", [String(count)], {
      flags: ["--v8-flags=--expose-gc"],
      timeoutMs: 60_000,
    });
    const result = await child.done;
    assertEquals(result.code, 0, `the child failed or was killed: ${result.stderr}`);
    const report = JSON.parse(result.stdout.trim().split("\n").at(-1)!);
    // Two waits per round trip, in the warm-up and the measured run: every
    // message was taken by the poller.
    assertEquals(report.waits, 4 * count);
    assertEquals({ registeredFds: report.registeredFds, waiters: report.waiters }, {
      registeredFds: 0,
      waiters: 0,
    });
    // One object kept per round trip (a waiter, a promise, a message) would
    // be megabytes here.
    const growth = report.after - report.before;
    assertLess(growth, 256 * 1024, `the heap grew by ${growth} bytes over ${count} round trips`);
  },
);

// ---------------------------------------------------------------------------
// Shared buffers

leakCheckedTest("received data owns its bytes", async () => {
  const [a, b] = UnixSocket.pair("seqpacket");
  try {
    a.sendSync("first");
    a.sendSync("second");
    const m1 = b.recvSync()!;
    const m2 = (await b.recv())!;
    const shape = {
      sameBuffer: m1.data.buffer === m2.data.buffer,
      byteOffset: m1.data.byteOffset,
      bufferLength: m1.data.buffer.byteLength,
    };
    assertEquals(shape, { sameBuffer: false, byteOffset: 0, bufferLength: 5 });
    (m1.data.buffer as ArrayBuffer).transfer();
    assertEquals(decoder.decode(m2.data), "second");
  } finally {
    a.close();
    b.close();
  }
});

leakCheckedTest(
  "send() snapshots data on a resizable buffer at call time and never sends another message's bytes",
  async () => {
    const [a, b] = UnixSocket.pair("seqpacket");
    const [c, d] = UnixSocket.pair("seqpacket");
    let sending: Promise<number> | undefined;
    try {
      const filled = await fillSendBuffer(a);
      const buffer = new ArrayBuffer(200, { maxByteLength: 400 });
      const view = new Uint8Array(buffer).fill(0x41); // length-tracking
      const waiters = pollerStats().waiters;
      sending = a.send(view);
      sending.catch(() => {});
      await macrotask();
      assertEquals(pollerStats().waiters, waiters + 1, "the send waits for room");
      buffer.resize(10);
      // Another connection's message, sent while the first one waits.
      c.sendSync(new Uint8Array(200).fill(0x53));
      assertEquals(d.recvSync()!.data.byteLength, 200);
      for (let i = 0; i < filled; i++) b.recvSync();
      await within(sending, 5_000, "the waiting send");
      const message = await within(b.recv(), 5_000, "the message");
      assertEquals(decoder.decode(message!.data), "A".repeat(200));
    } finally {
      a.close();
      b.close();
      c.close();
      d.close();
      await sending?.catch(() => {});
    }
  },
);

leakCheckedTest(
  "an fds iterator that sends on another socket does not change the outer message's fds",
  async () => {
    const [a, b] = UnixSocket.pair("seqpacket");
    const [c, d] = UnixSocket.pair("seqpacket");
    const devNull = openFd("/dev/null");
    const [r, w] = pipe();
    const received: OwnedFd[] = [];
    const kinds = (fds: OwnedFd[]): string[] => {
      received.push(...fds);
      return fds.map((fd) => fd.kind);
    };
    function* reentrant(): Generator<FdLike> {
      yield devNull;
      c.sendSync("z", { fds: [a] });
      yield r;
    }
    try {
      a.sendSync("outer", { fds: reentrant() });
      const sync = { outer: kinds(b.recvSync()!.fds), inner: kinds(d.recvSync()!.fds) };
      await a.send("outer", { fds: reentrant() });
      const async = {
        outer: kinds((await b.recv())!.fds),
        inner: kinds((await d.recv())!.fds),
      };
      const expected = { outer: ["character", "pipe"], inner: ["socket"] };
      assertEquals({ sync, async }, { sync: expected, async: expected });
    } finally {
      for (const fd of received) fd.close();
      a.close();
      b.close();
      c.close();
      d.close();
      devNull.close();
      r.close();
      w.close();
    }
  },
);

leakCheckedTest(
  "an endless fds iterator fails with a RangeError at once and sends nothing",
  async () => {
    // In a child with a small heap: collecting the whole iterator would
    // otherwise hang this process until it runs out of memory.
    const child = spawnDeno("reliability_endless_fds_child.ts", [], {
      flags: ["--v8-flags=--max-old-space-size=128"],
      timeoutMs: 20_000,
    });
    const result = await child.done;
    assertEquals(
      result.code,
      0,
      `the child failed (out of memory?) or was killed: ${result.stderr.slice(-500)}`,
    );
    const report = JSON.parse(result.stdout.trim().split("\n").at(-1)!);
    assertFalse(report.sentSomething, "nothing reaches the peer");
    for (const entry of report.results) {
      assertEquals(entry.name, "RangeError", `${entry.call}() with an endless ${entry.source}`);
      assertStringIncludes(entry.message, '"fds"');
      assertStringIncludes(entry.message, "253");
    }
    assertEquals(report.results.length, 4);
  },
);

// ---------------------------------------------------------------------------
// Poller

leakCheckedTest(
  "sendTo() waiting for a full datagram receiver does not busy-loop",
  async () => {
    const name = { abstract: `fdpass-reliability-busy-${Deno.pid}` };
    const server = UnixSocket.datagram(name);
    const client = UnixSocket.datagram();
    let pending: ReturnType<typeof track<number>> | undefined;
    try {
      const filled = await fillUntilWaiting((signal) => client.sendTo(name, "f", { signal }));
      assert(filled > 0);
      pending = track(client.sendTo(name, "last"));
      await macrotask();
      assertFalse(pending.settled(), "the send waits while the receiver's queue is full");
      const cpuBefore = process.cpuUsage();
      const wallBefore = performance.now();
      await sleep(500);
      const cpu = process.cpuUsage(cpuBefore);
      const wallMs = performance.now() - wallBefore;
      const busy = (cpu.user + cpu.system) / 1000 / wallMs;
      for (let i = 0; i < filled; i++) {
        await within(server.recvFrom(), 5_000, `datagram ${i} of ${filled}`);
      }
      assertEquals(await within(pending.promise, 5_000, "the waiting sendTo()"), 4);
      assertEquals(decoder.decode((await within(server.recvFrom(), 5_000, "last")).data), "last");
      assertLess(
        busy,
        0.3,
        `the process used ${Math.round(busy * 100)}% of a core while one send waited`,
      );
    } finally {
      server.close();
      client.close();
      await pending?.promise.catch(() => {});
    }
  },
);

/** Reads `pollerStats().wokenWaiters`, which must be a number. */
function wokenWaiters(): number {
  const value = (pollerStats() as unknown as { wokenWaiters?: unknown }).wokenWaiters;
  assert(
    typeof value === "number",
    `pollerStats().wokenWaiters must be a number, received ${Deno.inspect(value)}`,
  );
  return value as number;
}

leakCheckedTest("a message on a socket with 2,000 pending recv() wakes one of them", async () => {
  const count = 2_000;
  const [a, b] = UnixSocket.pair("seqpacket");
  let receives: Promise<unknown>[] = [];
  try {
    const before = wokenWaiters();
    receives = Array.from({ length: count }, () => b.recv());
    // One message at a time, each sent once the previous one was received:
    // a poller that wakes every reader per message wakes ~count²/2 here.
    let received = 0;
    let wake = (): void => {};
    for (const receive of receives) {
      receive.then(() => {
        received++;
        wake();
      }, () => {});
    }
    await macrotask();
    await within(
      (async () => {
        for (let i = 1; i <= count; i++) {
          const reached = new Promise<void>((resolve) => (wake = resolve));
          a.sendSync("x");
          await reached;
        }
      })(),
      30_000,
      `${count} messages to ${count} receivers`,
    );
    assertEquals(received, count);
    const woken = wokenWaiters() - before;
    assertLess(woken, 3 * count, `${woken} waits woke for ${count} messages`);
  } finally {
    a.close();
    b.close();
    await Promise.allSettled(receives);
  }
});

leakCheckedTest(
  "WritableStream.abort() on fd.writable while a write is blocked settles and closes the fd",
  async () => {
    const [r, w] = pipe();
    let writing: Promise<void> | undefined;
    let aborting: Promise<void> | undefined;
    try {
      // One pipe capacity (64 KiB on Linux) fills the empty pipe.
      w.writeAllSync(new Uint8Array(65_536));
      const writer = w.writable.getWriter();
      const waiters = pollerStats().waiters;
      writing = writer.write(new Uint8Array(100).fill(2));
      writing.catch(() => {});
      await macrotask();
      assertEquals(pollerStats().waiters, waiters + 1, "the write waits for room");
      aborting = writer.abort(new StopReason("abort"));
      aborting.catch(() => {});
      await within(aborting, 3_000, "writer.abort()");
      assert(w.closed, "abort() closes the fd");
    } finally {
      // Closing the read end fails the blocked write (EPIPE), which lets a
      // hung abort finish.
      r.close();
      await within(Promise.allSettled([writing, aborting]), 5_000, "the writer to settle");
      w.close();
    }
  },
);

// ---------------------------------------------------------------------------
// Sync and async on one socket

leakCheckedTest(
  "sendSync() while an async send() is half-way through a stream message throws Busy",
  async () => {
    const [a, b] = UnixSocket.pair();
    const message = patterned(1 << 20);
    let sending: ReturnType<typeof track<number>> | undefined;
    try {
      sending = track(a.send(message));
      await macrotask();
      assertFalse(sending.settled(), "the message does not fit the socket buffer");
      // Make room without letting the poller resume the async send.
      const chunks = drainQueued(b);
      assert(chunks.length > 0, "part of the message went out");
      let error: unknown = null;
      try {
        a.sendSync("INSERTED");
      } catch (caught) {
        error = caught;
      }
      let total = chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0);
      while (total < message.byteLength) {
        const next = await within(b.recv({ maxBytes: 1 << 20 }), 5_000, `byte ${total}`);
        if (next === null) break;
        chunks.push(next.data);
        total += next.data.byteLength;
      }
      await within(sending.promise, 5_000, "the async send");
      // Anything inserted makes the stream longer than the message.
      chunks.push(...drainQueued(b));
      const received = concat(chunks);
      assertInstanceOf(error, Deno.errors.Busy);
      assertEquals(
        firstDifference(received, message),
        -1,
        `received ${received.byteLength} bytes for ${message.byteLength}`,
      );
    } finally {
      a.close();
      b.close();
      await sending?.promise.catch(() => {});
    }
  },
);

leakCheckedTest(
  "sendSync() on a stream socket broken by an aborted partial send throws BrokenPipe",
  async () => {
    const [a, b] = UnixSocket.pair();
    try {
      const controller = new AbortController();
      const reason = new StopReason("partial send");
      const sending = a.send(new Uint8Array(1 << 20), { signal: controller.signal });
      await macrotask();
      controller.abort(reason);
      assertStrictEquals(await rejectionOf(sending, "send()"), reason);
      assertInstanceOf(await rejectionOf(a.send("x"), "send()"), Deno.errors.BrokenPipe);
      // Empty the buffer, so that a sync send that wrongly goes ahead does
      // not block this thread.
      drainQueued(b);
      assertThrows(() => a.sendSync("x"), Deno.errors.BrokenPipe);
    } finally {
      a.close();
      b.close();
    }
  },
);

// ---------------------------------------------------------------------------
// Hostile fds

leakCheckedTest(
  "toFsFile() on a FIFO or pipe read end whose writer is gone does not block the thread",
  async () => {
    const child = spawnDeno("reliability_fifo_child.ts", [], {
      permissions: ["--allow-all"],
      timeoutMs: 10_000,
    });
    const result = await child.done;
    assertEquals(
      result.code,
      0,
      `the child did not finish (killed after 10 s: toFsFile() blocked?): ${result.stderr}`,
    );
    const report = JSON.parse(result.stdout.trim().split("\n").at(-1)!);
    for (const kind of ["pipe", "fifo"]) {
      const outcome = report[kind];
      // Either a file at end of file, or a typed refusal: never a hang.
      if (outcome.ok) assertEquals(outcome.read, null, `${kind}: no writer means end of file`);
      else {
        assert(
          outcome.error === "TypeError" || outcome.error in Deno.errors,
          `${kind}: ${outcome.error}`,
        );
      }
    }
  },
);

leakCheckedTest("EventFd.from() rejects an epoll fd and a timerfd", () => {
  const own = Deno.dlopen("libc.so.6", {
    epoll_create1: { parameters: ["i32"], result: "i32" },
    timerfd_create: { parameters: ["i32", "i32"], result: "i32" },
    close: { parameters: ["i32"], result: "i32" },
  });
  const O_CLOEXEC = 0o2000000; // EPOLL_CLOEXEC and TFD_CLOEXEC on Linux
  const CLOCK_MONOTONIC = 1;
  try {
    const candidates = {
      epoll: own.symbols.epoll_create1(O_CLOEXEC),
      timerfd: own.symbols.timerfd_create(CLOCK_MONOTONIC, O_CLOEXEC),
    };
    const results: Record<string, string> = {};
    for (const [kind, fd] of Object.entries(candidates)) {
      assert(fd >= 0, `creating the ${kind} fd`);
      let accepted: EventFd | null = null;
      try {
        accepted = EventFd.from(fd);
        results[kind] = "accepted";
      } catch (error) {
        results[kind] = error instanceof TypeError && error.message.includes('"fd"')
          ? "TypeError naming fd"
          : String(error);
      }
      // An accepted fd belongs to the EventFd now.
      if (accepted !== null) accepted.close();
      else own.symbols.close(fd);
    }
    assertEquals(results, { epoll: "TypeError naming fd", timerfd: "TypeError naming fd" });
  } finally {
    own.close();
  }
});

// ---------------------------------------------------------------------------
// Smaller

leakCheckedTest(
  "recvSync({ maxBytes: 0 }) on seqpacket returns a truncated empty message and keeps the next record",
  () => {
    const [a, b] = UnixSocket.pair("seqpacket");
    try {
      a.sendSync("first");
      a.sendSync("second");
      const message = b.recvSync({ maxBytes: 0 });
      if (message === null) throw new Error("A pending record is not end of stream");
      assertEquals({ bytes: message.data.byteLength, truncated: message.truncated }, {
        bytes: 0,
        truncated: true,
      });
      assertEquals(decoder.decode(b.recvSync()!.data), "second");
    } finally {
      a.close();
      b.close();
    }
  },
);

const PYTHON_PEER = `
import os, socket, sys
mode, directory, server = sys.argv[1], sys.argv[2], sys.argv[3]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
if mode == "abstract":
    s.bind(b"\\0fdpass-\\xff\\xfe-" + str(os.getpid()).encode())
else:
    s.bind(os.fsencode(directory) + b"/\\xff\\xfe.sock")
s.settimeout(5)
s.sendto(b"hello", b"\\0" + server.encode())
try:
    data = s.recv(64)
    print(data.decode())
except socket.timeout:
    print("timeout")
`;

leakCheckedTest(
  "recvFromSync() keeps a sender address that is not UTF-8, and sendToSync() replies to it",
  async (t) => {
    for (const mode of ["abstract", "path"] as const) {
      await t.step(mode === "abstract" ? "an abstract name" : "a path", async () => {
        const serverName = `fdpass-reliability-utf8-${Deno.pid}-${mode}`;
        const server = UnixSocket.datagram({ abstract: serverName });
        const dir = Deno.makeTempDirSync({ prefix: "fdpass-reliability-" });
        const peer = new Deno.Command("python3", {
          args: ["-c", PYTHON_PEER, mode, dir, serverName],
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        try {
          const datagram = await within(server.recvFrom(), 10_000, "python's datagram");
          assertEquals(decoder.decode(datagram.data), "hello");
          const invalid = [0xff, 0xfe];
          const expected = mode === "abstract"
            ? {
              abstract: new Uint8Array([
                ...encoder.encode("fdpass-"),
                ...invalid,
                ...encoder.encode(`-${peer.pid}`),
              ]),
            }
            : new Uint8Array([
              ...encoder.encode(`${dir}/`),
              ...invalid,
              ...encoder.encode(".sock"),
            ]);
          assertEquals(datagram.address as unknown, expected);
          server.sendToSync(datagram.address as unknown as UnixAddress, "reply");
          const output = await within(peer.output(), 10_000, "python's answer");
          assertEquals(decoder.decode(output.stdout).trim(), "reply");
        } finally {
          try {
            peer.kill("SIGKILL");
          } catch {
            // Exited already.
          }
          await peer.status;
          await peer.stdout.cancel().catch(() => {});
          await peer.stderr.cancel().catch(() => {});
          server.close();
          Deno.removeSync(dir, { recursive: true });
        }
      });
    }
  },
  { ignore: !hasCommand("python3") },
);

leakCheckedTest(
  "a UnixListener garbage-collected without close() removes its socket file",
  async () => {
    const { path, cleanup } = tempSocketPath();
    try {
      const child = spawnDeno("reliability_listener_gc_child.ts", [path], {
        permissions: ["--allow-ffi", "--allow-read", "--allow-write"],
        flags: ["--v8-flags=--expose-gc"],
        timeoutMs: 15_000,
      });
      const result = await child.done;
      assertEquals(result.code, 0, result.stderr);
      const report = JSON.parse(result.stdout.trim().split("\n").at(-1)!);
      assertEquals(report, { existedAtFirst: true, removed: true, fdClosed: true });
    } finally {
      cleanup();
    }
  },
);

leakCheckedTest(
  "UnixSocket.listen() rejects a backlog too large for listen() with a RangeError",
  () => {
    const { path, cleanup } = tempSocketPath();
    try {
      assertThrows(
        () => UnixSocket.listen(path, { backlog: 2 ** 40 }),
        RangeError,
        '"backlog"',
      );
      assertThrows(() => Deno.lstatSync(path), Deno.errors.NotFound, undefined, "no socket file");
    } finally {
      cleanup();
    }
  },
);

// ---------------------------------------------------------------------------
// Poller state after bad arguments and fds closed behind its back. These run
// last: on a poller that gets them wrong, they can leave stale registrations.

/**
 * Drops a registration left behind without a waiter: one aborted wait on
 * the fd re-arms and then removes it. Harmless when there is none.
 */
async function clearRegistration(fd: number): Promise<void> {
  const controller = new AbortController();
  const waiting = waitReadable(fd, { signal: controller.signal });
  controller.abort();
  await waiting.catch(() => {});
}

leakCheckedTest(
  "an AbortController passed as signal rejects with a TypeError and leaves nothing registered",
  async (t) => {
    const wrong = new AbortController() as unknown as AbortSignal;

    async function check(what: string, fd: number, start: () => Promise<unknown>): Promise<void> {
      const before = pollerStats();
      let error: unknown;
      let after: ReturnType<typeof pollerStats>;
      try {
        // A synchronous throw counts as a rejection here.
        error = await rejectionOf(new Promise((resolve) => resolve(start())), what);
        after = pollerStats();
      } finally {
        await clearRegistration(fd);
      }
      assertEquals(
        {
          typeError: error instanceof TypeError,
          namesSignal: String((error as Error)?.message).includes('"signal"'),
          waiters: after.waiters - before.waiters,
          registeredFds: after.registeredFds - before.registeredFds,
        },
        { typeError: true, namesSignal: true, waiters: 0, registeredFds: 0 },
        `${what}: ${error}`,
      );
    }

    await t.step("recv()", async () => {
      const [a, b] = UnixSocket.pair();
      try {
        await check("recv()", b.fd, () => b.recv({ signal: wrong }));
      } finally {
        a.close();
        b.close();
      }
    });

    await t.step("send() that must wait", async () => {
      const [a, b] = UnixSocket.pair();
      try {
        await fillSendBuffer(a);
        await check("send()", a.fd, () => a.send("x", { signal: wrong }));
      } finally {
        a.close();
        b.close();
      }
    });

    await t.step("accept()", async () => {
      const { path, cleanup } = tempSocketPath();
      const listener = UnixSocket.listen(path);
      try {
        await check("accept()", listener.fd, () => listener.accept({ signal: wrong }));
      } finally {
        listener.close();
        cleanup();
      }
    });

    await t.step("waitReadable()", async () => {
      const [a, b] = UnixSocket.pair();
      try {
        await check("waitReadable()", a.fd, () => waitReadable(a, { signal: wrong }));
      } finally {
        a.close();
        b.close();
      }
    });
  },
);

/**
 * How a wait ended within `ms`: `"resolved"`, `"typed <name>"` for
 * BadResource or an ErrnoError, the thrown value otherwise, or `"hung"`.
 */
async function waitOutcome(promise: Promise<unknown>, ms = 3_000): Promise<unknown> {
  const hung = Symbol("hung");
  const result = await within(
    promise.then(() => "resolved", (error) => ({ error })),
    ms,
    "",
  ).catch(() => hung);
  if (result === hung) return "hung";
  if (typeof result === "string") return result;
  const error = (result as { error: unknown }).error;
  return isTypedFdError(error) ? `typed ${(error as Error).name}` : error;
}

leakCheckedTest(
  "a recv() pending on a number closed behind the poller's back and reused settles within the bound of one wait",
  async () => {
    configurePoller({ maxWaitMilliseconds: 100 });
    const [a, b] = UnixSocket.pair();
    const [c, d] = UnixSocket.pair();
    try {
      const n = b.fd;
      const pending = waitOutcome(b.recv().then((message) => decoder.decode(message!.data)));
      await macrotask();
      // b's file goes away with its registration; a new socket takes the number.
      closeBehindTheBack(n);
      const { fcntl, layout } = libc();
      assertEquals(fcntl(d.fd, layout.constants.F_DUPFD_CLOEXEC, n), n);
      c.sendSync("to the new file");
      const outcome = await pending;
      // A stale number reads whichever file has it now: the user's bug, but
      // the wait ends (the registration is renewed when a wait reaches its
      // bound) instead of hanging.
      assert(outcome === "resolved" || String(outcome).startsWith("typed "), String(outcome));
    } finally {
      configurePoller({ maxWaitMilliseconds: 10_000 });
      for (const socket of [a, b, c, d]) socket.close();
    }
  },
);

/** A socket whose send buffer is full, and a dup of it closed behind the library's back. */
async function closedDuplicate(): Promise<{ a: UnixSocket; b: UnixSocket; n: number }> {
  const [a, b] = UnixSocket.pair();
  await fillSendBuffer(a);
  return { a, b, n: borrowFd(a.fd).dup().release() };
}

leakCheckedTest(
  "waits on an fd closed behind the poller's back reject with a typed error and raise nothing uncaught",
  async (t) => {
    const uncaught = captureUncaught();
    const typed = (outcome: unknown): unknown =>
      typeof outcome === "string" && outcome.startsWith("typed ") ? "typed error" : outcome;
    try {
      await t.step("both waits pending when the fd is closed, then an event fires", async () => {
        uncaught.errors.length = 0;
        const { a, b, n } = await closedDuplicate();
        const cleanup = new AbortController();
        try {
          const reading = waitOutcome(waitReadable(n, { signal: cleanup.signal }));
          const writing = waitOutcome(waitWritable(n, { signal: cleanup.signal }));
          closeBehindTheBack(n);
          // The open file is still registered through `a`: make it readable,
          // so the poller reports it and re-arms the writer's interest.
          b.sendSync("event");
          const [read, write] = await Promise.all([reading, writing]);
          cleanup.abort();
          await sleep(20);
          assertEquals(
            {
              // The reported readiness may resolve the reader.
              read: read === "resolved" ? "typed error" : typed(read),
              write: typed(write),
              uncaught: uncaught.errors.map(String),
            },
            { read: "typed error", write: "typed error", uncaught: [] },
          );
        } finally {
          cleanup.abort();
          a.close();
          b.close();
        }
      });

      await t.step(
        "a wait added after the close rejects, and so does the earlier one",
        async () => {
          uncaught.errors.length = 0;
          const { a, b, n } = await closedDuplicate();
          const cleanup = new AbortController();
          try {
            const reading = waitOutcome(waitReadable(n, { signal: cleanup.signal }));
            await macrotask();
            closeBehindTheBack(n);
            const writing = waitOutcome(waitWritable(n, { signal: cleanup.signal }));
            const [read, write] = await Promise.all([reading, writing]);
            cleanup.abort();
            await sleep(20);
            assertEquals(
              { read: typed(read), write: typed(write), uncaught: uncaught.errors.map(String) },
              { read: "typed error", write: "typed error", uncaught: [] },
            );
          } finally {
            cleanup.abort();
            a.close();
            b.close();
          }
        },
      );

      await t.step("aborting a wait on the closed fd rejects with the reason", async () => {
        uncaught.errors.length = 0;
        const { a, b, n } = await closedDuplicate();
        const readAbort = new AbortController();
        const writeAbort = new AbortController();
        try {
          const reading = waitReadable(n, { signal: readAbort.signal });
          const writing = waitOutcome(waitWritable(n, { signal: writeAbort.signal }));
          await macrotask();
          closeBehindTheBack(n);
          const reason = new StopReason("closed fd");
          readAbort.abort(reason);
          const read = await within(
            reading.then(
              () => "resolved",
              (error) => (error === reason ? "reason" : String(error)),
            ),
            3_000,
            "the aborted wait",
          ).catch((error) => String(error));
          writeAbort.abort();
          await writing;
          await sleep(20);
          assertEquals(
            { read, uncaught: uncaught.errors.map(String) },
            { read: "reason", uncaught: [] },
          );
        } finally {
          readAbort.abort();
          writeAbort.abort();
          a.close();
          b.close();
        }
      });
    } finally {
      uncaught.stop();
    }
  },
);

// Starts the poller (its fds exist before any census) and tells whether
// io_uring works here.
const uringRefused = startedPollerStats().fallbackReason;
for (const backend of ["epoll", "io_uring"] as const) {
  leakCheckedTest(
    `the ${backend} backend rejects the waits with a typed error instead of spinning when its epoll fd is closed behind its back${
      backend === "io_uring" && uringRefused !== null
        ? ` (skipped: io_uring refused: ${uringRefused})`
        : ""
    }`,
    async () => {
      if (backend === "io_uring" && uringRefused !== null) return;
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-ffi",
          new URL("./fixtures/reliability_epoll_error_child.ts", import.meta.url).pathname,
          backend,
        ],
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(20_000),
      });
      const { code, stdout, stderr } = await child.output();
      assertEquals(code, 0, new TextDecoder().decode(stderr));
      const report = JSON.parse(new TextDecoder().decode(stdout));
      assert(report.closed >= 0, "the child found the poller's epoll fd");
      if (backend === "epoll") {
        assertEquals(report.outcome, "BadResource: EBADF");
      } else {
        // The number may have been taken by another file by the time the
        // bounded wait looks (EINVAL), or not (EBADF).
        assert(
          ["BadResource: EBADF", "ErrnoError: EINVAL"].includes(report.outcome),
          report.outcome,
        );
      }
      assertEquals(report.recoveredWith, "after");
      // Not a speed test: a spinning loop uses about all of the wall time.
      assert(
        report.cpuMilliseconds < Math.max(50, report.elapsedMilliseconds * 0.5),
        `used ${report.cpuMilliseconds} ms of CPU in ${report.elapsedMilliseconds} ms`,
      );
    },
  );
}
