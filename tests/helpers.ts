/**
 * Shared test helpers: the open-fd count check every test file runs, and
 * small utilities for temporary paths and peers.
 *
 * @module
 */

import { assertEquals } from "@std/assert";
import { libc } from "../ffi/libc.ts";

/** Highest fd number the census looks at (exclusive). */
const CENSUS_LIMIT = 65536;

/**
 * The open fd numbers of this process, found with `fcntl(F_GETFD)`.
 *
 * Deno 2.9 refuses to read `/proc/self/fd` (and `/dev/fd`) without
 * `--allow-all`, so the census asks the kernel one number at a time.
 *
 * @returns The numbers, ascending.
 */
export function openFdNumbers(): number[] {
  const { fcntl, layout } = libc();
  const F_GETFD = layout.constants.F_GETFD;
  const open: number[] = [];
  for (let fd = 0; fd < CENSUS_LIMIT; fd++) {
    if (fcntl(fd, F_GETFD, 0) >= 0) open.push(fd);
  }
  return open;
}

/** Number of open fds in this process. */
export function openFdCount(): number {
  return openFdNumbers().length;
}

/**
 * Registers a `Deno.test` that runs `fn` (add `t.step`s inside) and asserts
 * that the set of open fds is the same afterwards as before, naming the fds
 * that leaked or vanished.
 *
 * @param name The test name.
 * @param fn The body.
 * @param options `ignore` to skip.
 */
export function leakCheckedTest(
  name: string,
  fn: (t: Deno.TestContext) => void | Promise<void>,
  options: { ignore?: boolean } = {},
): void {
  Deno.test({
    name,
    ignore: options.ignore ?? false,
    async fn(t): Promise<void> {
      const before = openFdNumbers();
      await fn(t);
      const after = openFdNumbers();
      const leaked = after.filter((fd) => !before.includes(fd));
      const lost = before.filter((fd) => !after.includes(fd));
      assertEquals(
        { leaked, lost },
        { leaked: [], lost: [] },
        `open fds changed: ${before.length} before, ${after.length} after`,
      );
    },
  });
}

/** A fresh temporary directory and a socket path inside it; removed by `cleanup()`. */
export function tempSocketPath(name = "test.sock"): { path: string; dir: string; cleanup(): void } {
  const dir = Deno.makeTempDirSync({ prefix: "fdpass-test-" });
  return {
    path: `${dir}/${name}`,
    dir,
    cleanup(): void {
      Deno.removeSync(dir, { recursive: true });
    },
  };
}

/** Whether a command exists on PATH. */
export function hasCommand(name: string): boolean {
  try {
    const result = new Deno.Command("sh", {
      args: ["-c", `command -v ${name}`],
      stdout: "null",
      stderr: "null",
    }).outputSync();
    return result.success;
  } catch {
    return false;
  }
}

export const decoder: TextDecoder = new TextDecoder();
export const encoder: TextEncoder = new TextEncoder();
