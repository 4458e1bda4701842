/**
 * A zero-downtime upgrade with {@linkcode Upgrader}: a `node:http` server
 * upgraded three times while a client keeps requesting, with no failed
 * request.
 *
 * This process is the client. It starts the first server generation, which
 * creates its listener (`listenTcp`); on each `SIGHUP` the serving
 * generation starts its successor with the listening socket, waits for its
 * `ready()`, then stops accepting, drains and exits. The socket never
 * closes, so the kernel queues connections throughout.
 *
 * Run it:
 *
 *     deno run --allow-run --allow-net=127.0.0.1 examples/listener_handoff.ts
 *
 * The servers get exactly `--allow-ffi --allow-env --allow-run=/bin/sh,<deno>`
 * (serving an fd needs no net permission; spawn() starts through /bin/sh).
 *
 * @module
 */

import { createServer } from "node:http";
import { listenTcp, Upgrader } from "../mod.ts";

const SERVER_PERMISSIONS = ["--allow-ffi", "--allow-env", `--allow-run=/bin/sh,${Deno.execPath()}`];
const FLAGS = ["--quiet", "--no-lock"];

if (Deno.args[0] === "server") {
  // One generation: the same code whether it is the first or the fourth.
  const upgrader = Upgrader.start({ flags: FLAGS, permissions: SERVER_PERMISSIONS });
  let port = 0;
  const fd = upgrader.listener("http", () => {
    const listener = listenTcp({ hostname: "127.0.0.1" });
    port = listener.port;
    return listener;
  });
  let draining = false;
  const server = createServer((_request, response) => {
    // While draining, keep-alive clients take their next request elsewhere.
    if (draining) response.setHeader("connection", "close");
    response.end(String(Deno.pid));
  });
  await new Promise<void>((resolve) => server.listen({ fd: fd.release() }, resolve));
  await upgrader.ready();
  console.log(JSON.stringify({ pid: Deno.pid, port, inherited: port === 0 }));
  await upgrader.exiting;
  draining = true;
  await new Promise((resolve) => setTimeout(resolve, 100));
  const closed = new Promise((resolve) => server.close(resolve));
  // Idle keep-alive connections would hold close() open until they time
  // out: end them now (a connection busy with a request is left alone).
  server.closeIdleConnections();
  await closed;
  upgrader.close();
} else {
  const first = new Deno.Command(Deno.execPath(), {
    args: ["run", ...FLAGS, ...SERVER_PERMISSIONS, import.meta.filename!, "server"],
    stdin: "null",
    stdout: "piped",
  }).spawn();
  const lines = first.stdout.pipeThrough(new TextDecoderStream()).values();
  let buffered = "";
  const nextGeneration = async (): Promise<{ pid: number; port: number }> => {
    while (!buffered.includes("\n")) {
      const { value, done } = await lines.next();
      if (done) throw new Error("the servers exited");
      buffered += value;
    }
    const newline = buffered.indexOf("\n");
    const line = buffered.slice(0, newline);
    buffered = buffered.slice(newline + 1);
    return JSON.parse(line);
  };

  let generation = await nextGeneration();
  const url = `http://127.0.0.1:${generation.port}/`;
  const served = new Map<string, number>();
  let failed = 0;
  let stopped = false;
  const client = async (): Promise<void> => {
    while (!stopped) {
      try {
        const body = await (await fetch(url)).text();
        served.set(body, (served.get(body) ?? 0) + 1);
      } catch (error) {
        failed++;
        console.error(`request failed: ${error}`);
      }
    }
  };
  const clients = Array.from({ length: 8 }, client);

  for (let i = 0; i < 3; i++) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    Deno.kill(generation.pid, "SIGHUP");
    const previous = generation.pid;
    generation = await nextGeneration();
    console.log(`upgraded ${previous} -> ${generation.pid} (listener inherited)`);
  }
  await new Promise((resolve) => setTimeout(resolve, 500));
  stopped = true;
  await Promise.all(clients);
  Deno.kill(generation.pid, "SIGTERM");
  await first.status;
  // Every generation shares the stdout pipe: stop reading it rather than
  // wait for the last one to let go.
  await lines.return?.();

  for (const [pid, count] of served) console.log(`generation ${pid} answered ${count} requests`);
  const ok = failed === 0 && served.size === 4;
  console.log(ok ? "ok: 4 generations, no failed request" : `FAILED: ${failed} failed requests`);
  Deno.exitCode = ok ? 0 : 1;
}
