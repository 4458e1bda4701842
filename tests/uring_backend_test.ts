/**
 * The io_uring doorbell backend (src/async/uring_backend.ts): chosen at run
 * time, with epoll as the fallback where io_uring is refused, and woken
 * through Deno's own event loop (one context switch per wake-up, where the
 * epoll backend's blocking thread costs two or more).
 *
 * @module
 */

import { assert, assertEquals, assertFalse, assertLess, assertMatch } from "@std/assert";
import {
  type BackendName,
  configurePoller,
  pollerStats,
  UnixSocket,
  waitWritable,
} from "../mod.ts";
import { libc } from "../ffi/libc.ts";
import { startedPollerStats } from "../src/async/wait.ts";
import {
  decoder,
  hasCommand,
  leakCheckedTest,
  macrotask,
  spawnDeno,
  startPoller,
  track,
  within,
} from "./helpers.ts";

await startPoller();
const refused = startedPollerStats().fallbackReason;
const uringPlatform = libc().layout.features.ioUring;
const skipUring = refused === null ? "" : ` (skipped: io_uring refused here: ${refused})`;

leakCheckedTest(
  `the poller waits through io_uring by default where the kernel allows it${skipUring}`,
  () => {
    const stats = pollerStats();
    assertEquals(stats.backend, "io_uring");
    assertEquals(stats.fallbackReason, null);
  },
  { ignore: refused !== null || !uringPlatform },
);

/**
 * Sends from `b`, lets `a` read it while a recv() waits on `b`, and
 * returns how many waits the poller made meanwhile; the recv() must still
 * be pending, and gets the answer after.
 */
async function waitsWhileThePeerReads(): Promise<number> {
  const [a, b] = UnixSocket.pair();
  try {
    const pending = track(b.recv());
    await macrotask();
    b.sendSync("request");
    const before = pollerStats().waits;
    assertEquals(decoder.decode(a.recvSync()!.data), "request");
    // The peer's read, and nothing else, may wake the poller.
    for (let i = 0; i < 5; i++) await macrotask();
    const waits = pollerStats().waits - before;
    assertFalse(pending.settled(), "the recv() had nothing to take");
    a.sendSync("answer");
    assertEquals(decoder.decode((await within(pending.promise, 5_000, "recv()"))!.data), "answer");
    return waits;
  } finally {
    a.close();
    b.close();
  }
}

leakCheckedTest(
  `with io_uring a recv() waiting for an answer is woken when the peer reads the request, as Deno's own sockets are${skipUring}`,
  async () => {
    const waits = await waitsWhileThePeerReads();
    assert(waits >= 1, `${waits} waits`);
  },
  { ignore: refused !== null || !uringPlatform },
);

leakCheckedTest(
  `with the epoll backend a recv() waiting for an answer sleeps while the peer reads the request${skipUring}`,
  async () => {
    configurePoller({ backend: "epoll" });
    try {
      assertEquals(await waitsWhileThePeerReads(), 0);
    } finally {
      configurePoller({ backend: "io_uring" });
      // Bring the default backend (its fds) back before the fd census.
      await within(waitWritable(2), 5_000, "the default backend to start");
    }
  },
  { ignore: refused !== null || !uringPlatform },
);

/** Builds tests/c/deny_io_uring.c into a temporary directory. */
function buildDenyIoUring(): { binary: string; cleanup(): void } {
  const dir = Deno.makeTempDirSync({ prefix: "fdpass-deny-io-uring-" });
  const binary = `${dir}/deny_io_uring`;
  const source = new URL("./c/deny_io_uring.c", import.meta.url).pathname;
  const built = new Deno.Command("cc", { args: ["-O2", "-o", binary, source] }).outputSync();
  assert(built.success, `cc failed: ${decoder.decode(built.stderr)}`);
  return { binary, cleanup: () => Deno.removeSync(dir, { recursive: true }) };
}

const noCc = hasCommand("cc") ? "" : " (skipped: no cc)";
leakCheckedTest(
  `under a seccomp filter that refuses io_uring_setup the poller falls back to epoll and says why${noCc}${skipUring}`,
  async () => {
    const { binary, cleanup } = buildDenyIoUring();
    try {
      const script = new URL("./fixtures/poller_backend_child.ts", import.meta.url).pathname;
      const output = await new Deno.Command(binary, {
        args: [Deno.execPath(), "run", "--quiet", "--no-lock", "--allow-ffi", script],
        stdin: "null",
        signal: AbortSignal.timeout(20_000),
      }).output();
      assert(output.success, decoder.decode(output.stderr));
      const report = JSON.parse(decoder.decode(output.stdout));
      assertEquals(report.received, "through the poller");
      assertEquals(report.stats.backend, "epoll");
      assertEquals(report.stats.fallbackReason, "io_uring_setup: EPERM");
      // Asked for by name, io_uring is refused with the kernel's answer.
      assertEquals(report.explicit, "PermissionDenied EPERM");
    } finally {
      cleanup();
    }
  },
  { ignore: refused !== null || !uringPlatform || noCc !== "" },
);

leakCheckedTest(
  `without a seccomp filter the same child waits through io_uring${skipUring}`,
  async () => {
    const child = spawnDeno("poller_backend_child.ts", [], { timeoutMs: 20_000 });
    const { code, stdout, stderr } = await child.done;
    assertEquals(code, 0, stderr);
    const report = JSON.parse(stdout);
    assertEquals(report.stats.backend, "io_uring");
    assertEquals(report.explicit, "ok");
  },
  { ignore: refused !== null || !uringPlatform },
);

/** This process's context switches per round trip with an echo child, both on `backend`. */
async function switchesPerRoundTrip(backend: BackendName, roundTrips: number): Promise<number> {
  const child = spawnDeno("switches_child.ts", [backend, String(roundTrips)], {
    permissions: ["--allow-ffi", "--allow-run"],
    timeoutMs: 60_000,
  });
  const { code, stdout, stderr } = await child.done;
  assertEquals(code, 0, stderr);
  return JSON.parse(stdout).perRoundTrip;
}

leakCheckedTest(
  `a wait through io_uring wakes only the JavaScript thread: about one context switch per round trip in this process, against two or more with epoll's blocking thread${skipUring}`,
  async () => {
    // Not a timing: the kernel counts every time a thread goes to sleep.
    const epoll = await switchesPerRoundTrip("epoll", 500);
    const uring = await switchesPerRoundTrip("io_uring", 500);
    assertLess(uring, 1.6, `io_uring: ${uring} switches per round trip`);
    assert(epoll > uring + 0.8, `epoll: ${epoll}, io_uring: ${uring} per round trip`);
  },
  { ignore: refused !== null || !uringPlatform },
);

leakCheckedTest("fdpass info names the poller backend in use", async () => {
  const cli = new URL("../cli.ts", import.meta.url).pathname;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "--no-lock", "--allow-ffi", cli, "info"],
    stdin: "null",
  }).output();
  assert(output.success, decoder.decode(output.stderr));
  assertMatch(decoder.decode(output.stdout), /^poller +(io_uring|epoll|poll)/m);
});

for (const target of ["doorbell", "ring"] as const) {
  leakCheckedTest(
    `closing the io_uring backend's ${
      target === "ring" ? "ring fd" : "doorbell"
    } behind its back rejects one wait with BadResource, loses no message and starts a fresh backend${skipUring}`,
    async () => {
      const child = spawnDeno("reliability_uring_child.ts", [target], { timeoutMs: 60_000 });
      const { code, stdout, stderr } = await child.done;
      assertEquals(code, 0, stderr);
      const report = JSON.parse(stdout);
      assert(report.found, "the child found the backend's fd");
      const failures = report.outcomes.filter((o: string) => !o.startsWith("message "));
      assertEquals(failures, ["BadResource EBADF"], report.outcomes.join(", "));
      // The messages come in order, none lost: the failed wait took none.
      const messages = report.outcomes.filter((o: string) => o.startsWith("message "));
      assertEquals(messages, ["message one", "message two"]);
      // Not a speed test: a spinning loop uses about all of the wall time.
      assert(
        report.cpuMilliseconds < Math.max(50, report.elapsedMilliseconds * 0.5),
        `used ${report.cpuMilliseconds} ms of CPU in ${report.elapsedMilliseconds} ms`,
      );
    },
    { ignore: refused !== null || !uringPlatform },
  );
}
