/**
 * What `fdpass recv` reports about a received fd: kind, path, size, flags,
 * and with `--cat` the contents of regular files and pipes.
 *
 * @module
 */

import { libc } from "../../ffi/libc.ts";
import type { Descriptor, FdKind } from "../fd.ts";
import { throwErrno } from "../errors.ts";
import { retryKind } from "../sys.ts";

/** The access mode of an open file description (`O_ACCMODE` of `F_GETFL`). */
export type Access = "read-only" | "write-only" | "read-write";

/** How bytes are shown: as text when they are valid UTF-8, else as hex. */
export type Encoding = "utf8" | "hex";

/** One fd of a received message, as printed by `fdpass recv --json`. */
export interface FdReport {
  /** The fd number in the receiving process. */
  fd: number;
  /** What the fd refers to, from `fstat`. */
  kind: FdKind;
  /** The target of `/proc/self/fd/N`, or `null` where there is none (not Linux). */
  path: string | null;
  /** `st_size` in bytes (0 for pipes and sockets on Linux). */
  size: number;
  /** `FD_CLOEXEC` (always set on fds fdpass receives). */
  closeOnExec: boolean;
  /** `O_NONBLOCK` of the open file description (shared with the sender). */
  nonblocking: boolean;
  /** The access mode. */
  access: Access;
  /** `O_APPEND`. */
  append: boolean;
  /** With `--cat`: the contents read, as text or hex. */
  content?: string;
  /** With `--cat`: how {@linkcode FdReport.content} is encoded. */
  contentEncoding?: Encoding;
  /** With `--cat`: how many bytes were read. */
  contentBytes?: number;
  /** With `--cat`: whether reading stopped at the `--cat-limit`. */
  contentTruncated?: boolean;
  /** With `--cat`: why a file or pipe could not be read. */
  contentError?: string;
}

const fatalDecoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Shows bytes as UTF-8 text when they are valid UTF-8, else as lowercase hex.
 *
 * @param bytes The bytes.
 * @returns The text and which encoding it is in.
 */
export function encodeBytes(bytes: Uint8Array): { text: string; encoding: Encoding } {
  try {
    return { text: fatalDecoder.decode(bytes), encoding: "utf8" };
  } catch {
    return { text: toHex(bytes), encoding: "hex" };
  }
}

/**
 * Lowercase hex of `bytes`, two digits per byte.
 *
 * @param bytes The bytes.
 * @returns The hex string.
 */
export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const byte of bytes) out += byte.toString(16).padStart(2, "0");
  return out;
}

const linkBuffer = new Uint8Array(4096);
const decoder = new TextDecoder();
const encoder = new TextEncoder();

/**
 * The path an fd refers to, read with libc `readlink` on `/proc/self/fd/N`.
 * (`Deno.readLinkSync` on that path needs `--allow-all` in Deno 2.9; the FFI
 * call needs only `--allow-ffi`.)
 *
 * @param fd The fd number.
 * @returns The link target (`/path`, `pipe:[ino]`, `socket:[ino]`, ...), or
 * `null` where `/proc/self/fd` does not exist.
 */
export function fdPath(fd: number): string | null {
  const name = encoder.encode(`/proc/self/fd/${fd}\0`);
  const n = Number(libc().lib.readlink(name, linkBuffer, BigInt(linkBuffer.byteLength)));
  return n < 0 ? null : decoder.decode(linkBuffer.subarray(0, n));
}

/**
 * Describes an fd without reading from it.
 *
 * @param fd The fd.
 * @returns Its kind, path, size and flags.
 */
export function describeFd(fd: Descriptor): FdReport {
  const { fcntl, layout } = libc();
  const c = layout.constants;
  const stat = fd.stat();
  const flags = fcntl(fd.fd, c.F_GETFL, 0);
  if (flags < 0) throwErrno("fcntl");
  const mode = flags & c.O_ACCMODE;
  const access: Access = mode === c.O_WRONLY
    ? "write-only"
    : mode === c.O_RDWR
    ? "read-write"
    : "read-only";
  return {
    fd: fd.fd,
    kind: stat.kind,
    path: fdPath(fd.fd),
    size: stat.size,
    closeOnExec: fd.closeOnExec,
    nonblocking: (flags & c.O_NONBLOCK) !== 0,
    access,
    append: (flags & c.O_APPEND) !== 0,
  };
}

/**
 * Whether `--cat` reads this fd: regular files and pipes that are open for
 * reading.
 *
 * @param report The fd's description.
 * @returns `true` when its contents are read.
 */
export function catable(report: FdReport): boolean {
  return (report.kind === "file" || report.kind === "pipe") &&
    report.access !== "write-only";
}

const CHUNK = 64 * 1024;

/**
 * Reads a regular file from offset 0 with `pread`, which leaves the file
 * offset (shared with the sender) where it was.
 *
 * @param fd The fd.
 * @param limit Most bytes to keep.
 * @returns The bytes and whether there was more.
 */
function readFileFromStart(fd: number, limit: number): { bytes: Uint8Array; truncated: boolean } {
  const { lib } = libc();
  const chunks: Uint8Array[] = [];
  let total = 0;
  // Read one byte past the limit to learn whether there is more.
  while (total <= limit) {
    const want = Math.min(CHUNK, limit + 1 - total);
    const chunk = new Uint8Array(want);
    const n = Number(lib.pread(fd, chunk, BigInt(want), BigInt(total)));
    if (n < 0) {
      if (retryKind() === "now") continue;
      throwErrno("pread");
    }
    if (n === 0) break;
    chunks.push(chunk.subarray(0, n));
    total += n;
  }
  return join(chunks, total, limit);
}

/**
 * Reads a pipe until end of file (every writer closed), like `cat`.
 *
 * @param fd The fd.
 * @param limit Most bytes to read.
 * @param signal Stops the wait (Ctrl-C).
 * @returns The bytes and whether reading stopped at the limit.
 */
async function readPipe(
  fd: Descriptor,
  limit: number,
  signal: AbortSignal | undefined,
): Promise<{ bytes: Uint8Array; truncated: boolean }> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  while (total <= limit) {
    const chunk = new Uint8Array(Math.min(CHUNK, limit + 1 - total));
    const n = await fd.read(chunk, { signal });
    if (n === null) break;
    chunks.push(chunk.subarray(0, n));
    total += n;
  }
  return join(chunks, total, limit);
}

function join(
  chunks: Uint8Array[],
  total: number,
  limit: number,
): { bytes: Uint8Array; truncated: boolean } {
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return total > limit
    ? { bytes: bytes.subarray(0, limit), truncated: true }
    : { bytes, truncated: false };
}

/**
 * Reads the contents of a regular file (from offset 0, without moving the
 * shared offset) or a pipe (until end of file; this consumes the data) into
 * `report`. A read error is recorded in `contentError`, not thrown.
 *
 * @param fd The fd, described by `report`.
 * @param report Gets `content`, `contentEncoding`, `contentBytes`,
 * `contentTruncated` or `contentError`.
 * @param limit Most bytes to read.
 * @param signal Stops waiting on a pipe; the abort reason is rethrown.
 */
export async function readContent(
  fd: Descriptor,
  report: FdReport,
  limit: number,
  signal?: AbortSignal,
): Promise<void> {
  if (!catable(report)) {
    if (report.kind === "file" || report.kind === "pipe") {
      report.contentError = "Not open for reading";
    }
    return;
  }
  let result: { bytes: Uint8Array; truncated: boolean };
  try {
    result = report.kind === "file"
      ? readFileFromStart(fd.fd, limit)
      : await readPipe(fd, limit, signal);
  } catch (error) {
    if (signal?.aborted) throw error;
    report.contentError = error instanceof Error ? error.message : String(error);
    return;
  }
  const { text, encoding } = encodeBytes(result.bytes);
  report.content = text;
  report.contentEncoding = encoding;
  report.contentBytes = result.bytes.byteLength;
  report.contentTruncated = result.truncated;
}
