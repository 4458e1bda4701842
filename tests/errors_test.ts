/**
 * The error contract (src/core/errors.ts and the checks in
 * src/core/checks.ts): every argument error and system error of the core
 * API, with its documented class, fields and message. Kept as one catalogue
 * across the APIs, because what it documents is the shape of the errors
 * (class, `code`, `errno`, `syscall`, `path`, message wording), which is the
 * same for every module.
 *
 * @module
 */

import {
  assert,
  assertEquals,
  assertFalse,
  assertInstanceOf,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import {
  BorrowedFd,
  borrowFd,
  ErrnoError,
  openFd,
  OwnedFd,
  pipe,
  recvFd,
  sendFd,
  UnixSocket,
} from "../mod.ts";
import * as nodeFs from "node:fs";
import net from "node:net";
import { libc } from "../ffi/libc.ts";
import { bindFd, createUnixSocket } from "../src/core/socket_calls.ts";
import { closeAll, isOpen, isReady, leakCheckedTest, tempSocketPath } from "./helpers.ts";

/** A number that is certainly not an open fd right now. */

function closedNumber(): number {
  const fd = openFd("/dev/null");
  const number = fd.fd;
  fd.close();
  return number;
}

/** Asserts an ErrnoError's fields and that it is also the matching Deno error. */

function assertErrno(
  error: unknown,
  DenoClass: new (...args: never[]) => Error,
  fields: { code: string; errno: number; syscall: string },
): void {
  assert(error instanceof ErrnoError, `${error} is not an ErrnoError`);
  assert(error instanceof DenoClass, `${error} is not a ${DenoClass.name}`);
  const e = error as ErrnoError;
  assertEquals({ code: e.code, errno: e.errno, syscall: e.syscall }, fields);
  assertEquals(e.name, DenoClass.name);
}

leakCheckedTest("a negative, fractional or NaN fd number is a RangeError", () => {
  for (const bad of [-1, 1.5, NaN, Infinity, 2 ** 31]) {
    const error = assertThrows(() => new OwnedFd(bad), RangeError);
    assertStringIncludes(error.message, `Argument "fd" must be a non-negative integer`);
    assertThrows(() => borrowFd(bad), RangeError, `Argument "fd"`);
    assertThrows(() => new BorrowedFd(bad), RangeError);
    assertThrows(() => UnixSocket.from(bad), RangeError, `Argument "fd"`);
  }
  const [a, b] = UnixSocket.pair();
  using devNull = openFd("/dev/null");
  assertThrows(
    () => a.sendSync("x", { fds: [devNull, -1] }),
    RangeError,
    `Argument "fds[1]" must be a non-negative integer fd number, received -1`,
  );
  assertThrows(() => a.sendSync("x", { fds: [0.5] }), RangeError, `"fds[0]"`);
  assertThrows(() => a.sendSync("x", { fds: [NaN] }), RangeError, "received NaN");
  assertThrows(() => sendFd(a, -3), RangeError, `Argument "fd"`);
  assertThrows(() => sendFd(-3, devNull), RangeError, `Argument "socket"`);
  assertFalse(isReady(b.fd), "nothing may be sent after an argument error");
  a.close();
  b.close();
});

leakCheckedTest("an fd that is neither a number nor an fd object is a TypeError", () => {
  assertThrows(
    () => new OwnedFd("3" as unknown as number),
    TypeError,
    `Argument "fd" must be a number or an fd object, received "3"`,
  );
  assertThrows(() => UnixSocket.from("3" as unknown as number), TypeError, `Argument "fd"`);
  assertThrows(() => UnixSocket.from({} as unknown as number), TypeError, `Argument "fd"`);
  const [a, b] = UnixSocket.pair();
  assertThrows(
    () => a.sendSync("x", { fds: ["3" as unknown as number] }),
    TypeError,
    `Argument "fds[0]" must be an fd number or an object with an fd, received "3"`,
  );
  assertThrows(() => a.sendSync("x", { fds: [{} as { fd: number }] }), TypeError, `"fds[0]"`);
  assertThrows(
    () => a.sendSync("x", { fds: 3 as unknown as number[] }),
    TypeError,
    `Option "fds" must be an array of fds, received number 3`,
  );
  assertThrows(() => a.sendSync("x", { fds: null as unknown as number[] }), TypeError, "null");
  assertThrows(
    () => a.sendSync(5 as unknown as string),
    TypeError,
    `Argument "data" must be a Uint8Array or a string, received number 5`,
  );
  assertFalse(isReady(b.fd));
  a.close();
  b.close();
});

leakCheckedTest(
  "a Deno.FsFile, Deno.Listener, Deno.Conn or node:net Server in fds says what it is and what to pass instead",
  async () => {
    const socket = tempSocketPath();
    const [a, b] = UnixSocket.pair();
    const file = Deno.openSync("/dev/null");
    const server = net.createServer();
    // Deno 2.9.6 needs --allow-net even for Unix sockets; without it, stand-ins
    // with the members the structural checks look at (Deno's own classes have them).
    const withNet = Deno.permissions.querySync({ name: "net" }).state === "granted";
    const listener: Deno.Listener | object = withNet
      ? Deno.listen({ transport: "unix", path: socket.path })
      : { addr: { transport: "unix", path: socket.path }, accept(): void {}, close(): void {} };
    const accepted = withNet ? (listener as Deno.Listener).accept() : undefined;
    const conn: Deno.Conn | object = withNet
      ? await Deno.connect({ transport: "unix", path: socket.path })
      : { localAddr: {}, remoteAddr: {}, read(): void {}, write(): void {}, close(): void {} };
    try {
      const prefix = `Argument "fds[0]" must be an fd number or an object with an fd, received`;
      const cases: [unknown, string][] = [
        [
          file,
          `${prefix} a Deno.FsFile, whose fd Deno does not expose: open the file with openFd()`,
        ],
        [
          listener,
          `${prefix} a Deno.Listener, whose fd Deno does not expose: create the listening`,
        ],
        [conn, `${prefix} a Deno.Conn, whose fd Deno does not expose: make the connection with`],
        [
          server,
          `${prefix} a node:net Server, whose fd Deno does not expose: create the listening`,
        ],
      ];
      for (const [value, message] of cases) {
        assertThrows(() => a.sendSync("x", { fds: [value as number] }), TypeError, message);
      }
      assertThrows(() => sendFd(a, file as unknown as number), TypeError, "node:fs openSync()");
      assertThrows(
        () => new OwnedFd(file as unknown as number),
        TypeError,
        `Argument "fd" must be a number or an fd object, received a Deno.FsFile, whose fd`,
      );
      assertFalse(isReady(b.fd), "nothing may be sent after an argument error");
    } finally {
      file.close();
      if (withNet) {
        (conn as Deno.Conn).close();
        (await accepted)!.close();
        (listener as Deno.Listener).close();
      }
      closeAll(a, b);
      socket.cleanup();
    }
  },
);

leakCheckedTest("an fd from node:fs openSync() can be sent, as the near-miss message says", () => {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeTextFileSync(`${dir}/a.txt`, "opened by node:fs");
    const fd = nodeFs.openSync(`${dir}/a.txt`, "r");
    const [a, b] = UnixSocket.pair();
    try {
      a.sendSync("x", { fds: [fd] });
    } finally {
      nodeFs.closeSync(fd);
    }
    const { fds } = b.recvSync()!;
    using received = fds[0]!;
    const buffer = new Uint8Array(64);
    const n = received.readSync(buffer) ?? 0;
    assertEquals(new TextDecoder().decode(buffer.subarray(0, n)), "opened by node:fs");
    closeAll(a, b);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

leakCheckedTest("a closed OwnedFd or socket in fds is a TypeError", () => {
  const [a, b] = UnixSocket.pair();
  const closed = openFd("/dev/null");
  closed.close();
  assertThrows(
    () => a.sendSync("x", { fds: [0, closed] }),
    TypeError,
    `Argument "fds[1]" is closed`,
  );
  const [c, d] = UnixSocket.pair();
  c.close();
  assertThrows(() => a.sendSync("x", { fds: [c] }), TypeError, `Argument "fds[0]" is closed`);
  assertThrows(() => sendFd(a, closed), TypeError, `Argument "fd" is closed`);
  assertFalse(isReady(b.fd));
  closeAll(a, b, d);
});

leakCheckedTest(
  "sendSync() with more than 253 fds throws a RangeError that explains the kernel limit",
  () => {
    const [a, b] = UnixSocket.pair("seqpacket");
    const error = assertThrows(
      () => a.sendSync("x", { fds: new Array(300).fill(0) }),
      RangeError,
    );
    assertEquals(
      error.message,
      `Option "fds" has 300 fds, but the kernel accepts at most 253 in one message (SCM_MAX_FD); split them over several messages`,
    );
    // A generator is read for at most one item more than a message holds,
    // and 253 numbers are accepted.
    function* zeros(n: number): Generator<number> {
      for (let i = 0; i < n; i++) yield 0;
    }
    assertThrows(
      () => a.sendSync("x", { fds: zeros(254) }),
      RangeError,
      "has more than 253 fds",
    );
    assertFalse(isReady(b.fd));
    a.sendSync("x", { fds: zeros(253) });
    const message = b.recvSync()!;
    assertEquals(message.fds.length, 253);
    closeAll(...message.fds, a, b);
  },
);

leakCheckedTest(
  "a socket address that is too long, empty, holds a NUL or has the wrong type is refused",
  () => {
    const error = assertThrows(
      () => UnixSocket.connectSync("/" + "a".repeat(108)),
      RangeError,
    );
    assertStringIncludes(
      error.message,
      `Argument "address" is 109 bytes long, but a Unix socket path holds at most 108 bytes`,
    );
    assertThrows(() => UnixSocket.listen("/" + "é".repeat(54)), RangeError, "109 bytes");
    assertThrows(() => UnixSocket.datagram("/" + "a".repeat(108)), RangeError);
    const dgram = UnixSocket.datagram();
    assertThrows(() => dgram.sendToSync("/" + "a".repeat(108), "x"), RangeError);
    assertThrows(
      () => UnixSocket.connectSync({ abstract: "a".repeat(108) }),
      RangeError,
      "abstract name of 108 bytes, but at most 107 fit",
    );
    assertThrows(
      () => UnixSocket.connectSync("/tmp/a\0b"),
      TypeError,
      `Argument "address" must not contain a NUL character`,
    );
    assertThrows(() => UnixSocket.listen("/tmp/a\0b"), TypeError, "NUL");
    assertThrows(() => UnixSocket.connectSync(""), TypeError, "empty path");
    assertThrows(
      () => UnixSocket.connectSync({ path: "/tmp/x" } as unknown as string),
      TypeError,
      `must be a path string or { abstract: string }`,
    );
    assertThrows(() => UnixSocket.connectSync(5 as unknown as string), TypeError, "number 5");
    dgram.close();
  },
);

leakCheckedTest("a 108-byte socket path is the longest accepted", () => {
  const temp = tempSocketPath();
  try {
    const path = temp.dir + "/" + "p".repeat(108 - temp.dir.length - 1);
    assertEquals(new TextEncoder().encode(path).byteLength, 108);
    using listener = UnixSocket.listen(path);
    using client = UnixSocket.connectSync(path);
    using server = listener.acceptSync();
    assertEquals(client.remoteAddress, path);
    assertEquals(server.localAddress, path);
  } finally {
    temp.cleanup();
  }
});

leakCheckedTest("every method of a closed socket, listener or fd throws a TypeError", () => {
  const [a, b] = UnixSocket.pair();
  a.close();
  const calls: [string, () => unknown][] = [
    ["fd", () => a.fd],
    ["sendSync", () => a.sendSync("x")],
    ["recvSync", () => a.recvSync()],
    ["localAddress", () => a.localAddress],
    ["remoteAddress", () => a.remoteAddress],
    ["peerCredentials", () => a.peerCredentials()],
    ["shutdown", () => a.shutdown()],
    ["toOwnedFd", () => a.toOwnedFd()],
    ["toNetSocket", () => a.toNetSocket()],
    ["passCredentials", () => (a.passCredentials = true)],
    ["sendFd", () => sendFd(a, 0)],
    ["recvFd", () => recvFd(a)],
  ];
  for (const [name, call] of calls) {
    const error = assertThrows(call, TypeError, undefined, name);
    assertEquals(error.message, "Cannot use the socket: it is closed", name);
  }
  assert(a.closed);
  a.close(); // Idempotent.
  b.close();

  const dgram = UnixSocket.datagram();
  dgram.close();
  assertThrows(() => dgram.sendToSync("/tmp/x", "x"), TypeError, "closed");
  assertThrows(() => dgram.recvFromSync(), TypeError, "closed");

  const temp = tempSocketPath();
  const listener = UnixSocket.listen(temp.path);
  listener.close();
  assertThrows(() => listener.acceptSync(), TypeError, "Cannot use the listener: it is closed");
  assertThrows(() => listener.fd, TypeError, "closed");
  assertThrows(() => listener.localAddress, TypeError, "closed");
  listener.close();
  temp.cleanup();

  const fd = openFd("/dev/null");
  fd.close();
  const fdCalls: [string, () => unknown][] = [
    ["fd", () => fd.fd],
    ["kind", () => fd.kind],
    ["stat", () => fd.stat()],
    ["closeOnExec", () => fd.closeOnExec],
    ["set closeOnExec", () => (fd.closeOnExec = false)],
    ["nonblocking", () => fd.nonblocking],
    ["readSync", () => fd.readSync(new Uint8Array(1))],
    ["writeSync", () => fd.writeSync(new Uint8Array(1))],
    ["dup", () => fd.dup()],
    ["release", () => fd.release()],
    ["toFsFile", () => fd.toFsFile()],
    ["toNetSocket", () => fd.toNetSocket()],
    ["UnixSocket.from", () => UnixSocket.from(fd)],
  ];
  for (const [name, call] of fdCalls) {
    const error = assertThrows(call, TypeError, undefined, name);
    assertEquals(error.message, "Cannot use the fd: it is closed or released", name);
  }
});

leakCheckedTest(
  "recvSync() and recvFromSync() refuse a bad maxBytes or maxFds before receiving",
  () => {
    const [a, b] = UnixSocket.pair();
    for (const maxBytes of [0, -1, 1.5, NaN, 2 ** 31, "10" as unknown as number]) {
      assertThrows(() => b.recvSync({ maxBytes }), RangeError, `Option "maxBytes"`);
    }
    assertThrows(
      () => b.recvSync({ maxBytes: 0 }),
      RangeError,
      "must be an integer from 1 to 2147483647 on a stream socket, received 0",
    );
    for (const maxFds of [-1, 0.5, NaN, "1" as unknown as number]) {
      assertThrows(
        () => b.recvSync({ maxFds }),
        RangeError,
        `Option "maxFds" must be a non-negative integer`,
      );
    }
    const dgram = UnixSocket.datagram();
    assertThrows(
      () => dgram.recvFromSync({ maxBytes: -1 }),
      RangeError,
      "must be an integer from 0 to 2147483647, received -1",
    );
    // The checks run before anything is received: the message is still there.
    a.sendSync("kept");
    assertThrows(() => b.recvSync({ maxFds: -1 }), RangeError);
    assertEquals(new TextDecoder().decode(b.recvSync()!.data), "kept");
    closeAll(a, b, dgram);
  },
);

leakCheckedTest(
  "a bad socket type, backlog, shutdown direction or buffer, or a datagram call on a stream, is refused",
  () => {
    assertThrows(
      () => UnixSocket.pair("raw" as "stream"),
      TypeError,
      `Argument "type" must be "stream", "seqpacket" or "dgram", received "raw"`,
    );
    assertThrows(
      () => UnixSocket.listen("/tmp/x.sock", { type: "dgram" as "stream" }),
      TypeError,
      `Option "type" must be "stream" or "seqpacket" for a listener`,
    );
    assertThrows(
      () => UnixSocket.listen("/tmp/x.sock", { backlog: -1 }),
      RangeError,
      `Option "backlog"`,
    );
    const [a, b] = UnixSocket.pair();
    assertThrows(
      () => a.shutdown("sideways" as "read"),
      TypeError,
      `Argument "how" must be "read", "write" or "both", received "sideways"`,
    );
    assertThrows(
      () => a.sendToSync("/tmp/x.sock", "x"),
      TypeError,
      "Cannot use sendToSync() on a stream socket",
    );
    assertThrows(
      () => a.recvFromSync(),
      TypeError,
      "Cannot use recvFromSync() on a stream socket",
    );
    const [s1, s2] = UnixSocket.pair("seqpacket");
    assertThrows(() => s1.sendToSync("/tmp/x.sock", "x"), TypeError, "seqpacket");
    assertThrows(
      () => borrowFd(0).readSync("x" as unknown as Uint8Array),
      TypeError,
      `Argument "buffer" must be a Uint8Array`,
    );
    assertThrows(
      () => borrowFd(1).writeSync("x" as unknown as Uint8Array),
      TypeError,
      `Argument "data" must be a Uint8Array`,
    );
    closeAll(a, b, s1, s2);
  },
);

leakCheckedTest("UnixSocket.from() on a pipe or file throws a TypeError and keeps the fd", () => {
  const [r, w] = pipe();
  assertThrows(() => UnixSocket.from(r), TypeError, `Argument "fd" (fd ${r.fd}) is not a socket`);
  assertFalse(r.closed);
  assert(isOpen(r.fd));
  assertThrows(() => UnixSocket.from(w.fd), TypeError, "is not a socket");
  assert(isOpen(w.fd));
  using file = openFd("/dev/null");
  assertThrows(() => UnixSocket.from(file), TypeError, "is not a socket");
  assertFalse(file.closed);
  closeAll(r, w);
});

leakCheckedTest("connectSync() to a missing path throws NotFound (ENOENT) naming the path", () => {
  const temp = tempSocketPath();
  try {
    const error = assertThrows(() => UnixSocket.connectSync(temp.path));
    assertErrno(error, Deno.errors.NotFound, { code: "ENOENT", errno: 2, syscall: "connect" });
    assertEquals((error as ErrnoError).path, temp.path);
    assertEquals(
      (error as Error).message,
      `connect "${temp.path}" failed: ENOENT (No such file or directory)`,
    );
  } finally {
    temp.cleanup();
  }
});

leakCheckedTest(
  "connectSync() to a bound socket that is not listening throws ConnectionRefused",
  () => {
    const temp = tempSocketPath();
    const bound = new OwnedFd(createUnixSocket("stream"));
    try {
      bindFd(bound.fd, temp.path);
      const error = assertThrows(() => UnixSocket.connectSync(temp.path));
      assertErrno(error, Deno.errors.ConnectionRefused, {
        code: "ECONNREFUSED",
        errno: 111,
        syscall: "connect",
      });
    } finally {
      bound.close();
      temp.cleanup();
    }
  },
);

leakCheckedTest("connectSync() to a stale socket file throws ConnectionRefused", () => {
  const temp = tempSocketPath();
  try {
    const listener = UnixSocket.listen(temp.path);
    // Move the file away so close cannot remove it: it stays, stale.
    Deno.renameSync(temp.path, `${temp.dir}/stale.sock`);
    listener.close();
    assertThrows(
      () => UnixSocket.connectSync(`${temp.dir}/stale.sock`),
      Deno.errors.ConnectionRefused,
    );
  } finally {
    temp.cleanup();
  }
});

leakCheckedTest("connectSync() to an abstract name nobody bound throws ConnectionRefused", () => {
  assertThrows(
    () => UnixSocket.connectSync({ abstract: `fdpass-nobody-${Deno.pid}-${Math.random()}` }),
    Deno.errors.ConnectionRefused,
  );
});

leakCheckedTest(
  "UnixSocket.listen() on a path in use throws AddrInUse and leaves the first socket's file",
  () => {
    const temp = tempSocketPath();
    try {
      using first = UnixSocket.listen(temp.path);
      const error = assertThrows(() => UnixSocket.listen(temp.path));
      assertErrno(error, Deno.errors.AddrInUse, {
        code: "EADDRINUSE",
        errno: 98,
        syscall: "bind",
      });
      assertStringIncludes((error as Error).message, `bind "${temp.path}" failed: EADDRINUSE`);
      assertThrows(() => UnixSocket.datagram(temp.path), Deno.errors.AddrInUse);
      // The failed binds removed nothing: the first listener still works.
      using client = UnixSocket.connectSync(temp.path);
      using server = first.acceptSync();
      client.sendSync("still mine");
      assertEquals(server.recvSync()!.data.byteLength, 10);
    } finally {
      temp.cleanup();
    }
  },
);

leakCheckedTest(
  "UnixSocket.listen() onto a regular file throws AddrInUse, and removeExisting refuses to delete it",
  () => {
    const temp = tempSocketPath();
    try {
      Deno.writeTextFileSync(temp.path, "not a socket");
      assertThrows(() => UnixSocket.listen(temp.path), Deno.errors.AddrInUse);
      assertThrows(
        () => UnixSocket.listen(temp.path, { removeExisting: true }),
        TypeError,
        "it is a file, not a socket",
      );
      assertEquals(Deno.readTextFileSync(temp.path), "not a socket");
    } finally {
      temp.cleanup();
    }
  },
);

leakCheckedTest("UnixSocket.listen() in a missing directory throws NotFound", () => {
  assertThrows(
    () => UnixSocket.listen("/nonexistent-fdpass-dir/x.sock"),
    Deno.errors.NotFound,
    `bind "/nonexistent-fdpass-dir/x.sock" failed: ENOENT`,
  );
});

leakCheckedTest(
  "sendSync() with a bad fd number throws BadResource (EBADF) and sends nothing",
  () => {
    const [a, b] = UnixSocket.pair();
    const bad = closedNumber();
    const error = assertThrows(() => a.sendSync("x", { fds: [0, bad] }));
    assertErrno(error, Deno.errors.BadResource, { code: "EBADF", errno: 9, syscall: "sendmsg" });
    assertEquals((error as Error).message, "sendmsg failed: EBADF (Bad file descriptor)");
    assertFalse(isReady(b.fd));
    // The socket is still usable.
    a.sendSync("after");
    assertEquals(new TextDecoder().decode(b.recvSync()!.data), "after");
    closeAll(a, b);
  },
);

leakCheckedTest("sendSync() to a closed peer throws BrokenPipe (EPIPE)", () => {
  const [a, b] = UnixSocket.pair();
  b.close();
  const error = assertThrows(() => a.sendSync("x"));
  assertErrno(error, Deno.errors.BrokenPipe, { code: "EPIPE", errno: 32, syscall: "sendmsg" });
  a.close();
});

leakCheckedTest(
  "a datagram socket throws NotConnected without a destination and NotFound for a missing one",
  () => {
    using dgram = UnixSocket.datagram();
    assertThrows(() => dgram.sendSync("x"), Deno.errors.NotConnected, "ENOTCONN");
    assertThrows(
      () => dgram.sendToSync("/nonexistent-fdpass-dir/d.sock", "x"),
      Deno.errors.NotFound,
    );
  },
);

leakCheckedTest("UnixSocket.from() on a closed fd number throws BadResource", () => {
  assertThrows(() => UnixSocket.from(closedNumber()), Deno.errors.BadResource, "EBADF");
});

leakCheckedTest("close() of an fd closed behind its back throws BadResource once", () => {
  const fd = openFd("/dev/null");
  assertEquals(libc().lib.close(fd.fd), 0);
  const error = assertThrows(() => fd.close());
  assertErrno(error, Deno.errors.BadResource, { code: "EBADF", errno: 9, syscall: "close" });
  assert(fd.closed);
  fd.close(); // Nothing left to close.
});

leakCheckedTest("openFd() errors carry the path", () => {
  const error = assertThrows(() => openFd("/nonexistent-fdpass-file"));
  assertErrno(error, Deno.errors.NotFound, { code: "ENOENT", errno: 2, syscall: "open" });
  assertEquals((error as ErrnoError).path, "/nonexistent-fdpass-file");
  assertThrows(() => openFd("/dev/null", { directory: true }), Deno.errors.NotADirectory);
});

leakCheckedTest(
  "ErrnoError names errno values and stands alone where no Deno error class fits",
  () => {
    const error = ErrnoError.from(22, "setsockopt");
    assertInstanceOf(error, ErrnoError);
    assertInstanceOf(error, Error);
    assertEquals(error.name, "ErrnoError");
    assertEquals(error.code, "EINVAL");
    assertEquals(error.message, "setsockopt failed: EINVAL (Invalid argument)");
    assertFalse(Object.values(Deno.errors).some((C) => error instanceof C));
    assertEquals(ErrnoError.nameOf(9), "EBADF");
    assertEquals(ErrnoError.nameOf(11), "EAGAIN");
    assertEquals(ErrnoError.nameOf(99999), "E99999");
    const withPath = new ErrnoError(2, "open", "/x");
    assertEquals(withPath.message, `open "/x" failed: ENOENT (No such file or directory)`);
    // Plain errors are not ErrnoErrors.
    assertFalse(new Error("x") instanceof ErrnoError);
    assertFalse(new Deno.errors.NotFound("x") instanceof ErrnoError);
    assertFalse((null as unknown) instanceof ErrnoError);
  },
);
