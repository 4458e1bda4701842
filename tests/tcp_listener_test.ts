/**
 * listenTcp() and TcpListener (src/extras/tcp_listener.ts): a listening TCP
 * socket, IPv4 or IPv6, that accepts connections as owned fds, adopts an
 * inherited listener, and that `node:http` can serve, also after it was
 * passed to someone else; and toNetSocket()'s refusal of listening sockets.
 *
 * The test task has no `--allow-net`, so the client side connects through
 * libc (`socket`/`connect`), which Deno's permissions do not see.
 *
 * @module
 */

import {
  assert,
  assertEquals,
  assertFalse,
  assertInstanceOf,
  assertRejects,
  assertStrictEquals,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { createServer } from "node:http";
import {
  borrowFd,
  ErrnoError,
  listenTcp,
  OwnedFd,
  pipe,
  TcpListener,
  type TcpListenerFd,
  UnixSocket,
} from "../mod.ts";
import { libc } from "../ffi/libc.ts";
import {
  decoder,
  isOpen,
  isReady,
  leakCheckedTest,
  macrotask,
  rejectionOf,
  startPoller,
  StopReason,
  tempSocketPath,
  within,
} from "./helpers.ts";

await startPoller();

/**
 * A client socket connected through libc to `host` (`"127.0.0.1"` or
 * `"::1"`) and `port`; throws the ErrnoError of `connect` on failure.
 */
function connectTcp(port: number, host: "127.0.0.1" | "::1" = "127.0.0.1"): OwnedFd {
  const { lib, layout } = libc();
  const c = layout.constants;
  const ipv6 = host === "::1";
  const family = ipv6 ? c.AF_INET6 : c.AF_INET;
  const fd = lib.socket(family, c.SOCK_STREAM, 0);
  assert(fd >= 0, `socket(${ipv6 ? "AF_INET6" : "AF_INET"})`);
  const owned = new OwnedFd(fd);
  owned.closeOnExec = true;
  // The family field sits where sockaddr_un's does (a u16 on Linux; sin_len
  // and a u8 family on BSD); the port is big-endian.
  const s = layout.sockaddrUn;
  const size = ipv6 ? layout.sockaddrIn6.size : layout.sockaddrIn.size;
  const address = new Uint8Array(size);
  const view = new DataView(address.buffer);
  if (s.lenOffset >= 0) address[s.lenOffset] = size;
  if (s.familySize === 2) view.setUint16(s.familyOffset, family, true);
  else address[s.familyOffset] = family;
  if (ipv6) {
    view.setUint16(layout.sockaddrIn6.port, port, false);
    address[layout.sockaddrIn6.address + 15] = 1;
  } else {
    view.setUint16(layout.sockaddrIn.port, port, false);
    address.set([127, 0, 0, 1], layout.sockaddrIn.address);
  }
  if (lib.connect(fd, address, size) !== 0) {
    const errno = libc().errno[0]!;
    owned.close();
    throw ErrnoError.from(errno, "connect");
  }
  return owned;
}

/** Sends `text` one way and checks that it arrives. */
function assertCarries(from: OwnedFd, to: OwnedFd, text: string): void {
  from.writeAllSync(text);
  const buffer = new Uint8Array(64);
  let received = "";
  while (received.length < text.length) {
    const n = to.readSync(buffer);
    if (n === null) throw new Error("end of stream before the text arrived");
    received += decoder.decode(buffer.subarray(0, n));
  }
  assertEquals(received, text);
}

/** Asserts an accepted connection is an owned, blocking, close-on-exec socket that works both ways. */
function assertConnection(conn: OwnedFd, client: OwnedFd): void {
  assertInstanceOf(conn, OwnedFd);
  assertEquals(conn.kind, "socket");
  assert(conn.closeOnExec, "close-on-exec");
  assertFalse(conn.nonblocking, "blocking");
  assertCarries(client, conn, "ping");
  assertCarries(conn, client, "pong");
}

/** Sends a minimal HTTP request on `fd` and reads the whole response. */
async function httpGet(fd: OwnedFd): Promise<string> {
  fd.writeAllSync("GET / HTTP/1.0\r\nHost: localhost\r\n\r\n");
  const buffer = new Uint8Array(4096);
  let response = "";
  for (;;) {
    const n = await fd.read(buffer, { signal: AbortSignal.timeout(10_000) });
    if (n === null) return response;
    response += decoder.decode(buffer.subarray(0, n));
  }
}

/** Why the IPv6 tests are skipped, or `null` when this machine can bind ::1. */
function ipv6SkipReason(): string | null {
  try {
    listenTcp({ hostname: "::1" }).close();
    return null;
  } catch (error) {
    if (
      error instanceof ErrnoError &&
      (error.code === "EADDRNOTAVAIL" || error.code === "EAFNOSUPPORT")
    ) {
      return `no IPv6 loopback (${error.code})`;
    }
    throw error;
  }
}

const noIpv6 = ipv6SkipReason();
if (noIpv6 !== null) console.warn(`tcp_listener_test.ts: skipping the IPv6 tests: ${noIpv6}`);
const ipv6Suffix = noIpv6 === null ? "" : ` (skipped: ${noIpv6})`;

leakCheckedTest(
  "listenTcp() without a port lets the kernel pick one and returns a nonblocking, close-on-exec TcpListener",
  () => {
    using listener = listenTcp();
    assertInstanceOf(listener, TcpListener);
    const { handle, hostname, port }: TcpListenerFd = listener;
    assertEquals(hostname, "127.0.0.1");
    assert(port > 0 && port < 65536);
    assertEquals(handle.kind, "socket");
    assertStrictEquals(listener.fd, handle.fd);
    assert(handle.closeOnExec);
    assert(handle.nonblocking);
    assertEquals(
      Deno.inspect(listener),
      `TcpListener { fd: ${handle.fd}, address: 127.0.0.1:${port} }`,
    );
    listener.close();
    assert(listener.closed);
    listener.close();
    assertEquals(Deno.inspect(listener), "TcpListener { closed }");
    assertThrows(() => listener.fd, TypeError, "closed");
  },
);

leakCheckedTest("listenTcp() on a port in use fails with EADDRINUSE naming the address", () => {
  using first = listenTcp();
  const error = assertThrows(() => listenTcp({ port: first.port }), ErrnoError);
  assertEquals(error.code, "EADDRINUSE");
  assertEquals(error.syscall, "bind");
  assertStringIncludes(error.message, `127.0.0.1:${first.port}`);
  assert(error instanceof Deno.errors.AddrInUse);
});

leakCheckedTest(
  "acceptSync() returns a blocking, close-on-exec OwnedFd for each client, in order",
  () => {
    using listener = listenTcp();
    using first = connectTcp(listener.port);
    using second = connectTcp(listener.port);
    using a = listener.acceptSync();
    using b = listener.acceptSync();
    assertConnection(a, first);
    assertConnection(b, second);
    // The listener stays nonblocking: acceptSync waits with poll, not in accept().
    assert(listener.handle.nonblocking);
  },
);

leakCheckedTest(
  "accept() waits without blocking the thread and resolves once a client connects",
  async () => {
    using listener = listenTcp();
    const accepted = listener.accept({ signal: AbortSignal.timeout(10_000) });
    await macrotask();
    using client = connectTcp(listener.port);
    using conn = await within(accepted, 10_000, "accept()");
    assertConnection(conn, client);
  },
);

leakCheckedTest("for await yields connections until the listener is closed", async () => {
  const listener = listenTcp();
  const clients = [connectTcp(listener.port), connectTcp(listener.port)];
  const seen: number[] = [];
  try {
    await within(
      (async () => {
        for await (const conn of listener) {
          assertConnection(conn, clients[seen.length]!);
          seen.push(conn.fd);
          conn.close();
          if (seen.length === 2) setTimeout(() => listener.close(), 10);
        }
      })(),
      10_000,
      "the for await loop to end",
    );
  } finally {
    listener.close();
    for (const client of clients) client.close();
  }
  assertEquals(seen.length, 2);
  assert(listener.closed);
});

leakCheckedTest(
  "accept() rejects with the signal's reason on abort and with BadResource on close",
  async () => {
    using listener = listenTcp();
    const controller = new AbortController();
    const pending = listener.accept({ signal: controller.signal });
    await macrotask();
    const reason = new StopReason("accept");
    controller.abort(reason);
    assertStrictEquals(await rejectionOf(pending, "aborted accept()"), reason);

    // Nothing was consumed: the listener still accepts.
    using client = connectTcp(listener.port);
    using conn = await listener.accept();
    assertConnection(conn, client);

    const closing = listener.accept();
    await macrotask();
    listener.close();
    assertInstanceOf(await rejectionOf(closing, "accept() on close"), Deno.errors.BadResource);
    await assertRejects(() => listener.accept(), TypeError, "closed");
    using other = listenTcp();
    await assertRejects(
      () => other.accept({ signal: new AbortController() as unknown as AbortSignal }),
      TypeError,
      `Option "signal"`,
    );
  },
);

leakCheckedTest(
  `listenTcp({ hostname: "::1" }) listens on IPv6 and accepts an IPv6 client${ipv6Suffix}`,
  () => {
    using listener = listenTcp({ hostname: "::1" });
    assertEquals(listener.hostname, "::1");
    assertEquals(
      Deno.inspect(listener),
      `TcpListener { fd: ${listener.fd}, address: [::1]:${listener.port} }`,
    );
    using client = connectTcp(listener.port, "::1");
    using conn = listener.acceptSync();
    assertConnection(conn, client);
    // An IPv6 loopback listener takes no IPv4 client.
    const error = assertThrows(() => connectTcp(listener.port), ErrnoError);
    assertEquals(error.code, "ECONNREFUSED");
  },
  { ignore: noIpv6 !== null },
);

leakCheckedTest(
  `listenTcp({ hostname: "::" }) takes IPv4 clients too, unless ipv6Only is set${ipv6Suffix}`,
  () => {
    using dual = listenTcp({ hostname: "::" });
    assertEquals(dual.hostname, "::");
    using client4 = connectTcp(dual.port);
    using conn4 = dual.acceptSync();
    assertConnection(conn4, client4);

    using only = listenTcp({ hostname: "::", ipv6Only: true });
    using client6 = connectTcp(only.port, "::1");
    using conn6 = only.acceptSync();
    assertConnection(conn6, client6);
    assertEquals(assertThrows(() => connectTcp(only.port), ErrnoError).code, "ECONNREFUSED");
  },
  { ignore: noIpv6 !== null },
);

leakCheckedTest(
  `listenTcp() reads full and IPv4-tailed IPv6 literals and reports RFC 5952 text${ipv6Suffix}`,
  () => {
    for (
      const [hostname, expected] of [
        ["0:0:0:0:0:0:0:1", "::1"],
        ["0000:0000:0000:0000:0000:0000:0000:0001", "::1"],
        ["::0:1", "::1"],
        ["::ffff:127.0.0.1", "::ffff:127.0.0.1"],
        ["0:0:0:0:0:0:0:0", "::"],
      ]
    ) {
      using listener = listenTcp({ hostname });
      assertEquals(listener.hostname, expected, hostname);
    }
  },
  { ignore: noIpv6 !== null },
);

leakCheckedTest(
  'listenTcp() binds "localhost" to 127.0.0.1 and "0.0.0.0" to every interface',
  () => {
    using local = listenTcp({ hostname: "localhost" });
    assertEquals(local.hostname, "127.0.0.1");
    using client = connectTcp(local.port);
    using conn = local.acceptSync();
    assertConnection(conn, client);

    using any = listenTcp({ hostname: "0.0.0.0" });
    assertEquals(any.hostname, "0.0.0.0");
    using client2 = connectTcp(any.port);
    using conn2 = any.acceptSync();
    assertConnection(conn2, client2);
  },
);

leakCheckedTest("reusePort lets two listeners bind the same port, and both accept", () => {
  using first = listenTcp({ reusePort: true });
  using second = listenTcp({ port: first.port, reusePort: true });
  assertEquals(second.port, first.port);
  // Without SO_REUSEPORT on the newcomer the port stays taken.
  assertEquals(assertThrows(() => listenTcp({ port: first.port }), ErrnoError).code, "EADDRINUSE");
  // Each connection lands on one of the two (Linux spreads them; BSD picks
  // the newest), queued by the time a loopback connect() returns.
  using client = connectTcp(first.port);
  const ready = [first, second].find((listener) => isReady(listener.fd));
  if (ready === undefined) throw new Error("neither listener got the connection");
  using conn = ready.acceptSync();
  assertConnection(conn, client);
});

leakCheckedTest(
  "TcpListener.from() adopts a listening socket, close-on-exec and nonblocking, with its address",
  async (t) => {
    await t.step("an OwnedFd is released into the listener", () => {
      const original = listenTcp();
      const fd = original.handle.dup();
      fd.closeOnExec = false;
      original.handle.nonblocking = false; // Shared by both fds: one open socket.
      using adopted = TcpListener.from(fd);
      assert(fd.closed, "the OwnedFd was released");
      assertEquals(adopted.hostname, "127.0.0.1");
      assertEquals(adopted.port, original.port);
      assert(adopted.handle.closeOnExec);
      assert(adopted.handle.nonblocking);
      original.close();
      using client = connectTcp(adopted.port);
      using conn = adopted.acceptSync();
      assertConnection(conn, client);
    });

    await t.step("a number is owned from then on", () => {
      const original = listenTcp();
      const port = original.port;
      const number = original.handle.release();
      const adopted = TcpListener.from(number);
      assertEquals(adopted.fd, number);
      assertEquals(adopted.port, port);
      adopted.close();
      assertFalse(isOpen(number));
    });
  },
);

leakCheckedTest(
  "TcpListener.from() refuses a connected TCP socket, a Unix socket, a pipe and an unlistened socket with a TypeError, leaving the fd open",
  () => {
    using listener = listenTcp();
    using client = connectTcp(listener.port);
    using conn = listener.acceptSync();
    const [a, b] = UnixSocket.pair();
    const [r, w] = pipe();
    const { lib, layout } = libc();
    const c = layout.constants;
    using unlistened = new OwnedFd(lib.socket(c.AF_INET, c.SOCK_STREAM | c.SOCK_CLOEXEC, 0));
    try {
      const cases: [OwnedFd | number, string][] = [
        [client, "not listening"],
        [conn, "not listening"],
        [a.fd, "Unix socket"],
        [r, "not a socket"],
        [unlistened, "not listening"],
      ];
      for (const [fd, message] of cases) {
        const number = typeof fd === "number" ? fd : fd.fd;
        const error = assertThrows(() => TcpListener.from(fd), TypeError, message);
        assertStringIncludes(error.message, `Argument "fd" (fd ${number})`);
        assert(isOpen(number), `fd ${number} stays open`);
        if (typeof fd !== "number") assertFalse(fd.closed);
      }
      assertThrows(() => TcpListener.from("3" as unknown as number), TypeError, `Argument "fd"`);
    } finally {
      a.close();
      b.close();
      r.close();
      w.close();
    }
  },
);

leakCheckedTest(
  "an accepted connection sent over a UnixSocket arrives as a working socket at the other end",
  async () => {
    using listener = listenTcp();
    using client = connectTcp(listener.port);
    const [a, b] = UnixSocket.pair();
    try {
      const conn = await listener.accept();
      a.sendSync("connection", { fds: [conn] });
      conn.close();
      const received = b.recvSync()!.fds[0]!;
      assert(received.closeOnExec);
      assertCarries(received, client, "from the worker");
      // node:net takes it from here.
      const socket = received.toNetSocket();
      const data = new Promise<Uint8Array>((resolve) => socket.once("data", resolve));
      client.writeAllSync("to node:net");
      assertEquals(decoder.decode(await within(data, 10_000, "node:net data")), "to node:net");
      socket.destroy();
      await new Promise((resolve) => socket.once("close", resolve));
    } finally {
      a.close();
      b.close();
    }
  },
);

leakCheckedTest(
  "toNetSocket() on a listening socket, TCP or Unix, throws a TypeError naming server.listen({ fd }) and keeps the fd",
  () => {
    using listener = listenTcp();
    const error = assertThrows(() => listener.handle.toNetSocket(), TypeError, "listening socket");
    assertStringIncludes(error.message, "listen({ fd })");
    assertFalse(listener.closed);
    assert(isOpen(listener.fd));

    const { path, cleanup } = tempSocketPath();
    try {
      using unix = UnixSocket.listen(path);
      using fd = borrowFd(unix.fd).dup();
      assertThrows(() => fd.toNetSocket(), TypeError, "listening socket");
      assertFalse(fd.closed);
      assert(isOpen(fd.fd));
    } finally {
      cleanup();
    }
  },
);

leakCheckedTest(
  "node:http serves a listenTcp() socket that went through a Unix socket",
  async () => {
    const { handle, port } = listenTcp();
    const [a, b] = UnixSocket.pair();
    a.sendSync("listener", { fds: [handle] });
    handle.close();
    const received = b.recvSync()!.fds[0]!;
    a.close();
    b.close();
    const server = createServer((_request, response) => response.end("served"));
    await new Promise<void>((resolve) => server.listen({ fd: received.release() }, resolve));
    try {
      using client = connectTcp(port);
      const response = await httpGet(client);
      assertStringIncludes(response, "200 OK");
      assert(response.endsWith("served"), response);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  },
);

leakCheckedTest(
  'listenTcp() refuses names other than "localhost", malformed addresses, a port out of range, a zero backlog and non-boolean flags',
  () => {
    for (
      const hostname of [
        "example.com",
        "127.1",
        "1.2.3.256",
        "[::1]",
        "::1::",
        "1:2:3:4:5:6:7:8:9",
        "1::2::3",
        "12345::",
        ":1::",
        "::ffff:1.2.3",
        "",
        42,
      ]
    ) {
      const error = assertThrows(
        () => listenTcp({ hostname: hostname as string }),
        TypeError,
        `Option "hostname"`,
      );
      assertStringIncludes(error.message, `"localhost"`);
    }
    assertThrows(
      () => listenTcp({ hostname: "fe80::1%eth0" }),
      TypeError,
      "numeric scope id",
    );
    assertThrows(() => listenTcp({ port: 65536 }), RangeError, `Option "port"`);
    assertThrows(() => listenTcp({ port: -1 }), RangeError, `Option "port"`);
    assertThrows(() => listenTcp({ backlog: 0 }), RangeError, `Option "backlog"`);
    assertThrows(
      () => listenTcp({ reusePort: "yes" as unknown as boolean }),
      TypeError,
      `Option "reusePort"`,
    );
    assertThrows(
      () => listenTcp({ ipv6Only: 1 as unknown as boolean }),
      TypeError,
      `Option "ipv6Only"`,
    );
    assertThrows(() => listenTcp(null as unknown as object), TypeError, `Argument "options"`);
  },
);
