/**
 * Struct layouts, constants and features for every supported platform, as
 * data, and the lookup of the running platform's row.
 *
 * The rows live in `platforms/linux.ts` and `platforms/bsd.ts`; the types
 * live in `types.ts` and are re-exported here. Linux rows are checked against
 * the C headers by `tests/c/layout_probe.c`; macOS and FreeBSD rows were
 * taken from the system headers (xnu, freebsd-src) compiled as LP64.
 *
 * @module
 */

import { darwinArm64, darwinX86_64, freebsdX86_64 } from "./platforms/bsd.ts";
import { linuxAarch64, linuxX86_64 } from "./platforms/linux.ts";
import type { Layout } from "./types.ts";

export type {
  CmsghdrLayout,
  Constants,
  EpollEventLayout,
  Features,
  IoUringLayout,
  IovecLayout,
  Layout,
  MsghdrLayout,
  PeerCredentialsLayout,
  PidfsLayout,
  PollfdLayout,
  SockaddrInLayout,
  SockaddrUnLayout,
  StatLayout,
  TimespecLayout,
} from "./types.ts";

/** Every layout, keyed by `${Deno.build.os}-${Deno.build.arch}`. */
export const layouts: Readonly<Record<string, Layout>> = Object.freeze({
  "linux-x86_64": linuxX86_64,
  "linux-aarch64": linuxAarch64,
  "darwin-aarch64": darwinArm64,
  "darwin-x86_64": darwinX86_64,
  "freebsd-x86_64": freebsdX86_64,
});

/**
 * The key of the running platform in {@linkcode layouts}: the one place
 * outside a layout row that looks at `Deno.build.os`.
 *
 * @returns `${Deno.build.os}-${Deno.build.arch}`, such as `"linux-x86_64"`.
 */
export function platformKey(): string {
  return `${Deno.build.os}-${Deno.build.arch}`;
}

/**
 * The layout for the running platform.
 *
 * @returns The row of {@linkcode layouts} for {@linkcode platformKey}.
 * @throws {Deno.errors.NotSupported} On a platform with no layout (Windows, 32-bit).
 */
export function currentLayout(): Layout {
  const key = platformKey();
  const layout = layouts[key];
  if (layout === undefined) {
    throw new Deno.errors.NotSupported(
      `fdpass does not support platform "${key}": supported are ${Object.keys(layouts).join(", ")}`,
    );
  }
  return layout;
}
