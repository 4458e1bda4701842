/**
 * listenTcp(): a listening TCP socket as an owned fd that `node:http` can
 * serve, also after it was passed to someone else.
 *
 * The test task has no `--allow-net`, so the client side connects through
 * libc (`socket`/`connect`), which Deno's permissions do not see.
 *
 * @module
 */

import { assert, assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import { createServer } from "node:http";
import { ErrnoError, listenTcp, OwnedFd, UnixSocket, waitWritable } from "../mod.ts";
import { libc } from "../ffi/libc.ts";
import { decoder, leakCheckedTest } from "./helpers.ts";

const linux = Deno.build.os === "linux";

// Create the poller's own fds before the first fd census (see async_test.ts).
await waitWritable(2);

/** Connects to 127.0.0.1:port through libc (blocking; the listener's backlog takes it). */
function connectLoopback(port: number): OwnedFd {
  const { lib, layout } = libc();
  const fd = lib.socket(2, layout.constants.SOCK_STREAM | layout.constants.SOCK_CLOEXEC, 0);
  assert(fd >= 0, "socket(AF_INET)");
  const owned = new OwnedFd(fd);
  const address = new Uint8Array(16);
  address[0] = 2; // AF_INET, little-endian u16 (Linux)
  new DataView(address.buffer).setUint16(2, port, false);
  address.set([127, 0, 0, 1], 4);
  if (lib.connect(fd, address, 16) !== 0) {
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

leakCheckedTest("listenTcp() makes a listening TCP socket", async (t) => {
  await t.step("the kernel picks a port; the fd is a close-on-exec socket", () => {
    const { handle, hostname, port } = listenTcp();
    try {
      assertEquals(hostname, "127.0.0.1");
      assert(port > 0 && port < 65536);
      assertEquals(handle.kind, "socket");
      assert(handle.closeOnExec);
    } finally {
      handle.close();
    }
  });

  await t.step("a second listener on a port in use fails with EADDRINUSE", () => {
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

  await t.step("node:http serves a listener that went through a Unix socket", async () => {
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
  });

  await t.step("options are checked", () => {
    assertThrows(() => listenTcp({ hostname: "localhost" }), TypeError, `Option "hostname"`);
    assertThrows(() => listenTcp({ hostname: "::1" }), TypeError, `Option "hostname"`);
    assertThrows(() => listenTcp({ hostname: "1.2.3.256" }), TypeError, `Option "hostname"`);
    assertThrows(() => listenTcp({ port: 65536 }), RangeError, `Option "port"`);
    assertThrows(() => listenTcp({ port: -1 }), RangeError, `Option "port"`);
    assertThrows(() => listenTcp({ backlog: 0 }), RangeError, `Option "backlog"`);
    assertThrows(() => listenTcp(null as unknown as object), TypeError, `Argument "options"`);
  });
}, { ignore: !linux });
