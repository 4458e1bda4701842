/**
 * The one helpers module of the tests: the fd census every test runs
 * ({@linkcode leakCheckedTest}), temporary socket paths, child processes that
 * are killed when a test fails, bounded waits, and the poller checks of the
 * async tests. Child scripts live in `fixtures/` and import this module as
 * `../helpers.ts` when they need it.
 *
 * Why a census by `fcntl`: Deno 2.9 refuses `/proc/self/fd` (and
 * `/proc/<pid>/fd`, `/dev/fd`) without `--allow-all` ("Requires all access"),
 * so reading that directory under `--allow-read` fails, and a count that
 * falls back to -1 on both sides of a test would check nothing.
 * `fcntl(fd, F_GETFD)` answers for one number at a time without any path.
 *
 * @module
 */

import { assertEquals } from "@std/assert";
import { libc } from "../ffi/libc.ts";
import { openFd, type OwnedFd, pollerStats, type UnixSocket, waitWritable } from "../mod.ts";

export const decoder: TextDecoder = new TextDecoder();
export const encoder: TextEncoder = new TextEncoder();

// ---------------------------------------------------------------------------
// The fd census.

/** Highest fd number the census looks at (exclusive). */
const CENSUS_LIMIT = 65536;

/**
 * The open fd numbers of this process, found with `fcntl(F_GETFD)`.
 *
 * @returns The numbers, ascending.
 */
export function openFdNumbers(): number[] {
  const { fcntl, layout } = libc();
  const F_GETFD = layout.constants.F_GETFD;
  const open: number[] = [];
  for (let fd = 0; fd < CENSUS_LIMIT; fd++) {
    if (fcntl(fd, F_GETFD, 0) >= 0) open.push(fd);
  }
  return open;
}

/**
 * Registers a `Deno.test` that runs `fn` (add `t.step`s inside) and asserts
 * that the set of open fds is the same afterwards as before, naming the fds
 * that leaked or vanished.
 *
 * @param name The test name, a sentence.
 * @param fn The body.
 * @param options `ignore` to skip.
 */
export function leakCheckedTest(
  name: string,
  fn: (t: Deno.TestContext) => void | Promise<void>,
  options: { ignore?: boolean } = {},
): void {
  Deno.test({
    name,
    ignore: options.ignore ?? false,
    async fn(t): Promise<void> {
      const before = openFdNumbers();
      await fn(t);
      const after = openFdNumbers();
      const leaked = after.filter((fd) => !before.includes(fd));
      const lost = before.filter((fd) => !after.includes(fd));
      assertEquals(
        { leaked, lost },
        { leaked: [], lost: [] },
        `open fds changed: ${before.length} before, ${after.length} after`,
      );
    },
  });
}

/**
 * Creates the poller's own fds (the epoll fd and its wake eventfd), which
 * live as long as the process, before the first fd census of a test file: a
 * wait on stderr creates them and returns at once. Call it at the top level
 * of every test file whose tests wait in the poller, so that the first wait
 * is not counted as a leak.
 */
export async function startPoller(): Promise<void> {
  await waitWritable(2);
}

/**
 * Whether `fd` is an open descriptor number in this process.
 *
 * @param fd The number.
 * @returns `true` when `fcntl(F_GETFD)` succeeds.
 */
export function isOpen(fd: number): boolean {
  const { fcntl, layout } = libc();
  return fcntl(fd, layout.constants.F_GETFD, 0) >= 0;
}

/**
 * Closes every item, in order.
 *
 * @param items Fds, sockets, listeners.
 */
export function closeAll(...items: { close(): void }[]): void {
  for (const item of items) item.close();
}

// ---------------------------------------------------------------------------
// Paths, files and commands.

/** A fresh temporary directory and a socket path inside it; removed by `cleanup()`. */
export function tempSocketPath(name = "test.sock"): { path: string; dir: string; cleanup(): void } {
  const dir = Deno.makeTempDirSync({ prefix: "fdpass-test-" });
  return {
    path: `${dir}/${name}`,
    dir,
    cleanup(): void {
      Deno.removeSync(dir, { recursive: true });
    },
  };
}

/** Whether a command exists on PATH. */
export function hasCommand(name: string): boolean {
  try {
    const result = new Deno.Command("sh", {
      args: ["-c", `command -v ${name}`],
      stdout: "null",
      stderr: "null",
    }).outputSync();
    return result.success;
  } catch {
    return false;
  }
}

/**
 * `lseek(fd, 0, SEEK_CUR)`: the offset of the open file description.
 *
 * @param fd The descriptor.
 * @returns The offset.
 */
export function offsetOf(fd: number): number {
  const { lib, layout } = libc();
  return Number(lib.lseek(fd, 0n, layout.constants.SEEK_CUR));
}

/**
 * Reads exactly `n` bytes, or until end of file, with a blocking
 * `readSync`.
 *
 * @param source Something with `readSync`.
 * @param n The byte count.
 * @returns The bytes read.
 */
export function readUpTo(
  source: { readSync(b: Uint8Array): number | null },
  n: number,
): Uint8Array {
  const out = new Uint8Array(n);
  let filled = 0;
  while (filled < n) {
    const got = source.readSync(out.subarray(filled));
    if (got === null) break;
    filled += got;
  }
  return out.subarray(0, filled);
}

// ---------------------------------------------------------------------------
// Readiness without the poller, for the tests of the synchronous API.

const pollBuffer = new Uint8Array(8);
const pollView = new DataView(pollBuffer.buffer);

/**
 * Whether `fd` is ready for `events` right now (`poll` with timeout 0).
 *
 * @param fd The descriptor.
 * @param events Poll flags; `POLLIN` when omitted.
 * @returns `true` when any requested or error event is pending.
 */
export function isReady(fd: number, events?: number): boolean {
  const { lib, layout } = libc();
  const p = layout.pollfd;
  pollView.setInt32(p.fd, fd, true);
  pollView.setInt16(p.events, events ?? layout.constants.POLLIN, true);
  pollView.setInt16(p.revents, 0, true);
  return lib.poll(pollBuffer, 1n, 0) > 0;
}

/**
 * Waits, without blocking the event loop and without the library's poller,
 * until `fd` is readable (or has an error or hang-up pending). Throws after
 * `timeoutMs`, so that a test whose peer never shows up fails instead of
 * hanging in a blocking call.
 *
 * @param fd The descriptor.
 * @param what What is awaited, for the error message.
 * @param timeoutMs The bound.
 */
export async function pollUntilReadable(
  fd: number,
  what: string,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!isReady(fd)) {
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

// ---------------------------------------------------------------------------
// Child processes.

/** A running child process with its collected output. */
export interface Child {
  /** The child's pid (of `sh` when a shell prefix is used; `exec` keeps it). */
  readonly pid: number;
  /** Resolves with the exit status and output; the child is killed at the deadline. */
  readonly done: Promise<{ code: number; stdout: string; stderr: string }>;
  /** Kills the child if it still runs. */
  kill(): void;
}

/** Options for {@linkcode spawnDeno}. */
export interface SpawnDenoOptions {
  /** Permission flags for the child. */
  permissions?: string[];
  /** Extra `deno run` flags (such as `--v8-flags=--expose-gc`). */
  flags?: string[];
  /** Run under `sh -c 'ulimit -n N; exec deno ...'`. */
  fdLimit?: number;
  /** Kill the child after this many milliseconds. */
  timeoutMs?: number;
}

/**
 * Runs `deno run` on a child script in `tests/fixtures/`.
 *
 * @param script The fixture file name, such as `"hello_child.ts"`.
 * @param args Arguments for the script.
 * @param options Permissions, flags, fd limit and deadline.
 * @returns The child.
 */
export function spawnDeno(
  script: string,
  args: string[],
  options: SpawnDenoOptions = {},
): Child {
  const scriptPath = new URL(`./fixtures/${script}`, import.meta.url).pathname;
  const denoArgs = [
    "run",
    "--quiet",
    "--no-lock",
    ...(options.flags ?? []),
    ...(options.permissions ?? ["--allow-ffi"]),
    scriptPath,
    ...args,
  ];
  const command = options.fdLimit === undefined
    ? new Deno.Command(Deno.execPath(), {
      args: denoArgs,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    })
    : new Deno.Command("sh", {
      // `ulimit -n` in sh sets both the soft and the hard limit, so the
      // child runtime cannot raise it again.
      args: ["-c", `ulimit -n ${options.fdLimit} && exec "$0" "$@"`, Deno.execPath(), ...denoArgs],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    });
  const process = command.spawn();
  let finished = false;
  const kill = (): void => {
    if (finished) return;
    try {
      process.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  };
  const timer = setTimeout(kill, options.timeoutMs ?? 30_000);
  const done = process.output().then((output) => {
    finished = true;
    clearTimeout(timer);
    return {
      code: output.code,
      stdout: decoder.decode(output.stdout),
      stderr: decoder.decode(output.stderr),
    };
  });
  return { pid: process.pid, done, kill };
}

/**
 * Awaits a child and throws with its stderr unless it exited with 0.
 *
 * @param child The child.
 * @returns Its stdout.
 */
export async function expectSuccess(child: Child): Promise<string> {
  const result = await child.done;
  if (result.code !== 0) {
    throw new Error(
      `Child exited with ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`,
    );
  }
  return result.stdout;
}

/** Runs `sh -c script` with its output discarded; killed after 20 s. */
export function spawnShell(script: string): Deno.ChildProcess {
  const child = new Deno.Command("sh", {
    args: ["-c", script],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // Gone already.
    }
  }, 20_000);
  child.status.finally(() => clearTimeout(timer));
  return child;
}

/**
 * The fds a fresh `sh` inherits from this process, from its own
 * `/proc/self/fd` listing (the shell's directory fd included).
 *
 * @returns The fd numbers the child had open.
 */
export function fdsInheritedByChild(): number[] {
  const output = new Deno.Command("sh", {
    args: ["-c", "ls /proc/self/fd"],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).outputSync();
  return decoder.decode(output.stdout).split(/\s+/).filter((s) => s !== "").map(Number);
}

// ---------------------------------------------------------------------------
// Bounded waits: a broken poller fails a test instead of hanging it.

/** Resolves after the current macrotask, once pending waits had a chance to register. */
export function macrotask(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/**
 * Resolves with `promise`, or rejects once `ms` passed.
 *
 * @param promise What is awaited.
 * @param ms The bound.
 * @param what What is awaited, for the error message.
 * @returns The value of `promise`.
 */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms: ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The reason `promise` rejected with; fails when it resolves or hangs.
 *
 * @param promise The promise that must reject.
 * @param what What it is, for the error message.
 * @param ms The bound.
 * @returns The rejection reason.
 */
export async function rejectionOf(
  promise: Promise<unknown>,
  what: string,
  ms = 5_000,
): Promise<unknown> {
  return await within(
    promise.then(
      (value) => {
        throw new Error(`${what} resolved with ${Deno.inspect(value)} instead of rejecting`);
      },
      (error) => error,
    ),
    ms,
    what,
  );
}

/**
 * Waits (a bounded time) until `condition` holds.
 *
 * @param condition Checked every millisecond.
 * @param what What is awaited, for the error message.
 * @param ms The bound.
 */
export async function until(condition: () => boolean, what: string, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/**
 * Tracks whether a promise settled, without letting it reject unhandled.
 *
 * @param promise The promise.
 * @returns The promise and a probe.
 */
export function track<T>(promise: Promise<T>): { promise: Promise<T>; settled: () => boolean } {
  let settled = false;
  promise.then(() => (settled = true), () => (settled = true));
  return { promise, settled: () => settled };
}

/** A custom reason object, to check that rejections pass it through untouched. */
export class StopReason extends Error {
  constructor(what: string) {
    super(`stopped ${what}`);
    this.name = "StopReason";
  }
}

// ---------------------------------------------------------------------------
// The poller.

/** Asserts that the poller is idle: nothing registered, nothing waiting, no FFI call in flight. */
export async function assertPollerIdle(): Promise<void> {
  await until(() => pollerStats().outstandingWaits === 0, "the poller's FFI wait to end");
  const stats = pollerStats();
  assertEquals(
    { outstandingWaits: stats.outstandingWaits, registeredFds: stats.registeredFds },
    { outstandingWaits: 0, registeredFds: 0 },
  );
  assertEquals(stats.waiters, 0);
}

/**
 * Starts one-byte sends (`start`) until one has to wait, then aborts that
 * one: a one-byte send goes out whole or not at all, so the peer is left
 * full and the socket is not broken.
 *
 * @param start Starts one send with the given signal.
 * @returns The number of sends that went out.
 */
export async function fillUntilWaiting(
  start: (signal: AbortSignal) => Promise<number>,
): Promise<number> {
  let sent = 0;
  for (;;) {
    const before = pollerStats().waiters;
    const controller = new AbortController();
    const sending = start(controller.signal);
    if (pollerStats().waiters > before) {
      controller.abort();
      await sending.catch(() => {});
      return sent;
    }
    await sending;
    sent++;
    if (sent > 1_000_000) throw new Error("The peer never filled");
  }
}

/**
 * Sends one-byte messages (`fill`) until a send has to wait; see
 * {@linkcode fillUntilWaiting}.
 *
 * @param socket The sending socket.
 * @param fill The one-byte message.
 * @returns The number of bytes that went out.
 */
export function fillSendBuffer(socket: UnixSocket, fill = "f"): Promise<number> {
  return fillUntilWaiting((signal) => socket.send(fill, { signal }));
}

/**
 * Receives until `total` bytes arrived.
 *
 * @param socket The receiving socket.
 * @param total The byte count.
 * @returns The bytes as text.
 */
export async function receiveBytes(socket: UnixSocket, total: number): Promise<string> {
  let text = "";
  let received = 0;
  while (received < total) {
    const message = await within(
      socket.recv({ maxBytes: 1 << 20 }),
      5_000,
      `byte ${received} of ${total}`,
    );
    if (message === null) break;
    received += message.data.byteLength;
    text += decoder.decode(message.data);
  }
  return text;
}

/**
 * Opens `/dev/null` until the process is at its fd limit, then closes
 * `room` of them again: exactly `room` fd numbers stay free.
 *
 * @param room How many numbers to leave free.
 * @returns The fds that fill the table; close them to give the room back.
 */
export function fillFdTable(room: number): OwnedFd[] {
  const filler: OwnedFd[] = [];
  for (;;) {
    try {
      filler.push(openFd("/dev/null"));
    } catch (error) {
      if ((error as { code?: string }).code === "EMFILE") break;
      for (const fd of filler) fd.close();
      throw error;
    }
  }
  for (let i = 0; i < room; i++) filler.pop()!.close();
  return filler;
}
