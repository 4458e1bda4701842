/**
 * How the library opens libc under each state of the `ffi` permission, with a
 * child script (`fixtures/libc_prompt_child.ts`) that does one socketpair
 * round trip: at Deno's prompt under a pseudo-terminal (answered `y`, `A` and
 * `n`), with no terminal, with `--no-prompt`, with a path-scoped grant, and
 * with plain `--allow-ffi`.
 *
 * Why a pseudo-terminal: Deno prompts only when stdin is a terminal, and it
 * discards input typed before the prompt, so the answer is written once the
 * prompt's `Allow?` shows up, and again until Deno reports its decision. The terminal comes from `script` (util-linux) or,
 * without it, from Python's `pty` module; with neither, those tests are skipped
 * with a warning.
 *
 * @module
 */

import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import {
  decoder,
  encoder,
  expectSuccess,
  hasCommand,
  leakCheckedTest,
  spawnDeno,
} from "./helpers.ts";

const CHILD = new URL("./fixtures/libc_prompt_child.ts", import.meta.url).pathname;

/** How long one child may run before it is killed. */
const CHILD_TIMEOUT_MS = 30_000;
/** How often the prompt is answered until Deno takes the answer. */
const ANSWER_INTERVAL_MS = 250;

/** What the library says in its `NotCapable` without unscoped FFI permission. */
const NOT_CAPABLE = "Uncaught (in promise) NotCapable: fdpass needs unscoped FFI permission";

// deno-lint-ignore no-control-regex
const ANSI_ESCAPE = /\u001b\[[0-9;?]*[A-Za-z]/g;

/** `text` without terminal colour and cursor sequences, with `\n` line ends. */
function plain(text: string): string {
  return text.replace(ANSI_ESCAPE, "").replaceAll("\r\n", "\n");
}

/** `value` quoted for `sh`. */
function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'"'"'`)}'`;
}

/**
 * The command that runs `argv` on a new pseudo-terminal and relays it through
 * its own stdin and stdout, or `null` when neither driver is installed.
 */
function ptyCommand(argv: string[]): { program: string; args: string[] } | null {
  if (hasCommand("script")) {
    // -q: no banner; -f: flush each write; -e: exit with the child's status.
    return { program: "script", args: ["-qfec", argv.map(shellQuote).join(" "), "/dev/null"] };
  }
  if (hasCommand("python3")) {
    const relay =
      "import os, pty, sys; sys.exit(os.waitstatus_to_exitcode(pty.spawn(sys.argv[1:])))";
    return { program: "python3", args: ["-c", relay, ...argv] };
  }
  return null;
}

const ptySkipReason = ptyCommand(["true"]) === null
  ? "neither script (util-linux) nor python3 is installed"
  : null;
if (ptySkipReason !== null) {
  console.warn(`libc_open_test.ts: skipping the prompt tests: ${ptySkipReason}`);
}

/**
 * Runs the child with `permissions` on a pseudo-terminal and answers Deno's
 * first permission prompt with `answer`.
 *
 * @param answer What is typed at the prompt (`y`, `A`, `n`).
 * @param permissions Permission flags for the child.
 * @returns The exit code and everything the terminal showed.
 */
async function runAtPrompt(
  answer: string,
  permissions: string[] = [],
): Promise<{ code: number; output: string }> {
  const argv = [Deno.execPath(), "run", "--no-lock", ...permissions, CHILD];
  const command = ptyCommand(argv);
  if (command === null) throw new Error(`Cannot run a pseudo-terminal: ${ptySkipReason}`);
  const child = new Deno.Command(command.program, {
    args: command.args,
    env: { NO_COLOR: "1" },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // Gone already.
    }
  }, CHILD_TIMEOUT_MS);
  const stderr = new Response(child.stderr).text();
  const writer = child.stdin.getWriter();
  let output = "";
  // Deno flushes terminal input around showing the prompt, so an answer
  // written as soon as "Allow?" appears can be lost: answer again every
  // ANSWER_INTERVAL_MS until the prompt is decided.
  const answering = setInterval(() => {
    const shown = plain(output);
    const prompt = shown.indexOf("Allow?");
    if (prompt === -1 || /Granted|Denied|error:/.test(shown.slice(prompt))) return;
    writer.write(encoder.encode(`${answer}\n`)).catch(() => {});
  }, ANSWER_INTERVAL_MS);
  try {
    for await (const chunk of child.stdout) {
      output += decoder.decode(chunk, { stream: true });
    }
  } finally {
    clearInterval(answering);
    clearTimeout(timer);
    // stdin stays open until the terminal closes: `script` ends the session
    // when its input ends.
    await writer.close().catch(() => {});
  }
  const status = await child.status;
  output += await stderr;
  return { code: status.code, output: plain(output) };
}

leakCheckedTest(
  "libc() asks for unscoped FFI permission at the prompt, and answering y lets the child run",
  async () => {
    const { code, output } = await runAtPrompt("y");
    assertEquals(code, 0, output);
    // The request is for all of FFI, not for the bare name "libc.so.6",
    // which Deno would resolve against the current directory once granted.
    assertStringIncludes(output, "Deno requests ffi access.");
    assertStringIncludes(output, "Granted ffi access.");
    assertStringIncludes(output, "OK\n");
  },
  { ignore: ptySkipReason !== null },
);

leakCheckedTest(
  "libc() asks for unscoped FFI permission at the prompt, and answering A lets the child run",
  async () => {
    const { code, output } = await runAtPrompt("A");
    assertEquals(code, 0, output);
    assertStringIncludes(output, "Deno requests ffi access.");
    assertStringIncludes(output, "Granted all ffi access.");
    assertStringIncludes(output, "OK\n");
  },
  { ignore: ptySkipReason !== null },
);

leakCheckedTest(
  "libc() throws NotCapable asking for --allow-ffi when the prompt is answered n",
  async () => {
    const { code, output } = await runAtPrompt("n");
    assertEquals(code, 1, output);
    assertStringIncludes(output, "Denied ffi access.");
    assertStringIncludes(output, NOT_CAPABLE);
    assertStringIncludes(output, "run with --allow-ffi (no path)");
    // Denied once, the library does not go on to a second prompt from dlopen.
    assertEquals(output.split("Allow?").length, 2, output);
  },
  { ignore: ptySkipReason !== null },
);

leakCheckedTest(
  "A path-scoped --allow-ffi grant is widened at the prompt when answered y",
  async () => {
    const { code, output } = await runAtPrompt("y", [
      "--allow-ffi=/lib/x86_64-linux-gnu/libc.so.6",
    ]);
    assertEquals(code, 0, output);
    assertStringIncludes(output, "Deno requests ffi access.");
    assertStringIncludes(output, "OK\n");
  },
  { ignore: ptySkipReason !== null },
);

/**
 * Runs the child without a terminal (stdin is `/dev/null`) and checks that
 * it dies of the library's `NotCapable`.
 *
 * @param permissions Permission and prompt flags for the child.
 */
async function expectNotCapable(permissions: string[]): Promise<void> {
  const result = await spawnDeno("libc_prompt_child.ts", [], {
    permissions,
    timeoutMs: CHILD_TIMEOUT_MS,
  }).done;
  const stderr = plain(result.stderr);
  assertEquals(result.code, 1, stderr);
  assertEquals(result.stdout, "");
  assertStringIncludes(stderr, NOT_CAPABLE);
  assertStringIncludes(stderr, "run with --allow-ffi (no path)");
  assertStringIncludes(stderr, "A path-scoped grant such as --allow-ffi=<path> is not enough");
  assert(!stderr.includes("Allow?"), stderr);
}

leakCheckedTest(
  "Without --allow-ffi and without a terminal, libc() throws NotCapable asking for unscoped --allow-ffi",
  async () => {
    await expectNotCapable([]);
  },
);

leakCheckedTest(
  "Without --allow-ffi and with --no-prompt, libc() throws NotCapable asking for unscoped --allow-ffi",
  async () => {
    await expectNotCapable(["--no-prompt"]);
  },
);

leakCheckedTest(
  "With a path-scoped --allow-ffi grant, libc() throws the same NotCapable before dlopen",
  async () => {
    await expectNotCapable(["--allow-ffi=/lib/x86_64-linux-gnu/libc.so.6"]);
  },
);

leakCheckedTest(
  "With --allow-ffi the child runs without a prompt",
  async () => {
    const stdout = await expectSuccess(
      spawnDeno("libc_prompt_child.ts", [], { timeoutMs: CHILD_TIMEOUT_MS }),
    );
    assertEquals(stdout, "OK\n");
  },
);
