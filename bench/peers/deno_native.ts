/**
 * Deno's own Unix-socket ping-pong, without fds: the floor of Deno's event
 * loop for the cross-process ping-pong. The parent listens on a socket path
 * in a fresh temporary directory, starts this script again as the child,
 * which connects and echoes every byte back.
 *
 *   deno run --allow-read --allow-write --allow-net --allow-run bench/peers/deno_native.ts <iterations>
 *
 * (Deno 2.9 asks for net access to a Unix socket path too.)
 *
 * Prints "<ns per operation> <operations> <context switches per round
 * trip>", the switches of both processes (getrusage(2): every thread,
 * voluntary plus involuntary): this one's over the timed loop, the child's
 * over its life divided by the round trips it answered.
 *
 * @module
 */

import process from "node:process";

const [first, second] = Deno.args;

function contextSwitches(): number {
  const usage = process.resourceUsage();
  return usage.voluntaryContextSwitches + usage.involuntaryContextSwitches;
}

async function readOne(conn: Deno.Conn, buffer: Uint8Array): Promise<boolean> {
  return (await conn.read(buffer)) === 1;
}

if (first === "child" && second !== undefined) {
  using conn = await Deno.connect({ transport: "unix", path: second });
  const buffer = new Uint8Array(1);
  let messages = 0;
  while (await readOne(conn, buffer)) {
    await conn.write(buffer);
    messages++;
  }
  console.log(`${contextSwitches()} ${messages}`);
} else {
  const iterations = Number(first ?? 1000);
  const dir = Deno.makeTempDirSync({ prefix: "fdpass-bench-" });
  const path = `${dir}/socket`;
  try {
    using listener = Deno.listen({ transport: "unix", path });
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        `--allow-read=${dir}`,
        `--allow-write=${dir}`,
        "--allow-net",
        import.meta.filename!,
        "child",
        path,
      ],
      stdin: "null",
      stdout: "piped",
    }).spawn();
    const conn = await listener.accept();
    const buffer = new Uint8Array([120]);
    const loop = async (n: number) => {
      for (let i = 0; i < n; i++) {
        await conn.write(buffer);
        if (!await readOne(conn, buffer)) throw new Error("The child ended");
      }
    };
    await loop(Math.floor(iterations / 10) + 1);
    const switchesBefore = contextSwitches();
    const start = performance.now();
    await loop(iterations);
    const elapsed = performance.now() - start;
    const ours = (contextSwitches() - switchesBefore) / iterations;
    conn.close();
    const output = await child.output();
    const [theirs, answered] = new TextDecoder().decode(output.stdout).trim().split(" ").map(
      Number,
    );
    const perRoundTrip = ours + theirs! / answered!;
    console.log(
      `${(elapsed * 1e6 / iterations).toFixed(1)} ${iterations} ${perRoundTrip.toFixed(2)}`,
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}
