/**
 * Socket activation, receiving side: `listenFds()`, `describeSocket()`,
 * `isSocket()` and `UnixListener.from()`.
 *
 * The activation tests run a Deno child under Debian's real
 * `systemd-socket-activate` (package `systemd`; it needs no running
 * systemd), which binds the listeners, waits for the first connection or
 * datagram, and then execs the program with `LISTEN_FDS`, `LISTEN_PID` and
 * `LISTEN_FDNAMES` set. They are skipped, by name, where it is missing.
 *
 * These tests run without `--allow-net`, so this process speaks only over
 * Unix sockets (through fdpass, which needs `--allow-ffi` alone): it
 * triggers every activation by connecting to a Unix path, and it is the
 * HTTP client of the Unix-socket `node:http` server. The TCP server is
 * requested by the child itself (which has `--allow-net=127.0.0.1`).
 *
 * The bad-input tests call `listenFds()` in this process, with the
 * variables set around each call and restored after it. They never reach a
 * successful adoption, which would take Deno's own fds at 3, 4, ...
 *
 * @module
 */

import { ownPidfdId } from "../src/core/pidfd.ts";
import { assert, assertEquals, assertMatch, assertThrows } from "@std/assert";
import {
  borrowFd,
  describeSocket,
  isSocket,
  listenFds,
  listenTcp,
  openFd,
  pipe,
  UnixListener,
  UnixSocket,
} from "../mod.ts";
import {
  decoder,
  hasCommand,
  isOpen,
  leakCheckedTest,
  startPoller,
  tempSocketPath,
  until,
  within,
} from "./helpers.ts";

await startPoller();

const ACTIVATE = "systemd-socket-activate";
const hasActivate = hasCommand(ACTIVATE);
/** pidfds on pidfs (Linux 6.9+), and Python to compute their ids independently. */
const hasPidfs = ownPidfdId() !== null && hasCommand("/usr/bin/python3");
const VARIABLES = ["LISTEN_PID", "LISTEN_PIDFDID", "LISTEN_FDS", "LISTEN_FDNAMES"] as const;
/** Exactly the variables listenFds() reads: a scoped grant is enough. */
const ENV_PERMISSION = `--allow-env=${VARIABLES.join(",")}`;

if (!hasActivate) {
  console.warn(`${ACTIVATE} is not installed (Debian package "systemd"): activation tests skipped`);
}

/** What `fixtures/activation_child.ts` prints. */
interface Report {
  pid: number;
  names: string[];
  numbers: number[];
  sockets: ({ family: string; type: string; listening: boolean } | null)[];
  closeOnExec: boolean[];
  closeOnExecAsPassed?: boolean[];
  environment: Record<string, string | null>;
  environmentAfterError?: Record<string, string | null>;
  error?: { name: string; message: string } | null;
  port?: number;
  response?: string;
}

const UNSET = { LISTEN_PID: null, LISTEN_PIDFDID: null, LISTEN_FDS: null, LISTEN_FDNAMES: null };

interface Activated {
  /** The pid of systemd-socket-activate, which execs the Deno child and so is its pid. */
  pid: number;
  /** The child's report and its stderr. */
  done: Promise<{ report: Report; stderr: string }>;
}

/**
 * Starts `fixtures/activation_child.ts MODE ...` under
 * `systemd-socket-activate ACTIVATE_ARGS`, killed after 30 s.
 *
 * @param activateArgs Listeners and flags for systemd-socket-activate.
 * @param childArgs The fixture's mode and arguments.
 * @param options Extra permissions for the child, and a shell in between.
 * @returns The pid and the report.
 */
function activate(
  activateArgs: string[],
  childArgs: string[],
  options: { permissions?: string[]; shellWrapper?: boolean; pidfdId?: "right" | "wrong" } = {},
): Activated {
  const script = new URL("./fixtures/activation_child.ts", import.meta.url).pathname;
  const deno = [
    Deno.execPath(),
    "run",
    "--quiet",
    "--no-lock",
    "--allow-ffi",
    ENV_PERMISSION,
    ...(options.permissions ?? []),
    script,
    ...childArgs,
  ];
  // `; exit $?` keeps sh from exec-ing its last command: deno becomes a
  // child of the shell, with a pid of its own, as under `deno task`.
  // LISTEN_PIDFDID as newer systemd sets it: the pidfs inode number of a
  // pidfd for the process, computed by Python for the shell that then execs
  // deno (the same process); "wrong" adds one.
  const pidfdScript =
    `LISTEN_PIDFDID=$(/usr/bin/python3 -c 'import os, sys; print(os.fstat(os.pidfd_open(int(sys.argv[1]))).st_ino + int(sys.argv[2]))' $$ ${
      options.pidfdId === "wrong" ? 1 : 0
    }) && export LISTEN_PIDFDID && exec "$0" "$@"`;
  const program = options.shellWrapper
    ? ["sh", "-c", '"$0" "$@"; exit $?', ...deno]
    : options.pidfdId !== undefined
    ? ["sh", "-c", pidfdScript, ...deno]
    : deno;
  const process = new Deno.Command(ACTIVATE, {
    args: [...activateArgs, ...program],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      process.kill("SIGKILL");
    } catch {
      // Gone already.
    }
  }, 30_000);
  const done = process.output().then((output) => {
    clearTimeout(timer);
    const stdout = decoder.decode(output.stdout);
    const stderr = decoder.decode(output.stderr);
    if (output.code !== 0) {
      throw new Error(
        `${ACTIVATE} exited with ${output.code}\nstdout: ${stdout}\nstderr: ${stderr}`,
      );
    }
    return { report: JSON.parse(stdout) as Report, stderr };
  });
  return { pid: process.pid, done };
}

/** Waits until systemd-socket-activate has bound `path`. */
async function bound(path: string): Promise<void> {
  await until(
    () => {
      try {
        return Deno.lstatSync(path).isSocket === true;
      } catch {
        return false;
      }
    },
    `${ACTIVATE} to bind ${path}`,
    10_000,
  );
}

/**
 * Connects to a listener of systemd-socket-activate, once it listens: its
 * socket file appears at bind(), a moment before listen().
 */
async function connectWhenListening(
  path: string,
  type: "stream" | "seqpacket" = "stream",
): Promise<UnixSocket> {
  await bound(path);
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return UnixSocket.connectSync(path, { type });
    } catch (error) {
      if (!(error instanceof Deno.errors.ConnectionRefused) || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
}

/** Sends "ping" on a connected socket and returns the reply. */
async function ping(socket: UnixSocket): Promise<string> {
  socket.sendSync("ping");
  const reply = await within(socket.recv(), 20_000, "the child's reply");
  return decoder.decode(reply!.data);
}

/**
 * Sets the `LISTEN_*` variables (`undefined` unsets one), runs `fn`, and
 * restores the environment as it was.
 */
function withEnvironment(
  values: Partial<Record<(typeof VARIABLES)[number], string>>,
  fn: () => void,
): void {
  const saved = VARIABLES.map((name) => [name, Deno.env.get(name)] as const);
  try {
    for (const name of VARIABLES) {
      const value = values[name];
      if (value === undefined) Deno.env.delete(name);
      else Deno.env.set(name, value);
    }
    fn();
  } finally {
    for (const [name, value] of saved) {
      if (value === undefined) Deno.env.delete(name);
      else Deno.env.set(name, value);
    }
  }
}

function listenEnvironment(): Record<string, string | null> {
  return Object.fromEntries(VARIABLES.map((name) => [name, Deno.env.get(name) ?? null]));
}

/**
 * Asserts that `listenFds()` throws `ErrorClass` with a message matching
 * `pattern` under `values`, and that the environment is left as set.
 */
function assertRefused(
  values: Partial<Record<(typeof VARIABLES)[number], string>>,
  // deno-lint-ignore no-explicit-any
  ErrorClass: new (...args: any[]) => Error,
  pattern: RegExp,
): void {
  withEnvironment(values, () => {
    const before = listenEnvironment();
    const error = assertThrows(() => listenFds(), ErrorClass);
    assertMatch(error.message, pattern);
    assertEquals(listenEnvironment(), before, "the environment changed after an error");
  });
}

// ---------------------------------------------------------------------------
// Under systemd-socket-activate.

leakCheckedTest(
  "listenFds() takes named Unix listeners from systemd-socket-activate, makes them close-on-exec and unsets the variables",
  async () => {
    const { path, dir, cleanup } = tempSocketPath("a.sock");
    try {
      const child = activate(
        ["-l", path, "-l", `${dir}/b.sock`, "--fdname=a:b"],
        ["report", "a"],
        { pidfdId: hasPidfs ? "right" : undefined },
      );
      // The connection activates the child, which answers through UnixListener.from().
      using client = await connectWhenListening(path);
      assertEquals(await ping(client), "pong:ping");
      client.close();
      const { report } = await child.done;
      assertEquals(report.pid, child.pid, "systemd-socket-activate execs the program");
      assertEquals(report.names, ["a", "b"]);
      assertEquals(report.numbers, [3, 4]);
      const listener = { family: "unix", type: "stream", listening: true };
      assertEquals(report.sockets, [listener, listener]);
      // Passed without FD_CLOEXEC (observed for fd 3 at least), taken with it.
      assertEquals(report.closeOnExecAsPassed![0], false);
      assertEquals(report.closeOnExec, [true, true]);
      // LISTEN_PIDFDID (where pidfs exists) matched this process and is unset too.
      assertEquals(report.environment, UNSET);
    } finally {
      cleanup();
    }
  },
  { ignore: !hasActivate },
);

leakCheckedTest(
  'listenFds() names fds "unknown" without --fdname and keeps the variables with unsetEnv: false',
  async () => {
    const { path, cleanup } = tempSocketPath();
    try {
      const child = activate(["-l", path], ["keep-env"]);
      const client = await connectWhenListening(path);
      const { report } = await child.done;
      client.close();
      assertEquals(report.names, ["unknown"]);
      assertEquals(report.closeOnExec, [true]);
      assertEquals(report.environment, {
        LISTEN_PID: String(child.pid),
        LISTEN_PIDFDID: null,
        LISTEN_FDS: "1",
        LISTEN_FDNAMES: null,
      });
    } finally {
      cleanup();
    }
  },
  { ignore: !hasActivate },
);

leakCheckedTest(
  "listenFds() takes a seqpacket listener (--seqpacket) that UnixListener.from() accepts on",
  async () => {
    const { path, cleanup } = tempSocketPath();
    try {
      const child = activate(["--seqpacket", "-l", path, "--fdname=records"], [
        "report",
        "records",
      ]);
      using client = await connectWhenListening(path, "seqpacket");
      assertEquals(await ping(client), "pong:ping");
      client.close();
      const { report } = await child.done;
      assertEquals(report.names, ["records"]);
      assertEquals(report.sockets, [{ family: "unix", type: "seqpacket", listening: true }]);
      assertEquals(report.closeOnExec, [true]);
      assertEquals(report.environment, UNSET);
    } finally {
      cleanup();
    }
  },
  { ignore: !hasActivate },
);

leakCheckedTest(
  "listenFds() takes a datagram socket (-d) that UnixSocket.from() receives on",
  async () => {
    const { path, dir, cleanup } = tempSocketPath("server.sock");
    try {
      const child = activate(["-d", "-l", path, "--fdname=events"], ["report", "events"]);
      await bound(path);
      using client = UnixSocket.datagram(`${dir}/client.sock`);
      // The datagram activates the child, which reads it from the passed socket.
      client.sendToSync(path, "ping");
      const reply = await within(client.recvFrom(), 20_000, "the child's reply");
      assertEquals(decoder.decode(reply.data), "pong:ping");
      assertEquals(reply.address, path);
      client.close();
      const { report } = await child.done;
      assertEquals(report.names, ["events"]);
      assertEquals(report.sockets, [{ family: "unix", type: "dgram", listening: false }]);
      assertEquals(report.closeOnExec, [true]);
    } finally {
      cleanup();
    }
  },
  { ignore: !hasActivate },
);

leakCheckedTest(
  "A node:http server answers this process's request on a Unix listener passed by systemd-socket-activate",
  async () => {
    const { path, cleanup } = tempSocketPath("http.sock");
    try {
      const child = activate(["-l", path, "--fdname=http"], ["http-unix"]);
      // HTTP/1.1 over fdpass's UnixSocket: this connection activates the
      // child, waits in the listen queue, and is accepted by node:http.
      using client = await connectWhenListening(path);
      client.sendSync("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
      let response = "";
      for (;;) {
        const message = await within(client.recv(), 20_000, "the HTTP response");
        if (message === null) break;
        response += decoder.decode(message.data);
      }
      client.close();
      const { report } = await child.done;
      assertMatch(response, /^HTTP\/1\.1 200 OK\r\n/);
      assert(response.endsWith(`\r\n\r\nhello from ${child.pid}\n`), response);
      assertEquals(report.sockets, [{ family: "unix", type: "stream", listening: true }]);
    } finally {
      cleanup();
    }
  },
  { ignore: !hasActivate },
);

leakCheckedTest(
  "A node:http server serves on a TCP listener passed by systemd-socket-activate and adopted with TcpListener.from()",
  async () => {
    const { path, cleanup } = tempSocketPath("trigger.sock");
    try {
      // systemd-socket-activate refuses port 0: borrow a free port from the
      // kernel (fdpass binds through libc, so this needs no --allow-net).
      const probe = listenTcp({ hostname: "127.0.0.1" });
      const port = probe.port;
      probe.close();
      const child = activate(
        ["-l", path, "-l", `127.0.0.1:${port}`, "--fdname=trigger:http"],
        ["http-tcp"],
        { permissions: ["--allow-net=127.0.0.1"] },
      );
      // This process has no --allow-net: it activates the child through the
      // Unix listener, and the child requests its own TCP server.
      const client = await connectWhenListening(path);
      const { report } = await child.done;
      client.close();
      assertEquals(report.names, ["trigger", "http"]);
      assertEquals(report.sockets, [
        { family: "unix", type: "stream", listening: true },
        { family: "inet", type: "stream", listening: true },
      ]);
      assertEquals(report.port, port);
      assertEquals(report.response, `200 hello from ${child.pid}\n`);
    } finally {
      cleanup();
    }
  },
  { ignore: !hasActivate },
);

leakCheckedTest(
  `listenFds() refuses a LISTEN_PIDFDID that names another process's pidfd, and checkPid: false takes the fds${
    hasPidfs ? "" : " (skipped: no pidfs or no python3)"
  }`,
  async () => {
    const { path, cleanup } = tempSocketPath();
    try {
      const child = activate(["-l", path, "--fdname=web"], ["wrapper"], { pidfdId: "wrong" });
      const client = await connectWhenListening(path);
      const { report } = await child.done;
      client.close();
      assertEquals(report.pid, child.pid, "the shell execs deno");
      assertEquals(report.error!.name, "RangeError");
      assertMatch(
        report.error!.message,
        /^LISTEN_PIDFDID is "\d+" but this process's pidfd id is \d+/,
      );
      assertEquals(report.names, ["web"]);
      assertEquals(report.environment, UNSET);
    } finally {
      cleanup();
    }
  },
  { ignore: !hasActivate || !hasPidfs },
);

leakCheckedTest(
  "listenFds() under a wrapper that changes the pid throws a RangeError naming deno task, and checkPid: false takes the fds",
  async () => {
    const { path, cleanup } = tempSocketPath();
    try {
      const child = activate(["-l", path, "--fdname=web"], ["wrapper"], { shellWrapper: true });
      const client = await connectWhenListening(path);
      const { report } = await child.done;
      client.close();
      assert(report.pid !== child.pid, "the shell did not fork");
      assertEquals(report.error!.name, "RangeError");
      assertMatch(report.error!.message, /^LISTEN_PID is "\d+" but this process is \d+/);
      assertMatch(report.error!.message, /"deno task"/);
      assertMatch(report.error!.message, /checkPid: false/);
      // The failed call changed nothing; the second one took and unset.
      assertEquals(report.environmentAfterError, {
        LISTEN_PID: String(child.pid),
        LISTEN_PIDFDID: null,
        LISTEN_FDS: "1",
        LISTEN_FDNAMES: "web",
      });
      assertEquals(report.names, ["web"]);
      assertEquals(report.closeOnExec, [true]);
      assertEquals(report.environment, UNSET);
    } finally {
      cleanup();
    }
  },
  { ignore: !hasActivate },
);

// ---------------------------------------------------------------------------
// Bad input, in this process.

leakCheckedTest(
  "listenFds() returns an empty list when LISTEN_FDS is not set, and unsets the other variables",
  () => {
    withEnvironment({ LISTEN_PID: String(Deno.pid), LISTEN_FDNAMES: "a" }, () => {
      assertEquals(listenFds({ unsetEnv: false }), []);
      assertEquals(Deno.env.get("LISTEN_PID"), String(Deno.pid));
      assertEquals(listenFds(), []);
      assertEquals(listenEnvironment(), UNSET);
    });
    withEnvironment({}, () => assertEquals(listenFds(), []));
  },
);

leakCheckedTest("listenFds() refuses a LISTEN_FDS that is not a positive number", () => {
  const pid = String(Deno.pid);
  for (const value of ["abc", "", "1.5", "0x2", " 1", "+1"]) {
    assertRefused(
      { LISTEN_PID: pid, LISTEN_FDS: value },
      TypeError,
      /^LISTEN_FDS must be a number of fds, received "/,
    );
  }
  for (const value of ["-1", "0"]) {
    assertRefused(
      { LISTEN_PID: pid, LISTEN_FDS: value },
      RangeError,
      /^LISTEN_FDS must be a positive number of fds, received "/,
    );
  }
  assertRefused(
    { LISTEN_PID: pid, LISTEN_FDS: "99999999999" },
    RangeError,
    /^LISTEN_FDS is too large, received "99999999999"$/,
  );
});

leakCheckedTest("listenFds() refuses a LISTEN_PID of another process, naming deno task", () => {
  assertRefused(
    { LISTEN_PID: String(Deno.pid + 1), LISTEN_FDS: "1" },
    RangeError,
    new RegExp(
      `^LISTEN_PID is "${
        Deno.pid + 1
      }" but this process is ${Deno.pid}: .*"deno task".*checkPid: false`,
    ),
  );
  for (const value of ["abc", "-5", "0", ""]) {
    assertRefused(
      { LISTEN_PID: value, LISTEN_FDS: "1" },
      TypeError,
      /^LISTEN_PID must be a process id, received "/,
    );
  }
  assertRefused(
    { LISTEN_FDS: "1" },
    TypeError,
    /^LISTEN_FDS is set \("1"\) but LISTEN_PID is not/,
  );
});

leakCheckedTest("listenFds() refuses a LISTEN_PIDFDID that is not a 64-bit number", () => {
  for (const value of ["abc", "-1", "18446744073709551616", ""]) {
    assertRefused(
      { LISTEN_PID: String(Deno.pid), LISTEN_PIDFDID: value, LISTEN_FDS: "1" },
      TypeError,
      /^LISTEN_PIDFDID must be an unsigned 64-bit integer, received "/,
    );
  }
});

leakCheckedTest("listenFds() refuses LISTEN_FDNAMES with more or fewer names than fds", () => {
  const pid = String(Deno.pid);
  assertRefused(
    { LISTEN_PID: pid, LISTEN_FDS: "1", LISTEN_FDNAMES: "a:b" },
    RangeError,
    /^LISTEN_FDNAMES has 2 names \("a:b"\) but LISTEN_FDS is 1: there must be one name per fd$/,
  );
  assertRefused(
    { LISTEN_PID: pid, LISTEN_FDS: "2", LISTEN_FDNAMES: "a" },
    RangeError,
    /^LISTEN_FDNAMES has 1 name \("a"\) but LISTEN_FDS is 2/,
  );
  // Empty names count (sd-daemon.c splits without coalescing separators).
  assertRefused(
    { LISTEN_PID: pid, LISTEN_FDS: "2", LISTEN_FDNAMES: "a::" },
    RangeError,
    /^LISTEN_FDNAMES has 3 names/,
  );
});

leakCheckedTest(
  "listenFds() throws BadResource for a passed fd that is not open, and changes no fd",
  () => {
    // Two numbers that were open and are closed now; LISTEN_FDS covers them.
    const [readEnd, writeEnd] = pipe();
    const highest = Math.max(readEnd.fd, writeEnd.fd);
    readEnd.close();
    writeEnd.close();
    const range = Array.from({ length: highest - 2 }, (_, i) => 3 + i);
    const flags = () => range.map((fd) => isOpen(fd) ? borrowFd(fd).closeOnExec : null);
    const before = flags();
    assert(before.includes(null));
    assertRefused(
      { LISTEN_PID: String(Deno.pid), LISTEN_FDS: String(range.length) },
      Deno.errors.BadResource,
      new RegExp(`^LISTEN_FDS is ${range.length}, but fd \\d+ \\(named "unknown"\\) is not open`),
    );
    assertEquals(flags(), before);
  },
);

leakCheckedTest("listenFds() checks its options", () => {
  withEnvironment({}, () => {
    // deno-lint-ignore no-explicit-any
    const bad = listenFds as (options: any) => unknown;
    assertThrows(() => bad({ checkPid: "no" }), TypeError, 'Option "checkPid" must be a boolean');
    assertThrows(() => bad({ unsetEnv: 0 }), TypeError, 'Option "unsetEnv" must be a boolean');
    assertThrows(() => bad(7), TypeError, 'Argument "options" must be an object');
  });
});

// ---------------------------------------------------------------------------
// describeSocket(), isSocket(), UnixListener.from().

leakCheckedTest(
  "describeSocket() reports family, type and listening state, and null for a file",
  () => {
    const { path, cleanup } = tempSocketPath();
    try {
      using stream = UnixSocket.listen(path);
      assertEquals(describeSocket(stream), { family: "unix", type: "stream", listening: true });
      const [a, b] = UnixSocket.pair("dgram");
      assertEquals(describeSocket(a.fd), { family: "unix", type: "dgram", listening: false });
      a.close();
      b.close();
      using tcp = listenTcp();
      assertEquals(describeSocket(tcp.handle), { family: "inet", type: "stream", listening: true });
      using devNull = openFd("/dev/null");
      assertEquals(describeSocket(devNull), null);
    } finally {
      cleanup();
    }
  },
);

leakCheckedTest("isSocket() matches criteria as sd_is_socket() does", () => {
  using tcp = listenTcp();
  assert(isSocket(tcp.handle));
  assert(isSocket(tcp.handle, { family: "inet", type: "stream", listening: true }));
  assert(!isSocket(tcp.handle, { listening: false }));
  assert(!isSocket(tcp.handle, { type: "dgram" }));
  assert(!isSocket(tcp.handle, { family: "inet6" }));
  const [a, b] = UnixSocket.pair("seqpacket");
  assert(isSocket(a, { family: "unix", type: "seqpacket", listening: false }));
  a.close();
  b.close();
  using devNull = openFd("/dev/null");
  assert(!isSocket(devNull));
  // deno-lint-ignore no-explicit-any
  assertThrows(() => isSocket(tcp.handle, { family: "ipx" as any }), TypeError, '"family"');
  // deno-lint-ignore no-explicit-any
  assertThrows(() => isSocket(tcp.handle, { type: "raw" as any }), TypeError, '"type"');
  // deno-lint-ignore no-explicit-any
  assertThrows(() => isSocket(tcp.handle, { listening: 1 as any }), TypeError, '"listening"');
});

leakCheckedTest("describeSocket() of a closed fd is BadResource", () => {
  const [readEnd, writeEnd] = pipe();
  const number = readEnd.fd;
  readEnd.close();
  writeEnd.close();
  assertThrows(() => describeSocket(number), Deno.errors.BadResource);
  assertThrows(() => isSocket(number), Deno.errors.BadResource);
});

leakCheckedTest(
  "UnixListener.from() refuses a socket that is not listening and leaves it with the caller",
  () => {
    const [a, b] = UnixSocket.pair();
    const fd = a.toOwnedFd();
    assertThrows(() => UnixListener.from(fd), TypeError, "is not a listening socket");
    assert(!fd.closed);
    using tcp = listenTcp();
    assertThrows(() => UnixListener.from(tcp.handle), TypeError, "is not a Unix socket");
    assert(!tcp.closed);
    fd.close();
    b.close();
  },
);

leakCheckedTest(
  "UnixListener.from() adopts a listener, accepts on it and leaves the socket file in place",
  async () => {
    const { path, cleanup } = tempSocketPath();
    try {
      const original = UnixSocket.listen(path);
      const [a, b] = UnixSocket.pair();
      a.sendSync("listener", { fds: [original] });
      const received = b.recvSync()!.fds[0]!;
      a.close();
      b.close();
      const adopted = UnixListener.from(received);
      assert(received.closed, "the OwnedFd was released into the listener");
      assertEquals([adopted.type, adopted.address], ["stream", path]);
      assert(borrowFd(adopted.fd).closeOnExec);
      const accepted = adopted.accept();
      using client = UnixSocket.connectSync(path);
      using server = await within(accepted, 5_000, "accept on the adopted listener");
      client.sendSync("hi");
      assertEquals(decoder.decode(server.recvSync()!.data), "hi");
      adopted.close();
      assert(Deno.lstatSync(path).isSocket, "closing an adopted listener removed the file");
      original.close();
    } finally {
      cleanup();
    }
  },
);
