/**
 * UnixSocket and UnixListener, synchronous API (src/unix_socket.ts): pairs,
 * paths and abstract names, datagrams with addresses, peer credentials,
 * shutdown, adoption, close, and the hand-off to `node:net`.
 *
 * The async operations are tested in async_io_test.ts, the error paths in
 * errors_test.ts.
 *
 * @module
 */

import {
  assert,
  assertEquals,
  assertFalse,
  assertGreaterOrEqual,
  assertNotEquals,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import type { Socket } from "node:net";
import { borrowFd, openFd, pipe, UnixListener, UnixSocket } from "../mod.ts";
import { libc } from "../ffi/libc.ts";
import { setIntOption } from "../src/core/socket_calls.ts";
import {
  closeAll,
  decoder,
  encoder,
  expectSuccess,
  fdsInheritedByChild,
  isOpen,
  isReady,
  leakCheckedTest,
  pollUntilReadable,
  spawnDeno,
  tempSocketPath,
  within,
} from "./helpers.ts";

function text(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

function uniqueName(label: string): { abstract: string } {
  return { abstract: `fdpass-test-${label}-${Deno.pid}-${crypto.randomUUID()}` };
}

function idOutput(flag: string): number {
  const output = new Deno.Command("id", { args: [flag], stdout: "piped" }).outputSync();
  return Number(decoder.decode(output.stdout).trim());
}

/** Resolves once a `node:net` socket has closed. */
function closed(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed && socket.closed) resolve();
    else socket.once("close", () => resolve());
  });
}

for (const type of ["stream", "seqpacket", "dgram"] as const) {
  leakCheckedTest(`UnixSocket.pair("${type}") returns two sockets connected both ways`, () => {
    const [a, b] = UnixSocket.pair(type);
    assertEquals(a.type, type);
    assertEquals(b.type, type);
    assertNotEquals(a.fd, b.fd);
    assertEquals(a.sendSync("to b"), 4);
    assertEquals(text(b.recvSync()!.data), "to b");
    assertEquals(b.sendSync(encoder.encode("to a")), 4);
    const message = a.recvSync()!;
    assertEquals(text(message.data), "to a");
    assertEquals(message.fds, []);
    assertEquals(message.truncated, false);
    assertEquals(message.credentials, null);
    assertEquals(borrowFd(a.fd).kind, "socket");
    a.close();
    b.close();
  });
}

leakCheckedTest(
  "UnixSocket.pair() defaults to stream, and a seqpacket pair keeps record boundaries",
  () => {
    const [a, b] = UnixSocket.pair();
    assertEquals(a.type, "stream");
    closeAll(a, b);
    const [c, d] = UnixSocket.pair("seqpacket");
    c.sendSync("one");
    c.sendSync("two");
    assertEquals(text(d.recvSync()!.data), "one");
    assertEquals(text(d.recvSync()!.data), "two");
    closeAll(c, d);
  },
);

for (const type of ["stream", "seqpacket"] as const) {
  leakCheckedTest(
    `UnixSocket.listen(), connectSync() and acceptSync() connect ${type} sockets on a path`,
    () => {
      const temp = tempSocketPath();
      try {
        using listener = UnixSocket.listen(temp.path, { type });
        assert(listener instanceof UnixListener);
        assertEquals(listener.type, type);
        assertEquals(listener.address, temp.path);
        assertEquals(listener.localAddress, temp.path);
        assertEquals(Deno.lstatSync(temp.path).isSocket, true);
        using client = UnixSocket.connectSync(temp.path, { type });
        using server = listener.acceptSync();
        assertEquals(client.type, type);
        assertEquals(server.type, type);
        assertEquals(client.localAddress, null);
        assertEquals(client.remoteAddress, temp.path);
        assertEquals(server.localAddress, temp.path);
        assertEquals(server.remoteAddress, null);
        using devNull = openFd("/dev/null");
        client.sendSync("hello", { fds: [devNull] });
        const message = server.recvSync()!;
        assertEquals(text(message.data), "hello");
        assertEquals(message.fds.map((fd) => fd.kind), ["character"]);
        closeAll(...message.fds);
        server.sendSync("back");
        assertEquals(text(client.recvSync()!.data), "back");
      } finally {
        temp.cleanup();
      }
    },
  );
}

leakCheckedTest(
  "UnixSocket.listen(), connectSync() and acceptSync() connect on an abstract name",
  () => {
    const name = uniqueName("abstract");
    using listener = UnixSocket.listen(name);
    assertEquals(listener.address, name);
    assertEquals(listener.localAddress, name);
    using client = UnixSocket.connectSync(name);
    using server = listener.acceptSync();
    assertEquals(client.remoteAddress, name);
    assertEquals(server.localAddress, name);
    client.sendSync("abstract");
    assertEquals(text(server.recvSync()!.data), "abstract");
    // Every byte is part of the name: a prefix is a different name.
    assertThrows(
      () => UnixSocket.connectSync({ abstract: name.abstract.slice(0, -1) }),
      Deno.errors.ConnectionRefused,
    );
    // The name is in use while the listener lives, free after.
    assertThrows(() => UnixSocket.listen(name), Deno.errors.AddrInUse);
  },
);

leakCheckedTest("UnixListener.close() frees its abstract name for the next listener", () => {
  const name = uniqueName("reuse");
  UnixSocket.listen(name).close();
  UnixSocket.listen(name).close();
});

leakCheckedTest("UnixListener.close() removes the socket file it created", () => {
  const temp = tempSocketPath();
  try {
    const listener = UnixSocket.listen(temp.path);
    assert(Deno.lstatSync(temp.path).isSocket);
    listener.close();
    assert(listener.closed);
    assertThrows(() => Deno.lstatSync(temp.path), Deno.errors.NotFound);
    listener.close(); // Idempotent, and nothing else removed.
    assert(Deno.statSync(temp.dir).isDirectory);
  } finally {
    temp.cleanup();
  }
});

leakCheckedTest(
  "UnixListener.close() leaves a socket path that was replaced by another file or socket",
  () => {
    const temp = tempSocketPath();
    try {
      // Replaced by a regular file.
      const first = UnixSocket.listen(temp.path);
      Deno.removeSync(temp.path);
      Deno.writeTextFileSync(temp.path, "someone else's");
      first.close();
      assertEquals(Deno.readTextFileSync(temp.path), "someone else's");
      Deno.removeSync(temp.path);

      // Replaced by another listener's socket.
      const old = UnixSocket.listen(temp.path);
      Deno.removeSync(temp.path);
      using replacement = UnixSocket.listen(temp.path);
      old.close();
      assert(Deno.lstatSync(temp.path).isSocket);
      using client = UnixSocket.connectSync(temp.path);
      using server = replacement.acceptSync();
      client.sendSync("new");
      assertEquals(text(server.recvSync()!.data), "new");
    } finally {
      temp.cleanup();
    }
  },
);

leakCheckedTest("UnixSocket.listen() with removeExisting replaces a stale socket file", () => {
  const temp = tempSocketPath();
  try {
    const dead = UnixSocket.listen(temp.path);
    Deno.renameSync(temp.path, `${temp.dir}/moved.sock`);
    dead.close();
    Deno.renameSync(`${temp.dir}/moved.sock`, temp.path); // A stale socket file.
    assertThrows(() => UnixSocket.listen(temp.path), Deno.errors.AddrInUse);
    using listener = UnixSocket.listen(temp.path, { removeExisting: true });
    using client = UnixSocket.connectSync(temp.path);
    using server = listener.acceptSync();
    client.sendSync("fresh");
    assertEquals(text(server.recvSync()!.data), "fresh");
    // removeExisting on a missing path is fine.
    using _other = UnixSocket.listen(`${temp.dir}/other.sock`, { removeExisting: true });
    assert(Deno.lstatSync(`${temp.dir}/other.sock`).isSocket);
  } finally {
    temp.cleanup();
  }
});

leakCheckedTest("recvFromSync() reports the path a datagram was sent from", () => {
  const temp = tempSocketPath();
  const serverPath = `${temp.dir}/server.sock`;
  const clientPath = `${temp.dir}/client.sock`;
  try {
    using server = UnixSocket.datagram(serverPath);
    using client = UnixSocket.datagram(clientPath);
    using anonymous = UnixSocket.datagram();
    assertEquals(server.type, "dgram");
    assertEquals(server.localAddress, serverPath);
    assertEquals(anonymous.localAddress, null);

    using devNull = openFd("/dev/null");
    assertEquals(client.sendToSync(serverPath, "ping", { fds: [devNull] }), 4);
    const first = server.recvFromSync();
    assertEquals(text(first.data), "ping");
    assertEquals(first.address, clientPath);
    assertEquals(first.fds.map((fd) => fd.kind), ["character"]);
    closeAll(...first.fds);

    server.sendToSync(first.address!, "pong");
    const reply = client.recvFromSync();
    assertEquals(text(reply.data), "pong");
    assertEquals(reply.address, serverPath);

    anonymous.sendToSync(serverPath, "from nobody");
    const unnamed = server.recvFromSync();
    assertEquals(text(unnamed.data), "from nobody");
    assertEquals(unnamed.address, null);
    assertEquals(unnamed.fds, []);
  } finally {
    temp.cleanup();
  }
});

leakCheckedTest("recvFromSync() reports the abstract name a datagram was sent from", () => {
  const serverName = uniqueName("dgram-server");
  const clientName = uniqueName("dgram-client");
  using server = UnixSocket.datagram(serverName);
  using client = UnixSocket.datagram(clientName);
  client.sendToSync(serverName, "abstract ping");
  const message = server.recvFromSync({ maxBytes: 64, maxFds: 0 });
  assertEquals(text(message.data), "abstract ping");
  assertEquals(message.address, clientName);
});

leakCheckedTest(
  "UnixSocket.datagram() removes its socket file on close, and removeExisting replaces only a stale one",
  () => {
    const temp = tempSocketPath();
    try {
      const first = UnixSocket.datagram(temp.path);
      assert(Deno.lstatSync(temp.path).isSocket);
      assertThrows(() => UnixSocket.datagram(temp.path), Deno.errors.AddrInUse);
      // A live socket is never replaced.
      assertThrows(
        () => UnixSocket.datagram(temp.path, { removeExisting: true }),
        Deno.errors.AddrInUse,
        "a process is listening on it",
      );
      // Closed without removing its file, as by a process that died.
      first.toOwnedFd().close();
      const second = UnixSocket.datagram(temp.path, { removeExisting: true });
      assert(Deno.lstatSync(temp.path).isSocket);
      second.close();
      assertThrows(() => Deno.lstatSync(temp.path), Deno.errors.NotFound);
    } finally {
      temp.cleanup();
    }
  },
);

leakCheckedTest("UnixSocket.connectSync() with type dgram sets the default destination", () => {
  const temp = tempSocketPath();
  try {
    using server = UnixSocket.datagram(temp.path);
    using client = UnixSocket.connectSync(temp.path, { type: "dgram" });
    assertEquals(client.type, "dgram");
    assertEquals(client.remoteAddress, temp.path);
    client.sendSync("connected datagram");
    assertEquals(text(server.recvSync()!.data), "connected datagram");
  } finally {
    temp.cleanup();
  }
});

leakCheckedTest("peerCredentials() of a socketpair names this process", () => {
  const [a, b] = UnixSocket.pair();
  const expected = { pid: Deno.pid, uid: idOutput("-u"), gid: idOutput("-g") };
  assertEquals(a.peerCredentials(), expected);
  assertEquals(b.peerCredentials(), expected);
  closeAll(a, b);
});

leakCheckedTest(
  "peerCredentials() of a connection from a child names the child's pid",
  async () => {
    const temp = tempSocketPath();
    const listener = UnixSocket.listen(temp.path);
    const child = spawnDeno("hello_child.ts", [temp.path]);
    try {
      await pollUntilReadable(listener.fd, "the child to connect");
      using connection = listener.acceptSync();
      const credentials = connection.peerCredentials();
      assertEquals(credentials.pid, child.pid);
      assertNotEquals(credentials.pid, Deno.pid);
      assertEquals(credentials.uid, idOutput("-u"));
      using devNull = openFd("/dev/null", { write: true });
      connection.sendSync("fd", { fds: [devNull] });
      await pollUntilReadable(connection.fd, "the child to finish");
      assertEquals(text(connection.recvSync()!.data), "done");
      await expectSuccess(child);
    } finally {
      child.kill();
      await child.done;
      listener.close();
      temp.cleanup();
    }
  },
);

leakCheckedTest(
  "shutdown('write') ends the peer's stream, and a later send fails with EPIPE",
  () => {
    const [a, b] = UnixSocket.pair();
    a.sendSync("last");
    a.shutdown("write");
    assertEquals(text(b.recvSync()!.data), "last");
    assertEquals(b.recvSync(), null);
    assertThrows(() => a.sendSync("more"), Deno.errors.BrokenPipe);
    // The other direction still works.
    b.sendSync("reply");
    assertEquals(text(a.recvSync()!.data), "reply");
    closeAll(a, b);
  },
);

leakCheckedTest("shutdown('read') ends reading, and shutdown() ends both directions", () => {
  const [a, b] = UnixSocket.pair();
  a.shutdown("read");
  assertEquals(a.recvSync(), null);
  const [c, d] = UnixSocket.pair();
  c.shutdown();
  assertEquals(c.recvSync(), null);
  assertEquals(d.recvSync(), null);
  assertThrows(() => c.sendSync("x"), Deno.errors.BrokenPipe);
  closeAll(a, b, c, d);
});

leakCheckedTest(
  "UnixSocket.from() adopts a received socket or a raw number and detects its type",
  () => {
    const [a, b] = UnixSocket.pair();
    const [c, d] = UnixSocket.pair("seqpacket");
    a.sendSync("socket", { fds: [c] });
    c.close();
    const received = b.recvSync()!.fds[0]!;
    const number = received.fd;
    using adopted = UnixSocket.from(received);
    assert(received.closed, "ownership moves to the socket");
    assertEquals(adopted.fd, number);
    assertEquals(adopted.type, "seqpacket");
    adopted.sendSync("record");
    assertEquals(text(d.recvSync()!.data), "record");

    // From a plain number (now owned by the socket).
    const [e, f] = UnixSocket.pair("dgram");
    const raw = e.toOwnedFd().release();
    assert(e.closed);
    using fromNumber = UnixSocket.from(raw);
    assertEquals(fromNumber.type, "dgram");
    fromNumber.sendSync("dgram");
    assertEquals(text(f.recvSync()!.data), "dgram");
    fromNumber.close();
    assertFalse(isOpen(raw));
    closeAll(a, b, d, f);
  },
);

leakCheckedTest("toOwnedFd() gives up the socket without closing it", () => {
  const [a, b] = UnixSocket.pair();
  const number = a.fd;
  const owned = a.toOwnedFd();
  assert(a.closed);
  assertEquals(owned.fd, number);
  assert(isOpen(number));
  a.close(); // Does not close the released fd.
  assert(isOpen(number));
  owned.close();
  assertFalse(isOpen(number));
  b.close();
});

leakCheckedTest(
  "toNetSocket() hands the socket to node:net, which reads, writes and sees the end of stream",
  async () => {
    const [a, b] = UnixSocket.pair();
    const number = a.fd;
    const socket = a.toNetSocket();
    assert(a.closed);
    try {
      const data = within(
        new Promise<Uint8Array>((resolve) => socket.once("data", resolve)),
        10_000,
        "node:net data",
      );
      b.sendSync("to node");
      assertEquals(text(await data), "to node");

      await within(
        new Promise<void>((resolve, reject) => {
          socket.write("from node", (error) => (error ? reject(error) : resolve()));
        }),
        10_000,
        "node:net write",
      );
      await pollUntilReadable(b.fd, "the node:net write");
      assertEquals(text(b.recvSync()!.data), "from node");

      // End of stream reaches node:net.
      const ended = within(
        new Promise<void>((resolve) => socket.once("end", resolve)),
        10_000,
        "end",
      );
      b.shutdown("write");
      await ended;
    } finally {
      const done = closed(socket);
      socket.destroy();
      await within(done, 10_000, "node:net close");
      b.close();
    }
    // destroy() closed the fd that the socket owned.
    assertFalse(isOpen(number));
  },
);

leakCheckedTest(
  "a received socket fd works with node:net through OwnedFd.toNetSocket()",
  async () => {
    const [a, b] = UnixSocket.pair();
    const [c, d] = UnixSocket.pair();
    a.sendSync("take", { fds: [c] });
    c.close();
    const socket = b.recvSync()!.fds[0]!.toNetSocket();
    try {
      const data = within(
        new Promise<Uint8Array>((resolve) => socket.once("data", resolve)),
        10_000,
        "node:net data",
      );
      d.sendSync("via passed socket");
      assertEquals(text(await data), "via passed socket");
    } finally {
      const done = closed(socket);
      socket.destroy();
      await within(done, 10_000, "node:net close");
      closeAll(a, b, d);
    }
  },
);

leakCheckedTest("sockets are close-on-exec and not inherited by a child", () => {
  const temp = tempSocketPath();
  try {
    const [a, b] = UnixSocket.pair();
    const listener = UnixSocket.listen(temp.path);
    const client = UnixSocket.connectSync(temp.path);
    const server = listener.acceptSync();
    const dgram = UnixSocket.datagram();
    const fds = [a.fd, b.fd, listener.fd, client.fd, server.fd, dgram.fd];
    for (const fd of fds) assert(borrowFd(fd).closeOnExec, `fd ${fd} is not close-on-exec`);
    const inherited = fdsInheritedByChild();
    assertEquals(fds.filter((fd) => inherited.includes(fd)), []);
    closeAll(a, b, listener, client, server, dgram);
  } finally {
    temp.cleanup();
  }
});

leakCheckedTest(
  "UnixSocket.close() is idempotent, `using` closes, and the peer sees end of stream",
  () => {
    let number: number;
    {
      using socket = UnixSocket.datagram();
      number = socket.fd;
      assert(isOpen(number));
    }
    assertFalse(isOpen(number));
    const [a, b] = UnixSocket.pair();
    a.close();
    a.close();
    assert(a.closed);
    assertFalse(b.closed);
    // The peer sees end of stream.
    assert(isReady(b.fd));
    assertEquals(b.recvSync(), null);
    b.close();
  },
);

leakCheckedTest("Deno.inspect() shows a socket's type and fd, or closed", () => {
  const [a, b] = UnixSocket.pair("seqpacket");
  assertStringIncludes(Deno.inspect(a), `UnixSocket { type: "seqpacket", fd: ${a.fd} }`);
  a.close();
  assertStringIncludes(Deno.inspect(a), "closed");
  b.close();
  const temp = tempSocketPath();
  const listener = UnixSocket.listen(temp.path);
  assertStringIncludes(Deno.inspect(listener), `UnixListener { fd: ${listener.fd} }`);
  listener.close();
  assertStringIncludes(Deno.inspect(listener), "closed");
  temp.cleanup();
});

leakCheckedTest(
  "UnixSocket.toNetSocket() refuses a listening socket and keeps it open and owned",
  () => {
    const temp = tempSocketPath();
    try {
      using listener = UnixSocket.listen(temp.path);
      using adopted = UnixSocket.from(borrowFd(listener.fd).dup());
      assertThrows(() => adopted.toNetSocket(), TypeError, "listen({ fd })");
      assertFalse(adopted.closed);
      assert(isOpen(adopted.fd));
    } finally {
      temp.cleanup();
    }
  },
);

leakCheckedTest(
  "sendSync() refuses fds with empty data on a stream and sends nothing",
  () => {
    const [a, b] = UnixSocket.pair();
    using devNull = openFd("/dev/null");
    try {
      for (const data of ["", new Uint8Array(0)]) {
        assertThrows(
          () => a.sendSync(data, { fds: [devNull] }),
          TypeError,
          'Argument "data" must not be empty when sending fds on a stream socket',
        );
      }
      // Without fds an empty write is no message at all.
      assertEquals(a.sendSync(""), 0);
      assertFalse(isReady(b.fd));
    } finally {
      closeAll(a, b);
    }
  },
);

/**
 * A child that connects to `path`, waits 300 ms, then receives until end of
 * stream and reports the bytes (checked against the pattern `i & 0xff`) and
 * the fds of each read.
 */
function slowReaderScript(): string {
  return `
    import { UnixSocket } from ${JSON.stringify(new URL("../mod.ts", import.meta.url).href)};
    const socket = UnixSocket.connectSync(Deno.args[0]);
    socket.sendSync("connected");
    await new Promise((resolve) => setTimeout(resolve, 300));
    let bytes = 0;
    let mismatch = -1;
    const fdsPerRead = [];
    for (;;) {
      const message = socket.recvSync({ maxBytes: 1 << 20 });
      if (message === null) break;
      for (let i = 0; i < message.data.length; i++) {
        if (mismatch < 0 && message.data[i] !== ((bytes + i) & 0xff)) mismatch = bytes + i;
      }
      bytes += message.data.length;
      fdsPerRead.push(message.fds.length);
      for (const fd of message.fds) fd.close();
    }
    socket.close();
    console.log(JSON.stringify({ bytes, mismatch, fds: fdsPerRead.reduce((a, b) => a + b, 0), firstRead: fdsPerRead[0] }));
  `;
}

for (const prefill of [false, true]) {
  leakCheckedTest(
    prefill
      ? "sendSync() on a nonblocking stream socket whose buffer is full waits, then sends the data and the fds once"
      : "sendSync() on a nonblocking stream socket continues a short send to the end, with the fds on the first part only",
    async () => {
      const temp = tempSocketPath();
      const listener = UnixSocket.listen(temp.path);
      const script = `${temp.dir}/reader.ts`;
      Deno.writeTextFileSync(script, slowReaderScript());
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "--quiet", "--no-lock", "--allow-ffi", script, temp.path],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const [readEnd, writeEnd] = pipe();
      let total = 0;
      try {
        await pollUntilReadable(listener.fd, "the reader to connect");
        const connection = listener.acceptSync();
        try {
          assertEquals(text(connection.recvSync()!.data), "connected");
          const { layout } = libc();
          // A small send buffer (SO_SNDBUF: 7 on Linux, 0x1001 on BSD), so
          // that a message of 60 KiB takes several sendmsg calls.
          const soSndbuf = layout.constants.SOL_SOCKET === 1 ? 7 : 0x1001;
          setIntOption(connection.fd, layout.constants.SOL_SOCKET, soSndbuf, 8192);
          borrowFd(connection.fd).nonblocking = true;
          let sent = 0;
          if (prefill) {
            // Fill the buffer until the kernel refuses more (EAGAIN).
            const { lib } = libc();
            const chunk = new Uint8Array(1024).map((_, i) => i & 0xff);
            for (;;) {
              const n = Number(lib.write(connection.fd, chunk, BigInt(chunk.byteLength)));
              if (n < 0) break;
              sent += n;
              if (n < chunk.byteLength) break;
            }
            assert(sent > 0 && sent % 1024 === 0, `prefilled ${sent} bytes`);
          }
          const start = performance.now();
          // The rest of the pattern, from where the prefill stopped.
          const rest = new Uint8Array(60 * 1024).map((_, i) => (sent + i) & 0xff);
          assertEquals(connection.sendSync(rest, { fds: [writeEnd] }), rest.byteLength);
          assertGreaterOrEqual(performance.now() - start, 150, "it waited for the reader");
          total = sent + rest.byteLength;
        } finally {
          connection.close();
        }
        const output = await child.output();
        const stderr = decoder.decode(output.stderr);
        assert(output.success, stderr);
        const report = JSON.parse(decoder.decode(output.stdout));
        assertEquals(report.mismatch, -1, JSON.stringify(report));
        assertEquals(report.bytes, total, JSON.stringify(report));
        assertEquals(report.fds, 1, "the fds went exactly once");
        if (!prefill) assertEquals(report.firstRead, 1, "with the first part");
      } finally {
        try {
          child.kill();
        } catch {
          // Exited.
        }
        closeAll(listener, readEnd, writeEnd);
        temp.cleanup();
      }
    },
  );
}

leakCheckedTest(
  "an fd dropped without close() inside a long synchronous receive loop is still closed by the garbage-collection backstop",
  async () => {
    const dir = Deno.makeTempDirSync({ prefix: "fdpass-test-" });
    const script = `${dir}/child.ts`;
    // Thousands of received fds go through the waiting list of the backstop
    // (full every 256) while one fd dropped at the start stays open in it.
    Deno.writeTextFileSync(
      script,
      `
      import { openFd, UnixSocket } from ${
        JSON.stringify(new URL("../mod.ts", import.meta.url).href)
      };
      import { libc } from ${JSON.stringify(new URL("../ffi/libc.ts", import.meta.url).href)};
      const isOpen = (fd) => libc().fcntl(fd, libc().layout.constants.F_GETFD, 0) >= 0;
      const dropped = (() => openFd("/dev/null").fd)();
      const [a, b] = UnixSocket.pair();
      const devNull = openFd("/dev/null");
      const fds = new Array(64).fill(devNull);
      for (let i = 0; i < 200; i++) {
        a.sendSync("x", { fds });
        for (const fd of b.recvSync().fds) fd.close();
      }
      let closed = false;
      for (let i = 0; i < 200 && !closed; i++) {
        globalThis.gc();
        await new Promise((resolve) => setTimeout(resolve, 5));
        closed = !isOpen(dropped);
      }
      console.log(JSON.stringify({ closed }));
      `,
    );
    try {
      const output = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--quiet", "--no-lock", "--allow-ffi", "--v8-flags=--expose-gc", script],
        stdin: "null",
      }).output();
      assert(output.success, decoder.decode(output.stderr));
      assertEquals(JSON.parse(decoder.decode(output.stdout)), { closed: true });
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
);
