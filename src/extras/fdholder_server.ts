/**
 * An fd holder that speaks s6-fdholder-daemon's protocol (s6
 * `src/fdholder/s6-fdholderd.c`), so that s6's `s6-fdholder-store`,
 * `-retrieve`, `-delete`, `-list`, `-getdump`, `-setdump` and
 * {@linkcode FdHolder} work against it: a service hands its listening
 * sockets to the holder before it restarts and takes them back after.
 *
 * @module
 */

import { checkOptions, describeValue } from "../core/checks.ts";
import type { PeerCredentials } from "../core/credentials.ts";
import type { OwnedFd } from "../owned_fd.ts";
import { type UnixListener, UnixSocket } from "../unix_socket.ts";
import { Channel } from "./channel.ts";
import { MAX_FRAME_FDS } from "./channel_frame.ts";
import { concat, DEADLINE_BYTES, errnoNumber, MAX_ID_BYTES, unpackDeadline } from "./fdholder.ts";

/** What a peer may do. */
export interface FdHolderAccess {
  /** Store and delete fds (and retrieve with removal, with `retrieve`). */
  store: boolean;
  /** Retrieve fds. */
  retrieve: boolean;
  /** List the ids. */
  list: boolean;
  /** Get and set the dump. */
  dump: boolean;
}

/** Options for {@linkcode FdHolderServer.listen}. */
export interface FdHolderServerOptions {
  /**
   * Most fds held at once; a store past it is refused with `ENFILE`.
   *
   * @default {1000}
   */
  maxFds?: number;
  /**
   * Most client connections at once; a connection past it is closed at
   * once.
   *
   * @default {16}
   */
  maxConnections?: number;
  /**
   * User ids allowed everything. The server's own uid and root (who can
   * take any process's fds anyway) are always allowed.
   *
   * @default {[]}
   */
  allowUids?: readonly number[];
  /**
   * Group ids (the peer's effective gid) allowed everything.
   *
   * @default {[]}
   */
  allowGids?: readonly number[];
  /**
   * Decides what a peer may do, instead of `allowUids` and `allowGids`;
   * `null` allows nothing. A refused operation is answered `EPERM`.
   */
  access?: (peer: PeerCredentials) => FdHolderAccess | null;
  /**
   * Replace a stale socket file at the path.
   *
   * @default {false}
   */
  removeExisting?: boolean;
}

interface Held {
  fd: OwnedFd;
  // The deadline as the client packed it, given back as is in dumps.
  limit: Uint8Array;
  // Milliseconds since the epoch, or null for never.
  expires: number | null;
}

const NOTHING: FdHolderAccess = { store: false, retrieve: false, list: false, dump: false };
const EVERYTHING: FdHolderAccess = { store: true, retrieve: true, list: true, dump: true };
// setTimeout's longest delay.
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * An fd holder: listens on a Unix socket path and keeps fds under ids for
 * its clients, each connection served concurrently. Access is decided per
 * connection from the peer's uid/gid (`SO_PEERCRED`); a refused operation
 * is answered `EPERM`, as s6 does. Fds past their deadline are closed and
 * their ids forgotten. `close()` closes every connection and every held fd
 * and removes the socket file.
 *
 * @example Hold a pipe end across a "restart"
 * ```ts
 * import { FdHolder, FdHolderServer, pipe } from "@fdpass/fdpass";
 * import { assertEquals } from "@std/assert";
 *
 * const path = Deno.makeTempDirSync() + "/hold.sock";
 * await using server = FdHolderServer.listen(path);
 * const [reader, writer] = pipe();
 * {
 *   using holder = await FdHolder.connect(path);
 *   await holder.store("pipe:w", writer, { timeout: 60_000 });
 *   writer.close();
 * }
 * assertEquals(server.size, 1);
 * using holder = await FdHolder.connect(path);
 * using again = await holder.retrieve("pipe:w", { remove: true });
 * again.writeSync(new TextEncoder().encode("x"));
 * assertEquals(reader.readSync(new Uint8Array(1)), 1);
 * reader.close();
 * ```
 */
export class FdHolderServer {
  readonly #listener: UnixListener;
  readonly #maxFds: number;
  readonly #maxConnections: number;
  readonly #access: (peer: PeerCredentials) => FdHolderAccess | null;
  readonly #held = new Map<string, Held>();
  readonly #connections = new Set<Channel>();
  readonly #tasks = new Set<Promise<void>>();
  readonly #stop = new AbortController();
  readonly #acceptLoop: Promise<void>;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #closing: Promise<void> | null = null;

  private constructor(listener: UnixListener, options: FdHolderServerOptions) {
    this.#listener = listener;
    this.#maxFds = checkCount(options.maxFds, "maxFds", 1000);
    this.#maxConnections = checkCount(options.maxConnections, "maxConnections", 16);
    if (options.access !== undefined) {
      if (typeof options.access !== "function") {
        throw new TypeError(
          `Option "access" must be a function, received ${describeValue(options.access)}`,
        );
      }
      this.#access = options.access;
    } else {
      const uids = new Set([0, ownUid(), ...checkIds(options.allowUids, "allowUids")]);
      const gids = new Set(checkIds(options.allowGids, "allowGids"));
      this.#access = (peer) => uids.has(peer.uid) || gids.has(peer.gid) ? EVERYTHING : null;
    }
    this.#acceptLoop = this.#acceptConnections();
  }

  /**
   * Listens on `path` and starts serving.
   *
   * @param path The socket path.
   * @param options Limits and access rules.
   * @returns The running server.
   */
  static listen(path: string, options: FdHolderServerOptions = {}): FdHolderServer {
    checkOptions(options);
    const listener = UnixSocket.listen(path, { removeExisting: options.removeExisting ?? false });
    try {
      return new FdHolderServer(listener, options);
    } catch (error) {
      listener.close();
      throw error;
    }
  }

  /** How many fds are held. */
  get size(): number {
    return this.#held.size;
  }

  /** The ids held, in storing order. */
  ids(): string[] {
    return [...this.#held.keys()];
  }

  /** How many clients are connected. */
  get connections(): number {
    return this.#connections.size;
  }

  /** Resolves when the accept loop has stopped; rejects if it failed. */
  get finished(): Promise<void> {
    return this.#acceptLoop;
  }

  /**
   * Stops: closes the listener (removing the socket file), every
   * connection and every held fd. Calling it again returns the same
   * promise.
   *
   * @returns When every connection task has ended.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  /** Closes the server; lets `await using` manage it. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Shows the server in `console.log` and the REPL. */
  [Symbol.for("Deno.customInspect")](): string {
    return `FdHolderServer { fds: ${this.#held.size}, connections: ${this.#connections.size}${
      this.#closing === null ? "" : ", closed"
    } }`;
  }

  async #shutdown(): Promise<void> {
    this.#stop.abort();
    this.#listener.close();
    for (const channel of this.#connections) channel.close();
    await Promise.allSettled([this.#acceptLoop, ...this.#tasks]);
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    for (const entry of this.#held.values()) entry.fd.close();
    this.#held.clear();
  }

  async #acceptConnections(): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      let socket: UnixSocket;
      try {
        socket = await this.#listener.accept({ signal });
      } catch (error) {
        if (signal.aborted) return;
        throw error;
      }
      if (this.#connections.size >= this.#maxConnections) {
        socket.close();
        continue;
      }
      let access: FdHolderAccess;
      try {
        access = this.#access(socket.peerCredentials()) ?? NOTHING;
      } catch {
        socket.close();
        continue;
      }
      const channel = new Channel(socket, { s6: true });
      this.#connections.add(channel);
      const task = this.#serve(channel, access).finally(() => {
        channel.close();
        this.#connections.delete(channel);
        this.#tasks.delete(task);
      });
      this.#tasks.add(task);
    }
  }

  // Serves one client until it leaves or breaks the protocol (s6 closes
  // the connection then, without an answer).
  async #serve(channel: Channel, access: FdHolderAccess): Promise<void> {
    const session = { channel, access, dumping: 0 };
    const signal = this.#stop.signal;
    for (;;) {
      let message;
      try {
        message = await channel.recvMessage({ signal });
      } catch {
        return;
      }
      if (message === null) return;
      const fds = [...message.fds];
      let ok = false;
      try {
        ok = await this.#handle(session, message.data, fds);
      } catch {
        ok = false;
      } finally {
        for (const fd of fds) fd.close();
      }
      if (!ok) return;
    }
  }

  // Answers one request; fds it keeps are removed from `fds`. Returns false
  // for a protocol error.
  async #handle(
    session: { channel: Channel; access: FdHolderAccess; dumping: number },
    data: Uint8Array,
    fds: OwnedFd[],
  ): Promise<boolean> {
    const { channel, access } = session;
    const answer = (errno: string | 0): Promise<void> =>
      channel.sendMessage(Uint8Array.of(errno === 0 ? 0 : errnoNumber(errno)));
    const op = data[0];
    const body = data.subarray(1);
    if (op === 0x2e) return await this.#setDumpData(session, body, fds); // "."
    if (session.dumping > 0 || op === undefined) return false;
    switch (op) {
      case 0x53: { // "S" deadline, id length, id, NUL; one fd
        const id = readId(body, DEADLINE_BYTES);
        if (id === null || fds.length !== 1) return false;
        if (!access.store) await answer("EPERM");
        else if (this.#held.size >= this.#maxFds) await answer("ENFILE");
        else if (this.#held.has(id)) await answer("EBUSY");
        else {
          this.#hold(id, fds.shift()!, body.slice(0, DEADLINE_BYTES));
          await answer(0);
        }
        return true;
      }
      case 0x44: { // "D" id length, id, NUL
        const id = readId(body, 0);
        if (id === null || fds.length !== 0) return false;
        const entry = this.#held.get(id);
        if (!access.store) await answer("EPERM");
        else if (entry === undefined) await answer("ENOENT");
        else {
          this.#forget(id);
          await answer(0);
        }
        return true;
      }
      case 0x52: { // "R" remove flag, id length, id, NUL
        const id = readId(body, 1);
        if (id === null || fds.length !== 0) return false;
        const remove = body[0] !== 0;
        const entry = this.#held.get(id);
        if (!access.retrieve || (remove && !access.store)) await answer("EPERM");
        else if (entry === undefined) await answer("ENOENT");
        else {
          // Send a duplicate, so that a delete or expiry during the send
          // does not close the fd under it.
          using copy = entry.fd.dup();
          if (remove) this.#forget(id);
          await channel.sendMessage(Uint8Array.of(0), { fds: [copy] });
        }
        return true;
      }
      case 0x4c: { // "L"
        if (body.length !== 0 || fds.length !== 0) return false;
        if (!access.list) await answer("EPERM");
        else {
          const ids = [...this.#held.keys()].map((id) =>
            concat([new TextEncoder().encode(id), Uint8Array.of(0)])
          );
          const head = new Uint8Array(5);
          new DataView(head.buffer).setUint32(1, ids.length, false);
          await channel.sendMessage(concat([head, ...ids]));
        }
        return true;
      }
      case 0x3f: { // "?"
        if (body.length !== 0 || fds.length !== 0) return false;
        if (!access.dump) await answer("EPERM");
        else await this.#sendDump(channel);
        return true;
      }
      case 0x21: { // "!" u32 count
        if (body.length !== 4 || fds.length !== 0) return false;
        const count = new DataView(body.buffer, body.byteOffset).getUint32(0, false);
        if (!access.dump) await answer("EPERM");
        else if (count > this.#maxFds - this.#held.size) await answer("ENFILE");
        else {
          session.dumping = count;
          const reply = new Uint8Array(5);
          new DataView(reply.buffer).setUint32(1, Math.ceil(count / MAX_FRAME_FDS), false);
          await channel.sendMessage(reply);
        }
        return true;
      }
      default:
        return false;
    }
  }

  async #sendDump(channel: Channel): Promise<void> {
    // Duplicates, so that the fds stay valid while the frames go out.
    const entries = [...this.#held].map(([id, entry]) => ({
      id,
      limit: entry.limit,
      fd: entry.fd.dup(),
    }));
    try {
      const frames = Math.ceil(entries.length / MAX_FRAME_FDS);
      const head = new Uint8Array(9);
      const view = new DataView(head.buffer);
      view.setUint32(1, frames, false);
      view.setUint32(5, entries.length, false);
      await channel.sendMessage(head);
      for (let i = 0; i < frames; i++) {
        const part = entries.slice(i * MAX_FRAME_FDS, (i + 1) * MAX_FRAME_FDS);
        const bytes = part.map((entry) => {
          const id = new TextEncoder().encode(entry.id);
          return concat([entry.limit, Uint8Array.of(id.length), id, Uint8Array.of(0)]);
        });
        await channel.sendMessage(concat(bytes), { fds: part.map((entry) => entry.fd) });
      }
    } finally {
      for (const entry of entries) entry.fd.close();
    }
  }

  async #setDumpData(
    session: { channel: Channel; access: FdHolderAccess; dumping: number },
    body: Uint8Array,
    fds: OwnedFd[],
  ): Promise<boolean> {
    if (fds.length === 0 || fds.length > session.dumping) return false;
    const parsed: { id: string; limit: Uint8Array }[] = [];
    let offset = 0;
    for (let i = 0; i < fds.length; i++) {
      const id = readId(body.subarray(offset), DEADLINE_BYTES, true);
      if (id === null) return false;
      const length = DEADLINE_BYTES + 2 + new TextEncoder().encode(id).length;
      parsed.push({ id, limit: body.slice(offset, offset + DEADLINE_BYTES) });
      offset += length;
    }
    if (offset !== body.length) return false;
    const answer = (errno: string | 0): Promise<void> =>
      session.channel.sendMessage(Uint8Array.of(errno === 0 ? 0 : errnoNumber(errno)));
    if (!session.access.dump) {
      session.dumping = 0;
      await answer("EPERM");
      return true;
    }
    if (this.#held.size + fds.length > this.#maxFds) {
      session.dumping = 0;
      await answer("ENFILE");
      return true;
    }
    if (
      parsed.some((entry) => this.#held.has(entry.id)) ||
      new Set(parsed.map((e) => e.id)).size !== parsed.length
    ) {
      session.dumping = 0;
      await answer("EBUSY");
      return true;
    }
    for (const entry of parsed) this.#hold(entry.id, fds.shift()!, entry.limit);
    session.dumping -= parsed.length;
    await answer(session.dumping > 0 ? "EAGAIN" : 0);
    return true;
  }

  #hold(id: string, fd: OwnedFd, limit: Uint8Array): void {
    const deadline = unpackDeadline(limit);
    this.#held.set(id, { fd, limit, expires: deadline === null ? null : deadline.getTime() });
    if (deadline !== null) this.#expire();
  }

  #forget(id: string): void {
    const entry = this.#held.get(id);
    if (entry === undefined) return;
    this.#held.delete(id);
    entry.fd.close();
  }

  // Closes what has expired and sets a timer for the next deadline.
  #expire(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#closing !== null) return;
    const now = Date.now();
    let next = Infinity;
    for (const [id, entry] of this.#held) {
      if (entry.expires === null) continue;
      if (entry.expires <= now) this.#forget(id);
      else next = Math.min(next, entry.expires);
    }
    if (next === Infinity) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#expire();
    }, Math.min(next - now, MAX_TIMER_MS));
  }
}

// Reads "id length, id, NUL" at `offset`; the NUL must end `data` unless
// `prefix` is set. Null for a malformed id.
function readId(data: Uint8Array, offset: number, prefix = false): string | null {
  const length = data[offset];
  if (length === undefined || length === 0 || length > MAX_ID_BYTES) return null;
  const end = offset + 1 + length;
  if (data[end] !== 0 || (!prefix && data.length !== end + 1)) return null;
  const bytes = data.subarray(offset + 1, end);
  if (bytes.includes(0)) return null;
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}

function checkCount(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
    throw new RangeError(
      `Option "${name}" must be an integer >= 1, received ${describeValue(value)}`,
    );
  }
  return value;
}

function checkIds(value: unknown, name: string): number[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((id) => Number.isInteger(id) && id >= 0)) {
    throw new TypeError(
      `Option "${name}" must be an array of integers >= 0, received ${describeValue(value)}`,
    );
  }
  return [...value];
}

// The process's effective uid, as the kernel reports it for a socketpair
// (no --allow-sys needed, unlike Deno.uid()).
function ownUid(): number {
  const [a, b] = UnixSocket.pair();
  try {
    return a.peerCredentials().uid;
  } finally {
    a.close();
    b.close();
  }
}
