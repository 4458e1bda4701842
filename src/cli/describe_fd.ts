/**
 * What `fdpass recv` reports about a received fd: kind, path, size, flags,
 * and with `--cat` the contents of regular files and pipes, bounded in
 * bytes and in time. Pipes are read through the poller, so that a pipe
 * nobody closes never blocks the thread.
 *
 * @module
 */

import {
  type FdKind,
  fdPath,
  getCloseOnExec,
  preadStep,
  statFd,
  statusFlags,
} from "../core/fd_ops.ts";
import { platformFacts } from "../core/platform.ts";
import { WOULD_BLOCK } from "../core/syscall.ts";
import type { Descriptor } from "../owned_fd.ts";

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
  /** With `--cat`: whether reading stopped early, at `--cat-limit` or `--cat-timeout`. */
  contentTruncated?: boolean;
  /** With `--cat`: whether reading stopped at `--cat-timeout` before end of file. */
  contentTimedOut?: boolean;
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

/**
 * Describes an fd without reading from it.
 *
 * @param fd The fd.
 * @returns Its kind, path, size and flags.
 */
export function describeFd(fd: Descriptor): FdReport {
  const c = platformFacts().constants;
  const number = fd.fd;
  const stat = statFd(number);
  const flags = statusFlags(number);
  const mode = flags & c.O_ACCMODE;
  const access: Access = mode === c.O_WRONLY
    ? "write-only"
    : mode === c.O_RDWR
    ? "read-write"
    : "read-only";
  return {
    fd: number,
    kind: stat.kind,
    path: fdPath(number),
    size: stat.size,
    closeOnExec: getCloseOnExec(number),
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

/** What a read of an fd's contents got. */
interface ReadResult {
  /** The bytes, at most the limit. */
  bytes: Uint8Array;
  /** Whether reading stopped before the end (limit or time). */
  truncated: boolean;
  /** Whether the time ran out before the end. */
  timedOut: boolean;
}

/** The bounds of one `--cat` read. */
export interface ReadBounds {
  /** Most bytes to keep. */
  readonly limit: number;
  /** Most milliseconds to spend. */
  readonly timeoutMs: number;
}

/**
 * Reads a regular file from offset 0 with `pread`, which leaves the file
 * offset (shared with the sender) where it was. A regular file never makes
 * `pread` wait for a writer, so this is synchronous; the time bound is
 * checked between chunks.
 *
 * @param fd The fd number.
 * @param bounds Most bytes and milliseconds.
 * @returns The bytes and whether there was more.
 */
function readFileFromStart(fd: number, bounds: ReadBounds): ReadResult {
  const deadline = Date.now() + bounds.timeoutMs;
  const chunks: Uint8Array[] = [];
  let total = 0;
  let timedOut = false;
  // Read one byte past the limit to learn whether there is more.
  while (total <= bounds.limit) {
    if (Date.now() >= deadline) {
      timedOut = true;
      break;
    }
    const chunk = new Uint8Array(Math.min(CHUNK, bounds.limit + 1 - total));
    const n = preadStep(fd, chunk, total);
    if (n === WOULD_BLOCK) throw new Error("pread would block on a regular file");
    if (n === 0) break;
    chunks.push(chunk.subarray(0, n));
    total += n;
  }
  return join(chunks, total, bounds.limit, timedOut);
}

/**
 * Reads a pipe until end of file (every writer closed), like `cat`, but for
 * at most `bounds.timeoutMs`: a writer may never close, and a FIFO opened
 * read-write counts as a writer itself (fifo(7)), so the copy recv holds
 * would keep it open forever.
 *
 * @param fd The fd.
 * @param bounds Most bytes and milliseconds.
 * @param signal Stops the wait (Ctrl-C); its reason is thrown.
 * @returns The bytes and whether reading stopped early.
 */
async function readPipe(
  fd: Descriptor,
  bounds: ReadBounds,
  signal: AbortSignal | undefined,
): Promise<ReadResult> {
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), bounds.timeoutMs);
  const stop = signal === undefined ? timeout.signal : AbortSignal.any([signal, timeout.signal]);
  const chunks: Uint8Array[] = [];
  let total = 0;
  let timedOut = false;
  try {
    while (total <= bounds.limit) {
      const chunk = new Uint8Array(Math.min(CHUNK, bounds.limit + 1 - total));
      let n: number | null;
      try {
        n = await fd.read(chunk, { signal: stop });
      } catch (error) {
        if (signal?.aborted || !timeout.signal.aborted) throw error;
        timedOut = true;
        break;
      }
      if (n === null) break;
      chunks.push(chunk.subarray(0, n));
      total += n;
    }
  } finally {
    clearTimeout(timer);
  }
  return join(chunks, total, bounds.limit, timedOut);
}

function join(
  chunks: Uint8Array[],
  total: number,
  limit: number,
  timedOut: boolean,
): ReadResult {
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return total > limit
    ? { bytes: bytes.subarray(0, limit), truncated: true, timedOut }
    : { bytes, truncated: timedOut, timedOut };
}

/**
 * Reads the contents of a regular file (from offset 0, without moving the
 * shared offset) or a pipe (until end of file; this consumes the data) into
 * `report`, within `bounds`. A read error is recorded in `contentError`, not
 * thrown.
 *
 * @param fd The fd, described by `report`.
 * @param report Gets `content`, `contentEncoding`, `contentBytes`,
 * `contentTruncated` and `contentTimedOut`, or `contentError`.
 * @param bounds Most bytes and milliseconds to spend on this fd.
 * @param signal Stops waiting on a pipe; the abort reason is rethrown.
 */
export async function readContent(
  fd: Descriptor,
  report: FdReport,
  bounds: ReadBounds,
  signal?: AbortSignal,
): Promise<void> {
  if (!catable(report)) {
    if (report.kind === "file" || report.kind === "pipe") {
      report.contentError = "Not open for reading";
    }
    return;
  }
  let result: ReadResult;
  try {
    result = report.kind === "file"
      ? readFileFromStart(fd.fd, bounds)
      : await readPipe(fd, bounds, signal);
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
  report.contentTimedOut = result.timedOut;
}
