/**
 * EventFd (src/extras/eventfd.ts): the eventfd counter, semaphore mode,
 * async wait() in the shared poller, and passing it over a socket.
 *
 * @module
 */

import { assert, assertEquals, assertFalse, assertRejects, assertThrows } from "@std/assert";
import { EventFd, MemFd, type OwnedFd, pipe, pollerStats, UnixSocket } from "../mod.ts";
import { libc } from "../ffi/libc.ts";
import { leakCheckedTest, startPoller } from "./helpers.ts";

const { features } = libc().layout;
const noEventfd = !features.eventfd;
const noMemfd = !features.memfd;

// The first EventFd.wait() must not count the poller's own fds as a leak.
await startPoller();

/** Sends `fds` over a fresh socketpair and returns what arrived. */
function passThroughSocket(fds: { fd: number }[]): OwnedFd[] {
  const [a, b] = UnixSocket.pair();
  try {
    a.sendSync("fds", { fds });
    return b.recvSync()!.fds;
  } finally {
    a.close();
    b.close();
  }
}

leakCheckedTest("EventFd.signal() adds to the counter and tryWait() takes the whole count", () => {
  using events = EventFd.create();
  assertEquals(events.tryWait(), null);
  events.signal();
  events.signal(2n);
  events.signal(4);
  assertEquals(events.tryWait(), 7n);
  assertEquals(events.tryWait(), null);
}, { ignore: noEventfd });

leakCheckedTest(
  "EventFd.create() with initialValue has it pending, and waitSync() takes it",
  () => {
    using events = EventFd.create({ initialValue: 5 });
    assertEquals(events.waitSync(), 5n);
    assertEquals(events.tryWait(), null);
  },
  { ignore: noEventfd },
);

leakCheckedTest("an EventFd in semaphore mode hands out one count at a time", () => {
  using events = EventFd.create({ semaphore: true });
  events.signal(3n);
  assertEquals(events.waitSync(), 1n);
  assertEquals(events.tryWait(), 1n);
  assertEquals(events.tryWait(), 1n);
  assertEquals(events.tryWait(), null);
}, { ignore: noEventfd });

leakCheckedTest("the EventFd counter holds values up to 2^64 - 2", () => {
  using events = EventFd.create();
  events.signal(0xffff_ffff_ffff_fffen);
  assertEquals(events.tryWait(), 0xffff_ffff_ffff_fffen);
}, { ignore: noEventfd });

leakCheckedTest("EventFd.close() is idempotent, and later calls throw a TypeError", () => {
  const events = EventFd.create();
  events.close();
  events.close();
  assert(events.closed);
  assertThrows(() => events.signal(), TypeError);
  assertThrows(() => events.tryWait(), TypeError);
  assertEquals(Deno.inspect(events), "EventFd { closed }");
}, { ignore: noEventfd });

leakCheckedTest("EventFd.wait() resolves with the count once signalled", async () => {
  using events = EventFd.create();
  const woken = events.wait();
  await Promise.resolve();
  events.signal(3n);
  assertEquals(await woken, 3n);
  assertEquals(pollerStats().waiters, 0);
}, { ignore: noEventfd });

leakCheckedTest(
  "EventFd.wait() resolves at once when the counter is already non-zero",
  async () => {
    using events = EventFd.create({ initialValue: 2 });
    assertEquals(await events.wait(), 2n);
  },
  { ignore: noEventfd },
);

leakCheckedTest("two waiters on a semaphore EventFd each get one count", async () => {
  using events = EventFd.create({ semaphore: true });
  const first = events.wait();
  const second = events.wait();
  events.signal(2n);
  assertEquals(await Promise.all([first, second]), [1n, 1n]);
  assertEquals(events.tryWait(), null);
}, { ignore: noEventfd });

leakCheckedTest("an aborted EventFd.wait() rejects with the reason and takes nothing", async () => {
  using events = EventFd.create();
  const controller = new AbortController();
  const waiting = events.wait({ signal: controller.signal });
  controller.abort(new Error("stop waiting"));
  await assertRejects(() => waiting, Error, "stop waiting");
  const aborted = AbortSignal.abort(new Error("already"));
  await assertRejects(() => events.wait({ signal: aborted }), Error, "already");
  events.signal();
  assertEquals(events.tryWait(), 1n);
  assertEquals(pollerStats().waiters, 0);
}, { ignore: noEventfd });

leakCheckedTest("closing an EventFd rejects a pending wait() with BadResource", async () => {
  const events = EventFd.create();
  const waiting = events.wait();
  events.close();
  await assertRejects(() => waiting, Deno.errors.BadResource);
}, { ignore: noEventfd });

leakCheckedTest("a signal on a received EventFd copy wakes a wait() on the original", async () => {
  using events = EventFd.create();
  const [received] = passThroughSocket([events]);
  using theirs = EventFd.from(received!);
  assert(received!.closed, "EventFd.from() takes ownership");
  const woken = events.wait();
  theirs.signal(9n);
  assertEquals(await woken, 9n);
}, { ignore: noEventfd });

leakCheckedTest("EventFd.from() puts a blocking received eventfd in nonblocking mode", () => {
  using events = EventFd.create();
  const [received] = passThroughSocket([events]);
  received!.nonblocking = false;
  using theirs = EventFd.from(received!);
  assertEquals(theirs.tryWait(), null, "tryWait() must not block");
}, { ignore: noEventfd });

leakCheckedTest("EventFd.from() refuses fds that are not eventfds", () => {
  const [r, w] = pipe();
  assertThrows(() => EventFd.from(r), TypeError, "not a pipe");
  assertFalse(r.closed);
  r.close();
  w.close();
  using memfd = MemFd.create();
  assertThrows(() => EventFd.from(memfd.fd), TypeError, "not a file");
  assertThrows(() => EventFd.from("1" as unknown as number), TypeError, `Argument "fd"`);
}, { ignore: noMemfd || noEventfd });

leakCheckedTest("EventFd.create() checks its options", () => {
  assertThrows(() => EventFd.create({ initialValue: -1 }), RangeError, `Option "initialValue"`);
  assertThrows(
    () => EventFd.create({ initialValue: 2 ** 32 }),
    RangeError,
    `Option "initialValue"`,
  );
  assertThrows(
    () => EventFd.create({ initialValue: 1n as unknown as number }),
    TypeError,
    `Option "initialValue"`,
  );
  assertThrows(
    () => EventFd.create({ semaphore: "yes" as unknown as boolean }),
    TypeError,
    `Option "semaphore"`,
  );
}, { ignore: noEventfd });

leakCheckedTest("EventFd.signal() checks its count", () => {
  using events = EventFd.create();
  assertThrows(() => events.signal(-1n), RangeError, `Argument "n"`);
  assertThrows(() => events.signal(0xffff_ffff_ffff_ffffn), RangeError, `Argument "n"`);
  assertThrows(() => events.signal(1.5), TypeError, `Argument "n"`);
  assertThrows(() => events.signal("1" as unknown as number), TypeError, `Argument "n"`);
  assertEquals(events.tryWait(), null, "a rejected signal() adds nothing");
}, { ignore: noEventfd });

leakCheckedTest(
  "EventFd.create() throws NotSupported where eventfd is missing",
  () => {
    assertThrows(() => EventFd.create(), Deno.errors.NotSupported);
  },
  { ignore: !noEventfd },
);
