/**
 * Shared pieces of the benchmarks: building the C peer at bench time,
 * running the peer programs, reading memory figures and describing the
 * machine.
 *
 * @module
 */

import { openFd } from "../mod.ts";

/** Where compiled peers go (gitignored). */
export const BUILD_DIR = new URL("../.bench-build/", import.meta.url);

/** The C peer's source. */
export const C_SOURCE = new URL("./peers/roundtrip.c", import.meta.url);

/** The Perl IO::FDPass peer. */
export const PERL_PEER = new URL("./peers/io_fdpass.pl", import.meta.url);

/** The Python socket.send_fds/recv_fds peer. */
export const PYTHON_PEER = new URL("./peers/socket_fds.py", import.meta.url);

/** The Deno child that measures memory growth. */
export const MEMORY_CHILD = new URL("./peers/memory_child.ts", import.meta.url);

/** The Deno child that echoes fds back in the ping-pong. */
export const ECHO_CHILD = new URL("./peers/echo_child.ts", import.meta.url);

/** A peer that could not be used, and why. */
export interface Missing {
  readonly missing: string;
}

const decoder = new TextDecoder();

let timeoutCommand: boolean | undefined;

/**
 * Wraps a command in coreutils `timeout` when it is there, so that a stuck
 * peer is killed instead of hanging the run.
 *
 * @param command The program.
 * @param args Its arguments.
 * @param limitSeconds The wall-clock limit.
 * @returns The program and arguments to spawn.
 */
export function limited(
  command: string,
  args: string[],
  limitSeconds: number,
): [string, string[]] {
  timeoutCommand ??= spawnable("timeout", ["--version"]);
  if (!timeoutCommand) return [command, args];
  return ["timeout", ["--kill-after=5", String(limitSeconds), command, ...args]];
}

function spawnable(command: string, args: string[]): boolean {
  try {
    return new Deno.Command(command, { args, stdout: "null", stderr: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
}

const found = new Map<string, boolean>();

/**
 * Whether a program is on PATH.
 *
 * @param command The program.
 * @returns `true` when the shell finds it.
 */
export function installed(command: string): boolean {
  let yes = found.get(command);
  if (yes === undefined) {
    yes = spawnable("sh", ["-c", 'command -v "$0" >/dev/null', command]);
    found.set(command, yes);
  }
  return yes;
}

/**
 * Runs a command to completion, killed after `limitSeconds`.
 *
 * @param command The program.
 * @param args Its arguments.
 * @param limitSeconds The wall-clock limit.
 * @returns Exit success, stdout and stderr; `null` when the program does not exist.
 */
export function run(
  command: string,
  args: string[],
  limitSeconds = 300,
): { success: boolean; stdout: string; stderr: string } | null {
  if (!installed(command)) return null;
  const [program, programArgs] = limited(command, args, limitSeconds);
  const out = new Deno.Command(program, { args: programArgs, stdin: "null" }).outputSync();
  return {
    success: out.success,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
}

/**
 * Compiles the C peer with `cc -O2` into {@linkcode BUILD_DIR}.
 *
 * @param shared Build the shared library (for `Deno.dlopen`) instead of the program.
 * @returns The path of the output, or why it could not be built.
 */
export function buildC(shared = false): string | Missing {
  Deno.mkdirSync(BUILD_DIR, { recursive: true });
  const output = new URL(shared ? "libroundtrip.so" : "roundtrip", BUILD_DIR).pathname;
  const args = ["-O2", "-Wall", "-o", output, C_SOURCE.pathname];
  if (shared) args.unshift("-shared", "-fPIC", "-DROUNDTRIP_SHARED");
  const result = run("cc", args);
  if (result === null) return { missing: "no cc on PATH" };
  if (!result.success) throw new Error(`cc failed:\n${result.stderr}`);
  return output;
}

/**
 * Checks that Perl with IO::FDPass is installed.
 *
 * @returns `true`, or why not.
 */
export function checkPerl(): true | Missing {
  const result = run("perl", ["-MIO::FDPass", "-e", "1"]);
  if (result === null) return { missing: "no perl on PATH" };
  if (!result.success) {
    return { missing: "perl has no IO::FDPass (apt-get install libio-fdpass-perl)" };
  }
  return true;
}

/**
 * Checks that Python 3 with `socket.send_fds` (3.9+) is installed.
 *
 * @returns `true`, or why not.
 */
export function checkPython(): true | Missing {
  const result = run("python3", ["-c", "import socket; socket.send_fds; socket.recv_fds"]);
  if (result === null) return { missing: "no python3 on PATH" };
  if (!result.success) return { missing: "python3 has no socket.send_fds (needs 3.9+)" };
  return true;
}

/**
 * Runs a peer that prints `<ns per op> <ops>` and returns the ns per op.
 *
 * @param command The program.
 * @param args Its arguments.
 * @param extra Given every field of the output line, for peers that print more.
 * @returns Nanoseconds per operation.
 */
export function runPeer(
  command: string,
  args: string[],
  extra?: (fields: string[]) => void,
): number {
  const result = run(command, args);
  if (result === null) throw new Error(`${command} is not installed`);
  const fields = result.stdout.trim().split(/\s+/);
  const ns = Number(fields[0]);
  extra?.(fields);
  if (!result.success || !Number.isFinite(ns) || ns <= 0) {
    throw new Error(
      `${command} ${args.join(" ")} failed (${result.stdout.trim()}): ${result.stderr.trim()}`,
    );
  }
  return ns;
}

/**
 * Reads a whole /proc file. Deno's own file APIs refuse /proc/self and
 * /proc/cpuinfo without `--allow-all`, so this goes through the library's
 * `openFd` (which needs only `--allow-ffi`).
 *
 * @param path The file.
 * @returns The text, or `null` when it cannot be read.
 */
export function readProcFile(path: string): string | null {
  try {
    using fd = openFd(path);
    const chunks: Uint8Array[] = [];
    for (;;) {
      const buffer = new Uint8Array(16 * 1024);
      const n = fd.readSync(buffer);
      if (n === null) break;
      chunks.push(buffer.subarray(0, n));
    }
    return chunks.map((chunk) => decoder.decode(chunk, { stream: true })).join("") +
      decoder.decode();
  } catch {
    return null;
  }
}

/**
 * Resident set size of this process (`VmRSS` in /proc/self/status), or
 * what `Deno.memoryUsage()` reports where there is no /proc.
 *
 * @returns Bytes.
 */
export function residentBytes(): number {
  const match = readProcFile("/proc/self/status")?.match(/^VmRSS:\s+(\d+)\s+kB/m);
  return match ? Number(match[1]) * 1024 : Deno.memoryUsage().rss;
}

/** The machine, for the results header. */
export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly kernel: string;
  readonly deno: string;
  readonly v8: string;
  readonly date: string;
}

/**
 * Describes the machine: CPU model, kernel (`uname -sr`), Deno version and the date.
 *
 * @returns The description.
 */
export function machine(): Machine {
  const cpu = readProcFile("/proc/cpuinfo")?.match(/^model name\s*:\s*(.+)$/m)?.[1]?.trim() ??
    "unknown CPU";
  const uname = run("uname", ["-sr"]);
  return {
    cpu,
    cores: navigator.hardwareConcurrency,
    kernel: uname?.success ? uname.stdout.trim() : "unknown kernel",
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    date: new Date().toISOString().slice(0, 10),
  };
}

/**
 * Formats the machine as one line.
 *
 * @param m The machine.
 * @returns The line.
 */
export function machineLine(m: Machine): string {
  return `${m.cpu} (${m.cores} cores), ${m.kernel}, Deno ${m.deno} (V8 ${m.v8}), ${m.date}`;
}

/**
 * The median of some numbers.
 *
 * @param values The numbers (not empty).
 * @returns The median.
 */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The Go peer's source (standard library only). */
export const GO_SOURCE = new URL("./peers/unixrights.go", import.meta.url);

/** The Node `child_process.send(msg, handle)` peer. */
export const NODE_PEER = new URL("./peers/node_send.mjs", import.meta.url);

/** Deno's native Unix-socket ping-pong (no fds). */
export const DENO_NATIVE_PEER = new URL("./peers/deno_native.ts", import.meta.url);

/**
 * Builds the Go peer with `go build` into {@linkcode BUILD_DIR}, offline and
 * with its caches under `.bench-build/go/` (so it works as root without a
 * home directory).
 *
 * @returns The path of the program, or why it could not be built.
 */
export function buildGo(): string | Missing {
  if (!installed("go")) return { missing: "no go on PATH (apt-get install golang-go)" };
  const goDir = new URL("go/", BUILD_DIR).pathname;
  Deno.mkdirSync(goDir, { recursive: true });
  const output = new URL("unixrights", BUILD_DIR).pathname;
  const [program, programArgs] = limited(
    "go",
    ["build", "-o", output, GO_SOURCE.pathname],
    300,
  );
  const result = new Deno.Command(program, {
    args: programArgs,
    stdin: "null",
    env: {
      GOCACHE: `${goDir}cache`,
      GOPATH: `${goDir}path`,
      GOFLAGS: "",
      GO111MODULE: "off",
      GOPROXY: "off",
      GOTOOLCHAIN: "local",
    },
  }).outputSync();
  if (!result.success) throw new Error(`go build failed:\n${decoder.decode(result.stderr)}`);
  return output;
}

/**
 * Checks that Node.js 20 or later is installed.
 *
 * @returns `true`, or why not.
 */
export function checkNode(): true | Missing {
  const result = run("node", ["--version"]);
  if (result === null) return { missing: "no node on PATH" };
  const major = Number(result.stdout.trim().match(/^v(\d+)/)?.[1]);
  if (!result.success || !(major >= 20)) {
    return { missing: `node ${result.stdout.trim()} is older than 20` };
  }
  return true;
}
