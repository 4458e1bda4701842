/**
 * Argument checks shared by every layer: fd numbers, `FdLike` values,
 * abort signals, C strings and paths. Messages name the argument and quote
 * the bad value.
 *
 * @module
 */

/** Something that names an fd: a number, or an object with an `fd` (such as `OwnedFd`). */
export type FdLike = number | { readonly fd: number };

/**
 * Describes a value for an error message.
 *
 * @param value Any value.
 * @returns A short description.
 */
export function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "string") return `"${value}"`;
  if (typeof value === "object") {
    return value.constructor?.name ? `an instance of ${value.constructor.name}` : "an object";
  }
  if (typeof value === "function") return "a function";
  return `${typeof value} ${String(value)}`;
}

/**
 * Checks that `value` is a usable fd number.
 *
 * @param value The value to check.
 * @param name The argument name for the message.
 * @returns The fd number.
 */
export function checkFdNumber(value: unknown, name: string): number {
  if (typeof value !== "number") {
    throw new TypeError(
      `Argument "${name}" must be a number or an fd object, received ${
        nearMissAdvice(value) ?? describeValue(value)
      }`,
    );
  }
  if (!Number.isInteger(value) || value < 0 || value > 0x7fffffff) {
    throw new RangeError(
      `Argument "${name}" must be a non-negative integer fd number, received ${value}`,
    );
  }
  return value;
}

/**
 * The fd number of an {@linkcode FdLike}: a number, or an open object with
 * an `fd` (a closed `OwnedFd` is refused by name).
 *
 * @param item A number or an object with an `fd`.
 * @param name The argument name for errors.
 * @returns The number.
 */
export function fdNumberOf(item: FdLike, name: string): number {
  if (typeof item === "number") return checkFdNumber(item, name);
  if (typeof item === "object" && item !== null && "fd" in item) {
    if ((item as { closed?: unknown }).closed === true) {
      throw new TypeError(`Argument "${name}" is closed`);
    }
    return checkFdNumber(item.fd, name);
  }
  const nearMiss = nearMissAdvice(item);
  throw new TypeError(
    `Argument "${name}" must be an fd number or an object with an fd, received ${
      nearMiss ?? describeValue(item)
    }`,
  );
}

/**
 * Names a Deno or `node:net` resource that holds an fd but does not expose
 * it (Deno 2.9.6 has no public way to get the fd of a `Deno.FsFile`,
 * `Deno.Listener`, `Deno.Conn` or `net.Server`), and says what to pass
 * instead. The checks are structural, so that core imports no class.
 *
 * @param item The value that is not an fd.
 * @returns The description and advice, or `undefined` for anything else.
 */
function nearMissAdvice(item: unknown): string | undefined {
  if (typeof item !== "object" || item === null) return undefined;
  const has = (key: string): boolean => key in item;
  const method = (key: string): boolean =>
    typeof (item as Record<string, unknown>)[key] === "function";
  const hidden = "whose fd Deno does not expose";
  if (item instanceof Deno.FsFile) {
    return `a Deno.FsFile, ${hidden}: open the file with openFd() or with node:fs openSync() ` +
      `(which returns an fd number and checks --allow-read) instead`;
  }
  if (method("accept") && has("addr")) {
    return `a Deno.Listener, ${hidden}: create the listening socket with listenTcp() or ` +
      `UnixSocket.listen() instead, and serve a TCP one with node:http server.listen({ fd })`;
  }
  if (has("remoteAddr") && has("localAddr")) {
    return `a Deno.Conn, ${hidden}: make the connection with UnixSocket.connect() or ` +
      `accept it with UnixListener.accept() instead, or pass the listening socket`;
  }
  if (method("listen") && method("address") && method("getConnections")) {
    return `a node:net Server, ${hidden}: create the listening socket with listenTcp() ` +
      `instead, pass that, and serve it with server.listen({ fd })`;
  }
  return undefined;
}

/**
 * Checks an optional `signal` option before anything is registered.
 *
 * @param signal The value given.
 * @returns The signal, or `undefined`.
 */
export function checkSignal(signal: unknown): AbortSignal | undefined {
  if (signal === undefined) return undefined;
  if (!(signal instanceof AbortSignal)) {
    throw new TypeError(
      `Option "signal" must be an AbortSignal, received ${describeValue(signal)}${
        signal instanceof AbortController ? ": pass controller.signal" : ""
      }`,
    );
  }
  return signal;
}

/**
 * Checks an options argument: `undefined` or an object.
 *
 * @param options The value given.
 * @returns The options, `{}` for `undefined`.
 */
export function checkOptions<T extends object>(options: T | undefined): T {
  if (options === undefined) return {} as T;
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `Argument "options" must be an object, received ${describeValue(options)}`,
    );
  }
  return options;
}

const encoder = new TextEncoder();

/**
 * Encodes a string (as UTF-8) or copies raw bytes as a NUL-terminated C
 * string: the one way the library builds one.
 *
 * @param value The string or bytes.
 * @param name The argument name for errors.
 * @returns The bytes, ending in NUL.
 */
export function cString(value: string | Uint8Array, name: string): Uint8Array {
  if (value instanceof Uint8Array) {
    if (value.includes(0)) {
      throw new TypeError(`Argument "${name}" must not contain a NUL byte`);
    }
    const bytes = new Uint8Array(value.byteLength + 1);
    bytes.set(value);
    return bytes;
  }
  if (typeof value !== "string") {
    throw new TypeError(`Argument "${name}" must be a string, received ${describeValue(value)}`);
  }
  if (value.includes("\0")) {
    throw new TypeError(
      `Argument "${name}" must not contain a NUL character, received "${
        value.replaceAll("\0", "\\0")
      }"`,
    );
  }
  const bytes = new Uint8Array(value.length * 3 + 1);
  const { written } = encoder.encodeInto(value, bytes);
  return bytes.subarray(0, written + 1);
}

/**
 * Turns a `string | URL` path argument into a string.
 *
 * @param path The path.
 * @param name The argument name for errors.
 * @returns The path as a string.
 */
export function pathString(path: string | URL, name: string): string {
  if (path instanceof URL) {
    if (path.protocol !== "file:") {
      throw new TypeError(
        `Argument "${name}" must be a file: URL, received "${path.href}"`,
      );
    }
    return decodeURIComponent(path.pathname);
  }
  if (typeof path !== "string") {
    throw new TypeError(`Argument "${name}" must be a string or a URL`);
  }
  if (path === "") {
    throw new TypeError(`Argument "${name}" must not be empty`);
  }
  return path;
}

/**
 * Checks an integer option in a range.
 *
 * @param value The value given.
 * @param name The option name.
 * @param min The smallest allowed value.
 * @param max The largest allowed value.
 * @returns The value.
 */
export function checkIntegerOption(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(
      `Option "${name}" must be an integer from ${min} to ${max}, received ${
        typeof value === "number" ? value : describeValue(value)
      }`,
    );
  }
  return value;
}
