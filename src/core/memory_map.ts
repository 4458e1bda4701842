/**
 * `mmap(2)` of an fd, read-write, with the failure checks in one place.
 *
 * @module
 */

import { libc } from "../../ffi/libc.ts";
import { errnoError } from "./errors.ts";

/** What `mmap` returns on failure: `MAP_FAILED`, `(void *) -1`. */
const MAP_FAILED = 0xffff_ffff_ffff_ffffn;

/**
 * Maps `length` bytes of `fd` from `offset`, readable and writable.
 *
 * @param fd The fd.
 * @param length Bytes to map (more than 0).
 * @param flags `MAP_SHARED` or `MAP_PRIVATE`, and any extra flags.
 * @param offset Offset in the file (a page multiple, or a special offset
 * such as io_uring's).
 * @returns The address of the mapping.
 * @throws {ErrnoError} When `mmap` fails.
 */
export function mapMemory(
  fd: number,
  length: number,
  flags: number,
  offset: number,
): Deno.PointerObject {
  const { lib, layout, errno } = libc();
  const c = layout.constants;
  const pointer = lib.mmap(
    null,
    BigInt(length),
    c.PROT_READ | c.PROT_WRITE,
    flags,
    fd,
    BigInt(offset),
  );
  if (pointer === null || Deno.UnsafePointer.value(pointer) === MAP_FAILED) {
    throw errnoError(errno[0]!, "mmap");
  }
  return pointer;
}

/**
 * Unmaps memory mapped by {@linkcode mapMemory}.
 *
 * @param pointer The address.
 * @param length The length that was mapped.
 * @returns 0, or the errno of a failed `munmap`.
 */
export function unmapMemory(pointer: Deno.PointerObject, length: number): number {
  const { lib, errno } = libc();
  return lib.munmap(pointer, BigInt(length)) === 0 ? 0 : errno[0]!;
}
