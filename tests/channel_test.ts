/**
 * Tests of `Channel`: skalibs `unixmessage` frames byte for byte, frames
 * read in pieces, continuation frames for more than 253 fds, structured
 * values with fds, every failure path (fds closed, channel broken), the fd
 * headroom check near `RLIMIT_NOFILE`, backpressure and cancellation.
 *
 * @module
 */

import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertRejects,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import { borrowFd, openFd, OwnedFd, pipe, UnixSocket } from "../mod.ts";
import { Channel } from "../src/extras/channel.ts";
import {
  closeAll,
  decoder,
  encoder,
  expectSuccess,
  isOpen,
  isReady,
  leakCheckedTest,
  pollUntilReadable,
  rejectionOf,
  spawnDeno,
  startPoller,
  tempSocketPath,
  within,
} from "./helpers.ts";

await startPoller();

/** A raw frame: `u32be` length, `u16be` fd count (flag included), payload. */
function frame(payload: Uint8Array | string, count: number, length?: number): Uint8Array {
  const bytes = typeof payload === "string" ? encoder.encode(payload) : payload;
  const out = new Uint8Array(6 + bytes.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, length ?? bytes.length, false);
  view.setUint16(4, count, false);
  out.set(bytes, 6);
  return out;
}

/** A raw socket on one side and a channel on the other. */
function rawPair(type: "stream" | "seqpacket" = "stream"): [UnixSocket, Channel] {
  const [raw, other] = UnixSocket.pair(type);
  return [raw, new Channel(other)];
}

function inode(fd: { stat(): { dev: bigint; ino: bigint } }): string {
  const { dev, ino } = fd.stat();
  return `${dev}:${ino}`;
}

leakCheckedTest("Channel carries bytes with fds on stream and seqpacket sockets", async (t) => {
  for (const type of ["stream", "seqpacket"] as const) {
    await t.step(`a ${type} round trip, sync and async`, async () => {
      const [a, b] = Channel.pair(type);
      const [r, w] = pipe();
      a.sendMessageSync("sync", { fds: [w, r] });
      const sync = b.recvMessageSync()!;
      assertEquals(decoder.decode(sync.data), "sync");
      assertEquals(sync.fds.map(inode), [inode(w), inode(r)]);
      await a.sendMessage(new Uint8Array(0), { fds: [r] });
      const empty = (await b.recvMessage())!;
      assertEquals([empty.data.length, empty.fds.map(inode)], [0, [inode(r)]]);
      await a.sendMessage("no fds");
      const plain = (await b.recvMessage())!;
      assertEquals([decoder.decode(plain.data), plain.fds.length], ["no fds", 0]);
      closeAll(...sync.fds, ...empty.fds, r, w, a, b);
    });
  }
});

leakCheckedTest("Channel frames match skalibs unixmessage byte for byte", async (t) => {
  await t.step("one frame: u32be length, u16be fd count, payload; fds on the header", () => {
    const [raw, channel] = rawPair();
    using devNull = openFd("/dev/null");
    channel.sendMessageSync("hello", { fds: [devNull] });
    const first = raw.recvSync({ maxBytes: 1 })!;
    assertEquals([...first.data], [0]);
    assertEquals(first.fds.length, 1);
    const rest = raw.recvSync()!;
    assertEquals([...rest.data], [0, 0, 5, 0, 1, ...encoder.encode("hello")]);
    assertEquals(rest.fds.length, 0);
    closeAll(...first.fds, raw, channel);
  });

  await t.step("300 fds: a continuation frame of 253, then the final frame of 47", () => {
    const [raw, channel] = rawPair("seqpacket");
    using devNull = openFd("/dev/null");
    channel.sendMessageSync("x", { fds: new Array(300).fill(devNull) });
    const continuation = raw.recvSync()!;
    assertEquals([...continuation.data], [0, 0, 0, 0, 0x80, 253]);
    assertEquals(continuation.fds.length, 253);
    const last = raw.recvSync()!;
    assertEquals([...last.data], [0, 0, 0, 1, 0, 47, 0x78]);
    assertEquals(last.fds.length, 47);
    closeAll(...continuation.fds, ...last.fds, raw, channel);
  });

  await t.step("a frame written by hand is read as a message", () => {
    const [raw, channel] = rawPair();
    raw.sendSync(frame("abc", 0));
    assertEquals(decoder.decode(channel.recvMessageSync()!.data), "abc");
    closeAll(raw, channel);
  });
});

leakCheckedTest("Channel reassembles a frame written one byte at a time", async (t) => {
  const bytes = frame("one byte at a time", 2);
  await t.step("all bytes queued before the read", () => {
    const [raw, channel] = rawPair();
    const [r, w] = pipe();
    raw.sendSync(bytes.subarray(0, 1), { fds: [r, w] });
    for (let i = 1; i < bytes.length; i++) raw.sendSync(bytes.subarray(i, i + 1));
    const message = channel.recvMessageSync()!;
    assertEquals(decoder.decode(message.data), "one byte at a time");
    assertEquals(message.fds.map(inode), [inode(r), inode(w)]);
    closeAll(...message.fds, r, w, raw, channel);
  });

  await t.step("bytes trickling in while an async receive waits", async () => {
    const [raw, channel] = rawPair();
    const [r, w] = pipe();
    const receiving = channel.recvMessage();
    raw.sendSync(bytes.subarray(0, 1), { fds: [r, w] });
    for (let i = 1; i < bytes.length; i++) {
      await new Promise((resolve) => setTimeout(resolve, 1));
      raw.sendSync(bytes.subarray(i, i + 1));
    }
    const message = (await within(receiving, 5_000, "the trickled frame"))!;
    assertEquals(decoder.decode(message.data), "one byte at a time");
    assertEquals(message.fds.map(inode), [inode(r), inode(w)]);
    closeAll(...message.fds, r, w, raw, channel);
  });
});

leakCheckedTest("Channel delivers 600 fds in one message complete and in order", async (t) => {
  for (const type of ["stream", "seqpacket"] as const) {
    await t.step(type, async () => {
      const [a, b] = Channel.pair(type);
      const pipes = Array.from({ length: 300 }, () => pipe());
      const fds = pipes.flat();
      const sending = a.sendMessage("600", { fds });
      const message = (await within(b.recvMessage(), 10_000, "600 fds"))!;
      await sending;
      assertEquals(message.fds.length, 600);
      assertEquals(message.fds.map(inode), fds.map(inode));
      // Writing through a received write end reaches the matching read end.
      message.fds[599]!.writeAllSync("last");
      const buffer = new Uint8Array(4);
      pipes[299]![0].readSync(buffer);
      assertEquals(decoder.decode(buffer), "last");
      closeAll(...message.fds, ...fds, a, b);
    });
  }
});

leakCheckedTest("an s6 channel refuses 254 fds and continuation frames", async (t) => {
  await t.step("sending 254 fds is a RangeError and sends nothing", async () => {
    const [a, b] = Channel.pair("stream", { s6: true });
    using devNull = openFd("/dev/null");
    const fds = new Array(254).fill(devNull);
    assertThrows(() => a.sendMessageSync("x", { fds }), RangeError, "at most 253");
    await assertRejects(() => a.sendMessage("x", { fds }), RangeError, "at most 253");
    assert(!isReady(b.socket.fd));
    a.sendMessageSync("x", { fds: fds.slice(1) });
    const message = b.recvMessageSync()!;
    assertEquals(message.fds.length, 253);
    closeAll(...message.fds, a, b);
  });

  await t.step("receiving a continuation frame is a protocol error", () => {
    const [raw, other] = UnixSocket.pair();
    const channel = new Channel(other, { s6: true });
    using devNull = openFd("/dev/null");
    raw.sendSync(frame("", 0x8001), { fds: [devNull] });
    assertThrows(() => channel.recvMessageSync(), Deno.errors.InvalidData, "continuation");
    closeAll(raw, channel);
  });
});

leakCheckedTest("Channel values carry fds in nested places", async (t) => {
  await t.step("fds in objects and arrays come back as OwnedFds in the same places", async () => {
    const [a, b] = Channel.pair();
    const [r, w] = pipe();
    const [s1, s2] = UnixSocket.pair();
    await a.send({ log: { output: w }, list: [1, r, [s1]], bytes: new Uint8Array([0, 255]) });
    const value = await b.recv() as {
      log: { output: OwnedFd };
      list: [number, OwnedFd, [OwnedFd]];
      bytes: Uint8Array;
    };
    assertInstanceOf(value.log.output, OwnedFd);
    assertEquals(inode(value.log.output), inode(w));
    assertEquals(value.list[0], 1);
    assertEquals(inode(value.list[1]), inode(r));
    assertEquals(inode(value.list[2][0]), inode(borrowFd(s1.fd)));
    assertEquals(value.bytes, new Uint8Array([0, 255]));
    closeAll(value.log.output, value.list[1], value.list[2][0], r, w, s1, s2, a, b);
  });

  await t.step("a top-level fd, and plain { fd } objects that stay data", () => {
    const [a, b] = Channel.pair("seqpacket");
    using devNull = openFd("/dev/null");
    a.sendSync(devNull);
    const fd = b.recvSync() as OwnedFd;
    assertEquals(inode(fd), inode(devNull));
    a.sendSync({ fd: 3 });
    assertEquals(b.recvSync(), { fd: 3 });
    closeAll(fd, a, b);
  });

  await t.step("undefined is refused, as is a value that contains itself", () => {
    const [a, b] = Channel.pair();
    assertThrows(() => a.sendSync(undefined), TypeError);
    const loop: Record<string, unknown> = {};
    loop.self = loop;
    assertThrows(() => a.sendSync(loop), TypeError, "contains itself");
    closeAll(a, b);
  });
});

leakCheckedTest("a user string or key that looks like a placeholder stays data", () => {
  const [a, b] = Channel.pair();
  const tricky = {
    $fd: 0,
    $$fd: "two dollars",
    $bytes: "AAAA",
    text: '{"$fd":0}',
    nested: [{ $fd: 0 }],
    ["__proto__"]: { polluted: true },
  };
  a.sendSync(tricky);
  const value = b.recvSync() as Record<string, unknown>;
  assertEquals(value, tricky);
  assertEquals(({} as Record<string, unknown>).polluted, undefined);
  assertEquals(Object.getPrototypeOf(value), Object.prototype);
  // A forged placeholder without an fd is refused, not trusted.
  a.sendMessageSync('{"$fd":0}');
  assertThrows(() => b.recvSync(), Deno.errors.InvalidData, "names no fd");
  closeAll(a, b);
});

leakCheckedTest(
  "a value message whose fds have no placeholder is refused and its fds closed",
  () => {
    const [a, b] = Channel.pair();
    using devNull = openFd("/dev/null");
    a.sendMessageSync('"no placeholder"', { fds: [devNull] });
    assertThrows(() => b.recvSync(), Deno.errors.InvalidData, "has no placeholder");
    // The frame was whole, so the channel goes on.
    a.sendSync("next");
    assertEquals(b.recvSync(), "next");
    closeAll(a, b);
  },
);

leakCheckedTest(
  "fds announced but not arriving fail the channel and close what came",
  async (t) => {
    for (const type of ["stream", "seqpacket"] as const) {
      await t.step(type, async () => {
        const [raw, channel] = rawPair(type);
        using devNull = openFd("/dev/null");
        raw.sendSync(frame("ab", 2), { fds: [devNull] });
        const error = assertThrows(
          () => channel.recvMessageSync(),
          Deno.errors.InvalidData,
          "announces 2 fds, but 1 arrived",
        );
        // Broken: later receives fail with the same error.
        assertStrictEquals(assertThrows(() => channel.recvMessageSync()), error);
        assertStrictEquals(await rejectionOf(channel.recvMessage(), "a later recvMessage"), error);
        closeAll(raw, channel);
      });
    }
  },
);

leakCheckedTest("fds arriving unannounced are closed and fail the channel", async (t) => {
  await t.step("with a header that announces none", () => {
    const [raw, channel] = rawPair();
    using devNull = openFd("/dev/null");
    raw.sendSync(frame("ab", 0), { fds: [devNull] });
    assertThrows(() => channel.recvMessageSync(), Deno.errors.InvalidData, "announces 0 fds");
    closeAll(raw, channel);
  });

  await t.step("with a payload byte instead of the first byte", () => {
    const [raw, channel] = rawPair();
    using devNull = openFd("/dev/null");
    const bytes = frame("abcd", 0);
    raw.sendSync(bytes.subarray(0, 7));
    raw.sendSync(bytes.subarray(7), { fds: [devNull, devNull] });
    assertThrows(
      () => channel.recvMessageSync(),
      Deno.errors.InvalidData,
      "2 fds arrived in a read that starts at payload byte 0",
    );
    closeAll(raw, channel);
  });
});

leakCheckedTest("a frame longer than 2^28 bytes fails the channel", () => {
  const [raw, channel] = rawPair();
  raw.sendSync(frame("", 0, 2 ** 28 + 1));
  assertThrows(() => channel.recvMessageSync(), Deno.errors.InvalidData, "more than 268435456");
  closeAll(raw, channel);
});

leakCheckedTest("a peer that closes mid-frame is UnexpectedEof with the fds closed", async (t) => {
  await t.step("inside the header", () => {
    const [raw, channel] = rawPair();
    using devNull = openFd("/dev/null");
    raw.sendSync(frame("abc", 1).subarray(0, 3), { fds: [devNull] });
    raw.close();
    assertThrows(() => channel.recvMessageSync(), Deno.errors.UnexpectedEof, "3 of 6 header");
    channel.close();
  });

  await t.step("inside the payload, async", async () => {
    const [raw, channel] = rawPair();
    using devNull = openFd("/dev/null");
    raw.sendSync(frame("abcdef", 1).subarray(0, 8), { fds: [devNull] });
    raw.close();
    const error = await rejectionOf(channel.recvMessage(), "recvMessage");
    assertInstanceOf(error, Deno.errors.UnexpectedEof);
    assert((error as Error).message.includes("2 of 6 payload"));
    channel.close();
  });

  await t.step("between continuation frames", () => {
    const [raw, channel] = rawPair();
    using devNull = openFd("/dev/null");
    raw.sendSync(frame("", 0x8001), { fds: [devNull] });
    raw.close();
    assertThrows(() => channel.recvMessageSync(), Deno.errors.UnexpectedEof);
    channel.close();
  });
});

leakCheckedTest(
  "a receiver near RLIMIT_NOFILE gets FdHeadroomError and loses nothing",
  async () => {
    const temp = tempSocketPath();
    const listener = UnixSocket.listen(temp.path);
    const child = spawnDeno("channel_fd_limit_child.ts", [temp.path, "100", "headroom"], {
      fdLimit: 400,
      permissions: ["--allow-ffi", "--allow-read"],
    });
    const pipes = Array.from({ length: 25 }, () => pipe());
    try {
      await pollUntilReadable(listener.fd, "the child to connect");
      const channel = new Channel(listener.acceptSync());
      await pollUntilReadable(channel.socket.fd, "the child to fill its fd table");
      assertEquals(decoder.decode(channel.recvMessageSync()!.data), "ready");
      channel.sendMessageSync("fifty", { fds: pipes.flat() });
      const report = JSON.parse(await expectSuccess(child));
      assertEquals(report.first.outcome, "headroom", JSON.stringify(report));
      assertEquals(report.first.needed, 261);
      assertEquals(report.first.available, 100);
      assertEquals(report.first.limit, 400);
      assertEquals(report.afterFirst, report.before, "the refused receive took fds");
      assertEquals(report.second, { outcome: "message", data: "fifty", fds: 50 });
      assertEquals(report.after, report.baseline, "the child leaked fds");
      channel.close();
    } finally {
      child.kill();
      await child.done;
      for (const [r, w] of pipes) closeAll(r, w);
      listener.close();
      temp.cleanup();
    }
  },
);

leakCheckedTest("MSG_CTRUNC closes every fd received and breaks the channel", async () => {
  const temp = tempSocketPath();
  const listener = UnixSocket.listen(temp.path);
  const child = spawnDeno("channel_fd_limit_child.ts", [temp.path, "2", "ctrunc"], {
    fdLimit: 400,
    permissions: ["--allow-ffi", "--allow-read"],
  });
  const pipes = Array.from({ length: 3 }, () => pipe());
  try {
    await pollUntilReadable(listener.fd, "the child to connect");
    const channel = new Channel(listener.acceptSync());
    await pollUntilReadable(channel.socket.fd, "the child to fill its fd table");
    assertEquals(decoder.decode(channel.recvMessageSync()!.data), "ready");
    channel.sendMessageSync("six", { fds: pipes.flat() });
    const report = JSON.parse(await expectSuccess(child));
    assertEquals(report.first, { outcome: "truncated", received: 2 }, JSON.stringify(report));
    assertEquals(report.second, report.first, "a broken channel throws the same error");
    assertEquals(report.afterFirst, report.before, "the truncated receive kept fds");
    assertEquals(report.after, report.baseline, "the child leaked fds");
    channel.close();
  } finally {
    child.kill();
    await child.done;
    for (const [r, w] of pipes) closeAll(r, w);
    listener.close();
    temp.cleanup();
  }
});

leakCheckedTest("many large sends wait for room and arrive in order", async () => {
  const [a, b] = Channel.pair();
  using devNull = openFd("/dev/null");
  const count = 40;
  const size = 1 << 20;
  const sends = Array.from({ length: count }, (_, i) => {
    const data = new Uint8Array(size).fill(i);
    return a.sendMessage(data, { fds: i % 2 === 0 ? [devNull] : [] });
  });
  for (let i = 0; i < count; i++) {
    const message = (await within(b.recvMessage(), 10_000, `message ${i}`))!;
    assertEquals(message.data.length, size);
    assert(message.data.every((byte) => byte === i), `message ${i} is out of order`);
    assertEquals(message.fds.length, i % 2 === 0 ? 1 : 0);
    closeAll(...message.fds);
  }
  await Promise.all(sends);
  closeAll(a, b);
});

leakCheckedTest("an aborted receive keeps the partial frame for the next one", async () => {
  const [raw, channel] = rawPair();
  const [r, w] = pipe();
  const controller = new AbortController();
  const bytes = frame("split", 1);
  raw.sendSync(bytes.subarray(0, 8), { fds: [w] });
  const receiving = channel.recvMessage({ signal: controller.signal });
  await new Promise((resolve) => setTimeout(resolve, 20));
  controller.abort(new Error("stop"));
  const error = await rejectionOf(receiving, "the aborted receive");
  assertEquals((error as Error).message, "stop");
  raw.sendSync(bytes.subarray(8));
  const message = (await channel.recvMessage())!;
  assertEquals(decoder.decode(message.data), "split");
  assertEquals(message.fds.map(inode), [inode(w)]);
  assert(isOpen(message.fds[0]!.fd));
  closeAll(...message.fds, r, w, raw, channel);
});

leakCheckedTest("for await ends at end of stream", async () => {
  const [a, b] = Channel.pair();
  const [r, w] = pipe();
  a.sendSync({ n: 1, fd: w });
  a.sendSync([2]);
  a.sendSync(null);
  a.close();
  const seen: unknown[] = [];
  for await (const value of b) {
    const fd = (value as { fd?: OwnedFd } | null)?.fd;
    if (fd instanceof OwnedFd) {
      assertEquals(inode(fd), inode(w));
      fd.close();
      seen.push("fd");
    } else {
      seen.push(value);
    }
  }
  assertEquals(seen, ["fd", [2], null]);
  assertEquals(b.recvMessageSync(), null);
  closeAll(r, w, b);
});

leakCheckedTest("close() closes the fds of a partly received message", async () => {
  const [raw, channel] = rawPair();
  using devNull = openFd("/dev/null");
  raw.sendSync(frame("", 0x8001), { fds: [devNull] });
  raw.sendSync(frame("x", 0).subarray(0, 2));
  // Reads the continuation frame (holding its fd) and waits for the rest.
  await assertRejects(() => channel.recvMessage({ signal: AbortSignal.timeout(50) }));
  closeAll(raw, channel);
});
