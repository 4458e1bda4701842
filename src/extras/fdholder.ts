/**
 * A client for s6's fd holder (`s6-fdholder-daemon`, s6 `src/fdholder/`):
 * store an fd under an id, retrieve it (with or without removing it), delete
 * it, list the ids, and get or set the whole dump. Requests and replies are
 * skalibs `unixmessage` frames ({@linkcode Channel} with `{ s6: true }`).
 *
 * @module
 */

import { libc } from "../../ffi/libc.ts";
import { checkOptions, checkSignal, describeValue, type FdLike } from "../core/checks.ts";
import { ErrnoError } from "../core/errors.ts";
import type { OwnedFd } from "../owned_fd.ts";
import { UnixSocket } from "../unix_socket.ts";
import { Channel } from "./channel.ts";
import { MAX_FRAME_FDS } from "./channel_frame.ts";

/** Longest id, in UTF-8 bytes (s6 `S6_FDHOLDER_ID_SIZE`). */
export const MAX_ID_BYTES = 255;

/** Bytes of a packed TAI64N deadline (skalibs `TAIN_PACK`). */
export const DEADLINE_BYTES = 12;

// TAI64 labels are 2^62 + TAI seconds; skalibs turns the system clock into
// TAI with its leap-second table, which gives TAI - UTC = 37 s since 2017.
const TAI64_BASE = 2n ** 62n;
const TAI_MINUS_UTC = 37n;
// s6 clients send "now + 2^61 s" (skalibs tain_infinite_relative) for "no
// expiry"; any deadline past this many Unix seconds reads as none.
const NO_DEADLINE_AFTER = 2n ** 40n;
const NO_DEADLINE_OFFSET = 2n ** 61n;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Packs a deadline as TAI64N; `null` packs "now + 2^61 s", which s6 reads as
 * no expiry.
 *
 * @param deadline The deadline, or `null`.
 * @returns 12 bytes.
 */
export function packDeadline(deadline: Date | null): Uint8Array {
  const ms = deadline === null ? Date.now() : deadline.getTime();
  const bytes = new Uint8Array(DEADLINE_BYTES);
  const view = new DataView(bytes.buffer);
  let seconds = BigInt(Math.floor(ms / 1000)) + TAI64_BASE + TAI_MINUS_UTC;
  if (deadline === null) seconds += NO_DEADLINE_OFFSET;
  view.setBigUint64(0, seconds, false);
  view.setUint32(8, (ms - Math.floor(ms / 1000) * 1000) * 1_000_000, false);
  return bytes;
}

/**
 * Unpacks a TAI64N deadline.
 *
 * @param bytes At least 12 bytes.
 * @returns The deadline, or `null` for none (s6's "infinite" deadlines).
 */
export function unpackDeadline(bytes: Uint8Array): Date | null {
  const view = new DataView(bytes.buffer, bytes.byteOffset, DEADLINE_BYTES);
  const seconds = view.getBigUint64(0, false) - TAI64_BASE - TAI_MINUS_UTC;
  if (seconds > NO_DEADLINE_AFTER || seconds < -NO_DEADLINE_AFTER) return null;
  const nanos = view.getUint32(8, false);
  return new Date(Number(seconds) * 1000 + Math.floor(nanos / 1_000_000));
}

/**
 * Encodes an id: 1 to 255 UTF-8 bytes without NUL.
 *
 * @param id The id.
 * @returns Its bytes.
 * @throws {TypeError} For a non-string or an id with NUL.
 * @throws {RangeError} For an empty or too long id.
 */
export function encodeId(id: string): Uint8Array {
  if (typeof id !== "string") {
    throw new TypeError(`Id must be a string, received ${describeValue(id)}`);
  }
  if (id.includes("\0")) {
    throw new TypeError(`Id must not contain NUL, received ${JSON.stringify(id)}`);
  }
  const bytes = encoder.encode(id);
  if (bytes.length === 0 || bytes.length > MAX_ID_BYTES) {
    throw new RangeError(
      `Id must be 1 to ${MAX_ID_BYTES} bytes, received ${bytes.length} bytes: ${
        JSON.stringify(id)
      }`,
    );
  }
  return bytes;
}

/**
 * Decodes a NUL-terminated id.
 *
 * @param bytes The id's bytes, without the NUL.
 * @returns The id (invalid UTF-8 is an `InvalidData` error).
 */
export function decodeId(bytes: Uint8Array): string {
  try {
    return decoder.decode(bytes);
  } catch {
    throw new Deno.errors.InvalidData("fdholder: an id is not valid UTF-8");
  }
}

/** One held fd, as in a dump. */
export interface FdHolderEntry {
  /** The id. */
  id: string;
  /** The fd: owned by the caller in {@linkcode FdHolder.getDump}'s result. */
  fd: OwnedFd;
  /** When the holder closes the fd, or `null` for never. */
  deadline: Date | null;
}

/** One fd to put in a holder with {@linkcode FdHolder.setDump}. */
export interface FdHolderDumpEntry {
  /** The id. */
  id: string;
  /** The fd; it stays open here too. */
  fd: FdLike;
  /**
   * When the holder closes the fd, or `null` for never.
   *
   * @default {null}
   */
  deadline?: Date | null;
}

/** Options for {@linkcode FdHolder.store}. */
export interface FdHolderStoreOptions {
  /**
   * When the holder closes the fd and forgets the id, or `null` for never.
   *
   * @default {null}
   */
  deadline?: Date | null;
  /** Milliseconds from now until the holder closes the fd; the same as `deadline`. */
  timeout?: number;
}

/** Options for {@linkcode FdHolder.retrieve}. */
export interface FdHolderRetrieveOptions {
  /**
   * Remove the fd from the holder (needs store rights as well as retrieve
   * rights).
   *
   * @default {false}
   */
  remove?: boolean;
}

/** Options for {@linkcode FdHolder.connect}. */
export interface FdHolderConnectOptions {
  /** Cancels the connect. */
  signal?: AbortSignal;
}

/**
 * A connection to an fd holder: s6's `s6-fdholder-daemon`, or
 * {@linkcode FdHolderServer}. One request at a time goes out; calls made
 * meanwhile wait their turn. A refusal from the holder is an
 * {@linkcode ErrnoError} with the holder's errno (`EPERM` not allowed,
 * `ENOENT` no such id, `EBUSY` id taken, `ENFILE` holder full), its
 * `syscall` being `"fdholder <operation>"`.
 *
 * @example Store an fd in a holder and get it back
 * ```ts
 * import { FdHolder, FdHolderServer, openFd } from "@fdpass/fdpass";
 * import { assertEquals } from "@std/assert";
 *
 * const path = Deno.makeTempDirSync() + "/holder.sock";
 * await using _server = FdHolderServer.listen(path);
 * using holder = await FdHolder.connect(path);
 * using file = openFd("/etc/hosts");
 * await holder.store("file:hosts", file);
 * assertEquals(await holder.list(), ["file:hosts"]);
 * using copy = await holder.retrieve("file:hosts", { remove: true });
 * assertEquals(copy.kind, "file");
 * ```
 */
export class FdHolder {
  readonly #channel: Channel;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(channel: Channel) {
    this.#channel = channel;
  }

  /**
   * Connects to the holder listening at `path`.
   *
   * @param path The holder's socket path.
   * @param options An abort signal.
   * @returns The connection.
   */
  static async connect(path: string, options: FdHolderConnectOptions = {}): Promise<FdHolder> {
    checkOptions(options);
    const signal = checkSignal(options.signal);
    const socket = await UnixSocket.connect(path, signal === undefined ? {} : { signal });
    return new FdHolder(new Channel(socket, { s6: true }));
  }

  /**
   * Wraps a connected stream socket (it now belongs to the holder client).
   *
   * @param socket The socket.
   * @returns The client.
   */
  static from(socket: UnixSocket): FdHolder {
    return new FdHolder(new Channel(socket, { s6: true }));
  }

  /**
   * Stores a copy of `fd` under `id` (request `S`). The fd stays open here.
   *
   * @param id The id, 1 to 255 bytes.
   * @param fd The fd.
   * @param options A deadline or timeout after which the holder closes it.
   * @returns When the holder has taken it.
   * @throws {ErrnoError} `EBUSY` when the id is taken, `EPERM`, `ENFILE`.
   */
  store(id: string, fd: FdLike, options: FdHolderStoreOptions = {}): Promise<void> {
    checkOptions(options);
    const idBytes = encodeId(id);
    let deadline = options.deadline ?? null;
    if (options.timeout !== undefined) {
      if (!Number.isFinite(options.timeout) || options.timeout < 0) {
        throw new RangeError(
          `Option "timeout" must be a number of ms >= 0, received ${
            describeValue(options.timeout)
          }`,
        );
      }
      deadline = new Date(Date.now() + options.timeout);
    }
    const request = concat([
      Uint8Array.of(0x53),
      packDeadline(deadline),
      Uint8Array.of(idBytes.length),
      idBytes,
      Uint8Array.of(0),
    ]);
    return this.#exchange(async () => {
      await this.#channel.sendMessage(request, { fds: [fd] });
      closeAll((await this.#reply("store", 1)).fds);
    });
  }

  /**
   * Gets a copy of the fd stored under `id` (request `R`).
   *
   * @param id The id.
   * @param options Whether to remove it from the holder.
   * @returns The fd, owned by the caller.
   * @throws {ErrnoError} `ENOENT` when no fd has that id, `EPERM`.
   */
  retrieve(id: string, options: FdHolderRetrieveOptions = {}): Promise<OwnedFd> {
    checkOptions(options);
    const idBytes = encodeId(id);
    const request = concat([
      Uint8Array.of(0x52, options.remove ? 1 : 0, idBytes.length),
      idBytes,
      Uint8Array.of(0),
    ]);
    return this.#exchange(async () => {
      await this.#channel.sendMessage(request);
      const reply = await this.#reply("retrieve", 1);
      if (reply.fds.length !== 1) {
        closeAll(reply.fds);
        throw this.#protocolError("retrieve", `${reply.fds.length} fds instead of 1`);
      }
      return reply.fds[0]!;
    });
  }

  /**
   * Closes the fd stored under `id` in the holder (request `D`).
   *
   * @param id The id.
   * @returns When it is gone.
   * @throws {ErrnoError} `ENOENT` when no fd has that id, `EPERM`.
   */
  delete(id: string): Promise<void> {
    const idBytes = encodeId(id);
    const request = concat([Uint8Array.of(0x44, idBytes.length), idBytes, Uint8Array.of(0)]);
    return this.#exchange(async () => {
      await this.#channel.sendMessage(request);
      closeAll((await this.#reply("delete", 1)).fds);
    });
  }

  /**
   * Lists the ids held (request `L`).
   *
   * @returns The ids, in the holder's order.
   * @throws {ErrnoError} `EPERM` without list rights.
   */
  list(): Promise<string[]> {
    return this.#exchange(async () => {
      await this.#channel.sendMessage("L");
      const reply = await this.#reply("list", 5);
      closeAll(reply.fds);
      const count = new DataView(reply.data.buffer, reply.data.byteOffset).getUint32(1, false);
      const ids = splitIds(reply.data.subarray(5));
      if (ids.length !== count) {
        throw this.#protocolError("list", `${ids.length} ids where ${count} were announced`);
      }
      return ids;
    });
  }

  /**
   * Gets every fd held, with its id and deadline (request `?`); the holder
   * keeps them too.
   *
   * @returns The entries; their fds are owned by the caller.
   * @throws {ErrnoError} `EPERM` without dump rights.
   */
  getDump(): Promise<FdHolderEntry[]> {
    return this.#exchange(async () => {
      await this.#channel.sendMessage("?");
      const head = await this.#reply("getdump", 9);
      closeAll(head.fds);
      const view = new DataView(head.data.buffer, head.data.byteOffset);
      const frames = view.getUint32(1, false);
      const total = view.getUint32(5, false);
      const entries: FdHolderEntry[] = [];
      try {
        for (let i = 0; i < frames; i++) {
          const message = await this.#channel.recvMessage();
          if (message === null) {
            throw new Deno.errors.UnexpectedEof(
              "fdholder getdump: the holder closed the connection",
            );
          }
          const fds = [...message.fds];
          try {
            entries.push(...parseEntries(message.data, fds, "getdump"));
          } finally {
            closeAll(fds);
          }
        }
        if (entries.length !== total) {
          throw this.#protocolError(
            "getdump",
            `${entries.length} fds where ${total} were announced`,
          );
        }
      } catch (error) {
        closeAll(entries.map((entry) => entry.fd));
        throw error;
      }
      return entries;
    });
  }

  /**
   * Adds fds to the holder with their ids and deadlines (request `!`, then
   * one `.` frame per 253 fds). The fds stay open here.
   *
   * @param entries The fds to add.
   * @returns When the holder has taken all of them.
   * @throws {ErrnoError} `EPERM` without dump rights, `ENFILE` when they do not fit.
   */
  setDump(entries: readonly FdHolderDumpEntry[]): Promise<void> {
    const encoded = entries.map((entry) => {
      const idBytes = encodeId(entry.id);
      return {
        fd: entry.fd,
        bytes: concat([
          packDeadline(entry.deadline ?? null),
          Uint8Array.of(idBytes.length),
          idBytes,
          Uint8Array.of(0),
        ]),
      };
    });
    const count = new Uint8Array(5);
    count[0] = 0x21;
    new DataView(count.buffer).setUint32(1, encoded.length, false);
    return this.#exchange(async () => {
      await this.#channel.sendMessage(count);
      const reply = await this.#reply("setdump", 5);
      closeAll(reply.fds);
      const frames = new DataView(reply.data.buffer, reply.data.byteOffset).getUint32(1, false);
      const expected = Math.ceil(encoded.length / MAX_FRAME_FDS);
      if (frames !== expected) {
        throw this.#protocolError("setdump", `${frames} frames asked where ${expected} are needed`);
      }
      const again = errnoNumber("EAGAIN");
      for (let i = 0; i < frames; i++) {
        const part = encoded.slice(i * MAX_FRAME_FDS, (i + 1) * MAX_FRAME_FDS);
        await this.#channel.sendMessage(
          concat([Uint8Array.of(0x2e), ...part.map((entry) => entry.bytes)]),
          {
            fds: part.map((entry) => entry.fd),
          },
        );
        const answer = await this.#channel.recvMessage();
        if (answer === null) {
          throw new Deno.errors.UnexpectedEof("fdholder setdump: the holder closed the connection");
        }
        closeAll(answer.fds);
        const errno = answer.data[0] ?? -1;
        const last = i === frames - 1;
        if (answer.data.length !== 1 || errno < 0) {
          throw this.#protocolError("setdump", "an empty reply");
        }
        if (errno === 0 && last) continue;
        if (errno === again && !last) continue;
        throw ErrnoError.from(errno, "fdholder setdump");
      }
    });
  }

  /** Whether the connection is closed. */
  get closed(): boolean {
    return this.#channel.closed;
  }

  /** Closes the connection; calling it again does nothing. */
  close(): void {
    this.#channel.close();
  }

  /** Closes the connection; lets `using` manage it. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Shows the connection in `console.log` and the REPL. */
  [Symbol.for("Deno.customInspect")](): string {
    return `FdHolder { ${this.#channel.closed ? "closed" : "open"} }`;
  }

  #exchange<T>(run: () => Promise<T>): Promise<T> {
    const result = this.#queue.then(run);
    this.#queue = result.catch(() => {});
    return result;
  }

  // Reads one reply: a nonzero first byte is the holder's errno.
  async #reply(operation: string, length: number): Promise<{ data: Uint8Array; fds: OwnedFd[] }> {
    const message = await this.#channel.recvMessage();
    if (message === null) {
      throw new Deno.errors.UnexpectedEof(
        `fdholder ${operation}: the holder closed the connection`,
      );
    }
    const errno = message.data[0];
    if (errno === undefined) {
      closeAll(message.fds);
      throw this.#protocolError(operation, "an empty reply");
    }
    if (errno !== 0) {
      closeAll(message.fds);
      throw ErrnoError.from(errno, `fdholder ${operation}`);
    }
    if (
      message.data.length !== length && !(operation === "list" && message.data.length >= length)
    ) {
      closeAll(message.fds);
      throw this.#protocolError(operation, `a reply of ${message.data.length} bytes`);
    }
    return message;
  }

  #protocolError(operation: string, what: string): Error {
    // The stream is out of step with the requests: nothing more can be trusted.
    this.#channel.close();
    return new Deno.errors.InvalidData(`fdholder ${operation}: the holder sent ${what}`);
  }
}

/**
 * Parses dump entries: `(TAI64N deadline, id length, id, NUL)` per fd.
 *
 * @param data The entries' bytes.
 * @param fds The frame's fds, in order; taken ones are removed from the array.
 * @param operation For messages.
 * @returns The entries.
 */
export function parseEntries(data: Uint8Array, fds: OwnedFd[], operation: string): FdHolderEntry[] {
  const entries: FdHolderEntry[] = [];
  let offset = 0;
  const count = fds.length;
  for (let i = 0; i < count; i++) {
    const idLength = data[offset + DEADLINE_BYTES];
    const end = offset + DEADLINE_BYTES + 1 + (idLength ?? 0);
    if (idLength === undefined || idLength === 0 || data[end] !== 0) break;
    const idBytes = data.subarray(offset + DEADLINE_BYTES + 1, end);
    if (idBytes.includes(0)) break;
    entries.push({
      id: decodeId(idBytes),
      deadline: unpackDeadline(data.subarray(offset, offset + DEADLINE_BYTES)),
      fd: fds.shift()!,
    });
    offset = end + 1;
  }
  if (entries.length !== count || offset !== data.length) {
    closeAll(entries.map((entry) => entry.fd));
    throw new Deno.errors.InvalidData(`fdholder ${operation}: malformed entries for ${count} fds`);
  }
  return entries;
}

/**
 * Splits NUL-terminated ids.
 *
 * @param data The ids, each followed by a NUL.
 * @returns The ids.
 */
export function splitIds(data: Uint8Array): string[] {
  const ids: string[] = [];
  let start = 0;
  for (let i = 0; i < data.length; i++) {
    if (data[i] !== 0) continue;
    ids.push(decodeId(data.subarray(start, i)));
    start = i + 1;
  }
  if (start !== data.length) {
    throw new Deno.errors.InvalidData("fdholder list: an id without its NUL");
  }
  return ids;
}

/**
 * Joins byte arrays.
 *
 * @param parts The arrays.
 * @returns One array.
 */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/**
 * The errno number for a name on this platform.
 *
 * @param name Such as `"EPERM"`.
 * @returns The number.
 */
export function errnoNumber(name: string): number {
  const errno = libc().layout.errno[name];
  if (errno === undefined) throw new Error(`Unknown errno name "${name}"`);
  return errno;
}

function closeAll(fds: readonly OwnedFd[]): void {
  for (const fd of fds) fd.close();
}
