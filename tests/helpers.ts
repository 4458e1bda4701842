/**
 * Shared test helpers: the open-fd count check every test file runs, and
 * small utilities for temporary paths and peers.
 *
 * @module
 */

import { assertEquals } from "@std/assert";

/** Number of entries in /proc/self/fd (Linux), or -1 where there is none. */
export function openFdCount(): number {
  try {
    let n = 0;
    for (const _ of Deno.readDirSync("/proc/self/fd")) n++;
    return n;
  } catch {
    return -1;
  }
}

/** The numbers of the fds open in this process (Linux). */
export function openFds(): Set<number> {
  const fds = new Set<number>();
  for (const entry of Deno.readDirSync("/proc/self/fd")) fds.add(Number(entry.name));
  return fds;
}

/**
 * Registers a `Deno.test` that runs `fn` as steps and asserts that the open
 * fd count is the same afterwards as before. Use one per test file (or per
 * group) so that every file checks for leaks.
 *
 * @param name The test name.
 * @param fn The body; add `t.step`s inside.
 */
export function leakCheckedTest(
  name: string,
  fn: (t: Deno.TestContext) => void | Promise<void>,
  options: { ignore?: boolean } = {},
): void {
  Deno.test({
    name,
    ignore: options.ignore ?? false,
    async fn(t) {
      const before = openFdCount();
      await fn(t);
      const after = openFdCount();
      assertEquals(after, before, `open fd count changed: ${before} before, ${after} after`);
    },
  });
}

/** A fresh temporary directory and a socket path inside it; removed by `cleanup()`. */
export function tempSocketPath(name = "test.sock"): { path: string; dir: string; cleanup(): void } {
  const dir = Deno.makeTempDirSync({ prefix: "fdpass-test-" });
  return {
    path: `${dir}/${name}`,
    dir,
    cleanup() {
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
