/**
 * The wire format of {@linkcode Channel}: skalibs' `unixmessage` frames
 * (skalibs `src/libunixonacid/unixmessage_*.c`), the continuation frames that
 * carry more than 253 fds, and the JSON encoding of structured values with
 * fd placeholders. Pure functions: nothing here touches an fd.
 *
 * @module
 */

import { describeValue, type FdLike } from "../core/checks.ts";

/** Bytes in a frame header: `u32be` payload length, `u16be` fd count. */
export const HEADER_BYTES = 6;
/** Most fds in one frame (skalibs `UNIXMESSAGE_MAXFDS`, the kernel's `SCM_MAX_FD`). */
export const MAX_FRAME_FDS = 253;
/** Most payload bytes in one frame, and in one message (skalibs `UNIXMESSAGE_MAXSIZE`). */
export const MAX_FRAME_BYTES = 2 ** 28;
/**
 * The extension's flag in the fd count: more frames of the same message
 * follow. s6 never sets it (its counts stop at 253), and rejects it.
 */
export const CONTINUED = 0x8000;

/** One frame to send: header and payload in one buffer, and its fds. */
export interface OutgoingFrame {
  /** Header followed by payload. */
  bytes: Uint8Array;
  /** The fds that ride on the first byte. */
  fds: number[];
}

/** A parsed frame header. */
export interface FrameHeader {
  /** Payload length. */
  length: number;
  /** Fds announced for this frame (without the flag). */
  fds: number;
  /** Whether more frames of the message follow. */
  continued: boolean;
}

/**
 * Writes a frame header.
 *
 * @param length The payload length.
 * @param fds The fd count.
 * @param continued Whether the continuation flag is set.
 * @returns The 6 header bytes.
 */
export function encodeHeader(length: number, fds: number, continued: boolean): Uint8Array {
  const header = new Uint8Array(HEADER_BYTES);
  const view = new DataView(header.buffer);
  view.setUint32(0, length, false);
  view.setUint16(4, fds | (continued ? CONTINUED : 0), false);
  return header;
}

/**
 * Reads and checks a frame header.
 *
 * @param header 6 bytes.
 * @param s6 Whether continuation frames are refused.
 * @returns The header.
 * @throws {Deno.errors.InvalidData} For a count or length out of range.
 */
export function decodeHeader(header: Uint8Array, s6: boolean): FrameHeader {
  const view = new DataView(header.buffer, header.byteOffset, HEADER_BYTES);
  const length = view.getUint32(0, false);
  const raw = view.getUint16(4, false);
  const continued = (raw & CONTINUED) !== 0;
  const fds = raw & ~CONTINUED;
  if (continued && s6) {
    throw new Deno.errors.InvalidData(
      `Frame header announces ${raw} fds: a continuation frame, which an s6 channel refuses`,
    );
  }
  if (fds > MAX_FRAME_FDS) {
    throw new Deno.errors.InvalidData(
      `Frame header announces ${fds} fds, more than ${MAX_FRAME_FDS} in one frame`,
    );
  }
  if (length > MAX_FRAME_BYTES) {
    throw new Deno.errors.InvalidData(
      `Frame header announces ${length} bytes, more than ${MAX_FRAME_BYTES} (2^28)`,
    );
  }
  return { length, fds, continued };
}

/**
 * The fd number of one item of a `fds` list, checked before anything is sent.
 */
function fdNumber(item: FdLike, index: number): number {
  const fd = typeof item === "number" ? item : (item as { fd?: unknown } | null)?.fd;
  if (typeof fd !== "number" || !Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) {
    throw new TypeError(
      `Option "fds" must hold fds, but fds[${index}] is ${describeValue(item)}`,
    );
  }
  return fd;
}

/**
 * Splits a message into frames: continuation frames of 253 fds and no
 * payload, then the final frame with the payload and the remaining fds.
 *
 * @param data The payload.
 * @param fds The fds.
 * @param s6 Whether more than 253 fds are refused.
 * @returns The frames, in sending order.
 */
export function encodeFrames(
  data: Uint8Array,
  fds: Iterable<FdLike>,
  s6: boolean,
): OutgoingFrame[] {
  if (data.byteLength > MAX_FRAME_BYTES) {
    throw new RangeError(
      `Message has ${data.byteLength} bytes, more than ${MAX_FRAME_BYTES} (2^28) a channel carries`,
    );
  }
  const numbers = Array.from(fds, fdNumber);
  if (s6 && numbers.length > MAX_FRAME_FDS) {
    throw new RangeError(
      `Message has ${numbers.length} fds, but an s6 channel carries at most ${MAX_FRAME_FDS} in one message`,
    );
  }
  const frames: OutgoingFrame[] = [];
  let start = 0;
  while (numbers.length - start > MAX_FRAME_FDS) {
    frames.push({
      bytes: encodeHeader(0, MAX_FRAME_FDS, true),
      fds: numbers.slice(start, start + MAX_FRAME_FDS),
    });
    start += MAX_FRAME_FDS;
  }
  const rest = numbers.slice(start);
  const last = new Uint8Array(HEADER_BYTES + data.byteLength);
  last.set(encodeHeader(data.byteLength, rest.length, false));
  last.set(data, HEADER_BYTES);
  frames.push({ bytes: last, fds: rest });
  return frames;
}

// ---------------------------------------------------------------------------
// Structured values.

const FD_TAG = "$fd";
const BYTES_TAG = "$bytes";

/** Whether `value` is sent as an fd: a class instance (not plain data) with an integer `fd`. */
function isFdObject(value: object): value is { readonly fd: number } {
  const proto = Object.getPrototypeOf(value);
  if (proto === Object.prototype || proto === null || Array.isArray(value)) return false;
  if (!("fd" in value)) return false;
  const fd = (value as { fd: unknown }).fd;
  return typeof fd === "number" && Number.isInteger(fd) && fd >= 0;
}

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

function fromBase64(text: string): Uint8Array {
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

/**
 * Encodes a structured value as JSON text in which every fd (an
 * `OwnedFd`, `UnixSocket` or other class instance with an integer `fd`)
 * is replaced by `{"$fd": index}` and every `Uint8Array` by
 * `{"$bytes": base64}`. Keys of the value's own objects that start with `$`
 * get one more `$`, so no user data reads as a tag.
 *
 * @param value The value.
 * @returns The JSON text and the fds in placeholder order.
 */
export function encodeValue(value: unknown): { json: string; fds: { readonly fd: number }[] } {
  const fds: { readonly fd: number }[] = [];
  const path = new Set<object>();
  const walk = (item: unknown, key: string): unknown => {
    if (
      item !== null && typeof item === "object" &&
      typeof (item as { toJSON?: unknown }).toJSON === "function" && !isFdObject(item)
    ) {
      item = (item as { toJSON(key: string): unknown }).toJSON(key);
    }
    if (item === null || typeof item === "boolean" || typeof item === "string") return item;
    if (typeof item === "number") return Number.isFinite(item) ? item : null;
    if (typeof item !== "object") {
      if (item === undefined || typeof item === "function" || typeof item === "symbol") {
        return undefined;
      }
      throw new TypeError(`Cannot send ${describeValue(item)} in a channel value`);
    }
    if (item instanceof Uint8Array) return { [BYTES_TAG]: toBase64(item) };
    if (isFdObject(item)) {
      fds.push(item);
      return { [FD_TAG]: fds.length - 1 };
    }
    if (path.has(item)) throw new TypeError("Cannot send a value that contains itself");
    path.add(item);
    try {
      if (Array.isArray(item)) {
        return item.map((element, i) => walk(element, String(i)) ?? null);
      }
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(item)) {
        const encoded = walk(v, k);
        if (encoded === undefined) continue;
        Object.defineProperty(out, k.startsWith("$") ? `$${k}` : k, {
          value: encoded,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return out;
    } finally {
      path.delete(item);
    }
  };
  const tree = walk(value, "");
  if (tree === undefined) {
    throw new TypeError(`Cannot send ${describeValue(value)} as a channel value`);
  }
  return { json: JSON.stringify(tree), fds };
}

function invalid(message: string): Deno.errors.InvalidData {
  return new Deno.errors.InvalidData(`Channel value is malformed: ${message}`);
}

/**
 * Decodes JSON text made by {@linkcode encodeValue}, putting `fds[i]` where
 * `{"$fd": i}` stands. Every fd must be used exactly once.
 *
 * @param json The JSON text.
 * @param fds The message's fds.
 * @returns The value.
 * @throws {Deno.errors.InvalidData} For bad JSON, an unknown tag, or fds
 * used twice, out of range or not at all (the caller closes them).
 */
export function decodeValue<F>(json: string, fds: readonly F[]): unknown {
  let tree: unknown;
  try {
    tree = JSON.parse(json);
  } catch (error) {
    throw invalid((error as Error).message);
  }
  const used = new Array<boolean>(fds.length).fill(false);
  const walk = (item: unknown): unknown => {
    if (item === null || typeof item !== "object") return item;
    if (Array.isArray(item)) return item.map(walk);
    const keys = Object.keys(item);
    if (keys.length === 1 && keys[0] === FD_TAG) {
      const index = (item as Record<string, unknown>)[FD_TAG];
      if (
        typeof index !== "number" || !Number.isInteger(index) || index < 0 || index >= fds.length
      ) {
        throw invalid(
          `placeholder {"$fd": ${JSON.stringify(index)}} names no fd of the ${fds.length} received`,
        );
      }
      if (used[index]) throw invalid(`fd ${index} is placed twice`);
      used[index] = true;
      return fds[index];
    }
    if (keys.length === 1 && keys[0] === BYTES_TAG) {
      const text = (item as Record<string, unknown>)[BYTES_TAG];
      if (typeof text !== "string") throw invalid(`"$bytes" holds ${describeValue(text)}`);
      try {
        return fromBase64(text);
      } catch {
        throw invalid(`"$bytes" is not base64`);
      }
    }
    const out: Record<string, unknown> = {};
    for (const key of keys) {
      if (key.startsWith("$") && !key.startsWith("$$")) throw invalid(`unknown tag "${key}"`);
      Object.defineProperty(out, key.startsWith("$") ? key.slice(1) : key, {
        value: walk((item as Record<string, unknown>)[key]),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return out;
  };
  const value = walk(tree);
  const unused = used.indexOf(false);
  if (unused >= 0) throw invalid(`fd ${unused} of ${fds.length} has no placeholder`);
  return value;
}
