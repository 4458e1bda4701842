/**
 * The seed observations of fd passing (Keith Packard's SCM_RIGHTS
 * experiments, Stevens' `read_fd`/`write_fd`; unix(7) and net/unix/af_unix.c), each a
 * named test against the public API.
 *
 * @module
 */

import {
  assert,
  assertEquals,
  assertFalse,
  assertInstanceOf,
  assertNotEquals,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import {
  borrowFd,
  ControlTruncatedError,
  ErrnoError,
  openFd,
  type OwnedFd,
  pipe,
  recvFd,
  sendFd,
  UnixSocket,
} from "../mod.ts";
import { libc } from "../ffi/libc.ts";
import {
  closeAll,
  decoder,
  encoder,
  expectSuccess,
  fdsInheritedByChild,
  isReady,
  leakCheckedTest,
  offsetOf,
  pollUntilReadable,
  readUpTo,
  spawnDeno,
  tempSocketPath,
} from "./helpers.ts";

function text(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

function seekTo(fd: number, offset: number): void {
  const { lib, layout } = libc();
  assertEquals(Number(lib.lseek(fd, BigInt(offset), layout.constants.SEEK_SET)), offset);
}

/** Closes the write end's last copy elsewhere and checks the read end sees EOF, without blocking. */
function assertPipeAtEof(readEnd: OwnedFd): void {
  assert(isReady(readEnd.fd), "pipe read end is not readable: a write end is still open");
  assertEquals(readEnd.readSync(new Uint8Array(8)), null);
}

leakCheckedTest("seed observations", async (t) => {
  await t.step("an fd-carrying message is a read barrier on a stream", () => {
    // Writes AAA, BBB+fd, CCC+fd, DDD, EEE: a message with fds is never
    // merged with the bytes around it (unix_stream_read_generic, af_unix.c).
    const [a, b] = UnixSocket.pair();
    using devNull = openFd("/dev/null");
    a.sendSync("AAA");
    a.sendSync("BBB", { fds: [devNull] });
    a.sendSync("CCC", { fds: [devNull] });
    a.sendSync("DDD");
    a.sendSync("EEE");
    a.close();
    const reads: [string, number][] = [];
    for (let m = b.recvSync(); m !== null; m = b.recvSync()) {
      reads.push([text(m.data), m.fds.length]);
      closeAll(...m.fds);
    }
    b.close();
    // Bytes before an fd message merge into it; nothing after it does;
    // two fd messages never merge; plain bytes after them merge again.
    assertEquals(reads, [["AAABBB", 1], ["CCC", 1], ["DDDEEE", 0]]);
  });

  await t.step("a 1-byte read of an fd-carrying segment gets the fd with the first byte", () => {
    const [a, b] = UnixSocket.pair();
    using devNull = openFd("/dev/null");
    a.sendSync("XYZ", { fds: [devNull] });
    const first = b.recvSync({ maxBytes: 1 })!;
    assertEquals(text(first.data), "X");
    assertEquals(first.fds.length, 1);
    closeAll(...first.fds);
    const rest = b.recvSync()!;
    assertEquals(text(rest.data), "YZ");
    assertEquals(rest.fds.length, 0);
    a.close();
    b.close();
  });

  await t.step("fds the reader does not accept are closed (the pipe reaches EOF)", () => {
    const [a, b] = UnixSocket.pair();
    const [r, w] = pipe();
    a.sendSync("unwanted", { fds: [w] });
    w.close(); // The only other copy is now in flight.
    assertFalse(isReady(r.fd), "the write end in flight keeps the pipe open");
    const error = assertThrows(() => b.recvSync({ maxFds: 0 }), ControlTruncatedError);
    assertEquals(error.reason, "max-fds");
    assertEquals(error.received, 1);
    assertEquals(text(error.data), "unwanted");
    assertPipeAtEof(r);
    r.close();
    a.close();
    b.close();
  });

  await t.step("fds beyond maxFds are all closed, not only the extra ones", () => {
    const [a, b] = UnixSocket.pair("seqpacket");
    const pipes = [pipe(), pipe(), pipe()];
    a.sendSync("three", { fds: pipes.map(([, w]) => w) });
    for (const [, w] of pipes) w.close();
    const error = assertThrows(() => b.recvSync({ maxFds: 2 }), ControlTruncatedError);
    assertEquals(error.received, 3);
    assertStringIncludes(error.message, "more than maxFds (2)");
    for (const [r] of pipes) {
      assertPipeAtEof(r);
      r.close();
    }
    a.close();
    b.close();
  });

  await t.step("zero data bytes with fds is refused on a stream", () => {
    const [a, b] = UnixSocket.pair();
    using devNull = openFd("/dev/null");
    const error = assertThrows(
      () => a.sendSync(new Uint8Array(0), { fds: [devNull] }),
      TypeError,
    );
    assertStringIncludes(error.message, `Argument "data" must not be empty`);
    assertThrows(() => a.sendSync("", { fds: [devNull] }), TypeError);
    // Nothing was sent: the kernel would have dropped the fds silently.
    assertFalse(isReady(b.fd));
    // Zero bytes without fds is a no-op.
    assertEquals(a.sendSync(""), 0);
    assertFalse(isReady(b.fd));
    a.close();
    b.close();
  });

  for (const type of ["seqpacket", "dgram"] as const) {
    await t.step(`zero data bytes with fds is delivered on ${type}`, () => {
      const [a, b] = UnixSocket.pair(type);
      const [r, w] = pipe();
      assertEquals(a.sendSync(new Uint8Array(0), { fds: [w] }), 0);
      w.close();
      const message = b.recvSync()!;
      assertNotEquals(message, null);
      assertEquals(message.data.byteLength, 0);
      assertEquals(message.fds.length, 1);
      const [received] = message.fds;
      received!.writeAllSync("empty message carried me");
      received!.close();
      assertEquals(text(readUpTo(r, 64)), "empty message carried me");
      r.close();
      a.close();
      b.close();
    });
  }

  await t.step("the file offset is shared with the receiver", () => {
    const path = Deno.makeTempFileSync({ prefix: "fdpass-seed-" });
    try {
      const content = Array.from({ length: 64 }, (_, i) => String.fromCharCode(65 + i % 26)).join(
        "",
      );
      Deno.writeTextFileSync(path, content);
      using mine = openFd(path);
      const [a, b] = UnixSocket.pair();
      a.sendSync("file", { fds: [mine] });
      using theirs = b.recvSync()!.fds[0]!;
      a.close();
      b.close();

      // Read 32 bytes on one side: the other side continues at 32.
      assertEquals(text(readUpTo(mine, 32)), content.slice(0, 32));
      assertEquals(offsetOf(theirs.fd), 32);
      assertEquals(text(readUpTo(theirs, 8)), content.slice(32, 40));
      assertEquals(offsetOf(mine.fd), 40);
      // lseek is visible both ways.
      seekTo(theirs.fd, 3);
      assertEquals(offsetOf(mine.fd), 3);
      seekTo(mine.fd, 60);
      assertEquals(text(readUpTo(theirs, 64)), content.slice(60));
      // Same open file description, different numbers.
      assertNotEquals(theirs.fd, mine.fd);
      assertEquals(theirs.stat().ino, mine.stat().ino);
    } finally {
      Deno.removeSync(path);
    }
  });

  await t.step("several fds in one message keep their order", () => {
    const [a, b] = UnixSocket.pair();
    const [c, d] = UnixSocket.pair();
    const [r, w] = pipe();
    using devNull = openFd("/dev/null");
    using directory = openFd("/", { directory: true });
    const sent = [w, devNull, c, r, directory, devNull.fd, w];
    a.sendSync("ordered", { fds: sent });
    const { fds } = b.recvSync()!;
    assertEquals(fds.map((fd) => fd.kind), [
      "pipe",
      "character",
      "socket",
      "pipe",
      "directory",
      "character",
      "pipe",
    ]);
    assertEquals(
      fds.map((fd) => fd.stat().ino),
      sent.map((fd) => borrowFd(typeof fd === "number" ? fd : fd.fd).stat().ino),
    );
    // Each received fd is a distinct number even when the same fd was sent twice.
    assertEquals(new Set(fds.map((fd) => fd.fd)).size, fds.length);
    closeAll(...fds);
    closeAll(a, b, c, d, r, w);
  });

  await t.step("253 fds in one message all arrive, in order; 254 is a RangeError", () => {
    const [a, b] = UnixSocket.pair();
    const ends: OwnedFd[] = [];
    for (let i = 0; i < 127; i++) ends.push(...pipe());
    try {
      const sent = ends.slice(0, 253);
      assertEquals(a.sendSync("max", { fds: sent }), 3);
      const message = b.recvSync()!;
      try {
        assertEquals(message.fds.length, 253);
        // Each pipe has its own inode: identity and order in one check.
        assertEquals(
          message.fds.map((fd) => fd.stat().ino),
          sent.map((fd) => fd.stat().ino),
        );
        assert(message.fds.every((fd) => fd.closeOnExec));
      } finally {
        closeAll(...message.fds);
      }

      const error = assertThrows(
        () => a.sendSync("too many", { fds: ends.slice(0, 254) }),
        RangeError,
      );
      assertStringIncludes(error.message, "254 fds");
      assertStringIncludes(error.message, "at most 253");
      assertFalse(isReady(b.fd), "nothing may be sent when the fds are refused");
    } finally {
      closeAll(...ends);
      a.close();
      b.close();
    }
  });

  await t.step(
    "a child process receives an fd over a socket and writes hello, world through it",
    async () => {
      const temp = tempSocketPath();
      const listener = UnixSocket.listen(temp.path);
      const child = spawnDeno("hello_child.ts", [temp.path]);
      const [r, w] = pipe();
      try {
        await pollUntilReadable(listener.fd, "the child to connect");
        using connection = listener.acceptSync();
        assertEquals(connection.peerCredentials().pid, child.pid);
        connection.sendSync("write here", { fds: [w] });
        w.close();
        await pollUntilReadable(connection.fd, "the child to finish");
        assertEquals(text(connection.recvSync()!.data), "done");
        await expectSuccess(child);
        // Both copies of the write end are closed now: read to EOF.
        assertEquals(text(readUpTo(r, 64)), "hello, world");
        assertPipeAtEof(r);
      } finally {
        child.kill();
        await child.done;
        w.close();
        r.close();
        listener.close();
        temp.cleanup();
      }
    },
  );

  await t.step("a child process writes hello, world into a passed temp file", async () => {
    const temp = tempSocketPath();
    const filePath = `${temp.dir}/out.txt`;
    const listener = UnixSocket.listen(temp.path);
    const child = spawnDeno("hello_child.ts", [temp.path]);
    try {
      using file = openFd(filePath, { write: true, createNew: true, mode: 0o600 });
      await pollUntilReadable(listener.fd, "the child to connect");
      using connection = listener.acceptSync();
      connection.sendSync("write here", { fds: [file] });
      await pollUntilReadable(connection.fd, "the child to finish");
      assertEquals(text(connection.recvSync()!.data), "done");
      await expectSuccess(child);
      assertEquals(Deno.readTextFileSync(filePath), "hello, world");
      // The child wrote through the shared description: our offset moved too.
      assertEquals(offsetOf(file.fd), 12);
    } finally {
      child.kill();
      await child.done;
      listener.close();
      temp.cleanup();
    }
  });

  await t.step("received fds are close-on-exec and not inherited by a child", () => {
    const [a, b] = UnixSocket.pair();
    using devNull = openFd("/dev/null");
    devNull.closeOnExec = false; // The sender's flag does not travel.
    a.sendSync("x", { fds: [devNull] });
    using received = b.recvSync()!.fds[0]!;
    assert(received.closeOnExec);
    assertFalse(fdsInheritedByChild().includes(received.fd));
    // Control: the same check sees the fd once FD_CLOEXEC is cleared.
    received.closeOnExec = false;
    assert(fdsInheritedByChild().includes(received.fd));
    a.close();
    b.close();
  });

  await t.step(
    "fds are parsed correctly after an SCM_CREDENTIALS message (passCredentials)",
    () => {
      for (const count of [1, 3, 253]) {
        const [a, b] = UnixSocket.pair("seqpacket");
        b.passCredentials = true;
        const ends: OwnedFd[] = [];
        while (ends.length < count) ends.push(...pipe());
        const sent = ends.slice(0, count);
        try {
          a.sendSync("with credentials", { fds: sent });
          const message = b.recvSync()!;
          try {
            // SO_PEERCRED of a socketpair names this process too.
            assertEquals(message.credentials, a.peerCredentials());
            assertEquals(message.credentials!.pid, Deno.pid);
            assertEquals(text(message.data), "with credentials");
            assertEquals(
              message.fds.map((fd) => fd.stat().ino),
              sent.map((fd) => fd.stat().ino),
            );
          } finally {
            closeAll(...message.fds);
          }
        } finally {
          closeAll(...ends);
          a.close();
          b.close();
        }
      }
    },
  );

  await t.step("the sender may close its copy before the receiver reads", () => {
    const [a, b] = UnixSocket.pair();
    const [r, w] = pipe();
    const path = Deno.makeTempFileSync({ prefix: "fdpass-seed-" });
    Deno.writeTextFileSync(path, "still here");
    const file = openFd(path);
    a.sendSync("in flight", { fds: [w, file] });
    w.close();
    file.close();
    Deno.removeSync(path); // Even the name is gone.
    const { fds } = b.recvSync()!;
    const [writer, reader] = fds;
    assertEquals(text(readUpTo(reader!, 32)), "still here");
    writer!.writeAllSync("alive");
    writer!.close();
    assertEquals(text(readUpTo(r, 32)), "alive");
    reader!.close();
    r.close();
    a.close();
    b.close();
  });

  for (const type of ["stream", "seqpacket"] as const) {
    await t.step(`sending to a closed ${type} peer is a BrokenPipe error, not SIGPIPE`, () => {
      const [a, b] = UnixSocket.pair(type);
      b.close();
      using devNull = openFd("/dev/null");
      // MSG_NOSIGNAL: the process survives and gets EPIPE.
      const error = assertThrows(
        () => a.sendSync("anyone?", { fds: [devNull] }),
        Deno.errors.BrokenPipe,
      );
      assertInstanceOf(error, ErrnoError);
      assertEquals(error.code, "EPIPE");
      assertEquals(error.syscall, "sendmsg");
      a.close();
    });
  }

  await t.step("sendFd() and recvFd() use Stevens' one zero byte per fd", () => {
    const [a, b] = UnixSocket.pair();
    const [r, w] = pipe();
    sendFd(a, w);
    const raw = b.recvSync()!;
    assertEquals(Array.from(raw.data), [0]);
    assertEquals(raw.fds.length, 1);
    closeAll(...raw.fds);

    sendFd(a.fd, w.fd);
    using received = recvFd(b);
    received.writeAllSync("ok");
    w.close();
    received.close();
    assertEquals(text(readUpTo(r, 8)), "ok");

    r.close();
    // A message that is not one zero byte with one fd is refused, its fd closed.
    const [r2, w2] = pipe();
    a.sendSync("A", { fds: [w2] });
    w2.close();
    assertThrows(() => recvFd(b), Deno.errors.InvalidData);
    assertPipeAtEof(r2);
    r2.close();
    a.sendSync(encoder.encode("x"));
    assertThrows(() => recvFd(b), Deno.errors.InvalidData);
    a.close();
    assertThrows(() => recvFd(b), Deno.errors.UnexpectedEof);
    b.close();
  });
});
