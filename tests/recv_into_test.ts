/**
 * UnixSocket.recvIntoSync() and recvInto() (src/unix_socket.ts,
 * src/core/transfer.ts, src/core/message.ts, src/async/drivers.ts): the
 * receive into the caller's buffers, blocking and async. Data and fds
 * land in the caller's arrays, the counts in the caller's result object;
 * truncation is flagged; every fd is accounted for on every path (a too
 * small fds array and MSG_CTRUNC close all of them and throw the typed
 * error); bad arguments consume nothing; stream, seqpacket and dgram
 * sockets; end of stream; nonblocking sockets wait as recvSync() does. The
 * async form waits in the poller, checks the caller's buffers again after
 * its wait, and takes nothing when aborted or given detached memory.
 *
 * @module
 */

import {
  assert,
  assertEquals,
  assertFalse,
  assertGreaterOrEqual,
  assertInstanceOf,
  assertNotEquals,
  assertStrictEquals,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import {
  borrowFd,
  ControlTruncatedError,
  openFd,
  OwnedFd,
  pipe,
  type ReceivedInto,
  UnixSocket,
  waitReadable,
} from "../mod.ts";
import { libc } from "../ffi/libc.ts";
import {
  closeAll,
  decoder,
  encoder,
  isOpen,
  isReady,
  leakCheckedTest,
  macrotask,
  pollUntilReadable,
  readUpTo,
  rejectionOf,
  startPoller,
  StopReason,
  tempSocketPath,
  track,
  within,
} from "./helpers.ts";

// One test waits in the poller: its own fds are created before any census.
await startPoller();

const TYPES = ["stream", "seqpacket", "dgram"] as const;

function newResult(): ReceivedInto {
  return { bytes: 0, fds: 0, truncated: false, credentials: null };
}

/** Whether `fd` has FD_CLOEXEC set. */
function closeOnExec(fd: number): boolean {
  const { fcntl, layout } = libc();
  return (fcntl(fd, layout.constants.F_GETFD, 0) & layout.constants.FD_CLOEXEC) !== 0;
}

/** Closes the first `count` numbers of `fds`, which the caller owns. */
function closeNumbers(fds: Int32Array, count: number): void {
  for (let i = 0; i < count; i++) OwnedFd.closeNumber(fds[i]!);
}

for (const type of TYPES) {
  leakCheckedTest(
    `recvIntoSync() writes the data into the caller's buffer and the fds into the caller's Int32Array (${type})`,
    () => {
      const [a, b] = UnixSocket.pair(type);
      const [readEnd, writeEnd] = pipe();
      using devNull = openFd("/dev/null");
      try {
        a.sendSync("hello", { fds: [writeEnd, devNull] });
        const buffer = new Uint8Array(64).fill(0xaa);
        const fds = new Int32Array(4).fill(-1);
        const result = newResult();
        assertStrictEquals(b.recvIntoSync(buffer, fds, result), result);
        assertEquals(result, { bytes: 5, fds: 2, truncated: false, credentials: null });
        assertEquals(decoder.decode(buffer.subarray(0, 5)), "hello");
        assertEquals([...buffer.subarray(5)], new Array(59).fill(0xaa), "bytes past the data");
        assertEquals(fds[2], -1, "slots past the fds");
        for (const fd of [fds[0]!, fds[1]!]) {
          assert(isOpen(fd));
          assert(closeOnExec(fd), `fd ${fd} is not close-on-exec`);
          assertFalse([writeEnd.fd, devNull.fd].includes(fd), "the receiver's own numbers");
        }
        // The first one is the pipe's write end: the caller can use it.
        borrowFd(fds[0]!).writeAllSync("through the received fd");
        closeNumbers(fds, 2);
        writeEnd.close();
        assertEquals(decoder.decode(readUpTo(readEnd, 64)), "through the received fd");
      } finally {
        closeAll(a, b, readEnd, writeEnd);
      }
    },
  );
}

leakCheckedTest("recvIntoSync() reuses the result object it is given for every message", () => {
  const [a, b] = UnixSocket.pair("seqpacket");
  using devNull = openFd("/dev/null");
  try {
    a.sendSync("first", { fds: [devNull] });
    a.sendSync("2nd");
    const buffer = new Uint8Array(16);
    const fds = new Int32Array(2);
    const result = newResult();
    const one = b.recvIntoSync(buffer, fds, result)!;
    assertEquals([one.bytes, one.fds], [5, 1]);
    closeNumbers(fds, one.fds);
    const two = b.recvIntoSync(buffer, fds, result)!;
    assertStrictEquals(two, one);
    assertEquals([two.bytes, two.fds], [3, 0]);
    assertEquals(decoder.decode(buffer.subarray(0, two.bytes)), "2nd");
  } finally {
    closeAll(a, b);
  }
});

leakCheckedTest("recvIntoSync() without a result object returns a new one for each message", () => {
  const [a, b] = UnixSocket.pair("seqpacket");
  try {
    a.sendSync("one");
    a.sendSync("two");
    const buffer = new Uint8Array(8);
    const first = b.recvIntoSync(buffer)!;
    const second = b.recvIntoSync(buffer)!;
    assertNotEquals(first, null);
    assert(first !== second);
    assertEquals(first, { bytes: 3, fds: 0, truncated: false, credentials: null });
    assertEquals(decoder.decode(buffer.subarray(0, second.bytes)), "two");
  } finally {
    closeAll(a, b);
  }
});

leakCheckedTest("recvIntoSync() copies messages longer than 64 bytes whole", () => {
  const [a, b] = UnixSocket.pair("seqpacket");
  try {
    const data = new Uint8Array(200_000).map((_, i) => (i * 7) & 0xff);
    a.sendSync(data);
    const buffer = new Uint8Array(262_144);
    const result = b.recvIntoSync(buffer)!;
    assertEquals(result.bytes, data.byteLength);
    assertFalse(result.truncated);
    assertEquals(buffer.subarray(0, result.bytes), data);
  } finally {
    closeAll(a, b);
  }
});

for (const type of ["seqpacket", "dgram"] as const) {
  leakCheckedTest(
    `recvIntoSync() flags a ${type} message longer than the buffer as truncated and drops the rest`,
    () => {
      const [a, b] = UnixSocket.pair(type);
      try {
        a.sendSync("0123456789");
        a.sendSync("next");
        const buffer = new Uint8Array(4);
        const result = b.recvIntoSync(buffer)!;
        assertEquals(result, { bytes: 4, fds: 0, truncated: true, credentials: null });
        assertEquals(decoder.decode(buffer), "0123");
        // The rest of the record is gone: the next call gets the next one.
        const next = b.recvIntoSync(buffer)!;
        assertEquals([next.bytes, next.truncated], [4, false]);
        assertEquals(decoder.decode(buffer), "next");
      } finally {
        closeAll(a, b);
      }
    },
  );
}

leakCheckedTest(
  "recvIntoSync() on a stream delivers a message longer than the buffer in pieces, never truncated",
  () => {
    const [a, b] = UnixSocket.pair();
    try {
      a.sendSync("0123456789");
      const buffer = new Uint8Array(4);
      const pieces: string[] = [];
      for (let got = 0; got < 10;) {
        const result = b.recvIntoSync(buffer)!;
        assertFalse(result.truncated);
        pieces.push(decoder.decode(buffer.subarray(0, result.bytes)));
        got += result.bytes;
      }
      assertEquals(pieces, ["0123", "4567", "89"]);
    } finally {
      closeAll(a, b);
    }
  },
);

for (const type of TYPES) {
  leakCheckedTest(
    `recvIntoSync() with an fds array too small closes every received fd and throws ControlTruncatedError (${type})`,
    () => {
      const [a, b] = UnixSocket.pair(type);
      const pipes = [pipe(), pipe(), pipe()];
      try {
        a.sendSync("three", { fds: pipes.map(([, w]) => w) });
        for (const [, w] of pipes) w.close();
        const buffer = new Uint8Array(16);
        const fds = new Int32Array(2).fill(-1);
        const result = newResult();
        const error = assertThrows(
          () => b.recvIntoSync(buffer, fds, result),
          ControlTruncatedError,
        );
        assertEquals([error.reason, error.received], ["max-fds", 3]);
        assertStringIncludes(error.message, "Received 3 fds, more than the fds array holds (2)");
        assertEquals(decoder.decode(error.data), "three");
        // The data was delivered into the buffer too; nothing else was written.
        assertEquals(decoder.decode(buffer.subarray(0, 5)), "three");
        assertEquals([...fds], [-1, -1]);
        assertEquals(result, newResult());
        // Every received copy of the write ends was closed: the pipes are at
        // end of file, which they would not be while a copy stayed open.
        for (const [r] of pipes) {
          assert(isReady(r.fd), "a received write end is still open");
          assertEquals(r.readSync(new Uint8Array(1)), null);
        }
      } finally {
        for (const [r, w] of pipes) closeAll(r, w);
        closeAll(a, b);
      }
    },
  );
}

for (const fds of [null, undefined]) {
  leakCheckedTest(
    `recvIntoSync() with fds ${fds} refuses a message that carries fds and closes them`,
    () => {
      const [a, b] = UnixSocket.pair();
      using devNull = openFd("/dev/null");
      try {
        a.sendSync("x", { fds: [devNull] });
        const error = assertThrows(
          () => b.recvIntoSync(new Uint8Array(4), fds),
          ControlTruncatedError,
        );
        assertEquals([error.reason, error.received], ["max-fds", 1]);
        // A message without fds is fine then.
        a.sendSync("y");
        assertEquals(b.recvIntoSync(new Uint8Array(4), fds)!.bytes, 1);
      } finally {
        closeAll(a, b);
      }
    },
  );
}

leakCheckedTest(
  "recvIntoSync() at the fd limit (MSG_CTRUNC) closes the fds that arrived and throws ControlTruncatedError (kernel)",
  async () => {
    const temp = tempSocketPath();
    const listener = UnixSocket.listen(temp.path);
    const script = `${temp.dir}/child.ts`;
    // The child fills its fd table up to two free numbers, then receives
    // five fds into an array with room for eight: the kernel installs two
    // and sets MSG_CTRUNC (scm_detach_fds in net/core/scm.c).
    Deno.writeTextFileSync(
      script,
      `
      import { ControlTruncatedError, openFd, UnixSocket } from ${
        JSON.stringify(new URL("../mod.ts", import.meta.url).href)
      };
      import { libc } from ${JSON.stringify(new URL("../ffi/libc.ts", import.meta.url).href)};
      const openCount = () => {
        let n = 0;
        for (let fd = 0; fd < 256; fd++) if (libc().fcntl(fd, libc().layout.constants.F_GETFD, 0) >= 0) n++;
        return n;
      };
      const socket = UnixSocket.connectSync(Deno.args[0]);
      const filler = [];
      for (;;) {
        try { filler.push(openFd("/dev/null")); } catch (error) { if (error.code === "EMFILE") break; throw error; }
      }
      filler.pop().close();
      filler.pop().close();
      const before = openCount();
      socket.sendSync("ready");
      const fds = new Int32Array(8).fill(-1);
      let report;
      try {
        const result = socket.recvIntoSync(new Uint8Array(16), fds);
        report = { outcome: "message", fds: result?.fds ?? null };
      } catch (error) {
        report = error instanceof ControlTruncatedError
          ? { outcome: "truncated", reason: error.reason, received: error.received, data: new TextDecoder().decode(error.data) }
          : { outcome: "error", error: String(error) };
      }
      const after = openCount();
      for (const fd of filler) fd.close();
      socket.close();
      console.log(JSON.stringify({ ...report, before, after, untouched: [...fds].every((n) => n === -1) }));
      `,
    );
    const child = new Deno.Command("sh", {
      args: [
        "-c",
        `ulimit -n 64 && exec "$0" run --quiet --no-lock --allow-ffi "$1" "$2"`,
        Deno.execPath(),
        script,
        temp.path,
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const pipes = Array.from({ length: 5 }, () => pipe());
    try {
      await pollUntilReadable(listener.fd, "the child to connect");
      using connection = listener.acceptSync();
      await pollUntilReadable(connection.fd, "the child to fill its fd table");
      assertEquals(decoder.decode(connection.recvSync()!.data), "ready");
      connection.sendSync("five", { fds: pipes.map(([, w]) => w) });
      const output = await child.output();
      const stderr = decoder.decode(output.stderr);
      assert(output.success, stderr);
      const report = JSON.parse(decoder.decode(output.stdout));
      assertEquals(report.outcome, "truncated", JSON.stringify(report) + stderr);
      assertEquals(
        [report.reason, report.received, report.data, report.untouched],
        ["kernel", 2, "five", true],
      );
      assertEquals(report.after, report.before, "the child kept some of the arrived fds");
    } finally {
      try {
        child.kill();
      } catch {
        // Already exited.
      }
      for (const [r, w] of pipes) closeAll(r, w);
      listener.close();
      temp.cleanup();
    }
  },
);

leakCheckedTest(
  "recvIntoSync() checks its arguments before receiving anything, naming the bad one",
  async (t) => {
    const [a, b] = UnixSocket.pair();
    using devNull = openFd("/dev/null");
    try {
      a.sendSync("kept", { fds: [devNull] });
      const good = new Uint8Array(8);
      const detached = new Uint8Array(8);
      detached.buffer.transfer();
      const resizable = new ArrayBuffer(8, { maxByteLength: 16 });
      const outOfBounds = new Uint8Array(resizable, 4, 4);
      resizable.resize(2);
      const detachedFds = new Int32Array(4);
      detachedFds.buffer.transfer();
      const cases: [string, () => unknown, ErrorConstructor | RangeErrorConstructor, string][] = [
        [
          "a buffer that is not a Uint8Array",
          () => b.recvIntoSync(new ArrayBuffer(8) as unknown as Uint8Array),
          TypeError,
          'Argument "buffer" must be a Uint8Array',
        ],
        [
          "a detached buffer",
          () => b.recvIntoSync(detached),
          TypeError,
          'Argument "buffer" cannot be used',
        ],
        [
          "a view out of bounds of its resized buffer",
          () => b.recvIntoSync(outOfBounds),
          TypeError,
          'Argument "buffer" cannot be used',
        ],
        [
          "an empty buffer on a stream",
          () => b.recvIntoSync(new Uint8Array(0)),
          RangeError,
          'Argument "buffer" must not be empty on a stream socket',
        ],
        [
          "fds that are not an Int32Array",
          () => b.recvIntoSync(good, [] as unknown as Int32Array),
          TypeError,
          'Argument "fds" must be an Int32Array',
        ],
        [
          "fds in a Uint32Array",
          () => b.recvIntoSync(good, new Uint32Array(4) as unknown as Int32Array),
          TypeError,
          'Argument "fds" must be an Int32Array',
        ],
        [
          "a detached fds array",
          () => b.recvIntoSync(good, detachedFds),
          TypeError,
          'Argument "fds" cannot be used',
        ],
        [
          "a result that is not an object",
          () => b.recvIntoSync(good, null, 5 as unknown as ReceivedInto),
          TypeError,
          'Argument "result" must be an object',
        ],
      ];
      for (const [what, call, type, message] of cases) {
        await t.step(what, () => {
          const error = assertThrows(call, type as ErrorConstructor);
          assertStringIncludes((error as Error).message, message);
        });
      }
      // Nothing was consumed: the message and its fd are still there.
      const message = b.recvSync()!;
      assertEquals(decoder.decode(message.data), "kept");
      assertEquals(message.fds.length, 1);
      message.fds[0]!.close();
    } finally {
      closeAll(a, b);
    }
  },
);

leakCheckedTest("recvIntoSync() on a closed socket throws a TypeError", () => {
  const [a, b] = UnixSocket.pair();
  a.close();
  b.close();
  assertThrows(() => b.recvIntoSync(new Uint8Array(4)), TypeError, "closed");
});

leakCheckedTest("recvIntoSync() accepts a buffer on a resizable or shared ArrayBuffer", () => {
  const [a, b] = UnixSocket.pair("seqpacket");
  try {
    a.sendSync("resizable");
    a.sendSync("shared");
    const resizable = new Uint8Array(new ArrayBuffer(4, { maxByteLength: 64 }));
    (resizable.buffer as ArrayBuffer).resize(32); // a length-tracking view grows with it
    const one = b.recvIntoSync(resizable)!;
    assertEquals(decoder.decode(resizable.subarray(0, one.bytes)), "resizable");
    const shared = new Uint8Array(new SharedArrayBuffer(16));
    const two = b.recvIntoSync(shared)!;
    assertEquals(decoder.decode(shared.slice(0, two.bytes)), "shared");
  } finally {
    closeAll(a, b);
  }
});

leakCheckedTest(
  "recvIntoSync() with a frozen result object closes the fds it received and throws",
  () => {
    const [a, b] = UnixSocket.pair();
    using devNull = openFd("/dev/null");
    try {
      a.sendSync("x", { fds: [devNull, devNull] });
      a.sendSync("y");
      const frozen = Object.freeze(newResult());
      assertThrows(() => b.recvIntoSync(new Uint8Array(4), new Int32Array(4), frozen), TypeError);
      // The message was taken (and its fds closed, which the fd census checks).
      assertEquals(decoder.decode(b.recvSync()!.data), "y");
    } finally {
      closeAll(a, b);
    }
  },
);

leakCheckedTest(
  "recvIntoSync() returns null at end of stream and leaves the result as it was",
  () => {
    const [a, b] = UnixSocket.pair();
    a.sendSync("last");
    a.close();
    const buffer = new Uint8Array(8);
    const result = newResult();
    assertEquals(b.recvIntoSync(buffer, null, result)!.bytes, 4);
    const before = { ...result };
    assertEquals(b.recvIntoSync(buffer, null, result), null);
    assertEquals(result, before);
    assertEquals(b.recvIntoSync(buffer, null, result), null);
    b.close();
  },
);

leakCheckedTest(
  "recvIntoSync() returns null for an empty record on seqpacket, as recvSync()",
  () => {
    const [a, b] = UnixSocket.pair("seqpacket");
    using devNull = openFd("/dev/null");
    try {
      a.sendSync("");
      assertEquals(b.recvIntoSync(new Uint8Array(4)), null);
      // An empty record with fds is a message.
      a.sendSync("", { fds: [devNull] });
      const fds = new Int32Array(1);
      assertEquals(b.recvIntoSync(new Uint8Array(4), fds), {
        bytes: 0,
        fds: 1,
        truncated: false,
        credentials: null,
      });
      closeNumbers(fds, 1);
    } finally {
      closeAll(a, b);
    }
  },
);

leakCheckedTest("recvIntoSync() returns an empty datagram as a message, not as the end", () => {
  const [a, b] = UnixSocket.pair("dgram");
  try {
    a.sendSync("");
    // A zero-length buffer is fine on a datagram socket.
    assertEquals(b.recvIntoSync(new Uint8Array(0)), {
      bytes: 0,
      fds: 0,
      truncated: false,
      credentials: null,
    });
  } finally {
    closeAll(a, b);
  }
});

leakCheckedTest(
  "recvIntoSync() on a nonblocking socket waits for a message, as recvSync() does",
  async (t) => {
    for (const method of ["recvIntoSync", "recvSync"] as const) {
      await t.step(method, async () => {
        const [a, b] = UnixSocket.pair();
        try {
          borrowFd(b.fd).nonblocking = true;
          // A shell writes to the other end after 200 ms; until then the
          // receive waits in poll instead of failing with EAGAIN.
          borrowFd(a.fd).closeOnExec = false;
          const shell = new Deno.Command("bash", {
            args: ["-c", `sleep 0.2; printf late >&${a.fd}`],
            stdin: "null",
          }).spawn();
          borrowFd(a.fd).closeOnExec = true;
          const start = performance.now();
          let text: string;
          if (method === "recvIntoSync") {
            const buffer = new Uint8Array(8);
            const result = b.recvIntoSync(buffer)!;
            text = decoder.decode(buffer.subarray(0, result.bytes));
          } else {
            text = decoder.decode(b.recvSync()!.data);
          }
          assertGreaterOrEqual(performance.now() - start, 150);
          assertEquals(text, "late");
          assert((await shell.status).success);
        } finally {
          closeAll(a, b);
        }
      });
    }
  },
);

leakCheckedTest("recvIntoSync() delivers SCM_CREDENTIALS when passCredentials is on", () => {
  const [a, b] = UnixSocket.pair("seqpacket");
  try {
    b.passCredentials = true;
    a.sendSync("who");
    // An fds array with room: the SCM_CREDENTIALS message is not taken for fds.
    const fds = new Int32Array(8).fill(-1);
    const result = b.recvIntoSync(new Uint8Array(8), fds)!;
    assertEquals([result.bytes, result.fds], [3, 0]);
    assertEquals(result.credentials?.pid, Deno.pid);
    assertEquals(fds[0], -1);
    // With fds too: both arrive.
    using devNull = openFd("/dev/null");
    a.sendSync("fd", { fds: [devNull] });
    const both = b.recvIntoSync(new Uint8Array(8), fds)!;
    assertEquals([both.bytes, both.fds, both.credentials?.pid], [2, 1, Deno.pid]);
    closeNumbers(fds, 1);
  } finally {
    closeAll(a, b);
  }
}, { ignore: !libc().layout.features.passCredentials });

leakCheckedTest(
  "sendSync() takes the Int32Array that recvIntoSync() filled, to pass the fds on",
  () => {
    const [a, b] = UnixSocket.pair();
    const [c, d] = UnixSocket.pair();
    const [readEnd, writeEnd] = pipe();
    try {
      a.sendSync("hop", { fds: [writeEnd] });
      writeEnd.close();
      const buffer = new Uint8Array(8);
      const fds = new Int32Array(4);
      const result = b.recvIntoSync(buffer, fds)!;
      c.sendSync(buffer.subarray(0, result.bytes), { fds: fds.subarray(0, result.fds) });
      closeNumbers(fds, result.fds);
      const message = d.recvSync()!;
      assertEquals(decoder.decode(message.data), "hop");
      using forwarded = message.fds[0]!;
      forwarded.writeAllSync("two hops");
      forwarded.close();
      assertEquals(decoder.decode(readUpTo(readEnd, 16)), "two hops");
      // A negative number in the array is refused by name.
      assertThrows(
        () => c.sendSync("x", { fds: new Int32Array([-1]) }),
        RangeError,
        'Argument "fds[0]"',
      );
    } finally {
      closeAll(a, b, c, d, readEnd, writeEnd);
    }
  },
);

leakCheckedTest("recvIntoSync() and sendSync() loop many times without leaking fds", () => {
  const [a, b] = UnixSocket.pair();
  using devNull = openFd("/dev/null");
  try {
    const buffer = new Uint8Array(16);
    const fds = new Int32Array(8);
    const result = newResult();
    const data = encoder.encode("m");
    for (let i = 0; i < 2000; i++) {
      const count = (i % 8) + 1;
      a.sendSync(data, { fds: new Array(count).fill(devNull) });
      const got = b.recvIntoSync(buffer, fds, result)!;
      assertEquals([got.bytes, got.fds], [1, count]);
      closeNumbers(fds, got.fds);
    }
  } finally {
    closeAll(a, b);
  }
});

leakCheckedTest(
  "OwnedFd.closeNumber() closes a number the caller owns and throws EBADF for one that is not open",
  () => {
    const [a, b] = UnixSocket.pair();
    using devNull = openFd("/dev/null");
    try {
      a.sendSync("x", { fds: [devNull] });
      const fds = new Int32Array(1);
      b.recvIntoSync(new Uint8Array(4), fds);
      const n = fds[0]!;
      assert(isOpen(n));
      OwnedFd.closeNumber(n);
      assertFalse(isOpen(n));
      const error = assertThrows(() => OwnedFd.closeNumber(n), Error);
      assertEquals((error as { code?: string }).code, "EBADF");
      assertThrows(() => OwnedFd.closeNumber(-1), RangeError, 'Argument "fd"');
      assertThrows(() => OwnedFd.closeNumber(1.5), RangeError, 'Argument "fd"');
      assertThrows(() => OwnedFd.closeNumber("3" as unknown as number), TypeError, 'Argument "fd"');
    } finally {
      closeAll(a, b);
    }
  },
);

leakCheckedTest(
  "OwnedFd.closeNumber() rejects an async wait on that number, as OwnedFd.close() does",
  async () => {
    const [a, b] = UnixSocket.pair();
    try {
      const copy = borrowFd(b.fd).dup().release();
      const waiting = waitReadable(copy);
      OwnedFd.closeNumber(copy);
      const error = await rejectionOf(waiting, "the wait on the closed number");
      assert(error instanceof Deno.errors.BadResource, String(error));
    } finally {
      closeAll(a, b);
    }
  },
);

leakCheckedTest(
  "recvInto() resolves at once with a queued message, writing data, fd numbers and counts into the caller's buffers",
  async () => {
    const [a, b] = UnixSocket.pair();
    using devNull = openFd("/dev/null");
    try {
      a.sendSync("queued", { fds: [devNull, devNull] });
      const buffer = new Uint8Array(16);
      const fds = new Int32Array(4);
      const result = newResult();
      assertStrictEquals(await b.recvInto(buffer, fds, result), result);
      assertEquals(decoder.decode(buffer.subarray(0, result.bytes)), "queued");
      assertEquals(result.fds, 2);
      for (let i = 0; i < 2; i++) {
        assert(closeOnExec(fds[i]!), "close-on-exec");
        OwnedFd.closeNumber(fds[i]!);
      }
    } finally {
      closeAll(a, b);
    }
  },
);

leakCheckedTest(
  "recvInto() waits in the poller and resolves when the message arrives, with the buffers written only then",
  async () => {
    const [a, b] = UnixSocket.pair();
    using devNull = openFd("/dev/null");
    try {
      const buffer = new Uint8Array(16);
      const fds = new Int32Array(4).fill(-7);
      const result = newResult();
      const pending = track(b.recvInto(buffer, fds, result));
      await macrotask();
      assertFalse(pending.settled());
      assertEquals([...fds], [-7, -7, -7, -7], "nothing written while waiting");
      a.sendSync("later", { fds: [devNull] });
      assertStrictEquals(await within(pending.promise, 5_000, "recvInto()"), result);
      assertEquals(decoder.decode(buffer.subarray(0, result.bytes)), "later");
      assertEquals(result.fds, 1);
      OwnedFd.closeNumber(fds[0]!);
    } finally {
      closeAll(a, b);
    }
  },
);

leakCheckedTest(
  "recvInto() resolves null at end of stream and leaves the result as it was",
  async () => {
    const [a, b] = UnixSocket.pair();
    try {
      const result = newResult();
      result.bytes = 99;
      const pending = b.recvInto(new Uint8Array(8), null, result);
      await macrotask();
      a.close();
      assertEquals(await within(pending, 5_000, "recvInto()"), null);
      assertEquals(result.bytes, 99);
    } finally {
      closeAll(a, b);
    }
  },
);

leakCheckedTest(
  "recvInto() aborted while it waits rejects with the reason and takes nothing",
  async () => {
    const [a, b] = UnixSocket.pair();
    try {
      const abort = new AbortController();
      const pending = b.recvInto(new Uint8Array(8), null, newResult(), { signal: abort.signal });
      await macrotask();
      abort.abort(new StopReason("recvInto"));
      const error = await rejectionOf(pending, "recvInto()");
      assertInstanceOf(error, StopReason);
      a.sendSync("kept");
      assertEquals(decoder.decode(b.recvSync()!.data), "kept");
    } finally {
      closeAll(a, b);
    }
  },
);

leakCheckedTest(
  "recvInto() whose buffer is detached while it waits rejects with a TypeError and takes nothing",
  async () => {
    const [a, b] = UnixSocket.pair();
    using devNull = openFd("/dev/null");
    try {
      const buffer = new Uint8Array(16);
      const pending = b.recvInto(buffer, new Int32Array(4), newResult());
      await macrotask();
      // The caller gives the memory away during the wait.
      buffer.buffer.transfer();
      a.sendSync("not taken", { fds: [devNull] });
      const error = await rejectionOf(pending, "recvInto()");
      assertInstanceOf(error, TypeError);
      assertStringIncludes((error as TypeError).message, '"buffer"');
      const message = b.recvSync()!;
      assertEquals(decoder.decode(message.data), "not taken");
      assertEquals(message.fds.length, 1);
      message.fds[0]!.close();
    } finally {
      closeAll(a, b);
    }
  },
);

leakCheckedTest(
  "recvInto() with too small an fds array closes every fd that arrived after its wait and rejects with ControlTruncatedError",
  async () => {
    const [a, b] = UnixSocket.pair();
    using devNull = openFd("/dev/null");
    try {
      const buffer = new Uint8Array(16);
      const pending = b.recvInto(buffer, new Int32Array(1), newResult());
      await macrotask();
      a.sendSync("three", { fds: [devNull, devNull, devNull] });
      const error = await rejectionOf(pending, "recvInto()");
      assertInstanceOf(error, ControlTruncatedError);
      assertEquals((error as ControlTruncatedError).received, 3);
      assertEquals((error as ControlTruncatedError).reason, "max-fds");
      assertEquals(decoder.decode(buffer.subarray(0, 5)), "three");
    } finally {
      closeAll(a, b);
    }
  },
);

leakCheckedTest(
  "recvInto() on a socket closed while it waits rejects with BadResource",
  async () => {
    const [a, b] = UnixSocket.pair();
    try {
      const pending = b.recvInto(new Uint8Array(8));
      await macrotask();
      b.close();
      const error = await rejectionOf(pending, "recvInto()");
      assertInstanceOf(error, Deno.errors.BadResource);
    } finally {
      closeAll(a, b);
    }
  },
);

leakCheckedTest(
  "recvInto() rejects bad arguments before receiving anything, naming the bad one",
  async () => {
    const [a, b] = UnixSocket.pair();
    try {
      a.sendSync("stays");
      const empty = await rejectionOf(b.recvInto(new Uint8Array(0)), "an empty buffer");
      assertInstanceOf(empty, RangeError);
      assertStringIncludes((empty as RangeError).message, '"buffer"');
      const fds = await rejectionOf(
        b.recvInto(new Uint8Array(4), [] as unknown as Int32Array),
        "an array for fds",
      );
      assertInstanceOf(fds, TypeError);
      assertStringIncludes((fds as TypeError).message, '"fds"');
      const signal = await rejectionOf(
        b.recvInto(new Uint8Array(4), null, undefined, { signal: {} as AbortSignal }),
        "a signal that is not one",
      );
      assertInstanceOf(signal, TypeError);
      assertEquals(decoder.decode(b.recvSync()!.data), "stays");
    } finally {
      closeAll(a, b);
    }
  },
);
