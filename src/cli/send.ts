/**
 * `fdpass send`: connect to a Unix socket and send files and inherited fds
 * in one message.
 *
 * @module
 */

import { formatAddress } from "../core/address.ts";
import { platformFacts } from "../core/platform.ts";
import { borrowFd, type Descriptor, openFd, type OwnedFd } from "../owned_fd.ts";
import { UnixSocket } from "../unix_socket.ts";
import {
  EXIT_OK,
  integerOption,
  parseCommand,
  requireValue,
  socketAddress,
  UsageError,
} from "./args.ts";

/** Data sent when `--data` is not given. */
export const DEFAULT_DATA = "fdpass";

/** The `--help` text of `fdpass send`. */
export const SEND_HELP = `fdpass send: send files and file descriptors over a Unix socket

Usage:
  fdpass send --connect PATH [--abstract] [--data TEXT] [--fd N]... [FILE]...

Connects to PATH and sends ONE message: the data, with the fds given by
--fd (in order) followed by every FILE (in order), opened read-only. The
receiver gets its own fds for the same open files. Prints a one-line
summary.

Options:
  --connect PATH   Socket path to connect to (required).
  --abstract       PATH is a Linux abstract socket name (no file).
  --data TEXT      The message data, sent as UTF-8. Default: "fdpass".
                   A stream socket needs at least one data byte to carry
                   fds, so an empty TEXT sends a single zero byte.
                   Use --data=TEXT when TEXT starts with "-".
  --fd N           Also send fd N of this process (0, 1, 2, or one the
                   parent left open across exec). Repeatable.
  -h, --help       Show this help.
  --               Everything after it is a FILE, even if it starts with "-".

At most 253 fds fit in one message (Linux SCM_MAX_FD).

Exit codes:
  0  the message was sent
  1  runtime failure: a FILE cannot be opened, fd N is not open, nobody
     listens on PATH, the send failed
  2  usage error: unknown option, missing or too long PATH, N not a
     non-negative integer, too many fds

Permissions: --allow-ffi (files are opened through libc, so no
--allow-read is needed).

Examples:
  fdpass send --connect /tmp/fdpass.sock /etc/hostname
  echo hello | fdpass send --connect /tmp/fdpass.sock --data "stdin" --fd 0
`;

const SPEC = {
  command: "send",
  booleans: ["abstract"],
  strings: ["connect", "data"],
  repeatable: ["fd"],
  positionals: true,
} as const;

/**
 * Runs `fdpass send`.
 *
 * @param args The arguments after `send`.
 * @returns The exit status.
 * @throws {UsageError} For bad arguments; other errors are runtime failures.
 */
export function sendCommand(args: readonly string[]): number {
  const parsed = parseCommand(SPEC, args);
  if (parsed.help) {
    console.log(SEND_HELP);
    return EXIT_OK;
  }
  const path = requireValue(parsed, "connect", "send", "a socket path");
  const address = socketAddress(path, parsed.booleans.get("abstract")!, "connect", "send");
  const fdNumbers = parsed.repeated.get("fd")!.map((text) =>
    integerOption(text, "fd", "send", 0, 0x7fffffff)
  );
  const files = parsed.positionals;
  const max = platformFacts().maxFdsPerMessage;
  if (fdNumbers.length + files.length > max) {
    throw new UsageError(
      `Too many fds: ${
        fdNumbers.length + files.length
      } given, but at most ${max} fit in one message`,
      "send",
    );
  }
  const text = parsed.strings.get("data") ?? DEFAULT_DATA;
  // A stream drops fds sent with no data byte (unix(7), BUGS), and an
  // empty write would send no message at all.
  const data = text === "" ? new Uint8Array(1) : new TextEncoder().encode(text);

  const fds: Descriptor[] = [];
  const opened: OwnedFd[] = [];
  try {
    for (const n of fdNumbers) fds.push(inheritedFd(n));
    for (const file of files) {
      const fd = openFd(file);
      opened.push(fd);
      fds.push(fd);
    }
    using socket = UnixSocket.connectSync(address);
    const sent = socket.sendSync(data, { fds });
    console.log(
      `sent ${sent} byte${sent === 1 ? "" : "s"} and ${fds.length} fd${
        fds.length === 1 ? "" : "s"
      } to ${formatAddress(address)}`,
    );
    return EXIT_OK;
  } finally {
    for (const fd of opened) fd.close();
  }
}

/**
 * Borrows fd `n`, checking that it is open.
 *
 * @param n The fd number.
 * @returns The borrowed fd.
 */
function inheritedFd(n: number): Descriptor {
  const fd = borrowFd(n);
  try {
    fd.stat();
  } catch (error) {
    if (error instanceof Deno.errors.BadResource) {
      throw new Error(`Option "--fd ${n}": fd ${n} is not open in this process`);
    }
    throw error;
  }
  return fd;
}
