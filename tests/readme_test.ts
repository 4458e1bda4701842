/**
 * Every `ts` block of README.md runs as shown, with the permissions it
 * states and no others: a block that needs more than it says fails here.
 *
 * The conventions (stated in the README under "Code in this README"):
 *
 * - A block runs with `deno run --allow-ffi`, unless its first line is a
 *   `// deno run --allow-...` comment, which then gives all its flags.
 * - A block whose first line is `// Fragment` is not a whole program; it is
 *   marked `ignore` for `deno test --doc` and is listed here as ignored.
 * - A block whose first line names a file (`// lend_stdout.ts`) is one of a
 *   set of programs that run together: the files of one section are started
 *   in order, each once the one before has printed its first line, and all
 *   must exit 0.
 *
 * Imports of `jsr:@fdpass/fdpass` and `@fdpass/fdpass` (and their `/cli`)
 * are pointed at this checkout; each block runs in a temporary directory.
 *
 * @module
 */

import { assert, assertEquals, assertFalse } from "@std/assert";
import { leakCheckedTest } from "./helpers.ts";

const ROOT = new URL("..", import.meta.url);
const README = new URL("README.md", ROOT);
const CONFIG = new URL("deno.json", ROOT).pathname;

/** How long one block may run before it is killed. */
const TIMEOUT_MS = 30_000;

/** One fenced `ts` block of the README. */
export interface ReadmeBlock {
  /** The nearest heading above it. */
  heading: string;
  /** The 1-based line of its opening fence. */
  line: number;
  /** The words after `ts` on the fence, such as `ignore`. */
  attributes: string[];
  /** The code. */
  code: string;
  /** The `deno run` flags it states, or `["--allow-ffi"]`. */
  permissions: string[];
  /** Whether its first line marks it as a fragment. */
  fragment: boolean;
  /** The file name its first line gives, if any. */
  fileName: string | null;
}

/**
 * The `ts` blocks of a Markdown text, with the conventions above applied.
 *
 * @param markdown The README text.
 * @returns The blocks in order.
 */
export function readmeBlocks(markdown: string): ReadmeBlock[] {
  const blocks: ReadmeBlock[] = [];
  const lines = markdown.split("\n");
  let heading = "(top)";
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const title = /^#{1,6} (.*)$/.exec(line);
    if (title) heading = title[1]!.replaceAll("`", "");
    const fence = /^```(\S+)(.*)$/.exec(line);
    if (fence === null) continue;
    const end = lines.indexOf("```", i + 1);
    assert(end > i, `README.md:${i + 1}: unclosed code block`);
    if (fence[1] === "ts") {
      const code = lines.slice(i + 1, end).join("\n") + "\n";
      const first = lines[i + 1] ?? "";
      const run = /^\/\/ deno run ((?:--[a-z-]+(?:=\S+)?\s*)+)/.exec(first);
      const file = /^\/\/ ([a-z_]+\.ts)$/.exec(first);
      blocks.push({
        heading,
        line: i + 1,
        attributes: fence[2]!.trim().split(/\s+/).filter(Boolean),
        code,
        permissions: run ? run[1]!.trim().split(/\s+/) : ["--allow-ffi"],
        fragment: /^\/\/ Fragment\b/.test(first),
        fileName: file ? file[1]! : null,
      });
    }
    i = end;
  }
  return blocks;
}

/** Points the package's imports at this checkout. */
function localImports(code: string): string {
  const mod = new URL("mod.ts", ROOT).href;
  const cli = new URL("cli.ts", ROOT).href;
  return code.replaceAll(/"(?:jsr:)?@fdpass\/fdpass(\/cli)?"/g, (_, sub) => `"${sub ? cli : mod}"`);
}

interface Output {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a written block; `firstLine` resolves with its first line of output. */
function start(
  path: string,
  permissions: string[],
  cwd: string,
): { firstLine: Promise<void>; done: Promise<Output> } {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
  const child = new Deno.Command(Deno.execPath(), {
    // --config: cli.ts needs the import map in deno.json; --no-lock leaves deno.lock alone.
    args: ["run", "--quiet", "--no-prompt", "--config", CONFIG, "--no-lock", ...permissions, path],
    cwd,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: controller.signal,
  }).spawn();
  let stdout = "";
  let sawLine: () => void = () => {};
  const firstLine = new Promise<void>((resolve) => (sawLine = resolve));
  const readOut = child.stdout.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({
      write(chunk): void {
        stdout += chunk;
        if (stdout.includes("\n")) sawLine();
      },
    }),
  );
  const readErr = new Response(child.stderr).text();
  const done = (async (): Promise<Output> => {
    const [status, stderr] = await Promise.all([child.status, readErr, readOut]).then((
      [s, e],
    ) => [s, e] as const);
    clearTimeout(timer);
    sawLine();
    return { code: status.code, stdout, stderr };
  })();
  return { firstLine, done };
}

function expectExit0(output: Output, what: string): void {
  assertEquals(
    output.code,
    0,
    `${what} exited with ${output.code}\n--- stdout\n${output.stdout}--- stderr\n${output.stderr}`,
  );
}

const blocks = readmeBlocks(Deno.readTextFileSync(README));

// Spawning starts Deno's child-process machinery once per process; do it
// before the first fd census.
await new Deno.Command(Deno.execPath(), { args: ["--version"], stdout: "null" }).output();

leakCheckedTest("README conventions: every block imports the package and is marked", () => {
  assert(blocks.length > 10, `only ${blocks.length} ts blocks found`);
  for (const block of blocks) {
    const where = `README.md:${block.line} (${block.heading})`;
    assertFalse(/from "\.{1,2}\//.test(block.code), `${where} imports a relative path`);
    const ignored = block.attributes.includes("ignore");
    if (block.fragment || block.fileName !== null) {
      assert(ignored, `${where}: a fragment or a named file must be "ts ignore" for deno test`);
    } else {
      assertFalse(ignored, `${where}: an ignored block must start with "// Fragment" or a name`);
    }
  }
});

// One test per section with named files (they run together), one per other block.
const seen = new Set<string>();
for (const block of blocks) {
  const siblings = blocks.filter((other) => other.heading === block.heading);
  const name = siblings.length > 1
    ? `README "${block.heading}" block ${siblings.indexOf(block) + 1} runs as shown`
    : `README "${block.heading}" runs as shown`;
  if (block.fragment || (block.fileName === null && block.attributes.includes("ignore"))) {
    Deno.test({ name: `${name} (a fragment: not run)`, ignore: true, fn(): void {} });
    continue;
  }
  if (block.fileName !== null) {
    if (seen.has(block.heading)) continue;
    seen.add(block.heading);
    const files = siblings.filter((other) => other.fileName !== null);
    leakCheckedTest(
      `README "${block.heading}" programs ${
        files.map((f) => f.fileName).join(" and ")
      } run together`,
      async () => {
        const dir = Deno.makeTempDirSync({ prefix: "fdpass-readme-" });
        try {
          const running: { what: string; done: Promise<Output> }[] = [];
          for (const file of files) {
            const path = `${dir}/${file.fileName}`;
            Deno.writeTextFileSync(path, localImports(file.code));
            const child = start(path, file.permissions, dir);
            running.push({ what: file.fileName!, done: child.done });
            if (file !== files.at(-1)) await child.firstLine;
          }
          for (const { what, done } of running) expectExit0(await done, what);
        } finally {
          Deno.removeSync(dir, { recursive: true });
        }
      },
    );
    continue;
  }
  leakCheckedTest(name, async () => {
    const dir = Deno.makeTempDirSync({ prefix: "fdpass-readme-" });
    try {
      const path = `${dir}/block.ts`;
      Deno.writeTextFileSync(path, localImports(block.code));
      const what = `README.md:${block.line} with ${block.permissions.join(" ")}`;
      expectExit0(await start(path, block.permissions, dir).done, what);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  });
}
