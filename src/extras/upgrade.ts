/**
 * {@linkcode Upgrader}: zero-downtime upgrades in the manner of
 * cloudflare/tableflip, over the socket-activation protocol of
 * `sd_listen_fds(3)`, so that the same program also takes its listeners
 * from systemd.
 *
 * A generation asks for named listeners ({@linkcode Upgrader.listener}):
 * inherited by name when a previous generation or systemd started it,
 * created by a factory otherwise. On {@linkcode Upgrader.upgrade} (or
 * `SIGHUP`) it starts its successor with every named listener plus one end
 * of a socketpair named `"fdpass-upgrade"` (`LISTEN_FDS`/`LISTEN_FDNAMES`),
 * and waits for the successor's `READY=1` on that socketpair. Then the old
 * generation's {@linkcode Upgrader.exiting} resolves: it stops accepting,
 * drains and exits, while the listening sockets never close, so the kernel
 * keeps queueing connections throughout. A successor that exits or is not
 * ready in time is killed and the old generation keeps serving.
 *
 * @module
 */

import { checkOptions, describeValue } from "../core/checks.ts";
import { adoptFd, OwnedFd } from "../owned_fd.ts";
import { UnixSocket } from "../unix_socket.ts";
import { type ListenFd, listenFds, type ListenFdsOptions } from "./activation.ts";
import { notify } from "./notify.ts";
import { spawn, type SpawnedProcess } from "./spawn.ts";

/** The `LISTEN_FDNAMES` name of the control socketpair end a successor gets. */
export const UPGRADE_FD_NAME = "fdpass-upgrade";

/** What a listener factory may return: the upgrader takes ownership of it. */
export type ListenerSource = OwnedFd | number | { readonly handle: OwnedFd };

/** Options for {@linkcode Upgrader.start}. */
export interface UpgraderOptions {
  /**
   * The permission flags of `deno run` for the successor: the flags this
   * program was started with, such as `["--allow-ffi", "--allow-run"]`.
   * Deno does not tell a program its own flags, and `deno run` without any
   * would be rewritten to `-A`, so they are required unless `args` is
   * given. The successor runs `Deno.execPath()` with
   * `run ...flags ...permissions <Deno.mainModule> ...Deno.args`.
   */
  permissions?: string[];
  /**
   * Other `deno run` flags for the successor, before the permissions
   * (`--quiet`, `--no-lock`, `--v8-flags=...`).
   *
   * @default {[]}
   */
  flags?: string[];
  /**
   * The successor's program.
   *
   * @default {Deno.execPath()}
   */
  command?: string;
  /**
   * The successor's whole argument list, instead of the one built from
   * `flags`, `permissions`, `Deno.mainModule` and `Deno.args`.
   */
  args?: string[];
  /**
   * Extra environment variables for the successor, on top of this
   * process's environment.
   *
   * @default {{}}
   */
  env?: Record<string, string>;
  /**
   * How long a successor may take to call {@linkcode Upgrader.ready}
   * before it is killed and the upgrade fails.
   *
   * @default {60000}
   */
  readyTimeoutMilliseconds?: number;
  /**
   * The signal that starts an upgrade, or `null` for none. Errors of
   * upgrades started this way go to `onError`.
   *
   * @default {"SIGHUP"}
   */
  upgradeSignal?: Deno.Signal | null;
  /**
   * Called with the error of a failed upgrade that the signal started.
   *
   * @default {console.error}
   */
  onError?: (error: Error) => void;
  /**
   * Options for reading the inherited fds (`listenFds()`): pass
   * `{ checkPid: false }` under a wrapper such as `deno task`, which runs
   * Deno under another pid than the one systemd set in `LISTEN_PID`.
   *
   * @default {{}}
   */
  listenFds?: ListenFdsOptions;
}

/** What a successful {@linkcode Upgrader.upgrade} resolves to. */
export interface UpgradeResult {
  /** The successor's pid. */
  readonly pid: number;
}

type State = "starting" | "ready" | "upgrading" | "upgraded" | "closed";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** How long a successor that hung up gets to report its exit status. */
const EXIT_GRACE_MS = 2_000;

function checkName(name: unknown): string {
  if (typeof name !== "string") {
    throw new TypeError(`Argument "name" must be a string, received ${describeValue(name)}`);
  }
  // The names travel in LISTEN_FDNAMES, separated by ":" (sd_listen_fds(3)).
  if (
    name.length === 0 || name.length > 255 || !/^[\x21-\x7e]+$/.test(name) || name.includes(":")
  ) {
    throw new RangeError(
      `Argument "name" must be 1 to 255 printable ASCII characters without ":" or spaces, received "${name}"`,
    );
  }
  if (name === UPGRADE_FD_NAME) {
    throw new RangeError(`Argument "name" must not be "${UPGRADE_FD_NAME}": the upgrader uses it`);
  }
  return name;
}

function checkStrings(value: unknown, name: string): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || !value.every((item) => typeof item === "string")) {
    throw new TypeError(
      `Option "${name}" must be an array of strings, received ${describeValue(value)}`,
    );
  }
  return [...value];
}

/** `Deno.mainModule` as a path when it is a file URL. */
function mainModulePath(): string {
  const url = new URL(Deno.mainModule);
  return url.protocol === "file:" ? decodeURIComponent(url.pathname) : url.href;
}

/** Takes ownership of what a listener factory returned. */
function ownedFrom(source: ListenerSource, name: string): OwnedFd {
  if (source instanceof OwnedFd || typeof source === "number") return adoptFd(source, () => {});
  if (typeof source === "object" && source !== null && source.handle instanceof OwnedFd) {
    return source.handle;
  }
  throw new TypeError(
    `The factory of listener "${name}" must return an OwnedFd, an fd number or an object with an OwnedFd "handle" (such as listenTcp()), received ${
      describeValue(source)
    }`,
  );
}

/**
 * A zero-downtime upgrader for one generation of a server process. Make it
 * with {@linkcode Upgrader.start}, ask it for listeners, call
 * {@linkcode Upgrader.ready} once serving, and drain and exit when
 * {@linkcode Upgrader.exiting} resolves.
 *
 * Under systemd, the first generation takes its listeners from the socket
 * unit by name (`FileDescriptorName=`), and `ready()` sends `READY=1`
 * (`Type=notify`). A successor sends `READY=1` and `MAINPID=` its own pid
 * before it tells its parent, so that systemd follows the main process
 * from one generation to the next; that needs `NotifyAccess=all`, since the
 * successor is not yet the main process when it sends.
 */
export class Upgrader {
  #state: State = "starting";
  readonly #listeners = new Map<string, OwnedFd>();
  readonly #inherited = new Map<string, OwnedFd>();
  #parent: UnixSocket | null;
  readonly #hadParent: boolean;
  readonly #command: string;
  readonly #args: string[];
  readonly #env: Record<string, string>;
  readonly #timeoutMs: number;
  readonly #signal: Deno.Signal | null;
  readonly #onSignal: () => void;
  #abort: AbortController | null = null;
  readonly #exiting: Promise<void>;
  #resolveExiting!: () => void;

  private constructor(
    inherited: ListenFd[],
    command: string,
    args: string[],
    env: Record<string, string>,
    timeoutMs: number,
    signal: Deno.Signal | null,
    onError: (error: Error) => void,
  ) {
    let parent: UnixSocket | null = null;
    for (const { name, fd } of inherited) {
      if (name === UPGRADE_FD_NAME && parent === null) parent = UnixSocket.from(fd);
      else if (this.#inherited.has(name) || name === UPGRADE_FD_NAME) fd.close();
      else this.#inherited.set(name, fd);
    }
    this.#parent = parent;
    this.#hadParent = parent !== null;
    this.#command = command;
    this.#args = args;
    this.#env = env;
    this.#timeoutMs = timeoutMs;
    this.#signal = signal;
    this.#exiting = new Promise((resolve) => this.#resolveExiting = resolve);
    this.#onSignal = () => {
      this.upgrade().catch((error) =>
        onError(error instanceof Error ? error : new Error(String(error)))
      );
    };
    if (signal !== null) Deno.addSignalListener(signal, this.#onSignal);
  }

  /**
   * Starts the upgrader of this generation: takes the fds passed by a
   * previous generation or by systemd (`LISTEN_FDS`, `LISTEN_FDNAMES`,
   * which it then unsets), and listens for the upgrade signal.
   *
   * Needs `--allow-env` (for the `LISTEN_*` and `NOTIFY_SOCKET`
   * variables) and, to upgrade, `--allow-run` besides `--allow-ffi`.
   *
   * @param options The successor's command line, the readiness timeout and
   * the upgrade signal.
   * @returns The upgrader.
   * @throws {TypeError} When neither `permissions` nor `args` is given.
   *
   * @example Create a listener and be ready, without a parent generation
   * ```ts
   * import { listenTcp, Upgrader } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * using upgrader = Upgrader.start({ permissions: ["--allow-ffi"], upgradeSignal: null });
   * using fd = upgrader.listener("http", () => listenTcp());
   * assertEquals(fd.kind, "socket");
   * await upgrader.ready(); // no parent to tell, no $NOTIFY_SOCKET: returns at once
   * assertEquals(upgrader.hasParent, false);
   * ```
   */
  static start(options?: UpgraderOptions): Upgrader {
    const opts = checkOptions(options) as UpgraderOptions;
    const permissions = checkStrings(opts.permissions, "permissions");
    const flags = checkStrings(opts.flags, "flags") ?? [];
    const explicitArgs = checkStrings(opts.args, "args");
    if (explicitArgs === undefined && (permissions === undefined || permissions.length === 0)) {
      throw new TypeError(
        `Option "permissions" must list the permission flags of this program (such as ["--allow-ffi", "--allow-run"]) unless "args" is given: Deno does not expose its own flags, and "deno run" without any would be rewritten to -A`,
      );
    }
    const command = opts.command ?? Deno.execPath();
    if (typeof command !== "string") {
      throw new TypeError(`Option "command" must be a string, received ${describeValue(command)}`);
    }
    const args = explicitArgs ??
      ["run", ...flags, ...permissions!, mainModulePath(), ...Deno.args];
    const timeoutMs = opts.readyTimeoutMilliseconds ?? 60_000;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
      throw new RangeError(
        `Option "readyTimeoutMilliseconds" must be a positive number, received ${
          describeValue(timeoutMs)
        }`,
      );
    }
    const signal = opts.upgradeSignal === undefined ? "SIGHUP" : opts.upgradeSignal;
    const onError = opts.onError ??
      ((error: Error) => console.error(`fdpass upgrade failed: ${error.message}`));
    if (typeof onError !== "function") {
      throw new TypeError(
        `Option "onError" must be a function, received ${describeValue(onError)}`,
      );
    }
    const inherited = listenFds(opts.listenFds);
    try {
      return new Upgrader(inherited, command, args, { ...opts.env }, timeoutMs, signal, onError);
    } catch (error) {
      for (const { fd } of inherited) fd.close();
      throw error;
    }
  }

  /** Whether a previous generation started this process (and waits for its `ready()`). */
  get hasParent(): boolean {
    return this.#hadParent;
  }

  /**
   * Resolves once a successor took over: this generation should stop
   * accepting (`server.close()`), finish the requests in flight, call
   * {@linkcode Upgrader.close} and exit.
   */
  get exiting(): Promise<void> {
    return this.#exiting;
  }

  /**
   * The listener named `name`: inherited when the previous generation or
   * systemd passed one by that name, made by `factory` otherwise. The
   * upgrader keeps the socket to pass it on, and returns a duplicate that
   * the caller owns: serve it with `server.listen({ fd: fd.release() })`
   * (`node:http` closes it in `server.close()`), or adopt it with
   * `TcpListener.from(fd)`.
   *
   * @param name The name (in `LISTEN_FDNAMES`): printable ASCII, no `:`.
   * @param factory Makes the listener when none was inherited, such as
   * `() => listenTcp({ port: 8080 })`; the upgrader owns what it returns.
   * @returns A duplicate of the listening fd, owned by the caller.
   *
   * @example Ask for a listener by name
   * ```ts
   * import { listenTcp, TcpListener, Upgrader } from "@fdpass/fdpass";
   * import { assert } from "@std/assert";
   *
   * using upgrader = Upgrader.start({ permissions: ["--allow-ffi"], upgradeSignal: null });
   * using listener = TcpListener.from(upgrader.listener("api", () => listenTcp()));
   * assert(listener.port > 0);
   * ```
   */
  listener(name: string, factory: () => ListenerSource): OwnedFd {
    this.#checkOpen("get a listener");
    checkName(name);
    if (typeof factory !== "function") {
      throw new TypeError(
        `Argument "factory" must be a function, received ${describeValue(factory)}`,
      );
    }
    let fd = this.#listeners.get(name);
    if (fd === undefined) {
      fd = this.#inherited.get(name);
      if (fd !== undefined) this.#inherited.delete(name);
      else {
        const made = factory();
        if (made instanceof Promise) {
          throw new TypeError(
            `The factory of listener "${name}" must return the listener, not a promise`,
          );
        }
        fd = ownedFrom(made, name);
      }
      this.#listeners.set(name, fd);
    }
    return fd.dup();
  }

  /**
   * Says that this generation serves: tells the previous generation, if
   * any (which then drains and exits), and the service manager when
   * `$NOTIFY_SOCKET` is set (`READY=1`, plus `MAINPID=` this pid when a
   * previous generation started it). Inherited fds that no
   * {@linkcode Upgrader.listener} call asked for are closed: they are not
   * passed on. Calling it again does nothing.
   *
   * @returns Once both are told.
   *
   * @example Be ready with no parent and no service manager
   * ```ts
   * import { Upgrader } from "@fdpass/fdpass";
   *
   * using upgrader = Upgrader.start({ permissions: ["--allow-ffi"], upgradeSignal: null });
   * await upgrader.ready();
   * ```
   */
  async ready(): Promise<void> {
    this.#checkOpen("be ready");
    if (this.#state !== "starting") return;
    for (const fd of this.#inherited.values()) fd.close();
    this.#inherited.clear();
    // systemd first: once the parent hears READY=1 it exits, and systemd
    // must already know who the main process is.
    await notify(this.#hadParent ? { ready: true, mainPid: Deno.pid } : { ready: true });
    const parent = this.#parent;
    if (parent !== null) {
      this.#parent = null;
      try {
        parent.sendSync(encoder.encode(`READY=1\nMAINPID=${Deno.pid}`));
      } finally {
        parent.close();
      }
    }
    if (this.#state === "starting") this.#state = "ready";
  }

  /**
   * Starts the successor with every named listener and waits until it is
   * ready; then {@linkcode Upgrader.exiting} resolves. A successor that
   * exits first, or is not ready within `readyTimeoutMilliseconds`, is
   * killed, and this generation goes on serving (and may try again).
   *
   * @returns The successor's pid.
   * @throws {Deno.errors.Busy} While another upgrade runs.
   * @throws {Deno.errors.TimedOut} When the successor was not ready in time.
   * @throws {Error} When the successor exited before it was ready, when
   * this generation is not ready yet, or was already upgraded.
   *
   * @example Refuse to upgrade before ready()
   * ```ts
   * import { Upgrader } from "@fdpass/fdpass";
   * import { assertRejects } from "@std/assert";
   *
   * using upgrader = Upgrader.start({ permissions: ["--allow-ffi"], upgradeSignal: null });
   * await assertRejects(() => upgrader.upgrade(), Error, "before ready()");
   * ```
   */
  async upgrade(): Promise<UpgradeResult> {
    switch (this.#state) {
      case "closed":
        throw new TypeError("Cannot upgrade: the upgrader is closed");
      case "starting":
        throw new Error("Cannot upgrade before ready(): this generation is not serving yet");
      case "upgrading":
        throw new Deno.errors.Busy(
          "Cannot upgrade: an upgrade is already in progress; wait for it to finish",
        );
      case "upgraded":
        throw new Error("Cannot upgrade: this generation was already upgraded and should exit");
    }
    this.#state = "upgrading";
    const abort = new AbortController();
    this.#abort = abort;
    let child: SpawnedProcess | undefined;
    let control: UnixSocket | undefined;
    try {
      const [mine, theirs] = UnixSocket.pair("seqpacket");
      control = mine;
      const listeners = [...this.#listeners.values()];
      try {
        child = spawn(this.#command, {
          args: this.#args,
          fds: [...listeners, theirs],
          listenFds: [...this.#listeners.keys(), UPGRADE_FD_NAME],
          env: this.#env,
        });
      } finally {
        // The successor has its copy; ours would hide its exit.
        theirs.close();
      }
      await this.#waitReady(control, child, abort.signal);
    } catch (error) {
      if (child !== undefined) await this.#stop(child);
      if (this.#state === "upgrading") this.#state = "ready";
      throw error;
    } finally {
      control?.close();
      this.#abort = null;
    }
    this.#state = "upgraded";
    // The successor outlives us: do not wait for it.
    child.unref();
    this.#resolveExiting();
    return { pid: child.pid };
  }

  async #waitReady(control: UnixSocket, child: SpawnedProcess, signal: AbortSignal): Promise<void> {
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), this.#timeoutMs);
    try {
      let message;
      try {
        message = await control.recv({ signal: AbortSignal.any([signal, timeout.signal]) });
      } catch (error) {
        if (timeout.signal.aborted) {
          throw new Deno.errors.TimedOut(
            `Successor ${child.pid} was not ready within ${this.#timeoutMs} ms: killed it; this process keeps serving`,
          );
        }
        if (signal.aborted) {
          throw new Error(`Upgrade to successor ${child.pid} abandoned: the upgrader was closed`);
        }
        throw error;
      }
      if (message === null) {
        const status = await Promise.race([
          child.status,
          new Promise<null>((resolve) => setTimeout(resolve, EXIT_GRACE_MS, null)),
        ]);
        const how = status === null
          ? "closed its upgrade channel"
          : status.signal !== null
          ? `was killed by ${status.signal}`
          : `exited with code ${status.code}`;
        throw new Error(
          `Successor ${child.pid} ${how} before it was ready; this process keeps serving`,
        );
      }
      for (const fd of message.fds) fd.close();
      const text = decoder.decode(message.data);
      if (!text.split("\n").includes("READY=1")) {
        throw new Error(`Successor ${child.pid} sent "${text}" instead of READY=1`);
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /** Kills a failed successor if it still runs and waits for it. */
  async #stop(child: SpawnedProcess): Promise<void> {
    try {
      child.kill("SIGKILL");
    } catch {
      // Gone already.
    }
    await child.status.catch(() => {});
    // It may have told systemd it is the main process before it failed.
    await notify({ mainPid: Deno.pid }).catch(() => false);
  }

  #checkOpen(what: string): void {
    if (this.#state === "closed") throw new TypeError(`Cannot ${what}: the upgrader is closed`);
  }

  /**
   * Closes everything the upgrader holds: its copies of the listeners
   * (those handed to the app stay open until the app closes them), fds
   * inherited but never asked for, the channel to the parent, and the
   * signal listener. An upgrade in progress is abandoned and its
   * successor killed. Calling it again does nothing.
   *
   * @example Close the upgrader
   * ```ts
   * import { Upgrader } from "@fdpass/fdpass";
   *
   * const upgrader = Upgrader.start({ permissions: ["--allow-ffi"] });
   * upgrader.close();
   * ```
   */
  close(): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    this.#abort?.abort();
    if (this.#signal !== null) Deno.removeSignalListener(this.#signal, this.#onSignal);
    for (const fd of this.#listeners.values()) fd.close();
    for (const fd of this.#inherited.values()) fd.close();
    this.#listeners.clear();
    this.#inherited.clear();
    this.#parent?.close();
    this.#parent = null;
  }

  /** Closes the upgrader; lets `using` manage it. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Shows the state and the listener names in `console.log`. */
  [Symbol.for("Deno.customInspect")](): string {
    return `Upgrader { state: ${this.#state}, listeners: [${
      [...this.#listeners.keys()].join(", ")
    }] }`;
  }
}
