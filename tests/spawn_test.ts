/**
 * Tests of `spawn()`: fds at 3, 4, ... and at chosen numbers, nothing else
 * in the child, stdio modes, environment, signals, disposal, permissions
 * never widened, and socket activation read by Python's `systemd.daemon`.
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
import { spawnSync as nodeSpawnSync } from "node:child_process";
import { libc } from "../ffi/libc.ts";
import {
  borrowFd,
  ErrnoError,
  listenTcp,
  openFd,
  OwnedFd,
  pipe,
  spawn,
  type SpawnOptions,
  UnixSocket,
} from "../mod.ts";
import { decoder, leakCheckedTest, readUpTo, startPoller, within } from "./helpers.ts";

await startPoller();

const fixture = (name: string): string => new URL(`./fixtures/${name}`, import.meta.url).pathname;
const DENO_RUN = ["run", "--quiet", "--no-lock"];

/** Runs `sh -c script` through spawn() and returns its stdout (it must exit 0). */
async function shell(script: string, options: SpawnOptions = {}): Promise<string> {
  await using child = spawn("sh", {
    ...options,
    args: ["-c", script, ...(options.args ?? [])],
    stdout: "piped",
  });
  const output = await within(child.output(), 20_000, `sh -c '${script}'`);
  assertEquals(output.code, 0, `sh -c '${script}' failed`);
  return decoder.decode(output.stdout!);
}

/**
 * The fds of a shell child by `ls -l /proc/self/fd`, without the listing's
 * own directory fd: number -> link target.
 */
async function shellFds(options: SpawnOptions = {}): Promise<Map<number, string>> {
  const listing = await shell("ls -l /proc/self/fd", options);
  const fds = new Map<number, string>();
  for (const line of listing.split("\n")) {
    const match = / (\d+) -> (.*)$/.exec(line);
    if (match === null || /^\/proc\/\d+\/fd$/.test(match[2]!)) continue;
    fds.set(Number(match[1]), match[2]!);
  }
  return fds;
}

/** What `ls -l /proc/self/fd` shows for one of our fds. */
function linkTarget(fd: number): string {
  const stat = borrowFd(fd).stat();
  return stat.kind === "pipe"
    ? `pipe:[${stat.ino}]`
    : stat.kind === "socket"
    ? `socket:[${stat.ino}]`
    : "";
}

interface CensusEntry {
  fd: number;
  kind: string;
  dev: string;
  ino: string;
}

/** The open fds of a Deno child (tests/fixtures/spawn_census_child.ts). */
async function denoCensus(options: SpawnOptions = {}): Promise<CensusEntry[]> {
  await using child = spawn(Deno.execPath(), {
    ...options,
    args: [...DENO_RUN, "--allow-ffi", fixture("spawn_census_child.ts")],
    stdout: "piped",
  });
  const output = await within(child.output(), 30_000, "the census child");
  assertEquals(output.code, 0);
  return JSON.parse(decoder.decode(output.stdout!));
}

/** Reads what a pipe holds once every write end is closed. */
function drain(readEnd: OwnedFd): string {
  return decoder.decode(readUpTo(readEnd, 1 << 16));
}

leakCheckedTest("spawn() puts fds at 3 and 4, readable and writable in the child", async () => {
  const [inRead, inWrite] = pipe();
  const [outRead, outWrite] = pipe();
  inWrite.writeAllSync("through fd 3 and fd 4");
  inWrite.close();
  {
    await using child = spawn("sh", { args: ["-c", "cat <&3 >&4"], fds: [inRead, outWrite] });
    inRead.close();
    outWrite.close();
    assertEquals(await child.status, { success: true, code: 0, signal: null });
  }
  assertEquals(drain(outRead), "through fd 3 and fd 4");
  outRead.close();
});

leakCheckedTest(
  "spawn() puts fds at the numbers given and leaves the numbers between closed",
  async () => {
    const [readEnd, writeEnd] = pipe();
    using file = openFd("/dev/null");
    const fds = await shellFds({ fds: { 7: writeEnd, 4: file } });
    assertEquals(fds.get(7), linkTarget(writeEnd.fd));
    assertEquals(fds.get(4), "/dev/null");
    for (const n of [3, 5, 6, 8, 9]) assertEquals(fds.has(n), false, `fd ${n} is open`);
    const text = await shell("echo seven >&7", { fds: { 7: writeEnd } });
    assertEquals(text, "");
    writeEnd.close();
    assertEquals(drain(readEnd), "seven\n");
    readEnd.close();
  },
);

leakCheckedTest(
  "spawn() passes fds that sit at their own target number or swap places",
  async () => {
    const { fcntl, layout } = libc();
    const F_DUPFD_CLOEXEC = layout.constants.F_DUPFD_CLOEXEC;
    const [readEnd, writeEnd] = pipe();
    using file = openFd("/dev/null");
    // Two numbers of our own, each passed at its own number, then swapped.
    const a = new OwnedFd(fcntl(writeEnd.fd, F_DUPFD_CLOEXEC, 200));
    const b = new OwnedFd(fcntl(file.fd, F_DUPFD_CLOEXEC, 200));
    try {
      const same = await shellFds({ fds: { [a.fd]: a, [b.fd]: b } });
      assertEquals(same.get(a.fd), linkTarget(writeEnd.fd));
      assertEquals(same.get(b.fd), "/dev/null");
      const swapped = await shellFds({ fds: { [a.fd]: b, [b.fd]: a } });
      assertEquals(swapped.get(a.fd), "/dev/null");
      assertEquals(swapped.get(b.fd), linkTarget(writeEnd.fd));
      assert(a.closeOnExec && b.closeOnExec, "the caller's fds stay close-on-exec");
    } finally {
      a.close();
      b.close();
      writeEnd.close();
      readEnd.close();
    }
  },
);

leakCheckedTest(
  "spawn() passes a socketpair end to a Deno child that talks back with fdpass",
  async () => {
    const [mine, theirs] = UnixSocket.pair();
    const [readEnd, writeEnd] = pipe();
    try {
      await using child = spawn(Deno.execPath(), {
        args: [...DENO_RUN, "--allow-ffi", fixture("spawn_socket_child.ts")],
        fds: [theirs],
      });
      theirs.close();
      await mine.send("ping", { fds: [writeEnd] });
      writeEnd.close();
      const reply = await within(mine.recv(), 30_000, "the child's reply");
      if (reply === null) throw new Error("The child hung up without answering");
      assertEquals(decoder.decode(reply.data), "pong: ping");
      assertEquals(reply.fds.map((fd) => fd.kind), ["character"]);
      for (const fd of reply.fds) fd.close();
      assertEquals((await child.status).code, 0);
      assertEquals(drain(readEnd), "written by the child");
      assertEquals(await mine.recv(), null, "the child's end is its only copy");
    } finally {
      mine.close();
      theirs.close();
      writeEnd.close();
      readEnd.close();
    }
  },
);

leakCheckedTest("spawn() gives a shell child only 0, 1, 2 and the named fds", async () => {
  const [readEnd, writeEnd] = pipe();
  using file = openFd("/dev/null");
  const [stdinRead, stdinWrite] = pipe();
  try {
    // Compared with a child given nothing: fds this test process itself
    // inherited without close-on-exec (from whatever started it) show in both.
    const baseline = await shellFds();
    const named = await shellFds({ fds: [file, writeEnd], stdin: stdinRead, stderr: writeEnd });
    const expected = new Map(baseline);
    expected.set(0, linkTarget(stdinRead.fd));
    expected.set(1, named.get(1)!); // a fresh pipe from shell() each time
    expected.set(2, linkTarget(writeEnd.fd));
    expected.set(3, "/dev/null");
    expected.set(4, linkTarget(writeEnd.fd));
    assertEquals(new Map([...named].sort()), new Map([...expected].sort()));
  } finally {
    stdinRead.close();
    stdinWrite.close();
    readEnd.close();
    writeEnd.close();
  }
});

leakCheckedTest("spawn() gives a Deno child nothing but the named fds beside its own", async () => {
  const [readEnd, writeEnd] = pipe();
  const path = Deno.makeTempFileSync({ prefix: "fdpass-spawn-" });
  using file = openFd(path);
  try {
    const baseline = await denoCensus();
    const census = await denoCensus({ fds: [writeEnd, file] });
    const named = new Set([String(writeEnd.stat().ino), String(file.stat().ino)]);
    assertEquals(census.find((entry) => entry.fd === 3)?.ino, String(writeEnd.stat().ino));
    assertEquals(census.find((entry) => entry.fd === 4)?.ino, String(file.stat().ino));
    // The runtime's own fds move up by two numbers and are the same kinds as
    // in a child given nothing. Deno also keeps a copy of each fd it
    // inherited (a child given nothing has copies of its stdout and stderr),
    // so the named files may show twice; nothing else is new.
    const others = census.filter((entry) => entry.fd > 4);
    const copies = others.filter((entry) => named.has(entry.ino));
    assert(copies.length <= 2, `more than one copy of each: ${JSON.stringify(copies)}`);
    const kinds = (entries: CensusEntry[]): string[] => entries.map((e) => e.kind).sort();
    assertEquals(
      kinds([...census.filter((e) => e.fd <= 2), ...others.filter((e) => !named.has(e.ino))]),
      kinds(baseline),
    );
  } finally {
    readEnd.close();
    writeEnd.close();
    Deno.removeSync(path);
  }
});

leakCheckedTest("spawn() leaves the caller's fds open and close-on-exec", async () => {
  const [readEnd, writeEnd] = pipe();
  await shell("true", { fds: [readEnd, writeEnd], stdout: writeEnd });
  assert(!readEnd.closed && !writeEnd.closed);
  assert(readEnd.closeOnExec && writeEnd.closeOnExec);
  // And a later child that is not given them does not see them.
  const fds = await shellFds();
  assert(![...fds.values()].includes(linkTarget(writeEnd.fd)));
  readEnd.close();
  writeEnd.close();
});

leakCheckedTest("spawn() stdio modes: inherit, null, piped and an fd", async (t) => {
  await t.step("null stdin reads end of file", async () => {
    assertEquals(await shell("cat; echo end", { stdin: "null" }), "end\n");
  });
  await t.step("piped stdin and stdout as web streams", async () => {
    await using child = spawn("cat", { stdin: "piped", stdout: "piped", stderr: "null" });
    assertInstanceOf(child.stdin, WritableStream);
    assertInstanceOf(child.stdout, ReadableStream);
    assertEquals(child.stderr, null);
    const writer = child.stdin!.getWriter();
    await writer.write(new TextEncoder().encode("round trip"));
    await writer.close();
    const { stdout, stderr } = await child.output();
    assertEquals(decoder.decode(stdout!), "round trip");
    assertEquals(stderr, null);
  });
  await t.step("piped stderr", async () => {
    await using child = spawn("sh", { args: ["-c", "echo oops >&2"], stderr: "piped" });
    const { stdout, stderr } = await child.output();
    assertEquals(stdout, null);
    assertEquals(decoder.decode(stderr!), "oops\n");
  });
  await t.step("an fd as stdin, and as stdout", async () => {
    const [readEnd, writeEnd] = pipe();
    const [inRead, inWrite] = pipe();
    inWrite.writeAllSync("from a pipe");
    inWrite.close();
    {
      await using child = spawn("cat", { stdin: inRead, stdout: writeEnd });
      inRead.close();
      writeEnd.close();
      assert((await child.status).success);
    }
    assertEquals(drain(readEnd), "from a pipe");
    readEnd.close();
  });
  await t.step("an fd as stdin next to fds at 3 and 4", async () => {
    using file = openFd("/etc/hostname");
    using third = openFd("/etc/hostname");
    using fourth = openFd("/etc/hostname");
    const text = await shell("cat; cat <&3; cat <&4", { stdin: file, fds: [third, fourth] });
    const line = Deno.readTextFileSync("/etc/hostname");
    assertEquals(text, line + line + line);
  });
});

leakCheckedTest(
  "spawn() merges env with this process's, or uses it alone with clearEnv",
  async () => {
    const home = Deno.env.get("PATH");
    const merged = await shell('printf "%s|%s" "$FDPASS_SPAWN_TEST" "$PATH"', {
      env: { FDPASS_SPAWN_TEST: "set" },
    });
    assertEquals(merged, `set|${home}`);
    const alone = await shell('printf "%s|%s" "$FDPASS_SPAWN_TEST" "${HOME-unset}"', {
      env: { FDPASS_SPAWN_TEST: "only" },
      clearEnv: true,
    });
    assertEquals(alone, "only|unset");
  },
);

leakCheckedTest("spawn() runs the child in cwd", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "fdpass-spawn-" });
  try {
    assertEquals(await shell("pwd", { cwd: dir }), `${Deno.realPathSync(dir)}\n`);
    assertEquals(await shell("pwd", { cwd: new URL(`file://${dir}`) }), `${dir}\n`);
  } finally {
    Deno.removeSync(dir);
  }
});

leakCheckedTest(
  "spawn() kills the child when the signal aborts, and starts nothing when aborted",
  async () => {
    const controller = new AbortController();
    await using child = spawn("sleep", { args: ["30"], signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    assertEquals(await within(child.status, 10_000, "the killed child"), {
      success: false,
      code: 143,
      signal: "SIGTERM",
    });
    const reason = new Error("already aborted");
    assertThrows(
      () => spawn("true", { signal: AbortSignal.abort(reason) }),
      Error,
      "already aborted",
    );
  },
);

leakCheckedTest(
  "spawn() status reports exit codes and signals like Deno.CommandStatus",
  async () => {
    const run = async (script: string) => {
      await using child = spawn("sh", { args: ["-c", script] });
      return await child.status;
    };
    assertEquals(await run("exit 0"), { success: true, code: 0, signal: null });
    assertEquals(await run("exit 3"), { success: false, code: 3, signal: null });
    assertEquals(await run("kill -KILL $$"), { success: false, code: 137, signal: "SIGKILL" });
    await using missing = spawn("fdpass-no-such-command", { stderr: "piped" });
    const output = await missing.output();
    assertEquals(output.code, 127);
    assertStringIncludes(decoder.decode(output.stderr!), "fdpass-no-such-command: not found");
  },
);

leakCheckedTest(
  "spawn() kill() signals a running child and returns false once it exited",
  async () => {
    await using child = spawn("sleep", { args: ["30"] });
    assert(child.pid > 0);
    assertEquals(child.exited, false);
    assertEquals(child.kill("SIGINT"), true);
    assertEquals((await child.status).signal, "SIGINT");
    assertEquals(child.exited, true);
    assertEquals(child.kill(), false);
    assertEquals(Deno.inspect(child), `SpawnedProcess { pid: ${child.pid}, exited: true }`);
  },
);

leakCheckedTest(
  "spawn() asyncDispose kills a running child, waits and closes its pipes",
  async () => {
    const child = spawn("sh", {
      args: ["-c", "echo started; exec sleep 30"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    });
    const reader = child.stdout!.getReader();
    assertEquals(decoder.decode((await reader.read()).value), "started\n");
    reader.releaseLock();
    await within(child[Symbol.asyncDispose](), 10_000, "disposal");
    assertEquals((await child.status).signal, "SIGTERM");
    await child[Symbol.asyncDispose](); // twice is fine
  },
);

leakCheckedTest("spawn() asyncDispose sends SIGKILL to a child that ignores SIGTERM", async () => {
  const child = spawn("sh", {
    args: ["-c", "trap '' TERM; echo ready; while :; do sleep 1; done"],
    stdout: "piped",
  });
  const reader = child.stdout!.getReader();
  assertEquals(decoder.decode((await reader.read()).value), "ready\n");
  reader.releaseLock();
  await within(child[Symbol.asyncDispose](), 15_000, "disposal with SIGKILL");
  assertEquals((await child.status).signal, "SIGKILL");
});

leakCheckedTest(
  "Deno 2.9.6 node:child_process adds -A to a deno run without permission flags",
  () => {
    // The quirk spawn() works around; if this fails, Deno changed.
    const result = nodeSpawnSync(Deno.execPath(), [
      ...DENO_RUN,
      fixture("spawn_permission_child.ts"),
    ], { encoding: "utf8" });
    assertStringIncludes(result.stdout as string, "read read=granted,write=granted");
  },
);

leakCheckedTest("spawn() never widens a Deno child's permissions", async (t) => {
  const child = fixture("spawn_permission_child.ts");
  const run = async (command: string, args: string[]): Promise<string> => {
    await using process = spawn(command, { args, stdout: "piped" });
    const output = await within(process.output(), 30_000, `${command} ${args.join(" ")}`);
    assertEquals(output.code, 0);
    return decoder.decode(output.stdout!).trim();
  };
  const deno = Deno.execPath();
  await t.step("deno run with no permission flags is denied", async () => {
    const line = await run(deno, [...DENO_RUN, child]);
    assert(line.startsWith("NotCapable "), line);
    assert(!line.includes("granted"), line);
  });
  await t.step("deno run --allow-read reads, and has nothing else", async () => {
    const line = await run(deno, [...DENO_RUN, "--allow-read", child]);
    assertEquals(line.split(",").filter((s) => s.includes("granted")), ["read read=granted"]);
  });
  await t.step("Deno.execPath() as an argument of another program", async () => {
    const line = await run("env", [deno, ...DENO_RUN, child]);
    assert(line.startsWith("NotCapable "), line);
  });
  await t.step("a sh -c script that starts with Deno.execPath()", async () => {
    const line = await run("sh", ["-c", `${deno} ${DENO_RUN.join(" ")} ${child}`]);
    assert(line.startsWith("NotCapable "), line);
  });
  await t.step("with listenFds and an fd as stdin too", async () => {
    using stdin = openFd("/dev/null");
    await using process = spawn(deno, {
      args: [...DENO_RUN, child],
      stdout: "piped",
      stdin,
      listenFds: true,
    });
    const line = decoder.decode((await process.output()).stdout!);
    assert(line.startsWith("NotCapable "), line);
  });
});

leakCheckedTest("spawn() needs env access, only to NODE_V8_COVERAGE with clearEnv", async () => {
  const run = async (permissions: string[]): Promise<string[]> => {
    await using child = spawn(Deno.execPath(), {
      args: [...DENO_RUN, ...permissions, fixture("spawn_env_permission_child.ts")],
      stdout: "piped",
    });
    const output = await within(child.output(), 30_000, "the env permission child");
    return decoder.decode(output.stdout!).trim().split("\n");
  };
  const without = await run(["--allow-ffi", "--allow-run"]);
  assertStringIncludes(without[0]!, "NotCapable: Requires env access");
  assertStringIncludes(without[1]!, "reads it even with clearEnv");
  const scoped = await run(["--allow-ffi", "--allow-run", "--allow-env=NODE_V8_COVERAGE"]);
  assertStringIncludes(scoped[0]!, "NotCapable");
  assertEquals(scoped[1], "ok");
});

leakCheckedTest(
  "spawn() with listenFds sets LISTEN_FDS, LISTEN_FDNAMES and the child's own LISTEN_PID",
  async () => {
    const [readEnd, writeEnd] = pipe();
    using file = openFd("/dev/null");
    try {
      const script =
        'printf "%s %s %s %s" "$LISTEN_PID" "$LISTEN_FDS" "$LISTEN_FDNAMES" "${LISTEN_PIDFDID-none}" >&4';
      {
        await using child = spawn("sh", {
          args: ["-c", script],
          fds: [file, writeEnd],
          listenFds: ["config", "log"],
          env: { LISTEN_PID: "1", LISTEN_PIDFDID: "12345" },
        });
        assertEquals((await child.status).code, 0);
        writeEnd.close();
        assertEquals(drain(readEnd), `${child.pid} 2 config:log none`);
      }
      assertEquals(
        await shell('printf "%s %s %s" "$LISTEN_PID" "$LISTEN_FDS" "$LISTEN_FDNAMES"', {
          fds: [file],
          listenFds: true,
        }).then((text) => text.split(" ").slice(1).join(" ")),
        "1 unknown",
      );
    } finally {
      readEnd.close();
      writeEnd.close();
    }
  },
);

const hasPythonSystemd = (() => {
  try {
    return new Deno.Command("/usr/bin/python3", {
      args: ["-c", "import systemd.daemon"],
      stdout: "null",
      stderr: "null",
    }).outputSync().success;
  } catch {
    return false;
  }
})();
if (!hasPythonSystemd) {
  console.error(
    "spawn_test: /usr/bin/python3 with python3-systemd is missing; its test is ignored",
  );
}

leakCheckedTest(
  "spawn() with listenFds is read by Python's systemd.daemon.listen_fds_with_names()",
  async () => {
    const [mine, theirs] = UnixSocket.pair();
    const [readEnd, writeEnd] = pipe();
    const python = `
import json, os, socket, systemd.daemon
fds = systemd.daemon.listen_fds_with_names()
print(json.dumps({"pid": os.getpid(), "fds": {str(fd): name for fd, name in fds.items()}}))
control = socket.socket(fileno=[fd for fd, name in fds.items() if name == "control"][0])
control.sendall(b"hello over the socket")
os.write([fd for fd, name in fds.items() if name == "log"][0], b"hello through the pipe")
`;
    try {
      await using child = spawn("/usr/bin/python3", {
        args: ["-c", python],
        fds: [theirs, writeEnd],
        listenFds: ["control", "log"],
        stdout: "piped",
      });
      theirs.close();
      writeEnd.close();
      const output = await within(child.output(), 20_000, "the python child");
      assertEquals(output.code, 0);
      const report = JSON.parse(decoder.decode(output.stdout!));
      assertEquals(report, { pid: child.pid, fds: { "3": "control", "4": "log" } });
      const message = await within(mine.recv(), 5_000, "python's message");
      assertEquals(decoder.decode(message!.data), "hello over the socket");
      assertEquals(drain(readEnd), "hello through the pipe");
    } finally {
      mine.close();
      theirs.close();
      readEnd.close();
      writeEnd.close();
    }
  },
  { ignore: !hasPythonSystemd },
);

leakCheckedTest("spawn() refuses bad input with typed errors and leaks nothing", async () => {
  using file = openFd("/dev/null");
  const closed = openFd("/dev/null");
  closed.close();
  const closedNumber = 1_000_000; // never open: above any fd limit
  const bad: [() => unknown, ErrorConstructor, string][] = [
    [() => spawn(""), TypeError, 'Argument "command"'],
    [() => spawn("true", "x" as never), TypeError, 'Argument "options"'],
    [() => spawn("true", { args: "x" as never }), TypeError, 'Option "args"'],
    [() => spawn("true", { args: [1 as never] }), TypeError, 'Option "args[0]"'],
    [() => spawn("true", { args: ["a\0b"] }), TypeError, '"args[0]" must not contain a NUL'],
    [() => spawn("true", { fds: [file, "x" as never] }), TypeError, '"fds[1]"'],
    [() => spawn("true", { fds: [closed] }), TypeError, '"fds[0]" is closed'],
    [() => spawn("true", { fds: new Map() as never }), TypeError, 'Option "fds"'],
    [() => spawn("true", { fds: { 2: file } }), RangeError, 'use "stdin"'],
    [() => spawn("true", { fds: { 1024: file } }), RangeError, "from 3 to 1023"],
    [() => spawn("true", { fds: { x: file } as never }), RangeError, 'received "x"'],
    [() => spawn("true", { fds: { 3: file }, listenFds: true }), TypeError, "as an array"],
    [() => spawn("true", { fds: [file], listenFds: [] }), RangeError, "one name per fd"],
    [() => spawn("true", { fds: [file], listenFds: ["a:b"] }), RangeError, 'without ":"'],
    [() => spawn("true", { fds: [file], listenFds: ["a\n"] }), RangeError, "printable ASCII"],
    [() => spawn("true", { fds: [file], listenFds: ["é"] }), RangeError, "printable ASCII"],
    [() => spawn("true", { fds: [file], listenFds: ["x".repeat(256)] }), RangeError, "255"],
    [() => spawn("true", { fds: [file], listenFds: [1 as never] }), TypeError, "listenFds[0]"],
    [() => spawn("true", { listenFds: "yes" as never }), TypeError, 'Option "listenFds"'],
    [() => spawn("true", { stdin: "pipe" as never }), TypeError, 'Option "stdin"'],
    [() => spawn("true", { stdout: {} as never }), TypeError, '"stdout"'],
    [() => spawn("true", { env: { A: 1 as never } }), TypeError, 'Option "env.A"'],
    [() => spawn("true", { env: { "A=B": "x" } }), TypeError, '"A=B"'],
    [() => spawn("true", { clearEnv: "yes" as never }), TypeError, 'Option "clearEnv"'],
    [
      () => spawn("true", { signal: new AbortController() as never }),
      TypeError,
      "controller.signal",
    ],
    [
      () => spawn("true", { fds: Array(7).fill(file), stdin: file }),
      RangeError,
      'Option "stdin" is an fd',
    ],
  ];
  for (const [call, ErrorClass, text] of bad) {
    const error = assertThrows(call, ErrorClass);
    assertStringIncludes((error as Error).message, text);
  }
  // A system failure after some fds were already copied: the copies are closed.
  const error = assertThrows(() => spawn("true", { fds: [file, file, closedNumber] }));
  assertInstanceOf(error, ErrnoError);
  assertEquals(error.code, "EBADF");
  assertStringIncludes(error.message, `"fds[2]: fd ${closedNumber}"`);
  const stdinError = assertThrows(() => spawn("true", { fds: [file], stdin: closedNumber }));
  assertStringIncludes((stdinError as Error).message, `"stdin: fd ${closedNumber}"`);
  const cwdError = assertThrows(() => spawn("true", { fds: [file], cwd: "/no/such/dir" }));
  assertInstanceOf(cwdError, Deno.errors.NotFound);
  assertStringIncludes((cwdError as Error).message, "/no/such/dir");
  // The node:child_process "error" event of the failed start comes later and is handled.
  await new Promise((resolve) => setTimeout(resolve, 10));
});

leakCheckedTest("spawn() leaves the O_NONBLOCK flag of a passed fd as it was", async () => {
  // The flag belongs to the open file description, shared with the parent:
  // node:child_process clears it on the fds it passes.
  const listener = listenTcp();
  try {
    assert(listener.handle.nonblocking);
    const [r, w] = pipe();
    r.nonblocking = true;
    try {
      await using child = spawn("true", { fds: [listener, r, w] });
      await child.status;
      assert(listener.handle.nonblocking, "the listener became blocking");
      assert(r.nonblocking, "the pipe's read end became blocking");
      assertFalse(w.nonblocking, "the pipe's write end became nonblocking");
    } finally {
      r.close();
      w.close();
    }
  } finally {
    listener.close();
  }
});
