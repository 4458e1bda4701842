/**
 * Runs every example as a subprocess with the permissions it documents and
 * a deadline, prints each one's output and a summary, and exits non-zero if
 * any example fails. `deno task examples` runs this.
 *
 *     deno run --allow-run examples/run_all.ts [name...]
 *
 * With names (such as `broker` or `peers.ts`), runs only those.
 *
 * @module
 */

const BASE = ["--allow-ffi", "--allow-write", "--allow-run"];
const TIMEOUT_MS = 45_000;

/** Every example and the permissions its header asks for. */
const EXAMPLES: { file: string; permissions: string[] }[] = [
  { file: "hello_stdout.ts", permissions: BASE },
  { file: "shared_offset.ts", permissions: BASE },
  { file: "stream_semantics.ts", permissions: BASE },
  { file: "broker.ts", permissions: ["--allow-ffi", "--allow-env", "--allow-run"] },
  { file: "shared_memory.ts", permissions: BASE },
  // The client; it starts the servers with their own, narrower flags.
  { file: "listener_handoff.ts", permissions: ["--allow-run", "--allow-net=127.0.0.1"] },
  { file: "many_fds.ts", permissions: BASE },
  { file: "peers.ts", permissions: BASE },
];

const wanted = Deno.args.map((name) => name.endsWith(".ts") ? name : `${name}.ts`);
const unknown = wanted.filter((name) => !EXAMPLES.some((e) => e.file === name));
if (unknown.length > 0) {
  console.error(`unknown example(s): ${unknown.join(", ")}`);
  console.error(`examples: ${EXAMPLES.map((e) => e.file).join(", ")}`);
  Deno.exit(2);
}
const selected = wanted.length === 0 ? EXAMPLES : EXAMPLES.filter((e) => wanted.includes(e.file));

const decoder = new TextDecoder();
const results: { file: string; ok: boolean; seconds: number; note: string }[] = [];
const started = performance.now();

for (const { file, permissions } of selected) {
  const path = new URL(file, import.meta.url).pathname;
  console.log(`=== ${file}`);
  const t0 = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", ...permissions, path],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill("SIGKILL");
  }, TIMEOUT_MS);
  const { code, stdout, stderr } = await child.output();
  clearTimeout(timer);
  const seconds = (performance.now() - t0) / 1000;
  const output = (decoder.decode(stdout) + decoder.decode(stderr)).trimEnd();
  for (const line of output.split("\n")) console.log(`  ${line}`);
  const ok = code === 0 && !timedOut;
  const note = timedOut ? `killed after ${TIMEOUT_MS / 1000} s` : `exit code ${code}`;
  console.log(ok ? `--- PASS (${seconds.toFixed(1)} s)` : `--- FAIL (${note})`);
  console.log();
  results.push({ file, ok, seconds, note });
}

const failed = results.filter((r) => !r.ok);
console.log("summary:");
for (const r of results) {
  console.log(
    `  ${r.ok ? "PASS" : "FAIL"}  ${r.file.padEnd(22)} ${r.seconds.toFixed(1).padStart(5)} s${
      r.ok ? "" : `  (${r.note})`
    }`,
  );
}
const total = ((performance.now() - started) / 1000).toFixed(1);
console.log(
  failed.length === 0
    ? `all ${results.length} examples passed in ${total} s`
    : `${failed.length} of ${results.length} examples FAILED (${total} s)`,
);
Deno.exitCode = failed.length === 0 ? 0 : 1;
