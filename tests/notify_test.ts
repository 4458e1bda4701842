/**
 * Tests for `notify()`, `notifyBarrier()` and the watchdog helpers
 * (src/extras/notify.ts, src/extras/watchdog.ts) against a test manager: a
 * bound datagram socket with `SO_PASSCRED` on, which receives with
 * `recvmsg` and checks fields, fds and the sender's pid. Debian's
 * python3-systemd (`systemd.daemon.notify(..., fds=[...])`, which wraps
 * libsystemd's `sd_pid_notify_with_fds()`) is the reference sender.
 *
 * @module
 */

import {
  assert,
  assertEquals,
  assertFalse,
  assertGreaterOrEqual,
  assertLessOrEqual,
  assertRejects,
  assertThrows,
} from "@std/assert";
import {
  notify,
  notifyBarrier,
  openFd,
  type OwnedFd,
  pipe,
  type ReceivedDatagram,
  startWatchdog,
  UnixSocket,
  watchdogInterval,
} from "../mod.ts";
import { libc } from "../ffi/libc.ts";
import {
  decoder,
  isReady,
  leakCheckedTest,
  readUpTo,
  startPoller,
  tempSocketPath,
} from "./helpers.ts";

await startPoller();

const ENV_KEYS = ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"];

/** A test manager: a bound datagram socket that records each sender's credentials. */
interface Manager {
  readonly socket: UnixSocket;
  /** The value `$NOTIFY_SOCKET` takes for it. */
  readonly env: string;
  close(): void;
}

function pathManager(): Manager {
  const temp = tempSocketPath("notify.sock");
  const socket = UnixSocket.datagram(temp.path);
  socket.passCredentials = true;
  return {
    socket,
    env: temp.path,
    close(): void {
      socket.close();
      temp.cleanup();
    },
  };
}

let abstractCount = 0;
function abstractManager(): Manager {
  const name = `fdpass-notify-test-${Deno.pid}-${abstractCount++}`;
  const socket = UnixSocket.datagram({ abstract: name });
  socket.passCredentials = true;
  return { socket, env: `@${name}`, close: () => socket.close() };
}

/** Runs `fn` with the notification variables set as given, then restores them. */
async function withEnv(
  values: Record<string, string | undefined>,
  fn: () => Promise<void> | void,
): Promise<void> {
  const saved = new Map(ENV_KEYS.map((key) => [key, Deno.env.get(key)]));
  const apply = (entries: Iterable<[string, string | undefined]>): void => {
    for (const [key, value] of entries) {
      if (value === undefined) Deno.env.delete(key);
      else Deno.env.set(key, value);
    }
  };
  apply(ENV_KEYS.map((key) => [key, undefined]));
  apply(Object.entries(values));
  try {
    await fn();
  } finally {
    apply(saved);
  }
}

/** Receives one datagram, failing after 10 s instead of hanging. */
function receive(manager: Manager): Promise<ReceivedDatagram> {
  return manager.socket.recvFrom({ signal: AbortSignal.timeout(10_000) });
}

function text(message: ReceivedDatagram): string {
  return decoder.decode(message.data);
}

function closeFds(fds: readonly OwnedFd[]): void {
  for (const fd of fds) fd.close();
}

/** `CLOCK_MONOTONIC` in microseconds, read here apart from the library. */
function monotonicNow(): bigint {
  const { lib, layout } = libc();
  const buffer = new BigInt64Array(2);
  assertEquals(
    lib.clock_gettime(layout.constants.CLOCK_MONOTONIC, new Uint8Array(buffer.buffer)),
    0,
  );
  return buffer[0]! * 1_000_000n + buffer[1]! / 1000n;
}

leakCheckedTest("notify() sends READY=1 and STATUS= in one datagram to a path", async () => {
  const manager = pathManager();
  try {
    await withEnv({ NOTIFY_SOCKET: manager.env }, async () => {
      assertEquals(await notify({ ready: true, status: "serving on :8080" }), true);
    });
    const message = await receive(manager);
    assertEquals(text(message), "READY=1\nSTATUS=serving on :8080");
    assertEquals(message.fds.length, 0);
    assertEquals(message.credentials?.pid, Deno.pid);
    assertFalse(isReady(manager.socket.fd), "exactly one datagram");
  } finally {
    manager.close();
  }
});

leakCheckedTest(
  "notify() reaches an @name in $NOTIFY_SOCKET through the abstract namespace",
  async () => {
    const manager = abstractManager();
    try {
      await withEnv({ NOTIFY_SOCKET: manager.env }, async () => {
        assertEquals(await notify({ stopping: true, errno: 5, mainPid: Deno.pid }), true);
      });
      const message = await receive(manager);
      assertEquals(text(message), `STOPPING=1\nERRNO=5\nMAINPID=${Deno.pid}`);
      assertEquals(message.credentials?.pid, Deno.pid);
    } finally {
      manager.close();
    }
  },
);

leakCheckedTest("notify() sends sd_notify text as it is and maps every field", async (t) => {
  const manager = abstractManager();
  try {
    await withEnv({ NOTIFY_SOCKET: manager.env }, async () => {
      await t.step("text form", async () => {
        assertEquals(await notify("READY=1\nSTATUS=from text\nX_CUSTOM=1"), true);
        assertEquals(text(await receive(manager)), "READY=1\nSTATUS=from text\nX_CUSTOM=1");
      });
      await t.step("watchdog, its interval and the timeout extension", async () => {
        await notify({ watchdog: true, watchdogMicroseconds: 2_000_000 });
        assertEquals(text(await receive(manager)), "WATCHDOG=1\nWATCHDOG_USEC=2000000");
        await notify({ watchdog: "trigger", extendTimeoutMicroseconds: 0 });
        assertEquals(text(await receive(manager)), "WATCHDOG=trigger\nEXTEND_TIMEOUT_USEC=0");
      });
      await t.step("the socket option overrides $NOTIFY_SOCKET", async () => {
        const other = pathManager();
        try {
          await notify({ ready: true }, { socket: other.env });
          assertEquals(text(await receive(other)), "READY=1");
          assertFalse(isReady(manager.socket.fd));
        } finally {
          other.close();
        }
      });
    });
  } finally {
    manager.close();
  }
});

leakCheckedTest("notify() stores three fds under FDNAME= and they arrive working", async () => {
  const manager = pathManager();
  const [readEnd, writeEnd] = pipe();
  const devNull = openFd("/dev/null");
  const [left, right] = UnixSocket.pair();
  try {
    await withEnv({ NOTIFY_SOCKET: manager.env }, async () => {
      const sent = await notify(
        { fdStore: true, fdName: "state-v1", fdPoll: false },
        { fds: [writeEnd, devNull, right] },
      );
      assertEquals(sent, true);
    });
    const message = await receive(manager);
    assertEquals(text(message), "FDSTORE=1\nFDNAME=state-v1\nFDPOLL=0");
    assertEquals(message.fds.map((fd) => fd.kind), ["pipe", "character", "socket"]);
    assertEquals(message.credentials?.pid, Deno.pid);
    const [storedPipe, storedNull, storedSocket] = message.fds;
    try {
      storedPipe!.writeAllSync("kept");
      const buffer = new Uint8Array(8);
      assertEquals(decoder.decode(buffer.subarray(0, readEnd.readSync(buffer)!)), "kept");
      assert(storedNull!.closeOnExec);
      storedSocket!.writeAllSync("via store");
      assertEquals(decoder.decode(left.recvSync()!.data), "via store");
    } finally {
      closeFds(message.fds);
    }
  } finally {
    for (const item of [readEnd, writeEnd, devNull, left, right]) item.close();
    manager.close();
  }
});

leakCheckedTest("notify() asks to remove stored fds with FDSTOREREMOVE=1 and FDNAME=", async () => {
  const manager = abstractManager();
  try {
    await notify({ fdStoreRemove: true, fdName: "state-v1" }, {
      socket: { abstract: manager.env.slice(1) },
    });
    const message = await receive(manager);
    assertEquals(text(message), "FDSTOREREMOVE=1\nFDNAME=state-v1");
    assertEquals(message.fds.length, 0);
  } finally {
    manager.close();
  }
});

leakCheckedTest(
  "notify() sends RELOADING=1 with MONOTONIC_USEC= from CLOCK_MONOTONIC",
  async () => {
    const manager = abstractManager();
    try {
      const before = monotonicNow();
      await withEnv({ NOTIFY_SOCKET: manager.env }, async () => {
        await notify({ reloading: true, status: "reloading" });
      });
      const after = monotonicNow();
      const lines = text(await receive(manager)).split("\n");
      assertEquals(lines[0], "RELOADING=1");
      assertEquals(lines[2], "STATUS=reloading");
      const match = /^MONOTONIC_USEC=(\d+)$/.exec(lines[1]!);
      if (match === null) throw new Error(`second line "${lines[1]}"`);
      const usec = BigInt(match[1]!);
      assertGreaterOrEqual(usec, before);
      assertLessOrEqual(usec, after);
      // CLOCK_BOOTTIME (/proc/uptime) counts suspend too, so it is never behind.
      // (Deno asks for --allow-all to read /proc/uptime; openFd() goes to libc.)
      using proc = openFd("/proc/uptime");
      const uptime = Number(decoder.decode(readUpTo(proc, 64)).split(" ")[0]);
      assertLessOrEqual(Number(usec) / 1e6, uptime + 1);
    } finally {
      manager.close();
    }
  },
);

leakCheckedTest("notify() resolves to false and sends nothing without $NOTIFY_SOCKET", async () => {
  const manager = abstractManager();
  const devNull = openFd("/dev/null");
  try {
    await withEnv({}, async () => {
      assertEquals(await notify({ ready: true }), false);
      assertEquals(await notify({ fdStore: true, fdName: "x" }, { fds: [devNull] }), false);
      assertEquals(await notifyBarrier({ timeoutMilliseconds: 10 }), false);
    });
    await withEnv({ NOTIFY_SOCKET: "" }, async () => {
      assertEquals(await notify("READY=1"), false);
    });
    assertFalse(isReady(manager.socket.fd));
  } finally {
    devNull.close();
    manager.close();
  }
});

leakCheckedTest("notify() with unsetEnvironment removes $NOTIFY_SOCKET after sending", async () => {
  const manager = abstractManager();
  try {
    await withEnv({ NOTIFY_SOCKET: manager.env }, async () => {
      assertEquals(await notify({ ready: true }, { unsetEnvironment: true }), true);
      assertEquals(Deno.env.get("NOTIFY_SOCKET"), undefined);
      assertEquals(await notify({ ready: true }), false);
    });
    assertEquals(text(await receive(manager)), "READY=1");
    assertFalse(isReady(manager.socket.fd));
  } finally {
    manager.close();
  }
});

leakCheckedTest(
  "notify() refuses bad fields, names and fd counts before sending anything",
  async (t) => {
    const manager = abstractManager();
    const devNull = openFd("/dev/null");
    const fds = [devNull];
    type Case = [
      string,
      Parameters<typeof notify>,
      ErrorConstructor | RangeErrorConstructor,
      string,
    ];
    const cases: Case[] = [
      ["a name with :", [{ fdStore: true, fdName: "a:b" }, { fds }], RangeError, `"fdName"`],
      ["a name with a tab", [{ fdStore: true, fdName: "a\tb" }, { fds }], RangeError, `"fdName"`],
      [
        "a non-ASCII name",
        [{ fdStore: true, fdName: "caf\u00e9" }, { fds }],
        RangeError,
        `"fdName"`,
      ],
      [
        "a 256-character name",
        [{ fdStore: true, fdName: "n".repeat(256) }, { fds }],
        RangeError,
        "at most 255",
      ],
      ["an empty name", [{ fdStore: true, fdName: "" }, { fds }], RangeError, "must not be empty"],
      ["a bad FDNAME= line", ["FDSTORE=1\nFDNAME=a:b", { fds }], RangeError, `"FDNAME"`],
      ["a two-line status", [{ status: "a\nREADY=1" }], TypeError, `"status"`],
      ["a negative errno", [{ errno: -1 }], RangeError, `"errno"`],
      ["a pid of 0", [{ mainPid: 0 }], RangeError, `"mainPid"`],
      ["a string errno", [{ errno: "5" as unknown as number }], TypeError, `"errno"`],
      [
        "a fractional timeout",
        [{ extendTimeoutMicroseconds: 1.5 }],
        RangeError,
        `"extendTimeoutMicroseconds"`,
      ],
      ["a truthy non-boolean", [{ ready: 1 as unknown as boolean }], TypeError, `"ready"`],
      ["an unknown field", [{ readdy: true } as never], TypeError, `"readdy"`],
      ["no field", [{}], TypeError, "sets no field"],
      ["fds without fdStore", [{ ready: true }, { fds }], TypeError, `"fdStore: true"`],
      ["fdStore without fds", [{ fdStore: true }], TypeError, `"fdStore" needs`],
      ["fdStoreRemove without a name", [{ fdStoreRemove: true }], TypeError, `"fdName"`],
      ["fdPoll without fdStore", [{ fdPoll: false }], TypeError, `"fdPoll"`],
      ["254 fds", ["FDSTORE=1", { fds: new Array(254).fill(devNull) }], RangeError, "at most 253"],
      ["a number as state", [42 as unknown as string], TypeError, `"state"`],
      ["a NUL in text", ["READY=1\0"], TypeError, "NUL"],
    ];
    try {
      await withEnv({ NOTIFY_SOCKET: manager.env }, async () => {
        for (const [what, args, ErrorClass, includes] of cases) {
          await t.step(what, async () => {
            await assertRejects(() => notify(...args), ErrorClass, includes);
          });
        }
      });
      await withEnv({ NOTIFY_SOCKET: "vsock:2:1234" }, async () => {
        await t.step("an address that is neither a path nor an @name", async () => {
          await assertRejects(
            () => notify({ ready: true }),
            Deno.errors.NotSupported,
            "vsock:2:1234",
          );
        });
      });
      await withEnv({ NOTIFY_SOCKET: manager.env }, async () => {
        await t.step("unsetEnvironment applies even when the call fails", async () => {
          await assertRejects(() => notify({ errno: -1 }, { unsetEnvironment: true }), RangeError);
          assertEquals(Deno.env.get("NOTIFY_SOCKET"), undefined);
        });
      });
      await t.step("nothing reached the manager", () => {
        assertFalse(isReady(manager.socket.fd));
      });
    } finally {
      devNull.close();
      manager.close();
    }
  },
);

leakCheckedTest(
  "notify() rejects with ECONNREFUSED when nobody listens at $NOTIFY_SOCKET",
  async () => {
    await withEnv({ NOTIFY_SOCKET: `@fdpass-notify-nobody-${Deno.pid}` }, async () => {
      await assertRejects(() => notify({ ready: true }), Deno.errors.ConnectionRefused);
    });
  },
);

leakCheckedTest(
  "notifyBarrier() resolves once the manager closes the pipe's write end",
  async () => {
    const manager = abstractManager();
    try {
      await withEnv({ NOTIFY_SOCKET: manager.env }, async () => {
        await notify({ status: "before the barrier" });
        const barrier = notifyBarrier({ timeoutMilliseconds: 10_000 });
        assertEquals(text(await receive(manager)), "STATUS=before the barrier");
        const message = await receive(manager);
        assertEquals(text(message), "BARRIER=1");
        assertEquals(message.fds.map((fd) => fd.kind), ["pipe"]);
        assertEquals(message.credentials?.pid, Deno.pid);
        // Still waiting while the manager holds the write end.
        const early = await Promise.race([
          barrier,
          new Promise((r) => setTimeout(r, 50, "waiting")),
        ]);
        assertEquals(early, "waiting");
        closeFds(message.fds);
        assertEquals(await barrier, true);
      });
    } finally {
      manager.close();
    }
  },
);

leakCheckedTest(
  "notifyBarrier() rejects with TimedOut when the manager never closes it",
  async () => {
    const manager = abstractManager();
    try {
      await withEnv({ NOTIFY_SOCKET: manager.env }, async () => {
        const started = performance.now();
        const barrier = notifyBarrier({ timeoutMilliseconds: 200 });
        const message = await receive(manager);
        try {
          await assertRejects(() => barrier, Deno.errors.TimedOut, "within 200 ms");
          assertGreaterOrEqual(performance.now() - started, 190);
        } finally {
          closeFds(message.fds);
        }
      });
    } finally {
      manager.close();
    }
  },
);

leakCheckedTest("notifyBarrier() rejects with the signal's reason when aborted", async () => {
  const manager = abstractManager();
  try {
    const controller = new AbortController();
    const barrier = notifyBarrier({
      socket: { abstract: manager.env.slice(1) },
      signal: controller.signal,
    });
    const message = await receive(manager);
    controller.abort(new Error("gave up"));
    await assertRejects(() => barrier, Error, "gave up");
    closeFds(message.fds);
  } finally {
    manager.close();
  }
});

leakCheckedTest("watchdogInterval() reads $WATCHDOG_USEC for this process only", async (t) => {
  await t.step("unset: null", () =>
    withEnv({}, () => {
      assertEquals(watchdogInterval(), null);
    }));
  await t.step("set, no pid: the interval", () =>
    withEnv({ WATCHDOG_USEC: "5000000" }, () => {
      assertEquals(watchdogInterval(), 5_000_000);
    }));
  await t.step(
    "our pid: the interval",
    () =>
      withEnv({ WATCHDOG_USEC: "30000000", WATCHDOG_PID: String(Deno.pid) }, () => {
        assertEquals(watchdogInterval(), 30_000_000);
      }),
  );
  await t.step(
    "another pid: null",
    () =>
      withEnv({ WATCHDOG_USEC: "30000000", WATCHDOG_PID: String(Deno.pid + 1) }, () => {
        assertEquals(watchdogInterval(), null);
      }),
  );
  for (const [usec, pid] of [["abc", undefined], ["0", undefined], ["-5", undefined], ["1", "x"]]) {
    await t.step(
      `WATCHDOG_USEC=${usec} WATCHDOG_PID=${pid}: a TypeError naming it`,
      () =>
        withEnv({ WATCHDOG_USEC: usec, WATCHDOG_PID: pid }, () => {
          assertThrows(
            () => watchdogInterval(),
            TypeError,
            pid === undefined ? "$WATCHDOG_USEC" : "$WATCHDOG_PID",
          );
        }),
    );
  }
  await t.step(
    "unsetEnvironment removes both variables",
    () =>
      withEnv({ WATCHDOG_USEC: "1000", WATCHDOG_PID: String(Deno.pid) }, () => {
        assertEquals(watchdogInterval({ unsetEnvironment: true }), 1000);
        assertEquals(Deno.env.get("WATCHDOG_USEC"), undefined);
        assertEquals(Deno.env.get("WATCHDOG_PID"), undefined);
      }),
  );
});

leakCheckedTest("startWatchdog() pings WATCHDOG=1 at half the interval until stopped", async () => {
  const manager = abstractManager();
  try {
    await withEnv({ NOTIFY_SOCKET: manager.env, WATCHDOG_USEC: "400000" }, async () => {
      const watchdog = startWatchdog();
      if (watchdog === null) throw new Error("startWatchdog() returned null");
      assertEquals(watchdog.intervalMicroseconds, 400_000);
      const started = performance.now();
      for (let i = 0; i < 2; i++) {
        const message = await receive(manager);
        assertEquals(text(message), "WATCHDOG=1");
        assertEquals(message.credentials?.pid, Deno.pid);
      }
      // Two pings 200 ms apart take about 400 ms; at the full interval they would take 800.
      const elapsed = performance.now() - started;
      assertGreaterOrEqual(elapsed, 350);
      assertLessOrEqual(elapsed, 750);
      watchdog.stop();
      watchdog.stop();
      await new Promise((resolve) => setTimeout(resolve, 50));
      while (isReady(manager.socket.fd)) manager.socket.recvFromSync(); // one in flight at most
      await new Promise((resolve) => setTimeout(resolve, 300));
      assertFalse(isReady(manager.socket.fd), "no ping after stop()");
    });
    await withEnv({ WATCHDOG_USEC: "100000" }, () => {
      assertEquals(startWatchdog(), null, "no $NOTIFY_SOCKET");
    });
    await withEnv({ NOTIFY_SOCKET: manager.env }, () => {
      assertEquals(startWatchdog(), null, "no $WATCHDOG_USEC");
    });
  } finally {
    manager.close();
  }
});

// --- python3-systemd as the reference sender ---

const python = "/usr/bin/python3";
const peer = decodeURIComponent(
  new URL("./fixtures/notify_python_peer.py", import.meta.url).pathname,
);

function pythonSystemdSkipReason(): string | null {
  try {
    const probe = new Deno.Command(python, {
      args: ["-c", "import systemd.daemon"],
      stdout: "null",
      stderr: "null",
    }).outputSync();
    return probe.success ? null : `${python} cannot import systemd.daemon (python3-systemd)`;
  } catch {
    return `no ${python}`;
  }
}

const pythonSkip = pythonSystemdSkipReason();
if (pythonSkip !== null) {
  console.warn(`notify_test.ts: skipping the python3-systemd comparison: ${pythonSkip}`);
}

leakCheckedTest(
  `python3-systemd's notify(fds=) and notify() deliver the same FDSTORE message${
    pythonSkip === null ? "" : ` (skipped: ${pythonSkip})`
  }`,
  async () => {
    for (const makeManager of [abstractManager, pathManager]) {
      const manager = makeManager();
      const devNull = openFd("/dev/null");
      const [readEnd, writeEnd] = pipe();
      try {
        const child = new Deno.Command(python, {
          args: [peer, "FDSTORE=1\nFDNAME=x"],
          env: { NOTIFY_SOCKET: manager.env },
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        const fromPython = await receive(manager);
        const output = await child.output();
        const stdout = decoder.decode(output.stdout);
        assertEquals(output.code, 0, `${stdout}${decoder.decode(output.stderr)}`);
        assertEquals(stdout.trim(), `pid=${child.pid} sent=True`);
        assertEquals(fromPython.credentials?.pid, child.pid);

        await withEnv({ NOTIFY_SOCKET: manager.env }, async () => {
          assert(
            await notify({ fdStore: true, fdName: "x" }, { fds: [devNull, readEnd, writeEnd] }),
          );
        });
        const fromDeno = await receive(manager);
        assertEquals(fromDeno.credentials?.pid, Deno.pid);
        try {
          assertEquals(text(fromDeno), text(fromPython));
          assertEquals(text(fromPython), "FDSTORE=1\nFDNAME=x");
          assertEquals(fromDeno.fds.length, 3);
          assertEquals(fromDeno.fds.map((fd) => fd.kind), fromPython.fds.map((fd) => fd.kind));
          // The pipe python passed carries what it wrote after the send.
          const buffer = new Uint8Array(16);
          const n = fromPython.fds[1]!.readSync(buffer)!;
          assertEquals(decoder.decode(buffer.subarray(0, n)), "pipe ok");
        } finally {
          closeFds(fromPython.fds);
          closeFds(fromDeno.fds);
        }
      } finally {
        for (const item of [devNull, readEnd, writeEnd]) item.close();
        manager.close();
      }
    }
  },
  { ignore: pythonSkip !== null },
);
