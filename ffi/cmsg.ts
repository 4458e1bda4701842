/**
 * The `CMSG_*` macros of `cmsg(3)` as arithmetic over a {@linkcode Layout},
 * and the size of the control buffer the receiver allocates.
 *
 * @module
 */

import type { Layout } from "./types.ts";

/** Size of one fd in an `SCM_RIGHTS` payload (`sizeof(int)`). */
export const FD_SIZE = 4;

/**
 * `CMSG_ALIGN(n)`: `n` rounded up to the layout's cmsg alignment.
 *
 * @param layout The platform layout.
 * @param n A byte count.
 * @returns `n` rounded up to `layout.cmsghdr.align`.
 */
export function cmsgAlign(layout: Layout, n: number): number {
  const a = layout.cmsghdr.align;
  return (n + a - 1) & ~(a - 1);
}

/**
 * Offset of the data from the start of a cmsg (`CMSG_DATA(c) - c`).
 *
 * @param layout The platform layout.
 * @returns 16 on Linux and FreeBSD, 12 on macOS.
 */
export function cmsgDataOffset(layout: Layout): number {
  return cmsgAlign(layout, layout.cmsghdr.size);
}

/**
 * `CMSG_LEN(n)`: header plus `n` data bytes, unpadded; the value of `cmsg_len`.
 *
 * @param layout The platform layout.
 * @param n Data bytes.
 * @returns The data offset plus `n`.
 */
export function cmsgLen(layout: Layout, n: number): number {
  return cmsgDataOffset(layout) + n;
}

/**
 * `CMSG_SPACE(n)`: header plus `n` data bytes, padded to the alignment; the
 * bytes one cmsg takes in the control buffer.
 *
 * @param layout The platform layout.
 * @param n Data bytes.
 * @returns The data offset plus `n` rounded up to the alignment.
 */
export function cmsgSpace(layout: Layout, n: number): number {
  return cmsgDataOffset(layout) + cmsgAlign(layout, n);
}

/**
 * Control-buffer bytes the receiver allocates: room for the largest fd
 * message any peer can send plus an `SCM_CREDENTIALS` message, so that our
 * own buffer never truncates what the kernel delivers (docs/abi.md,
 * "Control buffer sizes").
 *
 * @param layout The platform layout.
 * @returns `CMSG_SPACE((maxFdsPerMessage + 1) * 4)`, plus `CMSG_SPACE(sizeof(struct ucred))`
 * where `features.passCredentials`.
 */
export function receiveControlCapacity(layout: Layout): number {
  const credentials = layout.features.passCredentials ? cmsgSpace(layout, layout.ucredSize) : 0;
  // macOS delivers up to 254 fds and installs them before the copy-out, so a
  // smaller buffer would leak the cut-off ones (docs/abi.md, "Fds per message").
  return cmsgSpace(layout, (layout.maxFdsPerMessage + 1) * FD_SIZE) + credentials;
}
