/**
 * The `fdpass` command, driven as a subprocess (`deno run --allow-ffi
 * cli.ts ...`, the only permission it needs): send/recv round trips in text
 * and JSON, `--cat`, `--count`, abstract names, stale and live socket
 * files, signals, `info`, `--help`, the messages and exit codes of bad
 * arguments, and hostile input: a pipe that never ends, a client that
 * never speaks, and paths and contents that try to forge output lines.
 *
 * Every child is killed after {@linkcode CHILD_TIMEOUT_MS}, and every wait
 * for a socket file is bounded.
 *
 * @module
 */

import { assert, assertEquals, assertMatch, assertStringIncludes, assertThrows } from "@std/assert";
import { cmsgSpace, receiveControlCapacity } from "../ffi/cmsg.ts";
import { libc } from "../ffi/libc.ts";
import { openFd, pipe, UnixSocket } from "../mod.ts";
import { VERSION } from "../src/cli/version.ts";
import { hasCommand, leakCheckedTest, tempSocketPath } from "./helpers.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;
const ROOT = new URL("..", import.meta.url).pathname;

/** How long one CLI process may run before it is killed. */
const CHILD_TIMEOUT_MS = 30_000;
/** How long to wait for `recv` to create its socket. */
const READY_TIMEOUT_MS = 20_000;

const layout = libc().layout;

interface CliResult {
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
}

/** A running `fdpass` process; killed on dispose if it is still running. */
class Cli implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  readonly #result: Promise<CliResult>;
  readonly #timer: ReturnType<typeof setTimeout>;
  #exited = false;

  constructor(args: string[], permissions: readonly string[] = ["--allow-ffi"]) {
    const controller = new AbortController();
    this.#timer = setTimeout(() => controller.abort(), CHILD_TIMEOUT_MS);
    this.#child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", "--no-prompt", ...permissions, CLI, ...args],
      cwd: ROOT,
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: controller.signal,
    }).spawn();
    const decoder = new TextDecoder();
    this.#result = this.#child.output().then((output) => {
      this.#exited = true;
      clearTimeout(this.#timer);
      return {
        code: output.code,
        signal: output.signal,
        stdout: decoder.decode(output.stdout),
        stderr: decoder.decode(output.stderr),
      };
    });
  }

  /** Whether the process has exited. */
  get exited(): boolean {
    return this.#exited;
  }

  /** Waits for the exit. */
  result(): Promise<CliResult> {
    return this.#result;
  }

  /** Sends a signal. */
  kill(signal: Deno.Signal): void {
    this.#child.kill(signal);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.#exited) {
      try {
        this.#child.kill("SIGKILL");
      } catch {
        // Exited meanwhile.
      }
    }
    await this.#result;
  }
}

/** Runs `fdpass args...` to completion (with `--allow-ffi` unless told otherwise). */
async function run(args: string[], permissions?: readonly string[]): Promise<CliResult> {
  await using cli = new Cli(args, permissions);
  return await cli.result();
}

/** Waits until `recv` has created its socket file; fails if it exits first. */
async function waitForSocket(path: string, cli: Cli): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (cli.exited) {
      const result = await cli.result();
      throw new Error(`recv exited with ${result.code} before listening: ${result.stderr}`);
    }
    try {
      if (Deno.lstatSync(path).isSocket) return;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`recv did not create "${path}" within ${READY_TIMEOUT_MS} ms`);
}

/** Runs `send` until something listens (for abstract names, which have no file to wait for). */
async function sendWhenListening(args: string[], cli: Cli): Promise<CliResult> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const result = await run(args);
    if (result.code !== 1 || !/ECONNREFUSED|ENOENT/.test(result.stderr)) return result;
    if (cli.exited || Date.now() > deadline) return result;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Asserts a clean exit and returns stdout. */
function expectSuccess(result: CliResult, what: string): string {
  assertEquals(result.code, 0, `${what} failed (${result.code}): ${result.stderr}`);
  assertEquals(result.stderr, "", `${what} wrote to stderr`);
  return result.stdout;
}

/** Asserts that an error was reported as one `fdpass: ...` line, no stack trace. */
function expectError(result: CliResult, code: number, pattern: RegExp, what: string): void {
  assertEquals(result.code, code, `${what}: exit code (stderr: ${result.stderr})`);
  const lines = result.stderr.trimEnd().split("\n");
  assert(
    lines[0]!.startsWith("fdpass: "),
    `${what}: stderr starts with "fdpass: ": ${result.stderr}`,
  );
  assertMatch(lines[0]!, pattern, what);
  assert(!/^\s+at /m.test(result.stderr), `${what}: stack trace on stderr: ${result.stderr}`);
  if (code === 2) assertMatch(lines[1] ?? "", /^Run "fdpass.* --help" for usage\.$/, what);
  assertEquals(lines.length, code === 2 ? 2 : 1, `${what}: stderr lines: ${result.stderr}`);
  assertEquals(result.stdout, "", `${what}: stdout`);
}

/** Waits for `promise`, failing after `ms` milliseconds. */
async function settlesWithin<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

function assertGone(path: string): void {
  assertThrows(() => Deno.lstatSync(path), Deno.errors.NotFound, undefined, `"${path}" remains`);
}

/** Writes the files the round trips send. */
function fixtures(dir: string): { text: string; binary: string } {
  const text = `${dir}/a.txt`;
  const binary = `${dir}/b.bin`;
  Deno.writeTextFileSync(text, "hello\nworld\n");
  Deno.writeFileSync(binary, new Uint8Array([0xff, 0x00, 0x01]));
  return { text: Deno.realPathSync(text), binary: Deno.realPathSync(binary) };
}

interface FdJson {
  fd: number;
  kind: string;
  path: string | null;
  size: number;
  closeOnExec: boolean;
  nonblocking: boolean;
  access: string;
  append: boolean;
  content?: string;
  contentEncoding?: string;
  contentBytes?: number;
  contentTruncated?: boolean;
  contentTimedOut?: boolean;
  contentError?: string;
}

interface MessageJson {
  data: string;
  dataEncoding: string;
  fds: FdJson[];
}

function parseLines(stdout: string): MessageJson[] {
  return stdout.trimEnd().split("\n").map((line) => JSON.parse(line) as MessageJson);
}

// Spawning starts Deno's child-process machinery (signal pipes and the
// like) once per process; do it before the first fd census.
await run(["--help"]);

leakCheckedTest(
  "recv --cat prints the data, each fd and the contents of files and pipes that send passed",
  async () => {
    const socket = tempSocketPath();
    try {
      const { text, binary } = fixtures(socket.dir);
      await using recv = new Cli(["recv", "--listen", socket.path, "--cat"]);
      await waitForSocket(socket.path, recv);

      // An inherited fd: the read end of a pipe that is not close-on-exec,
      // so that the send process gets it under the same number.
      const [r, w] = pipe();
      let send: CliResult;
      try {
        w.writeAllSync("piped text\n");
        w.close();
        r.closeOnExec = false;
        send = await run(["send", "--connect", socket.path, "--fd", String(r.fd), text, binary]);
      } finally {
        r.close();
        w.close();
      }
      assertEquals(
        expectSuccess(send, "send"),
        `sent 6 bytes and 3 fds to ${socket.path}\n`,
      );

      const out = expectSuccess(await recv.result(), "recv");
      const lines = out.trimEnd().split("\n");
      assertEquals(lines[0], "message 1: 6 bytes, 3 fds");
      assertEquals(lines[1], '  data: "fdpass"');
      assertMatch(lines[2]!, /^ {2}fd \d+: pipe pipe:\[\d+\], read-only, close-on-exec$/);
      assertEquals(lines[3], "    | piped text");
      assertMatch(lines[4]!, /^ {2}fd \d+: file (.+), 12 bytes, read-only, close-on-exec$/);
      assertStringIncludes(lines[4]!, ` ${text}, `);
      assertEquals(lines.slice(5, 7), ["    | hello", "    | world"]);
      assertStringIncludes(lines[7]!, ` ${binary}, 3 bytes, read-only`);
      assertEquals(lines.slice(8), ["    (3 bytes of binary data, as hex)", "    | ff0001"]);
      assertGone(socket.path);
    } finally {
      socket.cleanup();
    }
  },
);

leakCheckedTest(
  "recv --json --cat reports kind, path, size, flags and content of every fd",
  async () => {
    const socket = tempSocketPath();
    try {
      const { text, binary } = fixtures(socket.dir);
      const dir = Deno.realPathSync(socket.dir);
      await using recv = new Cli(["recv", "--listen", socket.path, "--json", "--cat"]);
      await waitForSocket(socket.path, recv);

      // Both ends of one pipe: recv must close the write end it received
      // before it reads the read end to EOF.
      const [r, w] = pipe();
      let send: CliResult;
      try {
        w.writeAllSync("piped text\n");
        r.closeOnExec = false;
        w.closeOnExec = false;
        send = await run([
          "send",
          "--connect",
          socket.path,
          "--data",
          "héllo",
          "--fd",
          String(r.fd),
          "--fd",
          String(w.fd),
          text,
          binary,
          dir,
        ]);
      } finally {
        r.close();
        w.close();
      }
      expectSuccess(send, "send");

      const messages = parseLines(expectSuccess(await recv.result(), "recv"));
      assertEquals(messages.length, 1);
      const [message] = messages;
      assertEquals(message!.data, "héllo");
      assertEquals(message!.dataEncoding, "utf8");
      const [readEnd, writeEnd, file, bin, directory] = message!.fds;
      assertEquals(message!.fds.length, 5);
      for (const fd of message!.fds) {
        assert(Number.isInteger(fd.fd) && fd.fd > 2, `fd number ${fd.fd}`);
        assertEquals(fd.closeOnExec, true, "received fds are close-on-exec");
        assertEquals(fd.nonblocking, false);
        assertEquals(fd.append, false);
      }
      assertEquals(readEnd!.kind, "pipe");
      assertMatch(readEnd!.path!, /^pipe:\[\d+\]$/);
      assertEquals(writeEnd!.path, readEnd!.path, "both ends of the same pipe");
      assertEquals(readEnd!.access, "read-only");
      assertEquals(readEnd!.content, "piped text\n");
      assertEquals(readEnd!.contentEncoding, "utf8");
      assertEquals(writeEnd!.access, "write-only");
      assertEquals(writeEnd!.content, undefined);
      assertEquals(writeEnd!.contentError, "Not open for reading");

      assertEquals(
        { ...file!, fd: 0 },
        {
          fd: 0,
          kind: "file",
          path: text,
          size: 12,
          closeOnExec: true,
          nonblocking: false,
          access: "read-only",
          append: false,
          content: "hello\nworld\n",
          contentEncoding: "utf8",
          contentBytes: 12,
          contentTruncated: false,
          contentTimedOut: false,
        },
      );
      assertEquals(bin!.path, binary);
      assertEquals(bin!.size, 3);
      assertEquals(bin!.content, "ff0001");
      assertEquals(bin!.contentEncoding, "hex");
      assertEquals(directory!.kind, "directory");
      assertEquals(directory!.path, dir);
      assertEquals(directory!.content, undefined);
      assertEquals(directory!.contentError, undefined);
    } finally {
      socket.cleanup();
    }
  },
);

leakCheckedTest(
  "recv --count 2 takes one message from each of two senders; --cat-limit cuts content",
  async () => {
    const socket = tempSocketPath();
    try {
      const { text } = fixtures(socket.dir);
      await using recv = new Cli([
        "recv",
        "--listen",
        socket.path,
        "--count",
        "2",
        "--json",
        "--cat",
        "--cat-limit",
        "5",
      ]);
      await waitForSocket(socket.path, recv);
      // Empty data goes out as one zero byte: a stream message needs a byte.
      assertEquals(
        expectSuccess(await run(["send", "--connect", socket.path, "--data", ""]), "send 1"),
        `sent 1 byte and 0 fds to ${socket.path}\n`,
      );
      expectSuccess(await run(["send", "--connect", socket.path, "--data=-x", text]), "send 2");

      const messages = parseLines(expectSuccess(await recv.result(), "recv"));
      assertEquals(messages.length, 2);
      assertEquals(messages[0], { data: "\0", dataEncoding: "utf8", fds: [] });
      assertEquals(messages[1]!.data, "-x");
      const [fd] = messages[1]!.fds;
      assertEquals(fd!.size, 12);
      assertEquals(fd!.content, "hello");
      assertEquals(fd!.contentBytes, 5);
      assertEquals(fd!.contentTruncated, true);
      assertEquals(fd!.contentTimedOut, false);
      assertGone(socket.path);
    } finally {
      socket.cleanup();
    }
  },
);

leakCheckedTest(
  "recv --abstract and send --abstract pass an fd without a socket file",
  async () => {
    const socket = tempSocketPath();
    try {
      const { text } = fixtures(socket.dir);
      const name = `fdpass-cli-test-${Deno.pid}-${crypto.randomUUID()}`;
      await using recv = new Cli(["recv", "--listen", name, "--abstract", "--json"]);
      const send = await sendWhenListening(
        ["send", "--connect", name, "--abstract", text],
        recv,
      );
      assertEquals(expectSuccess(send, "send"), `sent 6 bytes and 1 fd to @${name}\n`);
      const [message] = parseLines(expectSuccess(await recv.result(), "recv"));
      assertEquals(message!.fds.length, 1);
      assertEquals(message!.fds[0]!.path, text);
      assertEquals(message!.fds[0]!.content, undefined, "no content without --cat");
    } finally {
      socket.cleanup();
    }
  },
  { ignore: !layout.features.abstractNames },
);

leakCheckedTest("recv replaces a stale socket file but refuses a live one", async () => {
  const socket = tempSocketPath();
  try {
    const { text } = fixtures(socket.dir);
    {
      // A recv killed with SIGKILL cannot clean up: its socket file stays.
      await using dead = new Cli(["recv", "--listen", socket.path]);
      await waitForSocket(socket.path, dead);
      dead.kill("SIGKILL");
      assertEquals((await dead.result()).signal, "SIGKILL");
      assert(Deno.lstatSync(socket.path).isSocket);
    }
    await using recv = new Cli(["recv", "--listen", socket.path, "--json"]);
    // The stale file is replaced by a new socket that accepts connections.
    const send = await sendWhenListening(["send", "--connect", socket.path, text], recv);
    expectSuccess(send, "send");
    const [message] = parseLines(expectSuccess(await recv.result(), "recv"));
    assertEquals(message!.fds[0]!.path, text);
    assertGone(socket.path);

    await using live = new Cli(["recv", "--listen", socket.path]);
    await waitForSocket(socket.path, live);
    expectError(
      await run(["recv", "--listen", socket.path]),
      1,
      /^fdpass: Cannot replace ".*": a process is listening on it/,
      "second recv",
    );
    // The probe connection ended without a message; the live recv still
    // waits for one.
    expectSuccess(await run(["send", "--connect", socket.path]), "send to live");
    expectSuccess(await live.result(), "live recv");
  } finally {
    socket.cleanup();
  }
});

leakCheckedTest(
  "recv removes its socket file when stopped by SIGINT or SIGTERM and exits 128 + signal",
  async (t) => {
    for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
      await t.step(signal, async () => {
        const socket = tempSocketPath();
        try {
          await using recv = new Cli(["recv", "--listen", socket.path]);
          await waitForSocket(socket.path, recv);
          recv.kill(signal);
          const result = await recv.result();
          assertEquals(result.code, code, result.stderr);
          assertEquals(result.stderr, "");
          assertGone(socket.path);
        } finally {
          socket.cleanup();
        }
      });
    }
  },
);

leakCheckedTest("info --json reports the layout, sizes and constants in use", async () => {
  const info = JSON.parse(expectSuccess(await run(["info", "--json"]), "info --json"));
  assertEquals(info.layout, layout.name);
  assertEquals(info.libraryPath, layout.libraryPath);
  assertEquals(info.platform, undefined, "the layout name says the OS and architecture");
  assertEquals(info.denoTarget, Deno.build.target);
  assertEquals(info.features, { ...layout.features });
  assertEquals(info.abstractNamespace, layout.features.abstractNames);
  assertEquals(info.seqpacket, layout.features.seqpacket);
  assertEquals(info.accept4, layout.features.accept4);
  assertEquals(info.sizes.msghdr, layout.msghdr.size);
  assertEquals(info.sizes.cmsghdr, layout.cmsghdr.size);
  assertEquals(info.sizes.sockaddr_un, layout.sockaddrUn.size);
  assertEquals(info.cmsg.spaceOneFd, cmsgSpace(layout, 4));
  assertEquals(info.receiveControlCapacity, receiveControlCapacity(layout));
  assertEquals(info.maxFdsPerMessage, layout.maxFdsPerMessage);
  assertEquals(info.maxPathBytes, layout.sockaddrUn.maxPathBytes);
  assertEquals(info.constants.SCM_RIGHTS, layout.constants.SCM_RIGHTS);
  assertEquals(info.constants.SOL_SOCKET, layout.constants.SOL_SOCKET);
  assertEquals(info.constants.MSG_CMSG_CLOEXEC, layout.constants.MSG_CMSG_CLOEXEC);
  assert(["io_uring", "epoll", "poll"].includes(info.poller), `poller ${info.poller}`);
  assert(info.pollerFallback === null || info.poller === "epoll", "a fallback is to epoll");

  const textOut = expectSuccess(await run(["info"]), "info");
  assertMatch(textOut, new RegExp(`^layout +${layout.name}$`, "m"));
  assertMatch(textOut, new RegExp(`^CMSG_SPACE\\(4\\) +${cmsgSpace(layout, 4)}$`, "m"));
  assertMatch(
    textOut,
    new RegExp(`^ +abstractNames +${layout.features.abstractNames ? "yes" : "no"}$`, "m"),
  );
  assert(!textOut.includes("platform"), "no platform row: the layout names it");
});

leakCheckedTest("--help and -h print usage and exit codes, and exit 0", async () => {
  const cases = [
    ["--help"],
    ["-h"],
    ["help"],
    ["help", "send"],
    ["recv", "--help"],
    ["recv", "-h"],
    ["send", "--help"],
    ["send", "-h"],
    ["info", "--help"],
  ];
  const results = await Promise.all(cases.map((args) => run(args)));
  for (const [i, result] of results.entries()) {
    const what = `fdpass ${cases[i]!.join(" ")}`;
    const out = expectSuccess(result, what);
    assertStringIncludes(out, "Usage:", what);
    assertStringIncludes(out, "Exit codes:", what);
    assertStringIncludes(out, "--allow-ffi", what);
  }
  assertStringIncludes(results[3]!.stdout, "fdpass send --connect PATH");
  assertStringIncludes(results[4]!.stdout, "fdpass recv --listen PATH");
});

leakCheckedTest(
  "bad arguments give one clear line on stderr, no stack trace, and the documented exit code",
  async () => {
    const socket = tempSocketPath();
    try {
      const { text } = fixtures(socket.dir);
      const missing = `${socket.dir}/missing.txt`;
      const max = layout.sockaddrUn.maxPathBytes;
      const long = `${socket.dir}/${"x".repeat(max)}`;
      const cases: [string[], number, RegExp][] = [
        [[], 2, /Missing command/],
        [["bogus"], 2, /Unknown command "bogus"/],
        [["--bogus"], 2, /Unknown option "--bogus"/],
        [["recv", "--listen", socket.path, "--bogus"], 2, /Unknown option "--bogus"/],
        [["send", "--connect", socket.path, "-z", text], 2, /Unknown option "-z"/],
        [["info", "--verbose", "--all"], 2, /Unknown options "--verbose", "--all"/],
        [["info", "extra"], 2, /Unexpected argument "extra"/],
        [["recv"], 2, /Option "--listen" is required: give a socket path/],
        [["recv", "--listen"], 2, /Option "--listen" needs a socket path/],
        [["recv", "--listen", "--json"], 2, /Option "--listen" needs a socket path/],
        [["send", text], 2, /Option "--connect" is required/],
        [
          ["recv", "--listen", long],
          2,
          new RegExp(`^fdpass: Option "--listen" is \\d+ bytes long, but .* at most ${max} bytes`),
        ],
        [
          ["send", "--connect", long, text],
          2,
          new RegExp(`^fdpass: Option "--connect" is \\d+ bytes long, but .* at most ${max} bytes`),
        ],
        [["recv", "--listen", socket.path, "--count", "two"], 2, /"--count" must be an integer/],
        // parseArgs alone reads "-1" as an option: 'Unknown option "-1"'.
        [
          ["recv", "--listen", socket.path, "--count", "-1"],
          2,
          /^fdpass: Option "--count" must be an integer from 0 to \d+, received "-1"$/,
        ],
        [
          ["recv", "--listen", socket.path, "--cat", "--cat-limit", "-5"],
          2,
          /"--cat-limit" must be an integer from 0 to \d+, received "-5"/,
        ],
        [
          ["send", "--connect", socket.path, "--fd", "-1"],
          2,
          /"--fd" must be an integer from 0 to \d+, received "-1"/,
        ],
        [["recv", "--listen", socket.path, "--cat-limit", "9"], 2, /only makes sense with "--cat"/],
        [
          ["recv", "--listen", socket.path, "--cat-timeout", "9"],
          2,
          /"--cat-timeout" only makes sense with "--cat"/,
        ],
        [
          ["recv", "--listen", socket.path, "--cat", "--cat-timeout", "0"],
          2,
          /"--cat-timeout" must be an integer from 1 to 3600000, received "0"/,
        ],
        [["send", "--connect", socket.path, "--fd", "1.5"], 2, /"--fd" must be an integer/],
        [
          ["send", "--connect", socket.path, ...Array(layout.maxFdsPerMessage + 1).fill(text)],
          2,
          new RegExp(`Too many fds: ${layout.maxFdsPerMessage + 1} given`),
        ],
        [
          ["send", "--connect", socket.path, missing],
          1,
          /open ".*missing\.txt" failed: ENOENT \(No such file or directory\)/,
        ],
        [["send", "--connect", socket.path, "--fd", "1000"], 1, /fd 1000 is not open/],
        [["send", "--connect", socket.path, text], 1, /connect ".*" failed: ENOENT/],
        [["recv", "--listen", text], 1, /it is a file, not a socket/],
      ];
      const results = await Promise.all(cases.map(([args]) => run(args)));
      for (const [i, [args, code, pattern]] of cases.entries()) {
        expectError(results[i]!, code, pattern, `fdpass ${args.slice(0, 6).join(" ")}`);
      }
      // Nothing was left behind, and the regular file was not removed.
      assertEquals(Deno.readTextFileSync(text), "hello\nworld\n");
      assertGone(socket.path);
    } finally {
      socket.cleanup();
    }
  },
);

// Hostile input: a pipe that never ends, a client that never speaks, and
// names and bytes that try to forge output lines.

/** Creates a FIFO at `path` with mkfifo(1). */
function mkfifo(path: string): void {
  const result = new Deno.Command("mkfifo", { args: [path], stderr: "piped" }).outputSync();
  assert(result.success, `mkfifo failed: ${new TextDecoder().decode(result.stderr)}`);
}

leakCheckedTest(
  "recv --cat stops reading a pipe that never reaches end of file after --cat-timeout",
  async (t) => {
    const socket = tempSocketPath();
    try {
      const fifo = `${Deno.realPathSync(socket.dir)}/fifo`;
      mkfifo(fifo);
      // Opened read-write, the FIFO needs no other peer, and every copy of
      // this open file description is a writer (fifo(7)): the copy recv
      // receives keeps its own read from ever reaching end of file.
      using held = openFd(fifo, { read: true, write: true });
      held.closeOnExec = false;

      await t.step("text, default --cat-timeout of 2000 ms", async () => {
        held.writeAllSync("partial\n");
        await using recv = new Cli(["recv", "--listen", socket.path, "--cat"]);
        await waitForSocket(socket.path, recv);
        const sent = await run(["send", "--connect", socket.path, "--fd", String(held.fd)]);
        expectSuccess(sent, "send");
        const out = expectSuccess(await settlesWithin(recv.result(), 10_000, "recv"), "recv");
        const lines = out.trimEnd().split("\n");
        assertEquals(lines.length, 5, out);
        assertEquals(lines[0], "message 1: 6 bytes, 1 fd");
        assertEquals(
          lines[2]!.replace(/^ {2}fd \d+:/, "  fd N:"),
          `  fd N: pipe ${fifo}, read-write, close-on-exec`,
        );
        assertEquals(lines[3], "    | partial");
        assertEquals(lines[4], "    (stopped after 2000 ms before end of file, 8 bytes read)");
      });

      await t.step("JSON, --cat-timeout 300", async () => {
        held.writeAllSync("more");
        await using recv = new Cli([
          "recv",
          "--listen",
          socket.path,
          "--json",
          "--cat",
          "--cat-timeout",
          "300",
        ]);
        await waitForSocket(socket.path, recv);
        const sent = await run(["send", "--connect", socket.path, "--fd", String(held.fd)]);
        expectSuccess(sent, "send");
        const started = Date.now();
        const result = await settlesWithin(recv.result(), 10_000, "recv");
        const [message] = parseLines(expectSuccess(result, "recv"));
        const [fd] = message!.fds;
        assertEquals(fd!.kind, "pipe");
        assertEquals(fd!.path, fifo);
        assertEquals(fd!.access, "read-write");
        assertEquals(fd!.content, "more");
        assertEquals(fd!.contentBytes, 4);
        assertEquals(fd!.contentTruncated, true);
        assertEquals(fd!.contentTimedOut, true);
        assert(Date.now() - started < 5_000, "the 300 ms bound held");
      });
    } finally {
      socket.cleanup();
    }
  },
  { ignore: !hasCommand("mkfifo") },
);

leakCheckedTest(
  "recv serves other clients while one connected client stays silent",
  async () => {
    const socket = tempSocketPath();
    try {
      await using recv = new Cli(["recv", "--listen", socket.path, "--count", "2", "--json"]);
      await waitForSocket(socket.path, recv);
      // Connected first, so it is first in the accept queue, and never sends.
      using _silent = UnixSocket.connectSync(socket.path);
      const sends = await Promise.all([
        run(["send", "--connect", socket.path, "--data", "one"]),
        run(["send", "--connect", socket.path, "--data", "two"]),
      ]);
      for (const sent of sends) expectSuccess(sent, "send");
      // --count 2 counts across connections; the silent one is then closed.
      const result = await settlesWithin(recv.result(), 5_000, "recv");
      const messages = parseLines(expectSuccess(result, "recv"));
      assertEquals(messages.map((message) => message.data).sort(), ["one", "two"]);
      assertGone(socket.path);
    } finally {
      socket.cleanup();
    }
  },
);

leakCheckedTest(
  "recv escapes control characters in paths, data and --cat contents so that they cannot forge lines",
  async (t) => {
    const socket = tempSocketPath();
    try {
      const dir = Deno.realPathSync(socket.dir);
      // A file name may hold any byte but "/" and NUL.
      const name = "x\n  fd 99: file \u001b[31mforged\\";
      const path = `${dir}/${name}`;
      const content = "line\u001b[2J\rover\u009b\ttab\n";
      Deno.writeTextFileSync(path, content);
      const data = "a\nmessage 2: 0 bytes\u007f\u202e";

      await t.step("text", async () => {
        await using recv = new Cli(["recv", "--listen", socket.path, "--cat"]);
        await waitForSocket(socket.path, recv);
        expectSuccess(await run(["send", "--connect", socket.path, "--data", data, path]), "send");
        const out = expectSuccess(await recv.result(), "recv");
        const lines = out.trimEnd().split("\n");
        assertEquals(lines.length, 4, out);
        const dataBytes = new TextEncoder().encode(data).byteLength;
        const fileBytes = new TextEncoder().encode(content).byteLength;
        assertEquals(lines[0], `message 1: ${dataBytes} bytes, 1 fd`);
        assertEquals(lines[1], '  data: "a\\nmessage 2: 0 bytes\\u007f\\u202e"');
        assertMatch(lines[2]!, /^ {2}fd \d+: file /);
        assertStringIncludes(
          lines[2]!,
          ` ${dir}/x\\n  fd 99: file \\u001b[31mforged\\\\, ${fileBytes} bytes, read-only, close-on-exec`,
        );
        // Tab stays; other control characters are escaped.
        assertEquals(lines[3], "    | line\\u001b[2J\\rover\\u009b\ttab");
        const raw = [...out].filter((char) => {
          const code = char.codePointAt(0)!;
          return (code < 0x20 && char !== "\n" && char !== "\t") ||
            (code >= 0x7f && code <= 0x9f) || code === 0x2028 || code === 0x2029;
        });
        assertEquals(raw, [], "raw control characters in the text output");
      });

      await t.step("JSON keeps the exact text on one line", async () => {
        await using recv = new Cli(["recv", "--listen", socket.path, "--cat", "--json"]);
        await waitForSocket(socket.path, recv);
        expectSuccess(await run(["send", "--connect", socket.path, "--data", data, path]), "send");
        const out = expectSuccess(await recv.result(), "recv");
        assertEquals(out.trimEnd().split("\n").length, 1, out);
        const [message] = parseLines(out);
        assertEquals(message!.data, data);
        assertEquals(message!.fds[0]!.path, path);
        assertEquals(message!.fds[0]!.content, content);
      });
    } finally {
      socket.cleanup();
    }
  },
);

leakCheckedTest("--version prints the version in deno.json and exits 0", async () => {
  const config = JSON.parse(Deno.readTextFileSync(`${ROOT}/deno.json`)) as { version: string };
  assertEquals(VERSION, config.version, "src/cli/version.ts and deno.json disagree");
  const result = await run(["--version"]);
  assertEquals(expectSuccess(result, "fdpass --version"), `fdpass ${config.version}\n`);
  expectError(await run(["--version", "x"]), 2, /Unexpected argument "x"/, "--version x");
});

leakCheckedTest(
  "without --allow-ffi every command prints the permission error and exits 2",
  async () => {
    const cases = [["info"], ["send", "--connect", "/tmp/fdpass-no-such.sock", "--fd", "0"]];
    const results = await Promise.all(cases.map((args) => run(args, [])));
    for (const [i, result] of results.entries()) {
      const what = `fdpass ${cases[i]!.join(" ")}`;
      assertEquals(result.code, 2, `${what}: exit code (stderr: ${result.stderr})`);
      const lines = result.stderr.trimEnd().split("\n");
      assertEquals(lines.length, 1, `${what}: one line on stderr: ${result.stderr}`);
      assertMatch(lines[0]!, /^fdpass: .*--allow-ffi/, what);
      assertEquals(result.stdout, "", what);
    }
  },
);

leakCheckedTest(
  "the install command in the README works from a clone",
  async () => {
    const root = Deno.makeTempDirSync({ prefix: "fdpass-install-" });
    try {
      // The command the README gives, with --root so that it stays in the temp directory.
      const install = await new Deno.Command(Deno.execPath(), {
        args: [
          "install",
          "--global",
          "--root",
          root,
          "--config",
          "deno.json",
          "--allow-ffi",
          "--name",
          "fdpass",
          "./cli.ts",
        ],
        cwd: ROOT,
        env: { NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert(install.success, new TextDecoder().decode(install.stderr));
      // Run it from elsewhere, where no deno.json is discovered.
      const output = await new Deno.Command(`${root}/bin/fdpass`, {
        args: ["--version"],
        cwd: root,
        env: { NO_COLOR: "1", PATH: `${Deno.execPath().replace(/\/[^/]*$/, "")}:/usr/bin:/bin` },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(output.stderr);
      assertEquals(output.code, 0, stderr);
      assertEquals(new TextDecoder().decode(output.stdout), `fdpass ${VERSION}\n`);
    } finally {
      Deno.removeSync(root, { recursive: true });
    }
  },
);

leakCheckedTest(
  "hold serves s6-fdholder-store and -list until SIGTERM, then removes its socket file and exits 143",
  async () => {
    const temp = tempSocketPath("hold.sock");
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-ffi", CLI, "hold", "--listen", temp.path, "--max-fds", "4"],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    try {
      const deadline = Date.now() + READY_TIMEOUT_MS;
      while (!isSocketFile(temp.path) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const run = (script: string): Promise<Deno.CommandOutput> =>
        new Deno.Command("sh", { args: ["-c", script], stdin: "null" }).output();
      const stored = await run(`s6-fdholder-store '${temp.path}' file:hosts < /etc/hosts`);
      assertEquals(stored.code, 0, new TextDecoder().decode(stored.stderr));
      const listed = await run(`s6-fdholder-list '${temp.path}'`);
      assertEquals(new TextDecoder().decode(listed.stdout), "file:hosts\n");
    } finally {
      child.kill("SIGTERM");
      const status = await child.status;
      await child.stderr.cancel();
      assertEquals(status.code, 143);
      assert(!isSocketFile(temp.path));
      temp.cleanup();
    }
  },
  { ignore: !hasCommand("s6-fdholder-store") },
);

function isSocketFile(path: string): boolean {
  try {
    return Deno.lstatSync(path).isSocket === true;
  } catch {
    return false;
  }
}
