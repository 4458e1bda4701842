/**
 * waitReadable() and waitWritable() (src/async/wait.ts): readiness of any fd
 * through the shared poller, with aborts, timeouts and argument errors.
 *
 * @module
 */

import { assert, assertEquals, assertRejects, assertStrictEquals } from "@std/assert";
import { openFd, pipe, pollerStats, UnixSocket, waitReadable, waitWritable } from "../mod.ts";
import {
  assertPollerIdle,
  decoder,
  fillSendBuffer,
  leakCheckedTest,
  macrotask,
  rejectionOf,
  spawnShell,
  startPoller,
  StopReason,
  within,
} from "./helpers.ts";

await startPoller();

leakCheckedTest("waitReadable() sees data another process writes into a pipe", async () => {
  const [r, w] = pipe();
  let child: Deno.ChildProcess | undefined;
  try {
    w.closeOnExec = false; // Handed to the shell (dash redirects only fds 0-9).
    child = spawnShell(`sleep 0.2; printf hi > /proc/self/fd/${w.fd}`);
    w.close();
    const waitsBefore = pollerStats().waits;
    await within(waitReadable(r), 10_000, "the child's write");
    assert(pollerStats().waits > waitsBefore, "the wait went through the poller");
    const buffer = new Uint8Array(8);
    assertEquals(await within(r.read(buffer), 5_000, "read()"), 2);
    assertEquals(decoder.decode(buffer.subarray(0, 2)), "hi");
    // The child's exit closes the last write end: end of file.
    assertEquals(await within(r.read(buffer), 10_000, "end of file"), null);
    assertEquals((await child.status).code, 0);
    await assertPollerIdle();
  } finally {
    r.close();
    w.close();
    await child?.stderr.cancel();
    await child?.status;
  }
});

leakCheckedTest("waitReadable() and waitWritable() on a regular file resolve at once", async () => {
  using file = openFd(new URL(import.meta.url).pathname);
  await within(waitReadable(file), 5_000, "waitReadable()");
  await within(waitWritable(file), 5_000, "waitWritable()");
  await assertPollerIdle();
});

leakCheckedTest(
  "waitReadable() and waitWritable() reject with the signal's reason or a TimeoutError",
  async () => {
    const [a, b] = UnixSocket.pair();
    try {
      await fillSendBuffer(a);
      for (const wait of [waitReadable, waitWritable]) {
        const reason = new StopReason(wait.name);
        const controller = new AbortController();
        const pending = wait(a, { signal: controller.signal });
        await macrotask();
        assertEquals(pollerStats().waiters, 1);
        controller.abort(reason);
        assertStrictEquals(await rejectionOf(pending, wait.name), reason);
        const timedOut = await rejectionOf(
          wait(a.fd, { signal: AbortSignal.timeout(20) }),
          wait.name,
        );
        assertEquals((timedOut as DOMException).name, "TimeoutError");
        assertStrictEquals(
          await rejectionOf(wait(a, { signal: AbortSignal.abort(reason) }), wait.name),
          reason,
        );
        await assertPollerIdle();
      }
    } finally {
      a.close();
      b.close();
    }
  },
);

leakCheckedTest(
  "waitReadable() and waitWritable() reject on bad arguments and closed fds",
  async () => {
    await assertRejects(() => waitReadable(-1), RangeError, '"fd"');
    await assertRejects(() => waitWritable(1.5), RangeError, '"fd"');
    await assertRejects(() => waitReadable("3" as unknown as number), TypeError, '"fd"');
    const [r, w] = pipe();
    const number = r.fd;
    r.close();
    w.close();
    await assertRejects(() => waitReadable(number), Deno.errors.BadResource, "EBADF");
  },
);
