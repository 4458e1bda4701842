/**
 * {@linkcode spawn}: start a child process with extra fds at 3, 4, ... (or at
 * chosen numbers), the way Go's `exec.Cmd.ExtraFiles` and Python's
 * `pass_fds` do, optionally announced with systemd's socket-activation
 * variables (`LISTEN_FDS`, `LISTEN_FDNAMES`, `LISTEN_PID`).
 *
 * How it works, on Deno 2.9.6:
 *
 * - The base is `node:child_process`, whose `stdio` array puts raw fd numbers
 *   at 3, 4, ... in the child (`"ignore"` leaves a gap). `Deno.Command` has no
 *   such option.
 * - Every fd is first duplicated close-on-exec above every target number, and
 *   the duplicates are closed as soon as the child exists: the child gets
 *   them by `dup2` between fork and exec, the caller's fds keep their
 *   close-on-exec flag, and an fd that already sits at its target number, or
 *   two that swap places, still arrive.
 * - The child is started through `/bin/sh -c '... exec "$@"'` with every
 *   argument prefixed by one character that the shell strips. Deno rewrites
 *   any `node:child_process` argument list that contains `Deno.execPath()`
 *   followed by `run` (or `test`, or a script) without permission flags to
 *   add `-A`, also when the path is only an argument (of `sh`, `env`,
 *   `nice`...), and rewrites `sh -c` scripts that start with it. Behind the
 *   prefix no argument equals that path, so the child gets exactly the
 *   permission flags the caller wrote. The same shell sets `LISTEN_PID=$$`
 *   (its pid is the child's: `exec` keeps it) and moves an fd given as
 *   stdin, stdout or stderr into place, since Deno's own handling of that
 *   leaves a stray copy open in the child.
 *
 * @module
 */

import { type ChildProcess, spawn as nodeSpawn, type StdioOptions } from "node:child_process";
import { constants as osConstants } from "node:os";
import { Readable, Writable } from "node:stream";
import { libc } from "../../ffi/libc.ts";
import {
  checkOptions,
  checkSignal,
  cString,
  describeValue,
  type FdLike,
  fdNumberOf,
  pathString,
} from "../core/checks.ts";
import { ErrnoError, errnoError } from "../core/errors.ts";
import { closeFd, fcntlFd, setNonblocking, statusFlags } from "../core/fd_ops.ts";
import { openFd } from "../owned_fd.ts";

/** The shell every child is started through (see the module documentation). */
const SHELL = "/bin/sh";
/** The shell's `$0`, shown in its messages ("fdpass-spawn: 1: exec: x: not found"). */
const SHELL_NAME = "fdpass-spawn";
/** The highest fd number a child can be given. */
const MAX_POSITION = 1023;
/** The first fd number of socket activation (`SD_LISTEN_FDS_START`). */
const LISTEN_FDS_START = 3;
/** dash redirects only single-digit fds: stdio fds pass through 3..9. */
const SHELL_SLOTS = [3, 4, 5, 6, 7, 8, 9];
/** How long `[Symbol.asyncDispose]` waits after `SIGTERM` before `SIGKILL`. */
const DISPOSE_KILL_AFTER_MS = 5_000;

/**
 * What a child's stdin, stdout or stderr is: this process's own
 * (`"inherit"`), `/dev/null` (`"null"`), a pipe to this process (`"piped"`),
 * or an fd (a number, or an object with an `fd` such as `OwnedFd`,
 * `UnixSocket` or `MemFd`), which the child gets a copy of.
 */
export type SpawnStdio = "inherit" | "null" | "piped" | FdLike;

/** Options for {@linkcode spawn}. */
export interface SpawnOptions {
  /**
   * Arguments after the command. For a `deno run` child, write its
   * permission flags here: none means none (never `-A`).
   *
   * @default {[]}
   */
  args?: readonly string[];
  /**
   * The fds the child gets besides stdin, stdout and stderr: an array puts
   * them at 3, 4, ... in order; an object puts each at its key, such as
   * `{ 3: socket, 7: file }` (numbers from 3 to 1023; the numbers between
   * stay closed). Each is a number or an object with an `fd`. The child gets
   * its own copies: the caller's fds stay open and close-on-exec, and it
   * still closes them (close a socketpair end the child now holds, so that
   * the other end sees the child hang up). No other fd is passed; fds that
   * this process itself inherited without close-on-exec are passed on as by
   * any spawn, everything fdpass and Deno create is close-on-exec.
   *
   * @default {[]}
   */
  fds?: readonly FdLike[] | Readonly<Record<number, FdLike>>;
  /**
   * Socket activation (`sd_listen_fds(3)`): `true`, or one name per fd of
   * `fds`, which must then be an array (fds start at 3). The child also gets
   * `LISTEN_FDS`, `LISTEN_FDNAMES` (the names joined by `:`, `"unknown"`
   * for each with `true`) and `LISTEN_PID` set to its own pid by the shell
   * it starts through (`LISTEN_PID=$$; export LISTEN_PID; exec ...`);
   * `LISTEN_PIDFDID` is removed. Names are ASCII without control characters
   * or `:`, at most 255 characters.
   *
   * @default {false}
   */
  listenFds?: boolean | readonly string[];
  /**
   * Environment variables, added to this process's environment (or used
   * alone with `clearEnv`).
   *
   * @default {{}}
   */
  env?: Readonly<Record<string, string>>;
  /**
   * Start from an empty environment instead of this process's.
   *
   * @default {false}
   */
  clearEnv?: boolean;
  /**
   * The child's working directory.
   *
   * @default {Deno.cwd()}
   */
  cwd?: string | URL;
  /**
   * The child's stdin: see {@linkcode SpawnStdio}.
   *
   * @default {"inherit"}
   */
  stdin?: SpawnStdio;
  /**
   * The child's stdout: see {@linkcode SpawnStdio}.
   *
   * @default {"inherit"}
   */
  stdout?: SpawnStdio;
  /**
   * The child's stderr: see {@linkcode SpawnStdio}.
   *
   * @default {"inherit"}
   */
  stderr?: SpawnStdio;
  /** Kills the child (`SIGTERM`) when aborted. An aborted signal starts nothing. */
  signal?: AbortSignal;
}

/** How a child ended, like `Deno.CommandStatus`. */
export interface SpawnStatus {
  /** Whether it exited with code 0. */
  success: boolean;
  /** The exit code, or 128 + the signal number when a signal ended it. */
  code: number;
  /** The signal that ended it, or `null`. */
  signal: Deno.Signal | null;
}

/** A child's status with its piped output, from {@linkcode SpawnedProcess.output}. */
export interface SpawnOutput extends SpawnStatus {
  /** Everything the child wrote to stdout, or `null` unless stdout was `"piped"`. */
  stdout: Uint8Array | null;
  /** Everything the child wrote to stderr, or `null` unless stderr was `"piped"`. */
  stderr: Uint8Array | null;
}

/**
 * A child started by {@linkcode spawn}. `await using` kills it (if it still
 * runs), waits for it, and closes its pipes.
 */
export class SpawnedProcess {
  /** The child's pid (the shell it starts through `exec`s it, keeping the pid). */
  readonly pid: number;
  /** Resolves when the child has exited. Never rejects. */
  readonly status: Promise<SpawnStatus>;
  /** The child's stdin when it is `"piped"`, else `null`. */
  readonly stdin: WritableStream<Uint8Array> | null;
  /** The child's stdout when it is `"piped"`, else `null`. */
  readonly stdout: ReadableStream<Uint8Array> | null;
  /** The child's stderr when it is `"piped"`, else `null`. */
  readonly stderr: ReadableStream<Uint8Array> | null;

  #child: ChildProcess;
  #exited = false;
  #closed: Promise<void>;

  /**
   * Wraps a started `node:child_process` child; use {@linkcode spawn}.
   *
   * @param child The child, with a pid.
   * @param signal Kills the child when aborted.
   */
  constructor(child: ChildProcess, signal: AbortSignal | undefined) {
    this.#child = child;
    this.pid = child.pid!;
    const onAbort = (): void => {
      this.kill("SIGTERM");
    };
    this.status = new Promise((resolve) => {
      child.once("exit", (code, signalName) => {
        this.#exited = true;
        signal?.removeEventListener("abort", onAbort);
        resolve(statusOf(code, signalName as Deno.Signal | null));
      });
    });
    this.#closed = new Promise((resolve) => child.once("close", () => resolve()));
    this.stdin = child.stdin ? Writable.toWeb(child.stdin) as WritableStream<Uint8Array> : null;
    this.stdout = child.stdout
      ? Readable.toWeb(child.stdout) as unknown as ReadableStream<Uint8Array>
      : null;
    this.stderr = child.stderr
      ? Readable.toWeb(child.stderr) as unknown as ReadableStream<Uint8Array>
      : null;
    signal?.addEventListener("abort", onAbort, { once: true });
  }

  /** Whether the child has exited (and {@linkcode SpawnedProcess.status} resolved). */
  get exited(): boolean {
    return this.#exited;
  }

  /**
   * Sends a signal to the child.
   *
   * @param signal The signal.
   * @returns `true` if it was sent, `false` when the child has already exited.
   *
   * @example Kill a sleeping child
   * ```ts
   * import { spawn } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * await using child = spawn("sleep", { args: ["60"] });
   * assertEquals(child.kill("SIGKILL"), true);
   * assertEquals((await child.status).signal, "SIGKILL");
   * assertEquals(child.kill(), false);
   * ```
   */
  kill(signal: Deno.Signal = "SIGTERM"): boolean {
    if (this.#exited) return false;
    // Not ChildProcess.kill(): Deno's sends only the first signal it is given.
    try {
      Deno.kill(this.pid, signal);
    } catch (error) {
      // Exited and reaped, its "exit" event not yet delivered.
      if (error instanceof Deno.errors.NotFound) return false;
      throw error;
    }
    return true;
  }

  /**
   * Reads the piped stdout and stderr to their end and waits for the child.
   * Stdin is left alone: close a piped stdin first if the child reads it.
   *
   * @returns The status and the output (`null` for a stream not piped).
   *
   * @example Collect a child's output
   * ```ts
   * import { spawn } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * await using child = spawn("sh", { args: ["-c", "echo hi; exit 3"], stdout: "piped" });
   * const { code, stdout } = await child.output();
   * assertEquals(code, 3);
   * assertEquals(new TextDecoder().decode(stdout!), "hi\n");
   * ```
   */
  async output(): Promise<SpawnOutput> {
    const [stdout, stderr, status] = await Promise.all([
      readAll(this.stdout),
      readAll(this.stderr),
      this.status,
    ]);
    return { ...status, stdout, stderr };
  }

  /**
   * Lets this process exit while the child still runs (the child is not
   * killed). Piped streams still hold this process until they are closed.
   *
   * @example Let a child outlive its parent
   * ```ts
   * import { spawn } from "@fdpass/fdpass";
   *
   * await using child = spawn("true");
   * child.unref();
   * child.ref();
   * ```
   */
  unref(): void {
    this.#child.unref();
  }

  /**
   * Undoes {@linkcode SpawnedProcess.unref}: this process waits for the
   * child again.
   *
   * @example Wait for the child again
   * ```ts
   * import { spawn } from "@fdpass/fdpass";
   * import { assert } from "@std/assert";
   *
   * await using child = spawn("true");
   * child.unref();
   * child.ref();
   * assert((await child.status).success);
   * ```
   */
  ref(): void {
    this.#child.ref();
  }

  /**
   * Kills the child if it still runs (`SIGTERM`, then `SIGKILL` after 5
   * seconds), waits for it, and closes the pipes to it.
   *
   * @example Dispose of a running child
   * ```ts
   * import { spawn } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const child = spawn("sleep", { args: ["60"] });
   * await child[Symbol.asyncDispose]();
   * assertEquals((await child.status).signal, "SIGTERM");
   * ```
   */
  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.#exited) {
      this.kill("SIGTERM");
      const timer = setTimeout(() => this.kill("SIGKILL"), DISPOSE_KILL_AFTER_MS);
      try {
        await this.status;
      } finally {
        clearTimeout(timer);
      }
    }
    for (const stream of [this.#child.stdin, this.#child.stdout, this.#child.stderr]) {
      stream?.destroy();
    }
    await this.#closed;
  }

  /**
   * Shows the pid and whether the child still runs.
   *
   * @returns The description.
   */
  [Symbol.for("Deno.customInspect")](): string {
    return `SpawnedProcess { pid: ${this.pid}, exited: ${this.#exited} }`;
  }
}

/**
 * Starts `command` with extra fds: `fds` at 3, 4, ... (or at the numbers
 * given), and nothing else beyond stdin, stdout and stderr. The child runs
 * with exactly the arguments given: a `deno run` child gets the permission
 * flags written in `args`, never `-A`.
 *
 * Needs `--allow-run` for `/bin/sh` and for `command` (the child starts
 * through `/bin/sh`, so a run permission that includes the shell allows
 * every command: unscoped `--allow-run` says so honestly), and
 * `--allow-env` (to pass this process's environment on; with `clearEnv`,
 * `--allow-env=NODE_V8_COVERAGE` is enough, which `node:child_process`
 * reads in any case). A command
 * that cannot be run makes the shell exit with code 127 (not found) or 126
 * (not executable) and say why on the child's stderr.
 *
 * @param command The program: a path, or a name looked up in `PATH`.
 * @param options Arguments, fds, environment, stdio, signal.
 * @returns The running child.
 * @throws {TypeError} An option has the wrong type; the message names it.
 * @throws {RangeError} An fd number, name or count is out of range.
 * @throws {ErrnoError} An fd is not open (`EBADF`), or `cwd` is not a directory.
 * @throws {Deno.errors.NotCapable} Without run permission for `/bin/sh` or `command`.
 *
 * @example Give a shell child a pipe at fd 3
 * ```ts
 * import { pipe, spawn } from "@fdpass/fdpass";
 * import { assertEquals } from "@std/assert";
 *
 * const [readEnd, writeEnd] = pipe();
 * {
 *   await using child = spawn("sh", { args: ["-c", "echo hello >&3"], fds: [writeEnd] });
 *   writeEnd.close(); // the child has its own copy
 *   assertEquals((await child.status).code, 0);
 * }
 * const buffer = new Uint8Array(16);
 * const n = readEnd.readSync(buffer)!;
 * assertEquals(new TextDecoder().decode(buffer.subarray(0, n)), "hello\n");
 * readEnd.close();
 * ```
 *
 * @example Socket activation for a Deno child
 * ```ts
 * import { spawn, UnixSocket } from "@fdpass/fdpass";
 * import { assertEquals } from "@std/assert";
 *
 * const [mine, theirs] = UnixSocket.pair();
 * const code = `const n = Deno.env.get("LISTEN_FDS");
 *   const pid = Deno.env.get("LISTEN_PID") === String(Deno.pid);
 *   console.log(n, Deno.env.get("LISTEN_FDNAMES"), pid);`;
 * await using child = spawn(Deno.execPath(), {
 *   args: ["eval", "--no-prompt", code],
 *   fds: [theirs],
 *   listenFds: ["control"],
 *   stdout: "piped",
 * });
 * theirs.close();
 * const { stdout } = await child.output();
 * assertEquals(new TextDecoder().decode(stdout!), "1 control true\n");
 * mine.close();
 * ```
 */
export function spawn(command: string | URL, options?: SpawnOptions): SpawnedProcess {
  const opts = checkOptions(options);
  const program = commandString(command);
  const args = checkArgs(opts.args);
  const signal = checkSignal(opts.signal);
  const positions = fdPositions(opts.fds);
  const names = listenNames(opts.listenFds, opts.fds, positions.size);
  const stdio = [
    stdioOption(opts.stdin, "stdin"),
    stdioOption(opts.stdout, "stdout"),
    stdioOption(opts.stderr, "stderr"),
  ] as const;
  const cwd = opts.cwd === undefined ? undefined : pathString(opts.cwd, "cwd");
  if (cwd !== undefined) cString(cwd, "cwd");
  if (opts.clearEnv !== undefined && typeof opts.clearEnv !== "boolean") {
    throw new TypeError(
      `Option "clearEnv" must be a boolean, received ${describeValue(opts.clearEnv)}`,
    );
  }
  signal?.throwIfAborted();
  requireRun(SHELL);
  requireRun(program);
  if (opts.clearEnv === true) requireNodeEnv();
  const env = childEnv(opts.env, opts.clearEnv === true, names);

  // Stdio fds wait at a free single-digit number until the shell moves them.
  const targets = new Map(positions);
  const free = SHELL_SLOTS.filter((n) => !positions.has(n));
  const moves: { target: number; slot: number }[] = [];
  for (const [target, spec] of stdio.entries()) {
    if (spec.fd === undefined) continue;
    const slot = free.shift();
    if (slot === undefined) {
      throw new RangeError(
        `Option "${spec.name}" is an fd, which passes through a free fd number from 3 to 9 ` +
          `in the child, but "fds" takes all of them: move some of "fds" above 9`,
      );
    }
    moves.push({ target, slot });
    targets.set(slot, { fd: spec.fd, label: spec.name });
  }
  const highest = Math.max(2, ...targets.keys());

  const script = launcherScript(names !== undefined, moves);
  const dups: number[] = [];
  // Deno's node:child_process clears O_NONBLOCK on the fds it passes. The
  // flag belongs to the open file description, which this process shares:
  // a listener here would then block in accept(). Restored after the spawn.
  const O_NONBLOCK = libc().layout.constants.O_NONBLOCK;
  const flags: (readonly [number, number])[] = [];
  let child: ChildProcess;
  try {
    // Copies above every target number: no copy sits where another goes,
    // and dup2 onto a different number clears close-on-exec in the child
    // only (dup2(2): "the close-on-exec flag for the duplicate is off").
    const F_DUPFD_CLOEXEC = libc().layout.constants.F_DUPFD_CLOEXEC;
    const extra: (number | "ignore")[] = [];
    for (let position = 3; position <= highest; position++) {
      const placement = targets.get(position);
      if (placement === undefined) {
        extra.push("ignore");
        continue;
      }
      try {
        const copy = fcntlFd(placement.fd, F_DUPFD_CLOEXEC, highest + 1);
        dups.push(copy);
        extra.push(copy);
        flags.push([copy, statusFlags(copy)]);
      } catch (error) {
        throw error instanceof ErrnoError
          ? errnoError(error.errno, "fcntl", `${placement.label}: fd ${placement.fd}`)
          : error;
      }
    }
    child = nodeSpawn(SHELL, ["-c", script, SHELL_NAME, ...[program, ...args].map(shield)], {
      stdio: [stdio[0].node, stdio[1].node, stdio[2].node, ...extra] as StdioOptions,
      env,
      ...(cwd === undefined ? {} : { cwd }),
    });
  } finally {
    // Through the copies, which share the open file descriptions.
    for (const [copy, before] of flags) {
      if ((statusFlags(copy) & O_NONBLOCK) !== (before & O_NONBLOCK)) {
        setNonblocking(copy, (before & O_NONBLOCK) !== 0);
      }
    }
    // The child has its copies once spawn returns (fork copied the table).
    for (const copy of dups) closeFd(copy);
  }
  let spawnError: unknown;
  child.on("error", (error) => (spawnError = error));
  if (child.pid === undefined) {
    // node:child_process reports this on the next tick; say what we can now.
    if (cwd !== undefined) openFd(cwd, { directory: true }).close();
    throw new Error(`Failed to start "${program}" through ${SHELL}`, { cause: spawnError });
  }
  return new SpawnedProcess(child, signal);
}

// ---------------------------------------------------------------------------
// Checks and the launcher.

/**
 * The one-character prefix the launcher strips from every argument, so that
 * none equals `Deno.execPath()` where `node:child_process` looks for it.
 */
function shield(argument: string): string {
  return `+${argument}`;
}

/**
 * The `sh -c` script: optional `LISTEN_PID`, stdio moves, the argument
 * unshielding, then `exec`.
 */
function launcherScript(
  listen: boolean,
  moves: readonly { target: number; slot: number }[],
): string {
  const parts: string[] = [];
  if (listen) parts.push("LISTEN_PID=$$", "export LISTEN_PID");
  if (moves.length > 0) {
    const into = moves.map(({ target, slot }) => `${target}<&${slot}`);
    const close = moves.map(({ slot }) => `${slot}<&-`);
    parts.push(`exec ${[...into, ...close].join(" ")}`);
  }
  parts.push('for a do shift; set -- "$@" "${a#?}"; done', 'exec "$@"');
  return parts.join("; ");
}

function commandString(command: unknown): string {
  if (command instanceof URL) return pathString(command, "command");
  if (typeof command !== "string" || command === "") {
    throw new TypeError(
      `Argument "command" must be a non-empty string or a file: URL, received ${
        describeValue(command)
      }`,
    );
  }
  cString(command, "command");
  return command;
}

function checkArgs(args: unknown): string[] {
  if (args === undefined) return [];
  if (!Array.isArray(args)) {
    throw new TypeError(
      `Option "args" must be an array of strings, received ${describeValue(args)}`,
    );
  }
  return args.map((arg, i) => {
    if (typeof arg !== "string") {
      throw new TypeError(`Option "args[${i}]" must be a string, received ${describeValue(arg)}`);
    }
    cString(arg, `args[${i}]`);
    return arg;
  });
}

/** Target number -> the caller's fd number and the option it came from. */
function fdPositions(fds: unknown): Map<number, Placement> {
  const positions = new Map<number, Placement>();
  if (fds === undefined) return positions;
  if (Array.isArray(fds)) {
    if (fds.length > MAX_POSITION - 2) {
      throw new RangeError(
        `Option "fds" can hold at most ${MAX_POSITION - 2} fds (3 to ${MAX_POSITION}), ` +
          `received ${fds.length}`,
      );
    }
    for (let i = 0; i < fds.length; i++) {
      const label = `fds[${i}]`;
      positions.set(3 + i, { fd: fdNumberOf(fds[i], label), label });
    }
    return positions;
  }
  if (typeof fds !== "object" || fds === null || fds instanceof Map) {
    throw new TypeError(
      `Option "fds" must be an array of fds or an object from fd numbers to fds, such as ` +
        `{ 3: a, 7: b }, received ${describeValue(fds)}`,
    );
  }
  for (const [key, value] of Object.entries(fds)) {
    const position = Number(key);
    if (!/^\d+$/.test(key) || position < 3 || position > MAX_POSITION) {
      throw new RangeError(
        `Option "fds" keys must be fd numbers from 3 to ${MAX_POSITION} ` +
          `(use "stdin", "stdout" and "stderr" for 0 to 2), received "${key}"`,
      );
    }
    const label = `fds[${key}]`;
    positions.set(position, { fd: fdNumberOf(value as FdLike, label), label });
  }
  return positions;
}

function listenNames(
  listenFds: unknown,
  fds: unknown,
  count: number,
): string[] | undefined {
  if (listenFds === undefined || listenFds === false) return undefined;
  if (fds !== undefined && !Array.isArray(fds)) {
    throw new TypeError(
      `Option "listenFds" needs "fds" as an array: socket activation passes fds from ` +
        `${LISTEN_FDS_START} on, in order`,
    );
  }
  if (listenFds === true) return Array.from({ length: count }, () => "unknown");
  if (!Array.isArray(listenFds)) {
    throw new TypeError(
      `Option "listenFds" must be true or an array of names, received ${describeValue(listenFds)}`,
    );
  }
  if (listenFds.length !== count) {
    throw new RangeError(
      `Option "listenFds" must have one name per fd: ${count} fds, received ${listenFds.length} names`,
    );
  }
  return listenFds.map((name, i) => checkFdName(name, `listenFds[${i}]`));
}

/**
 * Checks a name for `LISTEN_FDNAMES` like systemd's `fdname_is_valid()`:
 * printable ASCII without `:`, at most 255 characters.
 */
function checkFdName(name: unknown, option: string): string {
  if (typeof name !== "string") {
    throw new TypeError(`Option "${option}" must be a string, received ${describeValue(name)}`);
  }
  if (name.length > 255) {
    throw new RangeError(
      `Option "${option}" must be at most 255 characters, received ${name.length}`,
    );
  }
  if (!/^[\x20-\x39\x3b-\x7e]*$/.test(name)) {
    throw new RangeError(
      `Option "${option}" must be printable ASCII without ":", received ${JSON.stringify(name)}`,
    );
  }
  return name;
}

/** Where an fd goes: the caller's number and the option that named it. */
interface Placement {
  fd: number;
  label: string;
}

interface StdioSpec {
  name: string;
  node: "inherit" | "ignore" | "pipe";
  fd?: number;
}

function stdioOption(value: unknown, name: string): StdioSpec {
  switch (value) {
    case undefined:
    case "inherit":
      return { name, node: "inherit" };
    case "null":
      return { name, node: "ignore" };
    case "piped":
      return { name, node: "pipe" };
  }
  if (typeof value === "string") {
    throw new TypeError(
      `Option "${name}" must be "inherit", "null", "piped" or an fd, received "${value}"`,
    );
  }
  // The shell moves it into place; Deno's own fd stdio leaves a stray copy.
  return { name, node: "inherit", fd: fdNumberOf(value as FdLike, name) };
}

/** Run permission for `command`, asked as Deno would (a prompt where there is a terminal). */
function requireRun(command: string): void {
  const descriptor = { name: "run", command } as const;
  let state = Deno.permissions.querySync(descriptor).state;
  if (state === "prompt") state = Deno.permissions.requestSync(descriptor).state;
  if (state !== "granted") {
    throw new Deno.errors.NotCapable(
      `Requires run access to "${command}", run again with the --allow-run flag` +
        (command === SHELL ? ` (spawn() starts every child through ${SHELL})` : ""),
    );
  }
}

/**
 * `node:child_process` reads `NODE_V8_COVERAGE` from this process's
 * environment even when given one of its own; say so instead of its
 * puzzling "Requires env access to "NODE_V8_COVERAGE"".
 */
function requireNodeEnv(): void {
  const descriptor = { name: "env", variable: "NODE_V8_COVERAGE" } as const;
  let state = Deno.permissions.querySync(descriptor).state;
  if (state === "prompt") state = Deno.permissions.requestSync(descriptor).state;
  if (state !== "granted") {
    throw new Deno.errors.NotCapable(
      `Requires env access to "NODE_V8_COVERAGE", run again with the --allow-env flag ` +
        `(node:child_process, which spawn() uses, reads it even with clearEnv)`,
    );
  }
}

function childEnv(
  extra: unknown,
  clear: boolean,
  names: readonly string[] | undefined,
): Record<string, string> {
  const env: Record<string, string> = clear ? {} : Deno.env.toObject();
  if (extra !== undefined) {
    if (typeof extra !== "object" || extra === null) {
      throw new TypeError(`Option "env" must be an object, received ${describeValue(extra)}`);
    }
    for (const [key, value] of Object.entries(extra)) {
      if (key === "" || key.includes("=") || key.includes("\0")) {
        throw new TypeError(`Option "env" has an invalid variable name "${key}"`);
      }
      if (typeof value !== "string") {
        throw new TypeError(
          `Option "env.${key}" must be a string, received ${describeValue(value)}`,
        );
      }
      cString(value, `env.${key}`);
      env[key] = value;
    }
  }
  if (names !== undefined) {
    // LISTEN_PID comes from the launcher; a LISTEN_PIDFDID of ours would not match the child.
    delete env.LISTEN_PID;
    delete env.LISTEN_PIDFDID;
    env.LISTEN_FDS = String(names.length);
    env.LISTEN_FDNAMES = names.join(":");
  }
  return env;
}

function statusOf(code: number | null, signal: Deno.Signal | null): SpawnStatus {
  if (signal !== null) {
    const number = (osConstants.signals as Record<string, number>)[signal] ?? 0;
    return { success: false, code: 128 + number, signal };
  }
  return { success: code === 0, code: code ?? 0, signal: null };
}

async function readAll(stream: ReadableStream<Uint8Array> | null): Promise<Uint8Array | null> {
  if (stream === null) return null;
  const chunks: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of stream) {
    chunks.push(chunk);
    length += chunk.byteLength;
  }
  const bytes = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}
