/**
 * Argument parsing for the `fdpass` command: `parseArgs` from `@std/cli`
 * with strict checks (unknown options and stray arguments are usage
 * errors), and the checks shared by the subcommands.
 *
 * @module
 */

import { parseArgs } from "@std/cli";
import { checkAddress, type UnixAddress } from "../core/address.ts";

/** Exit status: success. */
export const EXIT_OK = 0;
/** Exit status: the command was well-formed but failed at run time. */
export const EXIT_FAILURE = 1;
/** Exit status: bad arguments. */
export const EXIT_USAGE = 2;

/** The arguments are wrong: reported with a pointer to `--help`, exit status 2. */
export class UsageError extends Error {
  /** The subcommand whose arguments were wrong, or `null` at the top level. */
  readonly command: string | null;

  /**
   * Creates the error.
   *
   * @param message What is wrong, sentence case, no trailing period.
   * @param command The subcommand, or `null` at the top level.
   */
  constructor(message: string, command: string | null) {
    super(message);
    this.name = "UsageError";
    this.command = command;
  }
}

/** Which options a subcommand takes. */
export interface CommandSpec {
  /** The subcommand name, for messages. */
  readonly command: string;
  /** Options without a value (`--help`/`-h` is always added). */
  readonly booleans: readonly string[];
  /** Options with a value. */
  readonly strings: readonly string[];
  /** Options with a value that may be repeated; collected into an array. */
  readonly repeatable?: readonly string[];
  /** Whether positional arguments are allowed. */
  readonly positionals: boolean;
}

/** The result of {@linkcode parseCommand}. */
export interface ParsedCommand {
  /** Whether `--help` or `-h` was given. */
  readonly help: boolean;
  /** Boolean options by name. */
  readonly booleans: ReadonlyMap<string, boolean>;
  /** Single-value options that were given, by name (the last one wins). */
  readonly strings: ReadonlyMap<string, string>;
  /** Repeatable options by name (empty arrays when absent). */
  readonly repeated: ReadonlyMap<string, readonly string[]>;
  /** Positional arguments, including everything after `--`. */
  readonly positionals: readonly string[];
}

/**
 * Parses a subcommand's arguments.
 *
 * @param spec The options the subcommand takes.
 * @param args The arguments after the subcommand name.
 * @returns The options and positionals.
 * @throws {UsageError} For an unknown option or an unexpected positional.
 */
export function parseCommand(spec: CommandSpec, args: readonly string[]): ParsedCommand {
  const unknown: string[] = [];
  const repeatable = spec.repeatable ?? [];
  const parsed = parseArgs(joinValues(args, [...spec.strings, ...repeatable]), {
    boolean: ["help", ...spec.booleans],
    // "_" keeps positionals as strings: a file named "123" stays "123".
    string: ["_", ...spec.strings, ...repeatable],
    collect: [...repeatable],
    alias: { h: "help" },
    unknown: (_arg: string, key?: string): boolean => {
      // Positionals reach this callback without a key.
      if (key === undefined) return true;
      unknown.push(key.length === 1 ? `-${key}` : `--${key}`);
      return false;
    },
  }) as Record<string, unknown> & { _: unknown[] };

  const help = parsed.help === true;
  if (unknown.length > 0 && !help) {
    const list = unknown.map((name) => `"${name}"`).join(", ");
    throw new UsageError(
      `Unknown option${unknown.length === 1 ? "" : "s"} ${list}`,
      spec.command,
    );
  }
  const positionals = parsed._.map(String);
  if (!spec.positionals && positionals.length > 0 && !help) {
    throw new UsageError(`Unexpected argument "${positionals[0]}"`, spec.command);
  }
  const booleans = new Map<string, boolean>();
  for (const name of spec.booleans) booleans.set(name, parsed[name] === true);
  const strings = new Map<string, string>();
  for (const name of spec.strings) {
    const value = parsed[name];
    if (value !== undefined) strings.set(name, String(value));
  }
  const repeated = new Map<string, string[]>();
  for (const name of repeatable) {
    const value = parsed[name];
    repeated.set(name, Array.isArray(value) ? value.map(String) : []);
  }
  return { help, booleans, strings, repeated, positionals };
}

/** A value that `parseArgs` would mistake for a short option: `-1`, `-0.5`, `-.5`. */
const NEGATIVE_NUMBER = /^-[0-9.]/;

/**
 * Rewrites `--name ""` to `--name=` and `--name -1` to `--name=-1`:
 * `parseArgs` does not take an empty string as the value of the option
 * before it (it would become a stray positional), and it reads `-1` as the
 * short option `-1`, so `--count -1` would be an unknown option instead of
 * the range error it deserves.
 *
 * @param args The arguments.
 * @param valued The options that take a value.
 * @returns The arguments to parse.
 */
function joinValues(args: readonly string[], valued: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") {
      out.push(...args.slice(i));
      break;
    }
    const next = args[i + 1];
    const takesValue = arg.startsWith("--") && valued.includes(arg.slice(2));
    if (takesValue && next !== undefined && (next === "" || NEGATIVE_NUMBER.test(next))) {
      out.push(`${arg}=${next}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}

/**
 * The value of a required option that takes a value.
 *
 * @param parsed The parsed arguments.
 * @param name The option name.
 * @param command The subcommand, for the message.
 * @param what What the value is, for the message ("a socket path").
 * @returns The value.
 * @throws {UsageError} When the option is missing or has no value.
 */
export function requireValue(
  parsed: ParsedCommand,
  name: string,
  command: string,
  what: string,
): string {
  const value = parsed.strings.get(name);
  if (value === undefined) {
    throw new UsageError(`Option "--${name}" is required: give ${what}`, command);
  }
  if (value === "") {
    throw new UsageError(`Option "--${name}" needs ${what}`, command);
  }
  return value;
}

/**
 * Turns the `--listen`/`--connect` value into an address and checks it with
 * the library's own address check, so that a long path is a usage error up
 * front, worded as the library words it.
 *
 * @param value The path, or the abstract name with `abstract`.
 * @param abstract Whether `--abstract` was given.
 * @param option The option name, for messages.
 * @param command The subcommand, for messages.
 * @returns The address.
 * @throws {UsageError} When the path is too long, contains NUL, or the
 * platform has no abstract namespace.
 */
export function socketAddress(
  value: string,
  abstract: boolean,
  option: string,
  command: string,
): UnixAddress {
  const address: UnixAddress = abstract ? { abstract: value } : value;
  try {
    return checkAddress(address, `--${option}`);
  } catch (error) {
    if (error instanceof Deno.errors.NotSupported) {
      throw new UsageError(
        `Option "--abstract" cannot be used: ${lowerFirst(error.message)}`,
        command,
      );
    }
    if (error instanceof TypeError || error instanceof RangeError) {
      // checkAddress names the bad argument `Argument "--listen"`.
      throw new UsageError(error.message.replace(/^Argument "/, 'Option "'), command);
    }
    throw error;
  }
}

function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}

/**
 * Parses a decimal integer option value.
 *
 * @param value The text.
 * @param option The option name, for messages.
 * @param command The subcommand, for messages.
 * @param min The smallest allowed value.
 * @param max The largest allowed value.
 * @returns The number.
 * @throws {UsageError} When the text is not a decimal integer from `min` to `max`.
 */
export function integerOption(
  value: string,
  option: string,
  command: string,
  min: number,
  max: number,
): number {
  const n = /^[0-9]+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(
      `Option "--${option}" must be an integer from ${min} to ${max}, received "${value}"`,
      command,
    );
  }
  return n;
}
