/**
 * `fdpass hold`: run an fd holder that speaks s6-fdholder-daemon's protocol
 * until SIGINT or SIGTERM.
 *
 * @module
 */

import { stopOnSignals } from "./signals.ts";
import { FdHolderServer } from "../extras/fdholder_server.ts";
import { EXIT_OK, integerOption, parseCommand, requireValue } from "./args.ts";

/** The `--help` text of `fdpass hold`. */
export const HOLD_HELP =
  `fdpass hold: keep file descriptors for other processes (s6-fdholder protocol)

Usage:
  fdpass hold --listen PATH [--max-fds N] [--max-connections N]
              [--allow-uid UID]... [--allow-gid GID]...

Listens on PATH and holds fds under ids for its clients, speaking the
protocol of s6-fdholder-daemon: s6-fdholder-store, -retrieve, -delete,
-list, -getdump and -setdump work against it, as does FdHolder. A stored
fd whose deadline passes is closed and its id forgotten.

Peers with fdpass's own uid or uid 0, or a uid/gid given with --allow-uid
or --allow-gid, may do everything; any other peer is answered EPERM. On
SIGINT or SIGTERM every held fd is closed and the socket file removed.

Options:
  --listen PATH          Socket path to listen on (required). A stale socket
                         file is replaced.
  --max-fds N            Most fds held at once (ENFILE past it). Default: 1000.
  --max-connections N    Most clients at once. Default: 16.
  --allow-uid UID        Also allow this user id (repeatable).
  --allow-gid GID        Also allow this group id (repeatable).
  -h, --help             Show this help.

Exit codes:
  130  stopped by SIGINT (143 for SIGTERM)
  1    runtime failure (the socket cannot be bound)
  2    usage error

Permissions: --allow-ffi.

Example:
  fdpass hold --listen /run/fdholder.sock &
  s6-fdholder-store /run/fdholder.sock unix:/run/app.sock < /run/app.sock
`;

const SPEC = {
  command: "hold",
  booleans: [],
  strings: ["listen", "max-fds", "max-connections"],
  repeatable: ["allow-uid", "allow-gid"],
  positionals: false,
} as const;

/**
 * Runs `fdpass hold`.
 *
 * @param args The arguments after `hold`.
 * @returns The exit status: 130 or 143 after SIGINT or SIGTERM.
 * @throws {UsageError} For bad arguments; other errors are runtime failures.
 */
export async function holdCommand(args: readonly string[]): Promise<number> {
  const parsed = parseCommand(SPEC, args);
  if (parsed.help) {
    console.log(HOLD_HELP);
    return EXIT_OK;
  }
  const path = requireValue(parsed, "listen", "hold", "a socket path");
  const number = (name: string, fallback: number, min: number): number => {
    const text = parsed.strings.get(name);
    return text === undefined ? fallback : integerOption(text, name, "hold", min, 1_000_000);
  };
  const ids = (name: string): number[] =>
    parsed.repeated.get(name)!.map((text) => integerOption(text, name, "hold", 0, 2 ** 32 - 2));
  const server = FdHolderServer.listen(path, {
    removeExisting: true,
    maxFds: number("max-fds", 1000, 1),
    maxConnections: number("max-connections", 16, 1),
    allowUids: ids("allow-uid"),
    allowGids: ids("allow-gid"),
  });
  using stopper = stopOnSignals();
  const stopped = new Promise<void>((resolve) =>
    stopper.signal.addEventListener("abort", () => resolve(), { once: true })
  );
  try {
    await Promise.race([stopped, server.finished]);
    return stopper.exitStatus(EXIT_OK);
  } finally {
    await server.close();
  }
}
