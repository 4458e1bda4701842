// Node's built-in fd passing, the JavaScript world's alternative: the parent
// forks this script with an IPC channel and sends a message with a handle (a
// listening net.Server, whose fd goes over SCM_RIGHTS); the child sends the
// handle it received straight back and closes its copy.
//
//   node bench/peers/node_send.mjs <iterations>
//   deno run -A bench/peers/node_send.mjs <iterations>
//
// Prints "<ns per operation> <operations>", or "stalled <exchanges>" (exit
// code 3) when no answer with a handle comes within 3 s. Under Deno 2.9.6 only
// the first message carries its handle; the next arrives with `undefined`, the
// child's `handle.close()` throws (as Node-only code would) and it stalls.
import { fork } from "node:child_process";
import { createServer } from "node:net";
import process from "node:process";

if (process.argv[2] === "child") {
  process.on("message", (message, handle) => {
    process.send(message, handle, () => handle.close());
  });
} else {
  const iterations = Number(process.argv[2] ?? 1000);
  const warmup = Math.floor(iterations / 10) + 1;
  const child = fork(process.argv[1], ["child"], { stdio: ["ignore", "ignore", "inherit", "ipc"] });
  const server = createServer();
  server.listen(0, "127.0.0.1", () => {
    let exchanges = 0;
    let start = 0;
    let watchdog;
    const arm = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => {
        console.log(`stalled ${exchanges}`);
        child.kill("SIGKILL");
        process.exit(3);
      }, 3000);
    };
    child.on("message", (_message, handle) => {
      if (handle === undefined) return; // lost on the way: the watchdog reports it
      handle.close();
      exchanges++;
      if (exchanges === warmup) start = performance.now();
      if (exchanges === warmup + iterations) {
        const elapsed = performance.now() - start;
        clearTimeout(watchdog);
        console.log(`${(elapsed * 1e6 / iterations).toFixed(1)} ${iterations}`);
        child.kill();
        server.close();
        return;
      }
      arm();
      child.send("x", server);
    });
    arm();
    child.send("x", server);
  });
}
