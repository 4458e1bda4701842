/**
 * MemFd (src/extras/memfd.ts): creating, sizing, mapping and sealing an
 * anonymous shared-memory file, and passing it to another process. The
 * mappings themselves are tested in shared_mapping_test.ts.
 *
 * @module
 */

import { assert, assertEquals, assertFalse, assertThrows } from "@std/assert";
import {
  borrowFd,
  ErrnoError,
  EventFd,
  MemFd,
  openFd,
  type OwnedFd,
  pipe,
  UnixSocket,
} from "../mod.ts";
import { libc } from "../ffi/libc.ts";
import { decoder, encoder, isOpen, leakCheckedTest, startPoller } from "./helpers.ts";

const { features } = libc().layout;
const noMemfd = !features.memfd;
const noSeals = !features.memfd || !features.fileSeals;
const noEventfd = !features.eventfd;

// The cross-process test waits on an EventFd in the poller.
await startPoller();

function bytesOf(mapping: { buffer: ArrayBuffer }): Uint8Array {
  return new Uint8Array(mapping.buffer);
}

function assertErrno(fn: () => unknown, code: string, syscall: string): ErrnoError {
  const error = assertThrows(fn, ErrnoError);
  assertEquals(error.code, code);
  assertEquals(error.syscall, syscall);
  return error;
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

leakCheckedTest("MemFd.create() with a size reports it and maps as zeros", () => {
  using memfd = MemFd.create({ name: "test", size: 10000 });
  assertEquals(memfd.size, 10000);
  assertFalse(memfd.closed);
  using mapping = memfd.map();
  assertEquals(mapping.byteLength, 10000);
  assert(bytesOf(mapping).every((byte) => byte === 0));
}, { ignore: noMemfd });

leakCheckedTest("MemFd.resize() grows and shrinks the file", () => {
  using memfd = MemFd.create();
  assertEquals(memfd.size, 0);
  memfd.resize(8192);
  assertEquals(memfd.size, 8192);
  memfd.resize(100);
  assertEquals(memfd.size, 100);
}, { ignore: noMemfd });

leakCheckedTest(
  "writes through a MemFd mapping are seen by read() on the fd and by another mapping",
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
  { ignore: noMemfd },
);

leakCheckedTest("MemFd.map() at an offset sees the same bytes as the whole-file mapping", () => {
  using memfd = MemFd.create({ size: 8192 });
  using whole = memfd.map();
  using page = memfd.map({ offset: 4096, length: 4096 });
  bytesOf(page)[0] = 0xab;
  assertEquals(bytesOf(whole)[4096], 0xab);
  assertEquals(page.buffer.byteLength, 4096);
}, { ignore: noMemfd });

leakCheckedTest("MemFd.close() unmaps every mapping, closes the fd and is idempotent", () => {
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
}, { ignore: noMemfd });

leakCheckedTest("a new MemFd has no seals, and seal() adds them in a fixed order", () => {
  using memfd = MemFd.create({ size: 4096 });
  assertEquals(memfd.seals, []);
  memfd.seal(["grow", "shrink"]);
  assertEquals(memfd.seals, ["shrink", "grow"]);
  memfd.seal([]);
  assertEquals(memfd.seals, ["shrink", "grow"]);
}, { ignore: noSeals });

leakCheckedTest(
  "after the shrink seal, MemFd.resize() smaller fails with EPERM and growing works",
  () => {
    using memfd = MemFd.create({ size: 4096 });
    memfd.seal(["shrink"]);
    const error = assertErrno(() => memfd.resize(100), "EPERM", "ftruncate");
    assert(error instanceof Deno.errors.PermissionDenied);
    assertEquals(memfd.size, 4096);
    memfd.resize(8192);
    assertEquals(memfd.size, 8192);
  },
  { ignore: noSeals },
);

leakCheckedTest("after the grow seal, MemFd.resize() larger fails with EPERM", () => {
  using memfd = MemFd.create({ size: 4096 });
  memfd.seal(["grow"]);
  assertErrno(() => memfd.resize(8192), "EPERM", "ftruncate");
  memfd.resize(0);
}, { ignore: noSeals });

leakCheckedTest("after the seal seal, MemFd.seal() fails with EPERM", () => {
  using memfd = MemFd.create();
  memfd.seal(["seal"]);
  assertErrno(() => memfd.seal(["shrink"]), "EPERM", "fcntl");
  assertEquals(memfd.seals, ["seal"]);
}, { ignore: noSeals });

leakCheckedTest("the write seal fails with EBUSY while a writable shared mapping exists", () => {
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
}, { ignore: noSeals });

leakCheckedTest("MemFd.create() with allowSealing: false starts with the seal seal", () => {
  using memfd = MemFd.create({ allowSealing: false });
  assertEquals(memfd.seals, ["seal"]);
  assertErrno(() => memfd.seal(["shrink"]), "EPERM", "fcntl");
}, { ignore: noSeals });

leakCheckedTest("MemFd.seals of a regular file fails with EINVAL", () => {
  const path = Deno.makeTempFileSync({ prefix: "fdpass-memfd-test-" });
  try {
    using file = MemFd.from(openFd(path, { read: true, write: true }));
    assertErrno(() => file.seals, "EINVAL", "fcntl");
  } finally {
    Deno.removeSync(path);
  }
}, { ignore: noSeals });

leakCheckedTest(
  "a MemFd received over a socket maps the same memory, and writes are seen both ways",
  () => {
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
  },
  { ignore: noSeals },
);

leakCheckedTest("a seal added by the receiver of a MemFd binds the sender", () => {
  using memfd = MemFd.create({ size: 4096 });
  const [received] = passThroughSocket([memfd]);
  using theirs = MemFd.from(received!);
  theirs.seal(["shrink"]);
  assertErrno(() => memfd.resize(0), "EPERM", "ftruncate");
}, { ignore: noSeals });

leakCheckedTest(
  "another process maps a received MemFd, writes and signals an EventFd sent alongside",
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
  { ignore: noSeals || noEventfd },
);

leakCheckedTest("MemFd.create() checks its options", () => {
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
}, { ignore: noMemfd });

leakCheckedTest("MemFd.resize(), map() and seal() check their arguments", () => {
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
}, { ignore: noMemfd });

leakCheckedTest("an empty MemFd cannot be mapped until resized", () => {
  using memfd = MemFd.create();
  assertThrows(() => memfd.map(), RangeError, "resize the file first");
}, { ignore: noMemfd });

leakCheckedTest("MemFd.from() accepts only regular files and owned fds", () => {
  const [r, w] = pipe();
  assertThrows(() => MemFd.from(r), TypeError, "not a pipe");
  assertFalse(r.closed, "a refused fd stays with the caller");
  r.close();
  w.close();
  assertThrows(() => MemFd.from({ fd: 0 } as unknown as OwnedFd), TypeError, `Argument "fd"`);
  assertThrows(() => MemFd.from(-1), RangeError, `Argument "fd"`);
}, { ignore: noMemfd });

leakCheckedTest(
  "MemFd.create() throws NotSupported where memfd_create is missing",
  () => {
    assertThrows(() => MemFd.create(), Deno.errors.NotSupported);
  },
  { ignore: !noMemfd },
);
