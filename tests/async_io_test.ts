/**
 * The async operations of UnixSocket, UnixListener and OwnedFd: send(),
 * recv(), recvFrom(), accept(), UnixSocket.connect(), read() and write(),
 * `for await` over sockets and listeners. Each waits in the shared poller
 * (poller_test.ts) when it cannot finish at once, and rejects with the
 * signal's reason when aborted, having consumed or sent nothing.
 *
 * @module
 */

import { assert, assertEquals, assertInstanceOf, assertStrictEquals } from "@std/assert";
import { openFd, pipe, pollerStats, type UnixListener, UnixSocket } from "../mod.ts";
import {
  assertPollerIdle,
  decoder,
  fillSendBuffer,
  leakCheckedTest,
  macrotask,
  receiveBytes,
  rejectionOf,
  startPoller,
  StopReason,
  tempSocketPath,
  until,
  within,
} from "./helpers.ts";

await startPoller();

leakCheckedTest(
  "recv() rejects with the signal's reason when aborted and consumes nothing",
  async () => {
    const [a, b] = UnixSocket.pair("seqpacket");
    try {
      const controller = new AbortController();
      const reason = new StopReason("recv");
      const pending = b.recv({ signal: controller.signal });
      await macrotask();
      assertEquals(pollerStats().waiters, 1);
      controller.abort(reason);
      assertStrictEquals(await rejectionOf(pending, "recv()"), reason);
      await assertPollerIdle();
      // The socket still works, and the message sent after the abort is
      // there whole.
      a.sendSync("after");
      assertEquals(decoder.decode((await b.recv())!.data), "after");
    } finally {
      a.close();
      b.close();
    }
  },
);

leakCheckedTest(
  "recv() rejects with a TimeoutError from AbortSignal.timeout() and keeps later data",
  async () => {
    const [a, b] = UnixSocket.pair();
    try {
      const error = await rejectionOf(b.recv({ signal: AbortSignal.timeout(20) }), "recv()");
      assertInstanceOf(error, DOMException);
      assertEquals((error as DOMException).name, "TimeoutError");
      await assertPollerIdle();
      a.sendSync("kept");
      assertEquals(decoder.decode((await b.recv())!.data), "kept");
    } finally {
      a.close();
      b.close();
    }
  },
);

leakCheckedTest(
  "recv() with a signal that is already aborted does not take a queued message",
  async () => {
    const [a, b] = UnixSocket.pair("seqpacket");
    try {
      a.sendSync("queued");
      const reason = new StopReason("before start");
      assertStrictEquals(
        await rejectionOf(b.recv({ signal: AbortSignal.abort(reason) }), "recv()"),
        reason,
      );
      assertEquals(decoder.decode(b.recvSync()!.data), "queued");
    } finally {
      a.close();
      b.close();
    }
  },
);

leakCheckedTest(
  "recvFrom() rejects with the signal's reason or a TimeoutError and receives later datagrams",
  async () => {
    const name = { abstract: `fdpass-async-abort-${Deno.pid}` };
    const server = UnixSocket.datagram(name);
    const client = UnixSocket.datagram();
    try {
      const reason = new StopReason("recvFrom");
      const controller = new AbortController();
      const pending = server.recvFrom({ signal: controller.signal });
      await macrotask();
      controller.abort(reason);
      assertStrictEquals(await rejectionOf(pending, "recvFrom()"), reason);
      const timedOut = await rejectionOf(
        server.recvFrom({ signal: AbortSignal.timeout(20) }),
        "recvFrom()",
      );
      assertEquals((timedOut as DOMException).name, "TimeoutError");
      await assertPollerIdle();
      await client.sendTo(name, "datagram");
      const datagram = await within(server.recvFrom(), 5_000, "recvFrom()");
      assertEquals(decoder.decode(datagram.data), "datagram");
    } finally {
      server.close();
      client.close();
    }
  },
);

leakCheckedTest(
  "send() on a full seqpacket socket rejects when aborted and sends nothing",
  async () => {
    const [a, b] = UnixSocket.pair("seqpacket");
    try {
      const filled = await fillSendBuffer(a);
      assert(filled > 0);
      const controller = new AbortController();
      const reason = new StopReason("send");
      const pending = a.send("aborted", { signal: controller.signal });
      await macrotask();
      assertEquals(pollerStats().waiters, 1);
      controller.abort(reason);
      assertStrictEquals(await rejectionOf(pending, "send()"), reason);
      const timedOut = await rejectionOf(
        a.send("timed out", { signal: AbortSignal.timeout(20) }),
        "send()",
      );
      assertEquals((timedOut as DOMException).name, "TimeoutError");
      await assertPollerIdle();
      // Neither aborted message went out: the peer gets exactly the fill.
      let received = 0;
      for (let i = 0; i < filled; i++) {
        const message = b.recvSync()!;
        assertEquals(decoder.decode(message.data), "f");
        received++;
      }
      assertEquals(received, filled);
      await a.send("next");
      assertEquals(decoder.decode(b.recvSync()!.data), "next");
    } finally {
      a.close();
      b.close();
    }
  },
);

leakCheckedTest(
  "send() on a full stream socket that sent nothing yet rejects when aborted and sends nothing",
  async () => {
    const [a, b] = UnixSocket.pair();
    try {
      const filled = await fillSendBuffer(a);
      const reason = new StopReason("stream send");
      const controller = new AbortController();
      const pending = a.send("Z", { signal: controller.signal });
      await macrotask();
      controller.abort(reason);
      assertStrictEquals(await rejectionOf(pending, "send()"), reason);
      await assertPollerIdle();
      // Not broken: nothing of the aborted message went out.
      const draining = receiveBytes(b, filled + 1);
      await within(a.send("!"), 5_000, "send() after the drain");
      assertEquals(await draining, "f".repeat(filled) + "!");
    } finally {
      a.close();
      b.close();
    }
  },
);

leakCheckedTest("send() with a signal that is already aborted sends nothing", async () => {
  const [a, b] = UnixSocket.pair("seqpacket");
  try {
    const reason = new StopReason("before start");
    assertStrictEquals(
      await rejectionOf(a.send("never", { signal: AbortSignal.abort(reason) }), "send()"),
      reason,
    );
    a.sendSync("only");
    assertEquals(decoder.decode(b.recvSync()!.data), "only");
  } finally {
    a.close();
    b.close();
  }
});

leakCheckedTest(
  "an aborted send() that sent part of a stream message marks the socket broken",
  async () => {
    const [a, b] = UnixSocket.pair();
    try {
      // Larger than the socket buffer: part goes out, then send() waits.
      const large = new Uint8Array(4 << 20).fill(7);
      const controller = new AbortController();
      const reason = new StopReason("partial send");
      const pending = a.send(large, { signal: controller.signal });
      await macrotask();
      assertEquals(pollerStats().waiters, 1, "the send waits for room");
      const head = b.recvSync({ maxBytes: 1 << 20 })!;
      assert(head.data.byteLength > 0, "part of the message went out");
      controller.abort(reason);
      assertStrictEquals(await rejectionOf(pending, "send()"), reason);
      await assertPollerIdle();
      // The rest of the message can never follow: later sends fail.
      const error = await rejectionOf(a.send("more"), "send() after the abort");
      assertInstanceOf(error, Deno.errors.BrokenPipe);
    } finally {
      a.close();
      b.close();
    }
  },
);

leakCheckedTest(
  "send() that must wait sends duplicates, so closing the fds meanwhile is safe",
  async () => {
    const [a, b] = UnixSocket.pair("seqpacket");
    try {
      const filled = await fillSendBuffer(a);
      const [r, w] = pipe();
      const sending = a.send("with fd", { fds: [w] });
      // The send waits for room; the caller closes its fd at once.
      assertEquals(pollerStats().waiters, 1);
      w.close();
      // Another fd may now take w's number; it must not be what is sent.
      using decoy = openFd("/dev/null");
      for (let i = 0; i < filled; i++) b.recvSync({ maxFds: 0 });
      assertEquals(await sending, 7);
      const message = (await b.recv())!;
      assertEquals(decoder.decode(message.data), "with fd");
      assertEquals(message.fds.length, 1);
      using received = message.fds[0]!;
      assertEquals(received.kind, "pipe");
      received.writeAllSync("through the duplicate");
      received.close();
      const buffer = new Uint8Array(64);
      const n = r.readSync(buffer)!;
      assertEquals(decoder.decode(buffer.subarray(0, n)), "through the duplicate");
      assert(decoy.fd >= 0);
      r.close();
    } finally {
      a.close();
      b.close();
    }
  },
);

leakCheckedTest(
  "accept() rejects with the signal's reason or a TimeoutError and accepts the next connection",
  async () => {
    const { path, cleanup } = tempSocketPath();
    const listener = UnixSocket.listen(path);
    try {
      const reason = new StopReason("accept");
      const controller = new AbortController();
      const pending = listener.accept({ signal: controller.signal });
      await macrotask();
      assertEquals(pollerStats().waiters, 1);
      controller.abort(reason);
      assertStrictEquals(await rejectionOf(pending, "accept()"), reason);
      const timedOut = await rejectionOf(
        listener.accept({ signal: AbortSignal.timeout(20) }),
        "accept()",
      );
      assertEquals((timedOut as DOMException).name, "TimeoutError");
      await assertPollerIdle();
      // The next connection is accepted normally.
      const client = UnixSocket.connectSync(path);
      const server = await within(listener.accept(), 5_000, "accept()");
      client.sendSync("hello");
      assertEquals(decoder.decode(server.recvSync()!.data), "hello");
      client.close();
      server.close();
    } finally {
      listener.close();
      cleanup();
    }
  },
);

leakCheckedTest(
  "UnixSocket.connect() rejects with WouldBlock while the listener's backlog is full",
  async () => {
    const { path, cleanup } = tempSocketPath();
    // Linux admits backlog + 1 pending connections; a nonblocking connect
    // past that fails with EAGAIN (unix_stream_connect). No event reports
    // room in the backlog, so connect() reports it instead of polling.
    const listener = UnixSocket.listen(path, { backlog: 0 });
    const queued: UnixSocket[] = [];
    try {
      let refused: unknown = undefined;
      for (let i = 0; i < 4 && refused === undefined; i++) {
        try {
          queued.push(await UnixSocket.connect(path));
        } catch (error) {
          refused = error;
        }
      }
      assert(refused instanceof Deno.errors.WouldBlock, `expected WouldBlock, got ${refused}`);
      assertEquals((refused as { code?: string }).code, "EAGAIN");
      assertEquals((refused as { syscall?: string }).syscall, "connect");
      await assertPollerIdle();
      // Once the listener accepts, connect() gets through again.
      for (let i = 0; i < queued.length; i++) listener.acceptSync().close();
      const late = await within(UnixSocket.connect(path), 5_000, "connect() after accepting");
      listener.acceptSync().close();
      late.close();
    } finally {
      for (const client of queued) client.close();
      listener.close();
      cleanup();
    }
  },
);

leakCheckedTest(
  "UnixSocket.connect() with a signal that is already aborted rejects without connecting",
  async () => {
    const { path, cleanup } = tempSocketPath();
    const listener = UnixSocket.listen(path);
    try {
      const reason = new StopReason("before start");
      assertStrictEquals(
        await rejectionOf(
          UnixSocket.connect(path, { signal: AbortSignal.abort(reason) }),
          "connect()",
        ),
        reason,
      );
      // No connection was made.
      assertEquals(
        await rejectionOf(listener.accept({ signal: AbortSignal.timeout(20) }), "accept()").then(
          (error) => (error as DOMException).name,
        ),
        "TimeoutError",
      );
    } finally {
      listener.close();
      cleanup();
    }
  },
);

leakCheckedTest(
  "read() rejects with the signal's reason or a TimeoutError and reads later data",
  async () => {
    const [r, w] = pipe();
    try {
      const buffer = new Uint8Array(16);
      const reason = new StopReason("read");
      const controller = new AbortController();
      const pending = r.read(buffer, { signal: controller.signal });
      await macrotask();
      controller.abort(reason);
      assertStrictEquals(await rejectionOf(pending, "read()"), reason);
      const timedOut = await rejectionOf(
        r.read(buffer, { signal: AbortSignal.timeout(20) }),
        "read()",
      );
      assertEquals((timedOut as DOMException).name, "TimeoutError");
      await assertPollerIdle();
      w.writeAllSync("data");
      assertEquals(await within(r.read(buffer), 5_000, "read()"), 4);
      assertEquals(decoder.decode(buffer.subarray(0, 4)), "data");
    } finally {
      r.close();
      w.close();
    }
  },
);

leakCheckedTest("write() on a full pipe rejects when aborted and writes nothing", async () => {
  const [r, w] = pipe();
  try {
    // A blocking write of one pipe capacity (64 KiB on Linux) into an
    // empty pipe completes and leaves it full.
    const capacity = 65_536;
    w.writeAllSync(new Uint8Array(capacity).fill(1));
    const reason = new StopReason("write");
    const controller = new AbortController();
    const pending = w.write(new Uint8Array(100).fill(2), { signal: controller.signal });
    await macrotask();
    assertEquals(pollerStats().waiters, 1);
    controller.abort(reason);
    assertStrictEquals(await rejectionOf(pending, "write()"), reason);
    const timedOut = await rejectionOf(
      w.write(new Uint8Array(100).fill(3), { signal: AbortSignal.timeout(20) }),
      "write()",
    );
    assertEquals((timedOut as DOMException).name, "TimeoutError");
    await assertPollerIdle();
    // Only the fill is in the pipe.
    w.close();
    let total = 0;
    const buffer = new Uint8Array(capacity);
    for (;;) {
      const n = r.readSync(buffer);
      if (n === null) break;
      assert(buffer.subarray(0, n).every((byte) => byte === 1));
      total += n;
    }
    assertEquals(total, capacity);
  } finally {
    r.close();
    w.close();
  }
});

leakCheckedTest("for await over a socket yields messages until end of stream", async () => {
  const [a, b] = UnixSocket.pair("seqpacket");
  try {
    const sending = (async () => {
      for (const word of ["one", "two", "three"]) {
        await new Promise((resolve) => setTimeout(resolve, 5));
        await a.send(word);
      }
      a.shutdown("write");
    })();
    const seen: string[] = [];
    await within(
      (async () => {
        for await (const message of b) seen.push(decoder.decode(message.data));
      })(),
      10_000,
      "the loop to end",
    );
    await sending;
    assertEquals(seen, ["one", "two", "three"]);
    await assertPollerIdle();
  } finally {
    a.close();
    b.close();
  }
});

leakCheckedTest("for await over a listener yields connections until it is closed", async () => {
  const { path, cleanup } = tempSocketPath();
  const listener: UnixListener = UnixSocket.listen(path);
  const clients: UnixSocket[] = [];
  try {
    const greetings: string[] = [];
    const serving = (async () => {
      for await (const connection of listener) {
        greetings.push(decoder.decode((await connection.recv())!.data));
        connection.close();
      }
    })();
    for (let i = 0; i < 3; i++) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      const client = await within(UnixSocket.connect(path), 5_000, "connect()");
      clients.push(client);
      await client.send(`client ${i}`);
    }
    await until(() => greetings.length === 3, "three connections");
    // The loop is waiting in accept() now; closing ends it without an error.
    await macrotask();
    assertEquals(pollerStats().waiters, 1);
    listener.close();
    await within(serving, 5_000, "the loop to end");
    assertEquals(greetings, ["client 0", "client 1", "client 2"]);
    await assertPollerIdle();
  } finally {
    for (const client of clients) client.close();
    listener.close();
    cleanup();
  }
});
