/**
 * Shared memory between processes: {@linkcode MemFd} creates an anonymous
 * file in memory (`memfd_create`, Linux) that can be sized, sealed, sent to
 * another process like any fd, and mapped into an `ArrayBuffer` on both
 * sides with {@linkcode MemFd.map} or {@linkcode mapShared}.
 *
 * Safety: an `ArrayBuffer` over a mapping points straight at the mapped
 * pages. {@linkcode SharedMapping.unmap} detaches the buffer before it calls
 * `munmap`, so later use sees a zero-length buffer instead of freed memory.
 * Two more things come from the kernel:
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

import { libc } from "../ffi/libc.ts";
import { describeValue, throwErrno } from "./errors.ts";
import { BorrowedFd, OwnedFd } from "./fd.ts";
import { type FdLike, fdNumberOf } from "./transfer.ts";
import { cString } from "./sys.ts";

/**
 * A seal on a memfd (`fcntl(F_ADD_SEALS)`, memfd_create(2)). Seals are
 * permanent and apply to every process holding the file.
 *
 * - `"shrink"`: the size can no longer decrease (`F_SEAL_SHRINK`).
 * - `"grow"`: the size can no longer increase (`F_SEAL_GROW`).
 * - `"write"`: the contents can no longer change (`F_SEAL_WRITE`); fails
 *   with `EBUSY` while a writable shared mapping exists.
 * - `"seal"`: no further seals can be added (`F_SEAL_SEAL`).
 */
export type MemFdSeal = "seal" | "shrink" | "grow" | "write";

const SEAL_NAMES: readonly MemFdSeal[] = ["seal", "shrink", "grow", "write"];

/** Options for {@linkcode MemFd.create}. */
export interface MemFdOptions {
  /**
   * A name for debugging; it shows as `/memfd:NAME` in `/proc/PID/fd`.
   * Several memfds may share a name.
   *
   * @default {"fdpass"}
   */
  name?: string;
  /**
   * The initial size in bytes (the contents are zero).
   *
   * @default {0}
   */
  size?: number;
  /**
   * Whether seals can be added (`MFD_ALLOW_SEALING`). Without it the file
   * starts with the `"seal"` seal.
   *
   * @default {true}
   */
  allowSealing?: boolean;
}

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

const MAP_FAILED = 0xffff_ffff_ffff_ffffn;

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
    const rc = libc().lib.munmap(this.#pointer, BigInt(this.#byteLength));
    onUnmap?.(this);
    if (rc !== 0) throwErrno("munmap");
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
function mapFd(
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
  const { lib, layout } = libc();
  const c = layout.constants;
  const stat = new BorrowedFd(fd).stat();
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
  const pointer = lib.mmap(
    null,
    BigInt(length),
    c.PROT_READ | c.PROT_WRITE,
    copyOnWrite ? c.MAP_PRIVATE : c.MAP_SHARED,
    fd,
    BigInt(offset),
  );
  if (pointer === null || Deno.UnsafePointer.value(pointer) === MAP_FAILED) {
    throwErrno("mmap");
  }
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

function checkSize(value: unknown, name: string, what: "Argument" | "Option"): number {
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

function requireMemfd(): void {
  if (Deno.build.os !== "linux" || libc().lib.memfd_create === null) {
    throw new Deno.errors.NotSupported(
      `memfd_create and file seals are only supported on Linux, not on ${Deno.build.os}`,
    );
  }
}

function sealBits(): Record<MemFdSeal, number> {
  const c = libc().layout.constants;
  return {
    seal: c.F_SEAL_SEAL,
    shrink: c.F_SEAL_SHRINK,
    grow: c.F_SEAL_GROW,
    write: c.F_SEAL_WRITE,
  };
}

/**
 * An anonymous file in memory (`memfd_create`), owned by this object:
 * size it, seal it, send it to other processes like any fd, and map it
 * into `ArrayBuffer`s that all processes share. Linux only.
 *
 * Created close-on-exec and, by default, with sealing allowed. Closing it
 * unmaps every mapping made with {@linkcode MemFd.map} and closes the fd;
 * the memory lives on while another process holds the file or a mapping.
 *
 * @example Create, size, map and write
 * ```ts
 * import { MemFd } from "@fdpass/fdpass";
 * import { assertEquals } from "@std/assert";
 *
 * using memfd = MemFd.create({ name: "example", size: 1024 });
 * assertEquals(memfd.size, 1024);
 * const mapping = memfd.map();
 * new TextEncoder().encodeInto("shared", new Uint8Array(mapping.buffer));
 * using again = memfd.map();
 * assertEquals(new TextDecoder().decode(new Uint8Array(again.buffer, 0, 6)), "shared");
 * ```
 */
export class MemFd {
  readonly #handle: OwnedFd;
  readonly #mappings = new Set<SharedMapping>();

  /**
   * Use {@linkcode MemFd.create} or {@linkcode MemFd.from}.
   *
   * @param handle The owned fd.
   */
  private constructor(handle: OwnedFd) {
    this.#handle = handle;
  }

  /**
   * Creates a memfd, close-on-exec, with sealing allowed by default.
   *
   * @param options Name, initial size and sealing.
   * @returns The memfd.
   * @throws {Deno.errors.NotSupported} Outside Linux.
   *
   * @example An empty memfd, sized later
   * ```ts
   * import { MemFd } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * using memfd = MemFd.create();
   * assertEquals(memfd.size, 0);
   * memfd.resize(65536);
   * assertEquals(memfd.size, 65536);
   * ```
   */
  static create(options: MemFdOptions = {}): MemFd {
    if (typeof options !== "object" || options === null) {
      throw new TypeError(
        `Argument "options" must be an object, received ${describeValue(options)}`,
      );
    }
    const name = options.name ?? "fdpass";
    if (typeof name !== "string") {
      throw new TypeError(`Option "name" must be a string, received ${describeValue(name)}`);
    }
    // memfd_create(2): the name is at most 249 bytes.
    const nameBytes = cString(name, "name");
    if (nameBytes.byteLength - 1 > 249) {
      throw new RangeError(
        `Option "name" must be at most 249 bytes, received ${nameBytes.byteLength - 1}`,
      );
    }
    const size = checkSize(options.size ?? 0, "size", "Option");
    const allowSealing = options.allowSealing ?? true;
    if (typeof allowSealing !== "boolean") {
      throw new TypeError(
        `Option "allowSealing" must be a boolean, received ${describeValue(allowSealing)}`,
      );
    }
    requireMemfd();
    const { lib, layout } = libc();
    const c = layout.constants;
    const flags = c.MFD_CLOEXEC | (allowSealing ? c.MFD_ALLOW_SEALING : 0);
    const fd = lib.memfd_create!(nameBytes, flags);
    if (fd < 0) throwErrno("memfd_create");
    const memfd = new MemFd(new OwnedFd(fd));
    if (size > 0) {
      try {
        memfd.resize(size);
      } catch (error) {
        memfd.close();
        throw error;
      }
    }
    return memfd;
  }

  /**
   * Adopts a memfd (or any regular file) such as one received in a
   * message. Ownership moves to the new object.
   *
   * @param fd An {@linkcode OwnedFd} (ownership moves) or a number (now owned).
   * @returns The memfd.
   * @throws {TypeError} When the fd is not a regular file.
   *
   * @example Adopt a received memfd and check its seals
   * ```ts
   * import { MemFd, UnixSocket } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const [a, b] = UnixSocket.pair();
   * using original = MemFd.create({ size: 4096 });
   * original.seal(["shrink"]);
   * a.sendSync("x", { fds: [original] });
   * using adopted = MemFd.from(b.recvSync()!.fds[0]!);
   * assertEquals(adopted.seals, ["shrink"]);
   * assertEquals(adopted.size, 4096);
   * a.close();
   * b.close();
   * ```
   */
  static from(fd: OwnedFd | number): MemFd {
    if (typeof fd !== "number" && !(fd instanceof OwnedFd)) {
      throw new TypeError(
        `Argument "fd" must be an OwnedFd or an fd number, received ${describeValue(fd)}`,
      );
    }
    const number = fdNumberOf(fd, "fd");
    const kind = new BorrowedFd(number).kind;
    if (kind !== "file") {
      throw new TypeError(
        `Argument "fd" (fd ${number}) must be a memfd or regular file, not a ${kind}`,
      );
    }
    return new MemFd(typeof fd === "number" ? new OwnedFd(fd) : new OwnedFd(fd.release()));
  }

  /**
   * The fd number; send it with `sendSync(data, { fds: [memfd] })`.
   *
   * @throws {TypeError} After {@linkcode MemFd.close}.
   */
  get fd(): number {
    return this.#handle.fd;
  }

  /** Whether {@linkcode MemFd.close} was called. */
  get closed(): boolean {
    return this.#handle.closed;
  }

  /** The size in bytes, from `fstat` (another process may change it). */
  get size(): number {
    return this.#handle.stat().size;
  }

  /**
   * Sets the size (`ftruncate`). New bytes read as zero. Shrinking below a
   * live mapping makes the cut-off pages raise `SIGBUS` when touched, in
   * every process: unmap them first.
   *
   * @param size The new size in bytes.
   *
   * @example Grow a memfd
   * ```ts
   * import { MemFd } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * using memfd = MemFd.create();
   * memfd.resize(8192);
   * assertEquals(memfd.size, 8192);
   * ```
   */
  resize(size: number): void {
    const bytes = checkSize(size, "size", "Argument");
    const fd = this.fd;
    const { lib } = libc();
    for (;;) {
      if (lib.ftruncate(fd, BigInt(bytes)) === 0) return;
      if (libc().errno[0] !== libc().layout.errno.EINTR) throwErrno("ftruncate");
    }
  }

  /**
   * Maps the file into an `ArrayBuffer` shared with every other mapping of
   * it, in this and other processes. {@linkcode MemFd.close} unmaps it.
   *
   * @param options Offset, length (default: the whole file) and sharing.
   * @returns The mapping.
   *
   * @example Map the second page only
   * ```ts
   * import { MemFd } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * using memfd = MemFd.create({ size: 8192 });
   * using page = memfd.map({ offset: 4096, length: 4096 });
   * assertEquals(page.buffer.byteLength, 4096);
   * ```
   */
  map(options: MapOptions = {}): SharedMapping {
    const mapping = mapFd(this.fd, options, (m) => this.#mappings.delete(m));
    this.#mappings.add(mapping);
    return mapping;
  }

  /**
   * The seals in force (`F_GET_SEALS`), in the order seal, shrink, grow,
   * write.
   *
   * @example A new memfd has no seals
   * ```ts
   * import { MemFd } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * using memfd = MemFd.create();
   * assertEquals(memfd.seals, []);
   * ```
   */
  get seals(): MemFdSeal[] {
    requireMemfd();
    const rc = libc().fcntl(this.fd, libc().layout.constants.F_GET_SEALS, 0);
    if (rc < 0) throwErrno("fcntl");
    const bits = sealBits();
    return SEAL_NAMES.filter((name) => (rc & bits[name]) !== 0);
  }

  /**
   * Adds seals (`F_ADD_SEALS`). Seals cannot be removed. Fails with
   * `EPERM` once `"seal"` is in force or when the file was created without
   * `allowSealing`, and with `EBUSY` for `"write"` while a writable shared
   * mapping exists.
   *
   * @param seals The seals to add.
   *
   * @example Freeze the size, then try to shrink
   * ```ts
   * import { MemFd } from "@fdpass/fdpass";
   * import { assertThrows } from "@std/assert";
   *
   * using memfd = MemFd.create({ size: 4096 });
   * memfd.seal(["shrink", "grow", "seal"]);
   * assertThrows(() => memfd.resize(0), Deno.errors.PermissionDenied);
   * ```
   */
  seal(seals: Iterable<MemFdSeal>): void {
    if (
      typeof seals !== "object" || seals === null ||
      typeof (seals as Iterable<MemFdSeal>)[Symbol.iterator] !== "function"
    ) {
      throw new TypeError(
        `Argument "seals" must be an array of seal names, received ${describeValue(seals)}`,
      );
    }
    const bits = sealBits();
    let mask = 0;
    for (const name of seals) {
      if (!SEAL_NAMES.includes(name)) {
        throw new TypeError(
          `Argument "seals" must contain only "seal", "shrink", "grow" or "write", received ${
            describeValue(name)
          }`,
        );
      }
      mask |= bits[name];
    }
    requireMemfd();
    const fd = this.fd;
    if (libc().fcntl(fd, libc().layout.constants.F_ADD_SEALS, mask) < 0) throwErrno("fcntl");
  }

  /**
   * Unmaps every mapping made with {@linkcode MemFd.map} and closes the
   * fd. Calling it again does nothing.
   *
   * @example Close unmaps
   * ```ts
   * import { MemFd } from "@fdpass/fdpass";
   * import { assert } from "@std/assert";
   *
   * const memfd = MemFd.create({ size: 4096 });
   * const mapping = memfd.map();
   * memfd.close();
   * memfd.close();
   * assert(!mapping.mapped);
   * assert(memfd.closed);
   * ```
   */
  close(): void {
    if (this.#handle.closed) return;
    let failure: unknown = null;
    for (const mapping of [...this.#mappings]) {
      try {
        mapping.unmap();
      } catch (error) {
        failure ??= error;
      }
    }
    this.#mappings.clear();
    this.#handle.close();
    if (failure !== null) throw failure;
  }

  /** Closes; lets `using` manage the memfd. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Shows the fd in `console.log` and the REPL. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.#handle.closed ? "MemFd { closed }" : `MemFd { fd: ${this.#handle.fd} }`;
  }
}
