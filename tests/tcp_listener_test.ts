/**
 * listenTcp() (src/extras/tcp_listener.ts): a listening TCP socket as an
 * owned fd that `node:http` can serve, also after it was passed to someone
 * else.
 *
 * The test task has no `--allow-net`, so the client side connects through
 * libc (`socket`/`connect`), which Deno's permissions do not see.
 *
 * @module
 */

import { assert, assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import { createServer } from "node:http";
import { ErrnoError, listenTcp, OwnedFd, UnixSocket } from "../mod.ts";
import { libc } from "../ffi/libc.ts";
import { decoder, leakCheckedTest, startPoller } from "./helpers.ts";

await startPoller();

/** Connects to 127.0.0.1:port through libc (blocking; the listener's backlog takes it). */
function connectLoopback(port: number): OwnedFd {
  const { lib, layout } = libc();
  const c = layout.constants;
  const fd = lib.socket(c.AF_INET, c.SOCK_STREAM | c.SOCK_CLOEXEC, 0);
  assert(fd >= 0, "socket(AF_INET)");
  const owned = new OwnedFd(fd);
  // sockaddr_in: its family field sits where sockaddr_un's does (a u16 on
  // Linux; sin_len and a u8 family on BSD).
  const s = layout.sockaddrUn;
  const size = layout.sockaddrIn.size;
  const address = new Uint8Array(size);
  const view = new DataView(address.buffer);
  if (s.lenOffset >= 0) address[s.lenOffset] = size;
  if (s.familySize === 2) view.setUint16(s.familyOffset, c.AF_INET, true);
  else address[s.familyOffset] = c.AF_INET;
  view.setUint16(layout.sockaddrIn.port, port, false);
  address.set([127, 0, 0, 1], layout.sockaddrIn.address);
  if (lib.connect(fd, address, size) !== 0) {
    owned.close();
    throw ErrnoError.from(libc().errno[0]!, "connect");
  }
  return owned;
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

leakCheckedTest(
  "listenTcp() without a port lets the kernel pick one and returns a close-on-exec socket",
  () => {
    const { handle, hostname, port } = listenTcp();
    try {
      assertEquals(hostname, "127.0.0.1");
      assert(port > 0 && port < 65536);
      assertEquals(handle.kind, "socket");
      assert(handle.closeOnExec);
    } finally {
      handle.close();
    }
  },
);

leakCheckedTest("listenTcp() on a port in use fails with EADDRINUSE naming the address", () => {
  const first = listenTcp();
  try {
    const error = assertThrows(() => listenTcp({ port: first.port }), ErrnoError);
    assertEquals(error.code, "EADDRINUSE");
    assertEquals(error.syscall, "bind");
    assertStringIncludes(error.message, `127.0.0.1:${first.port}`);
    assert(error instanceof Deno.errors.AddrInUse);
  } finally {
    first.handle.close();
  }
});

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
      using client = connectLoopback(port);
      const response = await httpGet(client);
      assertStringIncludes(response, "200 OK");
      assert(response.endsWith("served"), response);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  },
);

leakCheckedTest(
  "listenTcp() refuses a hostname that is not IPv4 dotted quad, a port out of range and a zero backlog",
  () => {
    assertThrows(() => listenTcp({ hostname: "localhost" }), TypeError, `Option "hostname"`);
    assertThrows(() => listenTcp({ hostname: "::1" }), TypeError, `Option "hostname"`);
    assertThrows(() => listenTcp({ hostname: "1.2.3.256" }), TypeError, `Option "hostname"`);
    assertThrows(() => listenTcp({ port: 65536 }), RangeError, `Option "port"`);
    assertThrows(() => listenTcp({ port: -1 }), RangeError, `Option "port"`);
    assertThrows(() => listenTcp({ backlog: 0 }), RangeError, `Option "backlog"`);
    assertThrows(() => listenTcp(null as unknown as object), TypeError, `Argument "options"`);
  },
);
