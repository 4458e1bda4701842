/**
 * The `fdpass` command: pass open file descriptors between processes from
 * the shell, and see what arrives.
 *
 * - `fdpass recv --listen PATH [--count N] [--json] [--cat]` listens on a
 *   Unix socket and describes every message and fd it receives: kind,
 *   path, size, flags, and with `--cat` the contents of files and pipes.
 * - `fdpass send --connect PATH [--data TEXT] [--fd N]... [FILE]...` sends
 *   files (opened read-only) and inherited fds in one message.
 * - `fdpass hold --listen PATH` runs an fd holder that speaks
 *   s6-fdholder-daemon's protocol until SIGINT/SIGTERM.
 * - `fdpass info [--json]` shows the platform layout, sizes and constants
 *   in use.
 *
 * Every subcommand takes `--help`; `fdpass --version` prints the version.
 * Exit codes: 0 success, 1 runtime failure, 2 usage error or missing
 * `--allow-ffi` (130/143 when `recv` is stopped by SIGINT/SIGTERM). Errors
 * go to stderr as `fdpass: <message>`. Needs `--allow-ffi` only.
 *
 * @example Run it without installing
 * ```sh
 * deno run --allow-ffi jsr:@fdpass/fdpass/cli recv --listen /tmp/fdpass.sock --cat &
 * deno run --allow-ffi jsr:@fdpass/fdpass/cli send --connect /tmp/fdpass.sock /etc/hostname
 * ```
 *
 * @example Install it as `fdpass`
 * ```sh
 * deno install --global --allow-ffi --name fdpass jsr:@fdpass/fdpass/cli
 * fdpass info
 * ```
 *
 * @module
 */

import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError } from "./src/cli/args.ts";
import { RECV_HELP, recvCommand } from "./src/cli/recv.ts";
import { SEND_HELP, sendCommand } from "./src/cli/send.ts";
import { INFO_HELP, infoCommand } from "./src/cli/info.ts";
import { HOLD_HELP, holdCommand } from "./src/cli/hold.ts";
import { VERSION } from "./src/cli/version.ts";

const HELP = `fdpass: pass open file descriptors between processes over Unix sockets

Usage:
  fdpass recv --listen PATH [--abstract] [--count N] [--json] [--cat]
  fdpass send --connect PATH [--abstract] [--data TEXT] [--fd N]... [FILE]...
  fdpass info [--json]
  fdpass hold --listen PATH [--max-fds N] [--max-connections N] [--allow-uid U]...
  fdpass help [COMMAND]
  fdpass --version

Commands:
  recv   Listen on a Unix socket; print each message and describe its fds.
  send   Connect to a Unix socket; send files and inherited fds in one message.
  info   Show the platform layout, sizes and constants fdpass uses.
  hold   Hold fds for other processes (s6-fdholder protocol) until stopped.

Run "fdpass COMMAND --help" for a command's options.

Exit codes:
  0    success
  1    runtime failure (a file cannot be opened, nobody listens, ...)
  2    usage error (unknown option or command, missing or bad value),
       or no unscoped --allow-ffi permission
  130  recv or hold stopped by SIGINT (143 by SIGTERM)

Permissions: --allow-ffi (fdpass calls libc through Deno.dlopen).

Example:
  fdpass recv --listen /tmp/fdpass.sock --cat &
  fdpass send --connect /tmp/fdpass.sock /etc/hostname
`;

const COMMAND_HELP: Readonly<Record<string, string>> = {
  recv: RECV_HELP,
  send: SEND_HELP,
  info: INFO_HELP,
  hold: HOLD_HELP,
};

/**
 * Runs the `fdpass` command with `args` (without the program name) and
 * returns its exit status: 0 on success, 1 on a runtime failure, 2 on a
 * usage error or when the process lacks unscoped `--allow-ffi`
 * (`Deno.errors.NotCapable`), 130/143 when `recv` was stopped by
 * SIGINT/SIGTERM. Output
 * goes to stdout; errors are printed to stderr as `fdpass: <message>`, never
 * thrown.
 *
 * @param args The arguments, such as `["send", "--connect", "/tmp/s", "file"]`.
 * @returns The exit status.
 *
 * @example Print the layout as JSON, and a usage error
 * ```ts
 * import { main } from "@fdpass/fdpass/cli";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(await main(["info", "--json"]), 0);
 * // "fdpass: Option "--connect" is required: give a socket path" on stderr
 * assertEquals(await main(["send", "/etc/hostname"]), 2);
 * ```
 */
export async function main(args: string[]): Promise<number> {
  try {
    return await run(args);
  } catch (error) {
    const notCapable = notCapableIn(error);
    if (notCapable !== undefined) {
      // Missing permission is the caller's mistake, like a bad option.
      console.error(`fdpass: ${notCapable.message}`);
      return EXIT_USAGE;
    }
    const message = error instanceof Error ? error.message : String(error);
    console.error(`fdpass: ${message}`);
    if (error instanceof UsageError) {
      const command = error.command === null ? "fdpass" : `fdpass ${error.command}`;
      console.error(`Run "${command} --help" for usage.`);
      return EXIT_USAGE;
    }
    return EXIT_FAILURE;
  }
}

/**
 * The `Deno.errors.NotCapable` that `error` is or was caused by (a wrapper
 * such as "Failed to open libc" keeps Deno's own error as its `cause`).
 *
 * @param error What `run` threw.
 * @returns The permission error, or `undefined`.
 */
function notCapableIn(error: unknown): Error | undefined {
  for (let e = error, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (e instanceof Deno.errors.NotCapable) return e;
  }
  return undefined;
}

async function run(args: readonly string[]): Promise<number> {
  const [command, ...rest] = args;
  switch (command) {
    case "recv":
      return await recvCommand(rest);
    case "send":
      return sendCommand(rest);
    case "info":
      return infoCommand(rest);
    case "hold":
      return await holdCommand(rest);
    case "--version":
      if (rest.length > 0) throw new UsageError(`Unexpected argument "${rest[0]}"`, null);
      console.log(`fdpass ${VERSION}`);
      return EXIT_OK;
    case "help":
    case "--help":
    case "-h": {
      const topic = rest[0];
      if (topic === undefined || command !== "help") {
        console.log(HELP);
        return EXIT_OK;
      }
      const text = COMMAND_HELP[topic];
      if (text === undefined || !Object.hasOwn(COMMAND_HELP, topic)) {
        throw new UsageError(`Unknown command "${topic}": use recv, send, info or hold`, null);
      }
      console.log(text);
      return EXIT_OK;
    }
    case undefined:
      throw new UsageError("Missing command: use recv, send, info or hold", null);
    default:
      throw new UsageError(
        command.startsWith("-")
          ? `Unknown option "${command}": give a command (recv, send, info or hold) first`
          : `Unknown command "${command}": use recv, send, info or hold`,
        null,
      );
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
