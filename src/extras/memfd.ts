/**
 * Shared memory between processes: {@linkcode MemFd} creates an anonymous
 * file in memory (`memfd_create`, Linux and FreeBSD) that can be sized,
 * sealed, sent to another process like any fd, and mapped into an
 * `ArrayBuffer` on both sides with {@linkcode MemFd.map} or `mapShared`.
 *
 * @module
 */

import { libc } from "../../ffi/libc.ts";
import { cString, describeValue } from "../core/checks.ts";
import { check } from "../core/syscall.ts";
import { fcntlFd, statFd } from "../core/fd_ops.ts";
import { adoptFd, OwnedFd } from "../owned_fd.ts";
import { checkSize, mapFd, type MapOptions, type SharedMapping } from "./shared_mapping.ts";

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

function requireMemfd(): void {
  const { layout } = libc();
  if (!layout.features.memfd) {
    throw new Deno.errors.NotSupported(`memfd_create is not available on ${layout.name}`);
  }
}

function requireSeals(): void {
  const { layout } = libc();
  if (!layout.features.fileSeals) {
    throw new Deno.errors.NotSupported(`File seals are not available on ${layout.name}`);
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
    let fd = -1;
    check(() => fd = lib.memfd_create!(nameBytes, flags), "memfd_create");
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
    return new MemFd(adoptFd(fd, (n) => {
      const kind = statFd(n).kind;
      if (kind !== "file") {
        throw new TypeError(
          `Argument "fd" (fd ${n}) must be a memfd or regular file, not a ${kind}`,
        );
      }
    }));
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
    check(() => libc().lib.ftruncate(fd, BigInt(bytes)), "ftruncate");
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
    requireSeals();
    const rc = fcntlFd(this.fd, libc().layout.constants.F_GET_SEALS, 0);
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
    requireSeals();
    fcntlFd(this.fd, libc().layout.constants.F_ADD_SEALS, mask);
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
