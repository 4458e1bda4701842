/**
 * The shared poller (src/async/poller.ts and its epoll and poll backends):
 * one outstanding FFI wait serves every waiting fd, registration per fd and
 * direction, close while a wait is pending, the stats, configurePoller(),
 * and processes that exit as soon as nothing waits.
 *
 * The async operations that wait in it are tested in async_io_test.ts,
 * waitReadable() and waitWritable() in wait_test.ts.
 *
 * @module
 */

import {
  assert,
  assertEquals,
  assertFalse,
  assertInstanceOf,
  assertLessOrEqual,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import {
  borrowFd,
  configurePoller,
  pipe,
  pollerStats,
  UnixSocket,
  waitReadable,
  waitWritable,
} from "../mod.ts";
import { libc } from "../ffi/libc.ts";
import {
  assertPollerIdle,
  type Child,
  decoder,
  fillSendBuffer,
  hasCommand,
  leakCheckedTest,
  macrotask,
  receiveBytes,
  rejectionOf,
  spawnDeno,
  startPoller,
  StopReason,
  tempSocketPath,
  track,
  within,
} from "./helpers.ts";
import { type ConcurrencyReport, serveConcurrently } from "./fixtures/async_thousand.ts";

// The backend tests close the poller's fds and create them again: they
// must exist before the first fd census, at the lowest free numbers, so that
// they come back with the same numbers.
await startPoller();
/** The backend waits use by default here: io_uring, or epoll where io_uring is refused. */
const DEFAULT_BACKEND = pollerStats().backend;
/** The other backends this platform has, each run through the same steps. */
const OTHER_BACKENDS = (["io_uring", "epoll", "poll"] as const).filter((name) =>
  name !== DEFAULT_BACKEND && (name !== "io_uring" || pollerStats().fallbackReason === null) &&
  (name !== "epoll" || libc().layout.features.epoll)
);

leakCheckedTest(
  "1,000 sockets waiting at once are all served by one outstanding poller wait",
  async () => {
    const count = 1_000;
    const limit = await softFdLimit();
    let report: ConcurrencyReport;
    if (limit >= 2 * count + 200) {
      report = await serveConcurrently(count);
    } else {
      // Not enough fds for 2,000 sockets here (Deno raises the soft limit
      // to the hard one, so this is a low hard limit): run the scenario in
      // a child that tries to raise it, which needs CAP_SYS_RESOURCE.
      const child = spawnDeno("async_thousand.ts", [String(count)], {
        permissions: ["--allow-ffi", "--allow-read", "--allow-run"],
        fdLimit: 4096,
        timeoutMs: 30_000,
      });
      const result = await child.done;
      assertEquals(
        result.code,
        0,
        `The test needs ${2 * count + 200} fds, RLIMIT_NOFILE is ${limit}: ${result.stderr}`,
      );
      report = JSON.parse(result.stdout.trim().split("\n").at(-1)!);
    }
    assertEquals(report.served, count);
    assertEquals(report.maxRegisteredFds, count);
    assertEquals(report.maxWaiters, count);
    assert(report.outstandingSamples.length > 10);
    assertLessOrEqual(Math.max(...report.outstandingSamples), 1);
    assert(report.outstandingSamples.includes(1), "the waits went through the poller");
    // All 1,000 waited in the kernel through few FFI calls (batches of
    // readiness), not one per socket.
    assertLessOrEqual(report.waitsUsed, count / 10);
    // One parked FFI call holds one blocking thread; a call per socket would
    // add hundreds.
    if (report.threadsBefore > 0 && report.threadsWhileWaiting > 0) {
      assertLessOrEqual(report.threadsWhileWaiting - report.threadsBefore, 8);
    }
    assertEquals(report.after.outstandingWaits, 0);
    assertEquals(report.after.registeredFds, 0);
    assertEquals(report.after.waiters, 0);
    assertEquals(report.after.maxOutstandingWaits, 1);
  },
);

/** The soft `RLIMIT_NOFILE` (as a child shell inherits it). */

async function softFdLimit(): Promise<number> {
  const output = await new Deno.Command("sh", {
    args: ["-c", "ulimit -n"],
    stdout: "piped",
    stderr: "null",
  }).output();
  const text = decoder.decode(output.stdout).trim();
  return text === "unlimited" ? Infinity : Number(text);
}

leakCheckedTest(
  "recv() and send() do not touch the poller when they can finish at once",
  async () => {
    const [a, b] = UnixSocket.pair();
    try {
      a.sendSync("queued");
      const before = pollerStats();
      const message = await b.recv();
      assertEquals(decoder.decode(message!.data), "queued");
      assertEquals(await a.send("room"), 4);
      assertEquals(decoder.decode((await b.recv())!.data), "room");
      const after = pollerStats();
      assertEquals(after.waits, before.waits);
      assertEquals(after.outstandingWaits, 0);
      assertEquals(after.registeredFds, 0);
    } finally {
      a.close();
      b.close();
    }
  },
);

leakCheckedTest(
  "100 pending recv() calls on one socket arm its registration once and take the messages in order",
  async () => {
    const [a, b] = UnixSocket.pair("seqpacket");
    try {
      const before = pollerStats().arms;
      const receives = Array.from({ length: 100 }, () => b.recv());
      // Closing the socket after a failure rejects the ones still pending.
      for (const receive of receives) receive.catch(() => {});
      await macrotask();
      assertEquals(pollerStats().waiters, 100);
      assertEquals(pollerStats().arms - before, 1, "a wait in an armed direction makes no call");
      for (let i = 0; i < 100; i++) a.sendSync(`m${i}`);
      const messages = await within(Promise.all(receives), 5_000, "100 receives");
      assertEquals(
        messages.map((m) => decoder.decode(m!.data)),
        Array.from({ length: 100 }, (_, i) => `m${i}`),
      );
      await assertPollerIdle();
    } finally {
      a.close();
      b.close();
    }
  },
);

/** The backends here whose registrations are edge-triggered and stay armed between waits. */
const EDGE_BACKENDS = [DEFAULT_BACKEND, ...OTHER_BACKENDS].filter((name) => name !== "poll");

/** Runs `body` with `backend` as the poller's backend, then goes back to the default. */
async function withBackend(
  backend: typeof DEFAULT_BACKEND,
  body: () => Promise<void>,
): Promise<void> {
  configurePoller({ backend });
  try {
    await body();
  } finally {
    await assertPollerIdle();
    configurePoller({ backend: DEFAULT_BACKEND });
    // Bring the default backend (its fds) back before the fd census.
    await within(waitWritable(2), 5_000, "the default backend to start");
  }
}

for (const backend of EDGE_BACKENDS) {
  leakCheckedTest(
    `recv() that waits again on a socket it waited on before makes no epoll_ctl with the ${backend} backend`,
    () =>
      withBackend(backend, async () => {
        const [a, b] = UnixSocket.pair();
        try {
          const before = pollerStats().arms;
          for (let i = 0; i < 50; i++) {
            const pending = b.recv();
            await macrotask();
            a.sendSync(`m${i}`);
            assertEquals(decoder.decode((await within(pending, 5_000, "recv()"))!.data), `m${i}`);
          }
          assertEquals(pollerStats().arms - before, 1, "only the first wait arms the socket");
        } finally {
          a.close();
          b.close();
        }
      }),
  );

  leakCheckedTest(
    `a socket nobody reads any more is reported once, not for every message, with the ${backend} backend`,
    () =>
      withBackend(backend, async () => {
        const [a, b] = UnixSocket.pair();
        const [c, d] = UnixSocket.pair();
        try {
          // b is armed for reading by a wait that has ended.
          const first = b.recv();
          a.sendSync("first");
          await within(first, 5_000, "the first recv()");
          // A wait on another socket keeps the poller waiting meanwhile.
          const other = d.recv();
          await macrotask();
          const before = pollerStats().waits;
          for (let i = 0; i < 10; i++) {
            a.sendSync(`unread ${i}`);
            await macrotask();
          }
          const waits = pollerStats().waits - before;
          assertLessOrEqual(waits, 2, `${waits} waits for 10 messages nobody waited for`);
          c.sendSync("done");
          assertEquals(decoder.decode((await within(other, 5_000, "recv()"))!.data), "done");
        } finally {
          for (const socket of [a, b, c, d]) socket.close();
        }
      }),
  );

  leakCheckedTest(
    `a writer waiting on a socket with unread data does not spin the poller with the ${backend} backend`,
    () =>
      withBackend(backend, async () => {
        const [a, b] = UnixSocket.pair();
        try {
          // b is armed for reading by a wait that has ended.
          const first = b.recv();
          a.sendSync("first");
          await within(first, 5_000, "the first recv()");
          const filled = await fillSendBuffer(b);
          const writable = track(waitWritable(b));
          await macrotask();
          a.sendSync("unread");
          const before = pollerStats().waits;
          await new Promise((resolve) => setTimeout(resolve, 200));
          const waits = pollerStats().waits - before;
          assertLessOrEqual(waits, 3, `${waits} waits in 200 ms with nothing to do`);
          assertFalse(writable.settled());
          // Reading on a's side makes room: the writer is woken.
          await receiveBytes(a, filled);
          await within(writable.promise, 5_000, "waitWritable()");
        } finally {
          a.close();
          b.close();
        }
      }),
  );
}

/** A small deterministic generator (a linear congruential one), so that a failure can be replayed. */
function seeded(seed: number): () => number {
  return () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
}

/**
 * One socketpair under a random mix of waits: `a` sends `count` short
 * records in bursts, `b` takes them with recv() (sometimes two at once),
 * waitReadable() then recv(), and recv() calls aborted soon after they
 * start. Returns what `b` received, in order, and what was sent.
 */
async function randomExchange(
  random: () => number,
  pair: number,
  count: number,
): Promise<{ sent: string; received: string }> {
  const [a, b] = UnixSocket.pair();
  const records = Array.from({ length: count }, (_, k) => `${pair}:${k};`);
  const sent = records.join("");
  let received = "";
  const take = (message: { data: Uint8Array } | null) => {
    if (message !== null) received += decoder.decode(message.data);
  };
  try {
    const sending = (async () => {
      for (let k = 0; k < count;) {
        const burst = 1 + Math.floor(random() * 4);
        for (let j = 0; j < burst && k < count; j++, k++) a.sendSync(records[k]!);
        if (random() < 0.7) await macrotask();
      }
    })();
    while (received.length < sent.length) {
      const choice = random();
      const maxBytes = 1 + Math.floor(random() * 16);
      if (choice < 0.4) {
        take(await b.recv({ maxBytes }));
      } else if (choice < 0.6) {
        // Two receivers at once take the bytes in the order they came; the
        // second is called off when the first took the last of them.
        const done = new AbortController();
        const first = b.recv({ maxBytes });
        const second = b.recv({ maxBytes, signal: done.signal });
        take(await first);
        if (received.length === sent.length) done.abort(new StopReason("all received"));
        take(
          await second.catch((error) => {
            assertInstanceOf(error, StopReason);
            return null;
          }),
        );
      } else if (choice < 0.8) {
        // A readiness report may be stale (documented, as with poll(2)):
        // the receive after it must not block.
        await waitReadable(b);
        take(await b.recv({ maxBytes }));
      } else {
        const abort = new AbortController();
        const pending = b.recv({ maxBytes, signal: abort.signal });
        if (random() < 0.5) await macrotask();
        abort.abort(new StopReason("at random"));
        // Aborted before anything came, it took nothing; otherwise it has data.
        take(
          await pending.catch((error) => {
            assertInstanceOf(error, StopReason);
            return null;
          }),
        );
      }
    }
    await sending;
    return { sent, received };
  } finally {
    a.close();
    b.close();
  }
}

for (const backend of [DEFAULT_BACKEND, ...OTHER_BACKENDS]) {
  leakCheckedTest(
    `with the ${backend} backend, 40 socketpairs under a random mix of recv(), waitReadable(), aborted waits and bursts of sends lose no wake-up and no byte`,
    () =>
      withBackend(backend, async () => {
        // A long bound, so that the recheck at the bound cannot hide a lost wake-up.
        configurePoller({ maxWaitMilliseconds: 60_000 });
        try {
          const random = seeded(13);
          const exchanges = Array.from(
            { length: 40 },
            (_, pair) => randomExchange(seeded(Math.floor(random() * 2 ** 32)), pair, 150),
          );
          const results = await within(Promise.all(exchanges), 30_000, "40 random exchanges");
          for (const { sent, received } of results) assertEquals(received, sent);
        } finally {
          configurePoller({ maxWaitMilliseconds: 10_000 });
        }
      }),
  );
}

leakCheckedTest("a pending recv() waits in the poller and resolves when data arrives", async () => {
  const [a, b] = UnixSocket.pair();
  try {
    const waitsBefore = pollerStats().waits;
    const pending = track(b.recv());
    await macrotask();
    assertFalse(pending.settled());
    assertEquals(pollerStats().registeredFds, 1);
    assertEquals(pollerStats().outstandingWaits, 1);
    a.sendSync("late");
    const message = await within(pending.promise, 5_000, "the pending recv");
    assertEquals(decoder.decode(message!.data), "late");
    assert(pollerStats().waits > waitsBefore);
    await assertPollerIdle();
  } finally {
    a.close();
    b.close();
  }
});

leakCheckedTest("the same fd can be waited on for reading and writing at once", async () => {
  const [a, b] = UnixSocket.pair();
  try {
    const filled = await fillSendBuffer(a);
    const readable = track(waitReadable(a));
    const writable = track(waitWritable(a));
    await macrotask();
    let stats = pollerStats();
    assertEquals({ registeredFds: stats.registeredFds, waiters: stats.waiters }, {
      registeredFds: 1,
      waiters: 2,
    });
    b.sendSync("r");
    await within(readable.promise, 5_000, "waitReadable()");
    await macrotask();
    assertFalse(writable.settled(), "the buffer is still full");
    stats = pollerStats();
    assertEquals({ registeredFds: stats.registeredFds, waiters: stats.waiters }, {
      registeredFds: 1,
      waiters: 1,
    });
    assertEquals(await receiveBytes(b, filled), "f".repeat(filled));
    await within(writable.promise, 5_000, "waitWritable()");
    await assertPollerIdle();
    // Both directions ready together resolve together.
    const both = [waitReadable(a), waitWritable(a)];
    await within(Promise.all(both), 5_000, "both waits");
    await assertPollerIdle();
    assertEquals(decoder.decode(a.recvSync()!.data), "r");
  } finally {
    a.close();
    b.close();
  }
});

leakCheckedTest(
  "close() of a socket rejects each of its pending recv() calls with BadResource",
  async () => {
    const [a, b] = UnixSocket.pair();
    try {
      const first = b.recv();
      const second = b.recv();
      await macrotask();
      assertEquals(pollerStats().waiters, 2);
      b.close();
      assertInstanceOf(await rejectionOf(first, "recv()"), Deno.errors.BadResource);
      assertInstanceOf(await rejectionOf(second, "recv()"), Deno.errors.BadResource);
      await assertPollerIdle();
    } finally {
      a.close();
      b.close();
    }
  },
);

leakCheckedTest("close() of a socket rejects its pending send() with BadResource", async () => {
  const [a, b] = UnixSocket.pair("seqpacket");
  try {
    await fillSendBuffer(a);
    const pending = a.send("stuck");
    await macrotask();
    assertEquals(pollerStats().waiters, 1);
    a.close();
    assertInstanceOf(await rejectionOf(pending, "send()"), Deno.errors.BadResource);
    await assertPollerIdle();
  } finally {
    a.close();
    b.close();
  }
});

leakCheckedTest("close() of a listener rejects its pending accept() with BadResource", async () => {
  const { path, cleanup } = tempSocketPath();
  const listener = UnixSocket.listen(path);
  try {
    const pending = listener.accept();
    await macrotask();
    listener.close();
    assertInstanceOf(await rejectionOf(pending, "accept()"), Deno.errors.BadResource);
    await assertPollerIdle();
  } finally {
    listener.close();
    cleanup();
  }
});

leakCheckedTest(
  "close() of an fd rejects its pending read() and waitReadable() with BadResource",
  async () => {
    const [r, w] = pipe();
    try {
      const reading = r.read(new Uint8Array(8));
      const waiting = waitReadable(r);
      await macrotask();
      assertEquals(pollerStats().waiters, 2);
      assertEquals(pollerStats().registeredFds, 1);
      r.close();
      assertInstanceOf(await rejectionOf(reading, "read()"), Deno.errors.BadResource);
      assertInstanceOf(await rejectionOf(waiting, "waitReadable()"), Deno.errors.BadResource);
      await assertPollerIdle();
    } finally {
      r.close();
      w.close();
    }
  },
);

leakCheckedTest(
  "close() of one fd leaves the poller serving the other waits and later ones",
  async () => {
    const [a, b] = UnixSocket.pair();
    const [c, d] = UnixSocket.pair();
    try {
      const doomed = b.recv();
      const survivor = d.recv();
      await macrotask();
      b.close();
      assertInstanceOf(await rejectionOf(doomed, "recv()"), Deno.errors.BadResource);
      assertEquals(pollerStats().registeredFds, 1);
      c.sendSync("still served");
      assertEquals(
        decoder.decode((await within(survivor, 5_000, "the other recv()"))!.data),
        "still served",
      );
      const later = d.recv();
      c.sendSync("later");
      assertEquals(decoder.decode((await within(later, 5_000, "a later recv()"))!.data), "later");
      await assertPollerIdle();
    } finally {
      a.close();
      b.close();
      c.close();
      d.close();
    }
  },
);

for (const backend of OTHER_BACKENDS) {
  leakCheckedTest(
    `the ${backend} backend serves waits, aborts and closes like ${DEFAULT_BACKEND}`,
    async (t) => {
      configurePoller({ backend });
      try {
        assertEquals(pollerStats().backend, backend);

        await t.step(
          `the ${backend} backend serves 20 pending recv() calls with one outstanding wait`,
          async () => {
            const pairs = Array.from({ length: 20 }, () => UnixSocket.pair());
            try {
              const receives = pairs.map(([, b]) => b.recv());
              // Closing the pairs after a failure rejects the ones still pending.
              for (const receive of receives) receive.catch(() => {});
              await macrotask();
              assertEquals(pollerStats().registeredFds, 20);
              assertEquals(pollerStats().outstandingWaits, 1);
              // Interest added while a wait is in flight is picked up.
              const [c, d] = UnixSocket.pair();
              const extra = d.recv();
              c.sendSync("extra");
              assertEquals(
                decoder.decode((await within(extra, 5_000, "the added recv()"))!.data),
                "extra",
              );
              c.close();
              d.close();
              pairs.forEach(([a], i) => a.sendSync(`m${i}`));
              const messages = await within(Promise.all(receives), 5_000, "20 receives");
              assertEquals(
                messages.map((m) => decoder.decode(m!.data)),
                pairs.map((_, i) => `m${i}`),
              );
              assertLessOrEqual(pollerStats().maxOutstandingWaits, 1);
              await assertPollerIdle();
            } finally {
              for (const [a, b] of pairs) {
                a.close();
                b.close();
              }
            }
          },
        );

        await t.step(
          `the ${backend} backend rejects an aborted or timed-out recv() and keeps the socket usable`,
          async () => {
            const [a, b] = UnixSocket.pair();
            try {
              const reason = new StopReason(`${backend} recv`);
              const controller = new AbortController();
              const pending = b.recv({ signal: controller.signal });
              await macrotask();
              controller.abort(reason);
              assertStrictEquals(await rejectionOf(pending, "recv()"), reason);
              const timedOut = await rejectionOf(
                b.recv({ signal: AbortSignal.timeout(20) }),
                "recv()",
              );
              assertEquals((timedOut as DOMException).name, "TimeoutError");
              await assertPollerIdle();
              a.sendSync("kept");
              assertEquals(decoder.decode((await b.recv())!.data), "kept");
            } finally {
              a.close();
              b.close();
            }
          },
        );

        await t.step(
          `the ${backend} backend rejects a pending recv() whose socket closes and serves the other waits`,
          async () => {
            const [a, b] = UnixSocket.pair();
            const [r, w] = pipe();
            try {
              const receiving = b.recv();
              const reading = r.read(new Uint8Array(4));
              await macrotask();
              b.close();
              assertInstanceOf(await rejectionOf(receiving, "recv()"), Deno.errors.BadResource);
              assertEquals(pollerStats().registeredFds, 1);
              w.writeAllSync("ok");
              assertEquals(await within(reading, 5_000, "read()"), 2);
              await assertPollerIdle();
            } finally {
              a.close();
              b.close();
              r.close();
              w.close();
            }
          },
        );

        await t.step(
          "configurePoller() refuses to change the backend while a wait is pending",
          async () => {
            const [a, b] = UnixSocket.pair();
            try {
              const pending = b.recv();
              await macrotask();
              assertThrows(() => configurePoller({ backend: DEFAULT_BACKEND }), TypeError);
              assertEquals(pollerStats().backend, backend);
              a.sendSync("x");
              await within(pending, 5_000, "recv()");
              await assertPollerIdle();
            } finally {
              a.close();
              b.close();
            }
          },
        );
      } finally {
        configurePoller({ backend: DEFAULT_BACKEND });
        // Bring the default backend (its fds) back before the fd census: a wait
        // on stderr creates it and returns at once.
        await within(waitWritable(2), 5_000, "the default backend to start");
      }
      assertEquals(pollerStats().backend, DEFAULT_BACKEND);
    },
  );
}

leakCheckedTest(
  "configurePoller({ spinMicroseconds }) makes a waiting recv() spin before it parks",
  async () => {
    const [a, b] = UnixSocket.pair();
    let child: Deno.ChildProcess | undefined;
    configurePoller({ spinMicroseconds: 200 });
    try {
      // The sender is another process, so that the spinning event loop is
      // not the one that has to send.
      const peer = borrowFd(b.fd);
      peer.closeOnExec = false;
      child = new Deno.Command("python3", {
        args: [
          "-c",
          "import os, sys, time; time.sleep(0.1); os.write(int(sys.argv[1]), b'spun')",
          String(b.fd),
        ],
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn();
      peer.closeOnExec = true;
      const spinsBefore = pollerStats().spins;
      const message = await within(a.recv(), 10_000, "the child's message");
      assertEquals(decoder.decode(message!.data), "spun");
      assert(pollerStats().spins > spinsBefore, "the recv() spun before parking");
      assertEquals((await child.status).code, 0);
      // Without a spin budget, no spins are counted.
      configurePoller({ spinMicroseconds: 0 });
      const spinsAfter = pollerStats().spins;
      const pending = b.recv();
      a.sendSync("plain");
      assertEquals(decoder.decode((await within(pending, 5_000, "recv()"))!.data), "plain");
      assertEquals(pollerStats().spins, spinsAfter);
      await assertPollerIdle();
    } finally {
      configurePoller({ spinMicroseconds: 0 });
      a.close();
      b.close();
      await child?.stderr.cancel();
      await child?.status;
    }
  },
  { ignore: !hasCommand("python3") },
);

leakCheckedTest(
  "configurePoller() rejects a negative or NaN spin budget and an unknown backend",
  () => {
    assertThrows(() => configurePoller({ spinMicroseconds: -1 }), RangeError, "spinMicroseconds");
    assertThrows(() => configurePoller({ spinMicroseconds: NaN }), RangeError, "spinMicroseconds");
    assertThrows(
      () => configurePoller({ backend: "kqueue" as "poll" }),
      TypeError,
      '"kqueue"',
    );
    assertEquals(pollerStats().backend, DEFAULT_BACKEND);
  },
);

/** Spawns the receive child on a fresh listener and returns once it waits. */

async function startReceiveChild(
  mode: "message" | "abort",
): Promise<{ child: Child; connection: UnixSocket; cleanup(): void }> {
  const { path, cleanup } = tempSocketPath();
  const listener = UnixSocket.listen(path);
  const child = spawnDeno("async_recv_child.ts", [path, mode], {
    permissions: ["--allow-ffi", "--allow-read", "--allow-write"],
    timeoutMs: 30_000,
  });
  try {
    const connection = await within(listener.accept(), 20_000, "the child to connect");
    const ready = await within(connection.recv(), 20_000, "the child to be ready");
    assertEquals(decoder.decode(ready!.data), "ready");
    return { child, connection, cleanup };
  } catch (error) {
    child.kill();
    await child.done;
    cleanup();
    throw error;
  } finally {
    listener.close();
  }
}

leakCheckedTest("a child whose last pending recv() completes exits within a second", async () => {
  const { child, connection, cleanup } = await startReceiveChild("message");
  try {
    connection.sendSync("go");
    const sentAt = performance.now();
    const result = await child.done;
    const exitMs = performance.now() - sentAt;
    assertEquals(result.code, 0, result.stderr);
    const [line, statsJson] = result.stdout.trim().split("\n");
    assertEquals(line, "received go");
    const stats = JSON.parse(statsJson!);
    assert(stats.waits >= 1, "the child's recv() waited in the poller");
    assertEquals(stats.outstandingWaits, 0);
    // The requirement: the poller must not keep the process alive
    // (a leftover epoll_wait would hold it for its 10 s bound).
    assertLessOrEqual(exitMs, 1_000, `the child took ${Math.round(exitMs)} ms to exit`);
  } finally {
    child.kill();
    await child.done;
    connection.close();
    cleanup();
  }
});

leakCheckedTest("a child whose pending recv() times out exits within a second", async () => {
  const { child, connection, cleanup } = await startReceiveChild("abort");
  try {
    const readyAt = performance.now();
    const result = await child.done;
    const exitMs = performance.now() - readyAt;
    assertEquals(result.code, 0, result.stderr);
    const [line, statsJson] = result.stdout.trim().split("\n");
    assertEquals(line, "aborted TimeoutError");
    const stats = JSON.parse(statsJson!);
    assert(stats.wakeups >= 1, "the abort woke the poller's wait");
    assertEquals(stats.registeredFds, 0);
    // The wake fd cuts the epoll_wait short instead of letting it run to
    // its 10 s bound.
    assertLessOrEqual(exitMs, 1_000, `the child took ${Math.round(exitMs)} ms to exit`);
  } finally {
    child.kill();
    await child.done;
    connection.close();
    cleanup();
  }
});
