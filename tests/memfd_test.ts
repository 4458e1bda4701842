/**
 * MemFd, SharedMapping, mapShared and EventFd: creating, sizing, mapping
 * and sealing shared memory, the eventfd counter, and passing both to
 * another process.
 *
 * @module
 */

import { assert, assertEquals, assertFalse, assertRejects, assertThrows } from "@std/assert";
import {
  borrowFd,
  ErrnoError,
  EventFd,
  mapShared,
  MemFd,
  openFd,
  type OwnedFd,
  pipe,
  pollerStats,
  UnixSocket,
  waitWritable,
} from "../mod.ts";
import { decoder, encoder, leakCheckedTest } from "./helpers.ts";
import { isOpen } from "./fixtures/support.ts";

const linux = Deno.build.os === "linux";

// The poller's own fds (its epoll fd and wake eventfd) live as long as the
// process: create them before the first fd census (a wait on stderr returns
// at once), so that the first EventFd.wait() is not counted as a leak.
await waitWritable(2);

function bytesOf(mapping: { buffer: ArrayBuffer }): Uint8Array {
  return new Uint8Array(mapping.buffer);
}

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

function assertErrno(fn: () => unknown, code: string, syscall: string): ErrnoError {
  const error = assertThrows(fn, ErrnoError);
  assertEquals(error.code, code);
  assertEquals(error.syscall, syscall);
  return error;
}

leakCheckedTest("MemFd creates, sizes, maps and reads shared memory", async (t) => {
  await t.step("create() with a size reports it and reads as zeros", () => {
    using memfd = MemFd.create({ name: "test", size: 10000 });
    assertEquals(memfd.size, 10000);
    assertFalse(memfd.closed);
    using mapping = memfd.map();
    assertEquals(mapping.byteLength, 10000);
    assert(bytesOf(mapping).every((byte) => byte === 0));
  });

  await t.step("resize() grows and shrinks the file", () => {
    using memfd = MemFd.create();
    assertEquals(memfd.size, 0);
    memfd.resize(8192);
    assertEquals(memfd.size, 8192);
    memfd.resize(100);
    assertEquals(memfd.size, 100);
  });

  await t.step(
    "writes through a mapping are seen by read() on the fd and by another mapping",
    () => {
      using memfd = MemFd.create({ size: 4096 });
      using first = memfd.map();
      using second = memfd.map();
      encoder.encodeInto("through the mapping", bytesOf(first));
      assertEquals(decoder.decode(bytesOf(second).subarray(0, 19)), "through the mapping");
      const read = new Uint8Array(19);
      assertEquals(borrowFd(memfd.fd).readSync(read), 19);
      assertEquals(decoder.decode(read), "through the mapping");
    },
  );

  await t.step("map() at an offset sees the same bytes as the whole-file mapping", () => {
    using memfd = MemFd.create({ size: 8192 });
    using whole = memfd.map();
    using page = memfd.map({ offset: 4096, length: 4096 });
    bytesOf(page)[0] = 0xab;
    assertEquals(bytesOf(whole)[4096], 0xab);
    assertEquals(page.buffer.byteLength, 4096);
  });

  await t.step("a copyOnWrite mapping keeps its writes private", () => {
    using memfd = MemFd.create({ size: 4096 });
    using shared = memfd.map();
    using cow = memfd.map({ copyOnWrite: true });
    assert(cow.copyOnWrite);
    bytesOf(shared)[0] = 1;
    assertEquals(bytesOf(cow)[0], 1, "an untouched private page shows the file");
    bytesOf(cow)[0] = 2;
    assertEquals(bytesOf(shared)[0], 1);
  });

  await t.step("unmap() detaches the buffer and is idempotent", () => {
    using memfd = MemFd.create({ size: 4096 });
    const mapping = memfd.map();
    const view = bytesOf(mapping);
    const buffer = mapping.buffer;
    mapping.unmap();
    mapping.unmap();
    assertFalse(mapping.mapped);
    assert(buffer.detached);
    assertEquals(view.length, 0);
    assertEquals(view[0], undefined);
    assertEquals(mapping.byteLength, 4096);
    assertThrows(() => mapping.buffer, TypeError, "unmapped");
  });

  await t.step("unmap() leaves memory mapped that was moved with transfer()", () => {
    using memfd = MemFd.create({ size: 4096 });
    const mapping = memfd.map();
    const moved = mapping.buffer.transfer();
    mapping.unmap();
    assertFalse(mapping.mapped);
    new Uint8Array(moved)[0] = 3; // would crash had the pages been unmapped
    using check = memfd.map();
    assertEquals(bytesOf(check)[0], 3);
  });

  await t.step("close() unmaps every mapping, closes the fd and is idempotent", () => {
    const memfd = MemFd.create({ size: 4096 });
    const a = memfd.map();
    const b = memfd.map();
    const number = memfd.fd;
    memfd.close();
    memfd.close();
    assert(memfd.closed);
    assertFalse(a.mapped);
    assertFalse(b.mapped);
    assertThrows(() => memfd.fd, TypeError);
    assertThrows(() => memfd.map(), TypeError);
    assertEquals(Deno.inspect(memfd), "MemFd { closed }");
    assertThrows(() => memfd.size, TypeError);
    assertFalse(isOpen(number), "the fd number is closed");
  });

  await t.step("a mapping made by mapShared() outlives the fd", () => {
    const memfd = MemFd.create({ size: 4096 });
    const mapping = mapShared(memfd);
    memfd.close();
    assert(mapping.mapped, "mapShared() mappings are not tied to the MemFd");
    bytesOf(mapping)[0] = 9;
    assertEquals(bytesOf(mapping)[0], 9);
    mapping.unmap();
  });

  await t.step("mapShared() maps a regular file and writes reach the file", () => {
    const path = Deno.makeTempFileSync({ prefix: "fdpass-memfd-test-" });
    try {
      Deno.writeTextFileSync(path, "0123456789");
      {
        using file = openFd(path, { read: true, write: true });
        using mapping = mapShared(file);
        assertEquals(mapping.byteLength, 10);
        assertEquals(decoder.decode(bytesOf(mapping)), "0123456789");
        encoder.encodeInto("ab", bytesOf(mapping));
      }
      assertEquals(Deno.readTextFileSync(path), "ab23456789");
    } finally {
      Deno.removeSync(path);
    }
  });

  await t.step("a read-only fd maps with copyOnWrite, not shared-writable (EACCES)", () => {
    const path = Deno.makeTempFileSync({ prefix: "fdpass-memfd-test-" });
    try {
      Deno.writeTextFileSync(path, "read only");
      using file = openFd(path);
      assertErrno(() => mapShared(file), "EACCES", "mmap");
      using mapping = mapShared(file, { copyOnWrite: true });
      bytesOf(mapping)[0] = 0x52; // "R", private to this process
      assertEquals(Deno.readTextFileSync(path), "read only");
    } finally {
      Deno.removeSync(path);
    }
  });
}, { ignore: !linux });

leakCheckedTest("MemFd seals", async (t) => {
  await t.step("a new memfd has no seals; seal() adds them in a fixed order", () => {
    using memfd = MemFd.create({ size: 4096 });
    assertEquals(memfd.seals, []);
    memfd.seal(["grow", "shrink"]);
    assertEquals(memfd.seals, ["shrink", "grow"]);
    memfd.seal([]);
    assertEquals(memfd.seals, ["shrink", "grow"]);
  });

  await t.step("after the shrink seal, resize() smaller fails with EPERM; growing works", () => {
    using memfd = MemFd.create({ size: 4096 });
    memfd.seal(["shrink"]);
    const error = assertErrno(() => memfd.resize(100), "EPERM", "ftruncate");
    assert(error instanceof Deno.errors.PermissionDenied);
    assertEquals(memfd.size, 4096);
    memfd.resize(8192);
    assertEquals(memfd.size, 8192);
  });

  await t.step("after the grow seal, resize() larger fails with EPERM", () => {
    using memfd = MemFd.create({ size: 4096 });
    memfd.seal(["grow"]);
    assertErrno(() => memfd.resize(8192), "EPERM", "ftruncate");
    memfd.resize(0);
  });

  await t.step("the seal seal refuses further seals", () => {
    using memfd = MemFd.create();
    memfd.seal(["seal"]);
    assertErrno(() => memfd.seal(["shrink"]), "EPERM", "fcntl");
    assertEquals(memfd.seals, ["seal"]);
  });

  await t.step("the write seal fails with EBUSY while a writable shared mapping exists", () => {
    using memfd = MemFd.create({ size: 4096 });
    const mapping = memfd.map();
    bytesOf(mapping)[0] = 7;
    assertErrno(() => memfd.seal(["write"]), "EBUSY", "fcntl");
    mapping.unmap();
    memfd.seal(["write"]);
    assertEquals(memfd.seals, ["write"]);
    assertErrno(() => memfd.map(), "EPERM", "mmap");
    using readable = memfd.map({ copyOnWrite: true });
    assertEquals(bytesOf(readable)[0], 7);
  });

  await t.step("allowSealing: false starts with the seal seal", () => {
    using memfd = MemFd.create({ allowSealing: false });
    assertEquals(memfd.seals, ["seal"]);
    assertErrno(() => memfd.seal(["shrink"]), "EPERM", "fcntl");
  });

  await t.step("seals on a regular file fail with EINVAL", () => {
    const path = Deno.makeTempFileSync({ prefix: "fdpass-memfd-test-" });
    try {
      using file = MemFd.from(openFd(path, { read: true, write: true }));
      assertErrno(() => file.seals, "EINVAL", "fcntl");
    } finally {
      Deno.removeSync(path);
    }
  });
}, { ignore: !linux });

leakCheckedTest("MemFd passed over a socket", async (t) => {
  await t.step("the received fd maps the same memory: writes are seen both ways", () => {
    using memfd = MemFd.create({ size: 4096 });
    memfd.seal(["shrink", "grow"]);
    using mine = memfd.map();
    const [received] = passThroughSocket([memfd]);
    using theirs = MemFd.from(received!);
    assert(received!.closed, "MemFd.from() takes ownership");
    assertEquals(theirs.size, 4096);
    assertEquals(theirs.seals, ["shrink", "grow"]);
    using mapping = theirs.map();
    encoder.encodeInto("from the receiver", bytesOf(mapping));
    assertEquals(decoder.decode(bytesOf(mine).subarray(0, 17)), "from the receiver");
    encoder.encodeInto("from the sender!!", bytesOf(mine));
    assertEquals(decoder.decode(bytesOf(mapping).subarray(0, 17)), "from the sender!!");
  });

  await t.step("a seal added by the receiver binds the sender", () => {
    using memfd = MemFd.create({ size: 4096 });
    const [received] = passThroughSocket([memfd]);
    using theirs = MemFd.from(received!);
    theirs.seal(["shrink"]);
    assertErrno(() => memfd.resize(0), "EPERM", "ftruncate");
  });

  await t.step(
    "another process maps it, writes and signals an eventfd sent alongside",
    async () => {
      using memfd = MemFd.create({ name: "cross-process", size: 4096 });
      memfd.seal(["shrink", "grow"]);
      using mapping = memfd.map();
      encoder.encodeInto("question", bytesOf(mapping));
      using events = EventFd.create();
      const [mine, theirs] = UnixSocket.pair();
      const childCode = `
      import { EventFd, MemFd, UnixSocket } from ${
        JSON.stringify(new URL("../mod.ts", import.meta.url).href)
      };
      const socket = UnixSocket.from(${theirs.fd});
      const { fds } = socket.recvSync();
      const memfd = MemFd.from(fds[0]);
      const events = EventFd.from(fds[1]);
      const bytes = new Uint8Array(memfd.map().buffer);
      const question = new TextDecoder().decode(bytes.subarray(0, 8));
      new TextEncoder().encodeInto("answer to " + question, bytes.subarray(100));
      events.signal(7n);
      memfd.close();
      events.close();
      socket.close();
    `;
      const theirsFd = theirs.toOwnedFd();
      theirsFd.closeOnExec = false;
      const child = new Deno.Command(Deno.execPath(), {
        args: ["eval", "--quiet", "--no-lock", "--ext=ts", childCode],
        env: { DENO_NO_UPDATE_CHECK: "1" },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      theirsFd.close();
      const timeout = setTimeout(() => child.kill("SIGKILL"), 20_000);
      try {
        mine.sendSync("shared memory and events", { fds: [memfd, events] });
        const count = await events.wait({ signal: AbortSignal.timeout(20_000) });
        assertEquals(count, 7n);
        assertEquals(decoder.decode(bytesOf(mapping).subarray(100, 118)), "answer to question");
        const output = await child.output();
        assertEquals(output.code, 0, decoder.decode(output.stderr));
      } finally {
        clearTimeout(timeout);
        mine.close();
      }
    },
  );
}, { ignore: !linux });

leakCheckedTest("MemFd and mapShared() argument errors", async (t) => {
  await t.step("create() checks its options", () => {
    assertThrows(() => MemFd.create({ size: -1 }), RangeError, `Option "size"`);
    assertThrows(() => MemFd.create({ size: 1.5 }), RangeError, `Option "size"`);
    assertThrows(
      () => MemFd.create({ size: "1" as unknown as number }),
      TypeError,
      `Option "size"`,
    );
    assertThrows(() => MemFd.create({ name: "a\0b" }), TypeError, `"name"`);
    assertThrows(() => MemFd.create({ name: "x".repeat(250) }), RangeError, `Option "name"`);
    assertThrows(
      () => MemFd.create({ allowSealing: 1 as unknown as boolean }),
      TypeError,
      `Option "allowSealing"`,
    );
    assertThrows(() => MemFd.create(null as unknown as object), TypeError, `Argument "options"`);
  });

  await t.step("resize(), map() and seal() check their arguments", () => {
    using memfd = MemFd.create({ size: 4096 });
    assertThrows(() => memfd.resize(-1), RangeError, `Argument "size"`);
    assertThrows(() => memfd.resize(2 ** 53), RangeError, `Argument "size"`);
    assertThrows(() => memfd.map({ offset: -4096 }), RangeError, `Option "offset"`);
    assertThrows(
      () => memfd.map({ length: "1" as unknown as number }),
      TypeError,
      `Option "length"`,
    );
    assertThrows(
      () => memfd.map({ copyOnWrite: "yes" as unknown as boolean }),
      TypeError,
      `Option "copyOnWrite"`,
    );
    assertThrows(() => memfd.map({ length: 8192 }), RangeError, "SIGBUS");
    assertThrows(() => memfd.map({ offset: 4096 }), RangeError, "0 bytes");
    assertThrows(() => memfd.map({ offset: 8192 }), RangeError, "0 bytes");
    assertErrno(() => memfd.map({ offset: 1, length: 1 }), "EINVAL", "mmap");
    assertThrows(() => memfd.seal(["bogus" as "seal"]), TypeError, `Argument "seals"`);
    assertThrows(() => memfd.seal("shrink" as unknown as ["shrink"]), TypeError, `"seals"`);
    assertEquals(memfd.seals, [], "a rejected seal() adds nothing");
  });

  await t.step("an empty memfd cannot be mapped until resized", () => {
    using memfd = MemFd.create();
    assertThrows(() => memfd.map(), RangeError, "resize the file first");
  });

  await t.step("from() accepts only regular files and owned fds", () => {
    const [r, w] = pipe();
    assertThrows(() => MemFd.from(r), TypeError, "not a pipe");
    assertFalse(r.closed, "a refused fd stays with the caller");
    r.close();
    w.close();
    assertThrows(() => MemFd.from({ fd: 0 } as unknown as OwnedFd), TypeError, `Argument "fd"`);
    assertThrows(() => MemFd.from(-1), RangeError, `Argument "fd"`);
  });

  await t.step("mapShared() needs a length for an fd with no size", () => {
    using zero = openFd("/dev/zero", { read: true, write: true });
    assertThrows(() => mapShared(zero), TypeError, `Option "length" is required`);
    using mapping = mapShared(zero, { length: 4096 });
    assertEquals(bytesOf(mapping)[0], 0);
    assertThrows(() => mapShared("3" as unknown as number), TypeError, `Argument "fd"`);
  });
}, { ignore: !linux });

leakCheckedTest("EventFd counter semantics", async (t) => {
  await t.step("signal() adds and tryWait() takes the whole count", () => {
    using events = EventFd.create();
    assertEquals(events.tryWait(), null);
    events.signal();
    events.signal(2n);
    events.signal(4);
    assertEquals(events.tryWait(), 7n);
    assertEquals(events.tryWait(), null);
  });

  await t.step("initialValue is pending at once; waitSync() takes it", () => {
    using events = EventFd.create({ initialValue: 5 });
    assertEquals(events.waitSync(), 5n);
    assertEquals(events.tryWait(), null);
  });

  await t.step("semaphore mode takes one at a time", () => {
    using events = EventFd.create({ semaphore: true });
    events.signal(3n);
    assertEquals(events.waitSync(), 1n);
    assertEquals(events.tryWait(), 1n);
    assertEquals(events.tryWait(), 1n);
    assertEquals(events.tryWait(), null);
  });

  await t.step("the counter holds values up to 2^64 - 2", () => {
    using events = EventFd.create();
    events.signal(0xffff_ffff_ffff_fffen);
    assertEquals(events.tryWait(), 0xffff_ffff_ffff_fffen);
  });

  await t.step("close() is idempotent and the fd is gone", () => {
    const events = EventFd.create();
    events.close();
    events.close();
    assert(events.closed);
    assertThrows(() => events.signal(), TypeError);
    assertThrows(() => events.tryWait(), TypeError);
    assertEquals(Deno.inspect(events), "EventFd { closed }");
  });
}, { ignore: !linux });

leakCheckedTest("EventFd async wait", async (t) => {
  await t.step("wait() resolves with the count once signalled", async () => {
    using events = EventFd.create();
    const woken = events.wait();
    await Promise.resolve();
    events.signal(3n);
    assertEquals(await woken, 3n);
    assertEquals(pollerStats().waiters, 0);
  });

  await t.step("wait() returns at once when the counter is already non-zero", async () => {
    using events = EventFd.create({ initialValue: 2 });
    assertEquals(await events.wait(), 2n);
  });

  await t.step("two waiters on a semaphore each get one count", async () => {
    using events = EventFd.create({ semaphore: true });
    const first = events.wait();
    const second = events.wait();
    events.signal(2n);
    assertEquals(await Promise.all([first, second]), [1n, 1n]);
    assertEquals(events.tryWait(), null);
  });

  await t.step("an aborted wait rejects with the reason and takes nothing", async () => {
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
  });

  await t.step("closing the eventfd rejects a pending wait with BadResource", async () => {
    const events = EventFd.create();
    const waiting = events.wait();
    events.close();
    await assertRejects(() => waiting, Deno.errors.BadResource);
  });
}, { ignore: !linux });

leakCheckedTest("EventFd passed over a socket", async (t) => {
  await t.step("a signal on the received copy wakes the original", async () => {
    using events = EventFd.create();
    const [received] = passThroughSocket([events]);
    using theirs = EventFd.from(received!);
    assert(received!.closed, "EventFd.from() takes ownership");
    const woken = events.wait();
    theirs.signal(9n);
    assertEquals(await woken, 9n);
  });

  await t.step("from() puts a blocking received eventfd in nonblocking mode", () => {
    using events = EventFd.create();
    const [received] = passThroughSocket([events]);
    received!.nonblocking = false;
    using theirs = EventFd.from(received!);
    assertEquals(theirs.tryWait(), null, "tryWait() must not block");
  });

  await t.step("from() refuses fds that are not eventfds", () => {
    const [r, w] = pipe();
    assertThrows(() => EventFd.from(r), TypeError, "not a pipe");
    assertFalse(r.closed);
    r.close();
    w.close();
    using memfd = MemFd.create();
    assertThrows(() => EventFd.from(memfd.fd), TypeError, "not a file");
    assertThrows(() => EventFd.from("1" as unknown as number), TypeError, `Argument "fd"`);
  });
}, { ignore: !linux });

leakCheckedTest("EventFd argument errors", async (t) => {
  await t.step("create() checks its options", () => {
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
  });

  await t.step("signal() checks its count", () => {
    using events = EventFd.create();
    assertThrows(() => events.signal(-1n), RangeError, `Argument "n"`);
    assertThrows(() => events.signal(0xffff_ffff_ffff_ffffn), RangeError, `Argument "n"`);
    assertThrows(() => events.signal(1.5), TypeError, `Argument "n"`);
    assertThrows(() => events.signal("1" as unknown as number), TypeError, `Argument "n"`);
    assertEquals(events.tryWait(), null, "a rejected signal() adds nothing");
  });
}, { ignore: !linux });

Deno.test({
  name: "MemFd.create() and EventFd.create() throw NotSupported outside Linux",
  ignore: linux,
  fn(): void {
    assertThrows(() => MemFd.create(), Deno.errors.NotSupported);
    assertThrows(() => EventFd.create(), Deno.errors.NotSupported);
  },
});
