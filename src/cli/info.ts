/**
 * `fdpass info`: the platform layout, sizes and constants fdpass uses here.
 *
 * @module
 */

import { type Features, type PlatformFacts, platformFacts } from "../core/platform.ts";
import { startedPollerStats } from "../async/wait.ts";
import { EXIT_OK, parseCommand } from "./args.ts";

/**
 * What `fdpass info --json` prints: the platform facts of the library, and
 * the Deno that runs it and the poller backend in use.
 */
export interface InfoReport {
  /** `Deno.version.deno`. */
  deno: string;
  /** `Deno.build.target`: the target triple the Deno binary was built for. */
  denoTarget: string;
  /** The layout table in use, such as `"linux-x86_64"`: the OS and architecture. */
  layout: string;
  /** The library opened with `Deno.dlopen`. */
  libraryPath: string;
  /** The errno accessor. */
  errnoSymbol: string;
  /** Whether variadic arguments (`fcntl`, `open`) go on the stack. */
  variadicOnStack: boolean;
  /** The async poller's backend: `io_uring`, `epoll` or `poll`. */
  poller: string;
  /** Why io_uring is not used where the platform may have it, or `null`. */
  pollerFallback: string | null;
  /** `sizeof` the structs fdpass fills in by hand, in bytes. */
  sizes: Readonly<Record<string, number>>;
  /** The `CMSG_*` macro results for fds. */
  cmsg: PlatformFacts["cmsg"];
  /** Bytes of control buffer each receive offers. */
  receiveControlCapacity: number;
  /** Most fds in one message. */
  maxFdsPerMessage: number;
  /** Longest socket path in bytes. */
  maxPathBytes: number;
  /** Everything the platform offers, by feature name. */
  features: Features;
  /** `features.abstractNames`, under its earlier name. */
  abstractNamespace: boolean;
  /** `features.seqpacket`. */
  seqpacket: boolean;
  /** `features.accept4`. */
  accept4: boolean;
  /** The socket and fd constants fdpass passes to libc (0 = not available). */
  constants: PlatformFacts["constants"];
}

/** The `--help` text of `fdpass info`. */
export const INFO_HELP = `fdpass info: show the platform layout fdpass uses

Usage:
  fdpass info [--json]

Prints the Deno version and target, the layout in use (its name says the
OS and architecture), the libc it opens, the poller backend, the sizes of
the structs it fills in by hand (msghdr, cmsghdr, sockaddr_un, ...), the
CMSG_* values for fds, the receive control capacity, the fd and path
limits, the platform features and the constants it passes to libc.

Options:
  --json       One JSON object instead of text. Keys: deno, denoTarget,
               layout, libraryPath, errnoSymbol, variadicOnStack, poller,
               sizes, cmsg, receiveControlCapacity, maxFdsPerMessage,
               maxPathBytes, features, abstractNamespace, seqpacket,
               accept4, constants. (Earlier versions had a "platform"
               object {os, arch, target}: "layout" names the OS and
               architecture, "denoTarget" is the former target.
               abstractNamespace, seqpacket and accept4 repeat
               features.abstractNames, .seqpacket and .accept4.)
  -h, --help   Show this help.

Exit codes:
  0  printed
  1  runtime failure (libc cannot be opened, unsupported platform)
  2  usage error (unknown option, unexpected argument)

Permissions: --allow-ffi.
`;

/**
 * Collects what `fdpass info` prints. Opens libc.
 *
 * @returns The report.
 */
export function infoReport(): InfoReport {
  const facts = platformFacts();
  const poller = startedPollerStats();
  return {
    deno: Deno.version.deno,
    denoTarget: Deno.build.target,
    layout: facts.layout,
    libraryPath: facts.libraryPath,
    errnoSymbol: facts.errnoSymbol,
    variadicOnStack: facts.variadicOnStack,
    poller: poller.backend,
    pollerFallback: poller.fallbackReason,
    sizes: facts.sizes,
    cmsg: facts.cmsg,
    receiveControlCapacity: facts.receiveControlCapacity,
    maxFdsPerMessage: facts.maxFdsPerMessage,
    maxPathBytes: facts.maxPathBytes,
    features: facts.features,
    abstractNamespace: facts.features.abstractNames,
    seqpacket: facts.features.seqpacket,
    accept4: facts.features.accept4,
    constants: facts.constants,
  };
}

/**
 * The human-readable form of the report.
 *
 * @param info The report.
 * @returns Lines of text, without a final newline.
 */
export function formatInfo(info: InfoReport): string {
  const yes = (value: boolean): string => value ? "yes" : "no";
  const fdSize = platformFacts().fdSize;
  const rows: [string, string][] = [
    ["deno", `${info.deno} (${info.denoTarget})`],
    ["layout", info.layout],
    ["libc", `${info.libraryPath} (errno via ${info.errnoSymbol})`],
    ["variadic on stack", yes(info.variadicOnStack)],
    [
      "poller",
      info.pollerFallback === null
        ? info.poller
        : `${info.poller} (io_uring refused: ${info.pollerFallback})`,
    ],
    [
      "struct sizes",
      Object.entries(info.sizes).map(([name, size]) => `${name} ${size}`).join(", "),
    ],
    ["CMSG_ALIGN", `${info.cmsg.align}`],
    ["CMSG_DATA offset", `${info.cmsg.dataOffset}`],
    [`CMSG_LEN(${fdSize})`, `${info.cmsg.lenOneFd}`],
    [`CMSG_SPACE(${fdSize})`, `${info.cmsg.spaceOneFd}`],
    [`CMSG_SPACE(${info.maxFdsPerMessage * fdSize})`, `${info.cmsg.spaceMaxFds}`],
    ["receive control", `${info.receiveControlCapacity} bytes`],
    ["max fds/message", `${info.maxFdsPerMessage}`],
    ["max socket path", `${info.maxPathBytes} bytes`],
  ];
  const width = Math.max(
    ...rows.map(([name]) => name.length),
    ...Object.keys(info.features).map((name) => name.length + 2),
    ...Object.keys(info.constants).map((name) => name.length + 2),
  );
  const lines = rows.map(([name, value]) => `${name.padEnd(width)}  ${value}`);
  lines.push("features");
  for (const [name, value] of Object.entries(info.features)) {
    lines.push(`  ${name.padEnd(width - 2)}  ${yes(value)}`);
  }
  lines.push("constants");
  for (const [name, value] of Object.entries(info.constants)) {
    lines.push(`  ${name.padEnd(width - 2)}  ${value} (0x${value.toString(16)})`);
  }
  return lines.join("\n");
}

/**
 * Runs `fdpass info`.
 *
 * @param args The arguments after `info`.
 * @returns The exit status.
 * @throws {UsageError} For bad arguments.
 */
export function infoCommand(args: readonly string[]): number {
  const parsed = parseCommand(
    { command: "info", booleans: ["json"], strings: [], positionals: false },
    args,
  );
  if (parsed.help) {
    console.log(INFO_HELP);
    return EXIT_OK;
  }
  const info = infoReport();
  console.log(parsed.booleans.get("json") ? JSON.stringify(info, null, 2) : formatInfo(info));
  return EXIT_OK;
}
