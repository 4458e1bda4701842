/**
 * {@linkcode SharedMapping}: a memory mapping of a file (a memfd, a regular
 * file) exposed as an `ArrayBuffer`, and {@linkcode mapShared}, which maps
 * any mappable fd, such as one received from another process.
 *
 * Safety: an `ArrayBuffer` over a mapping points straight at the mapped
 * pages. {@linkcode SharedMapping.unmap} detaches the buffer before it calls
 * `munmap`, so later use sees a zero-length buffer instead of freed memory.
 * Two more things come from the kernel (mmap(2)):
 * - Touching a page past the end of the file raises `SIGBUS` and kills the
 *   process. Mapping checks the size first, but a peer holding the same
 *   memfd can shrink it afterwards: map a received memfd only once it is
 *   sealed against shrinking (`seals` includes `"shrink"`).
 * - A `copyOnWrite: false` mapping of a file opened read-only fails with
 *   `EACCES`; use `copyOnWrite: true` for read-only fds and write-sealed
 *   memfds.
 *
 * @module
 */

import { libc } from "../../ffi/libc.ts";
import { describeValue, type FdLike, fdNumberOf } from "../core/checks.ts";
import { errnoError } from "../core/errors.ts";
import { statFd } from "../core/fd_ops.ts";
import { mapMemory, unmapMemory } from "../core/memory_map.ts";

/** Options for {@linkcode MemFd.map} and {@linkcode mapShared}. */
export interface MapOptions {
  /**
   * Where the mapping starts in the file, in bytes; a multiple of the page
   * size (4096 on most systems), or `mmap` fails with `EINVAL`.
   *
   * @default {0}
   */
  offset?: number;
  /**
   * How many bytes to map. `offset + length` must not pass the end of a
   * regular file (touching pages past it raises `SIGBUS`).
   *
   * @default {the file size minus offset}
   */
  length?: number;
  /**
   * Map privately (`MAP_PRIVATE`): writes stay in this process and other
   * processes' later writes to pages this process wrote are not seen.
   * Works for read-only fds and for memfds sealed with `"write"`.
   *
   * @default {false}
   */
  copyOnWrite?: boolean;
}

// Set by SharedMapping's static block: the module's access to its private
// constructor, so that only mapFd() makes mappings.
let newMapping: (
  pointer: Deno.PointerObject,
  byteLength: number,
  copyOnWrite: boolean,
  onUnmap: ((mapping: SharedMapping) => void) | null,
) => SharedMapping;

// There is deliberately no FinalizationRegistry backstop for mappings: a
// buffer moved elsewhere with `transfer()` or `postMessage` would outlive
// the object the registry watches, and unmapping under it would crash the
// process. A forgotten mapping costs memory until exit, never correctness.

/**
 * A memory mapping of a file, exposed as an `ArrayBuffer` that reads and
 * writes the mapped pages directly.
 *
 * After {@linkcode SharedMapping.unmap} (or closing the {@linkcode MemFd}
 * that made it) the buffer is detached: its `byteLength` is 0 and views
 * over it are empty, so stale code cannot reach unmapped memory. Unmap
 * explicitly (or with `using`): a forgotten mapping stays until the
 * process exits. Do not move the buffer with `transfer()` or `postMessage`
 * (a moved buffer is never unmapped), and do not hand its address to
 * native code that outlives the mapping.
 *
 * @example Write through one mapping, read through another
 * ```ts
 * import { MemFd } from "@fdpass/fdpass";
 * import { assertEquals } from "@std/assert";
 *
 * using memfd = MemFd.create({ size: 4096 });
 * using a = memfd.map();
 * using b = memfd.map();
 * new Uint8Array(a.buffer)[0] = 42;
 * assertEquals(new Uint8Array(b.buffer)[0], 42);
 * ```
 */
export class SharedMapping {
  #buffer: ArrayBuffer | null;
  readonly #pointer: Deno.PointerObject;
  readonly #byteLength: number;
  readonly #copyOnWrite: boolean;
  #onUnmap: ((mapping: SharedMapping) => void) | null;

  /**
   * Mappings come from {@linkcode MemFd.map} and {@linkcode mapShared}.
   *
   * @param pointer The mapped address.
   * @param byteLength The mapped length.
   * @param copyOnWrite Whether it is a private mapping.
   * @param onUnmap Called once, after unmapping.
   */
  private constructor(
    pointer: Deno.PointerObject,
    byteLength: number,
    copyOnWrite: boolean,
    onUnmap: ((mapping: SharedMapping) => void) | null,
  ) {
    this.#buffer = Deno.UnsafePointerView.getArrayBuffer(pointer, byteLength);
    this.#pointer = pointer;
    this.#byteLength = byteLength;
    this.#copyOnWrite = copyOnWrite;
    this.#onUnmap = onUnmap;
  }

  static {
    newMapping = (pointer, byteLength, copyOnWrite, onUnmap) =>
      new SharedMapping(pointer, byteLength, copyOnWrite, onUnmap);
  }

  /**
   * The mapped memory. The same `ArrayBuffer` every time.
   *
   * @throws {TypeError} After {@linkcode SharedMapping.unmap}.
   */
  get buffer(): ArrayBuffer {
    if (this.#buffer === null) {
      throw new TypeError("Cannot use the mapping: it is unmapped");
    }
    return this.#buffer;
  }

  /** The mapped length in bytes (kept after unmapping). */
  get byteLength(): number {
    return this.#byteLength;
  }

  /** Whether this is a private, copy-on-write mapping. */
  get copyOnWrite(): boolean {
    return this.#copyOnWrite;
  }

  /** Whether the memory is still mapped. */
  get mapped(): boolean {
    return this.#buffer !== null;
  }

  /**
   * Detaches the buffer and unmaps the memory (`munmap`). Calling it again
   * does nothing. The file itself stays open.
   *
   * @example Unmap and see the buffer detached
   * ```ts
   * import { MemFd } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * using memfd = MemFd.create({ size: 4096 });
   * const mapping = memfd.map();
   * const bytes = new Uint8Array(mapping.buffer);
   * mapping.unmap();
   * mapping.unmap();
   * assertEquals(mapping.mapped, false);
   * assertEquals(bytes.length, 0);
   * ```
   */
  unmap(): void {
    const buffer = this.#buffer;
    if (buffer === null) return;
    this.#buffer = null;
    const onUnmap = this.#onUnmap;
    this.#onUnmap = null;
    if (buffer.detached) {
      // Someone moved the memory to another ArrayBuffer (`transfer()`,
      // `postMessage`) that may still be in use: leave it mapped.
      onUnmap?.(this);
      return;
    }
    // Detach first: every view over the buffer becomes empty, so no later
    // access can reach the pages munmap is about to free.
    buffer.transfer(0);
    const failed = unmapMemory(this.#pointer, this.#byteLength);
    onUnmap?.(this);
    if (failed !== 0) throw errnoError(failed, "munmap");
  }

  /** Unmaps; lets `using` manage the mapping. */
  [Symbol.dispose](): void {
    this.unmap();
  }

  /** Shows the length in `console.log` and the REPL. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.#buffer === null
      ? "SharedMapping { unmapped }"
      : `SharedMapping { byteLength: ${this.#byteLength}${
        this.#copyOnWrite ? ", copyOnWrite: true" : ""
      } }`;
  }
}

/**
 * Validates the options, checks the size and maps `fd`.
 *
 * @param fd The fd number.
 * @param options Offset, length and sharing.
 * @param onUnmap Called once, after unmapping.
 * @returns The mapping.
 */
export function mapFd(
  fd: number,
  options: MapOptions,
  onUnmap: ((mapping: SharedMapping) => void) | null,
): SharedMapping {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `Argument "options" must be an object, received ${describeValue(options)}`,
    );
  }
  const offset = checkSize(options.offset ?? 0, "offset", "Option");
  const copyOnWrite = options.copyOnWrite ?? false;
  if (typeof copyOnWrite !== "boolean") {
    throw new TypeError(
      `Option "copyOnWrite" must be a boolean, received ${describeValue(copyOnWrite)}`,
    );
  }
  const { layout } = libc();
  const c = layout.constants;
  const stat = statFd(fd);
  let length: number;
  if (options.length === undefined) {
    if (stat.kind !== "file") {
      throw new TypeError(
        `Option "length" is required to map a ${stat.kind} fd: only regular files have a size`,
      );
    }
    length = Math.max(0, stat.size - offset);
  } else {
    length = checkSize(options.length, "length", "Option");
  }
  if (length === 0) {
    throw new RangeError(
      `Cannot map 0 bytes: the file size is ${stat.size} and the offset ${offset}; resize the file first`,
    );
  }
  if (stat.kind === "file" && offset + length > stat.size) {
    throw new RangeError(
      `Cannot map bytes ${offset} to ${
        offset + length
      }: the file has only ${stat.size} bytes (pages past the end raise SIGBUS)`,
    );
  }
  const pointer = mapMemory(fd, length, copyOnWrite ? c.MAP_PRIVATE : c.MAP_SHARED, offset);
  return newMapping(pointer, length, copyOnWrite, onUnmap);
}

/**
 * Maps any mappable fd (a received memfd, a regular file) into an
 * `ArrayBuffer`. The fd can be closed afterwards; the mapping stays valid
 * until {@linkcode SharedMapping.unmap}.
 *
 * @param fd The fd: a number or an object with an `fd`.
 * @param options Offset, length (default: the whole file) and sharing.
 * @returns The mapping.
 *
 * @example Map a memfd received from another process
 * ```ts
 * import { MemFd, mapShared, UnixSocket } from "@fdpass/fdpass";
 * import { assertEquals } from "@std/assert";
 *
 * const [a, b] = UnixSocket.pair();
 * using memfd = MemFd.create({ size: 4096 });
 * memfd.seal(["shrink", "grow"]);
 * a.sendSync("shm", { fds: [memfd] });
 *
 * using received = b.recvSync()!.fds[0]!;
 * using mapping = mapShared(received);
 * using mine = memfd.map();
 * new Uint8Array(mapping.buffer)[7] = 7;
 * assertEquals(new Uint8Array(mine.buffer)[7], 7);
 * a.close();
 * b.close();
 * ```
 */
export function mapShared(fd: FdLike, options: MapOptions = {}): SharedMapping {
  return mapFd(fdNumberOf(fd, "fd"), options, null);
}

/**
 * Checks a size or offset argument.
 *
 * @param value The value given.
 * @param name Its name.
 * @param what `"Argument"` or `"Option"`.
 * @returns The value.
 */
export function checkSize(value: unknown, name: string, what: "Argument" | "Option"): number {
  if (typeof value !== "number") {
    throw new TypeError(`${what} "${name}" must be a number, received ${describeValue(value)}`);
  }
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(
      `${what} "${name}" must be a non-negative safe integer, received ${value}`,
    );
  }
  return value;
}
