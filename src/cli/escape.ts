/**
 * Escapes for the text output of `fdpass`: received paths, message data and
 * file contents come from another process, and a raw newline, carriage
 * return or terminal escape sequence in them would forge or hide output
 * lines. They are shown with JSON-style escapes instead (`\n`, `\r`,
 * `\u001b`). The `--json` output needs none of this: `JSON.stringify`
 * already puts every string on one line.
 *
 * @module
 */

// C0 controls, DEL and C1 controls (Unicode category Cc), the line and
// paragraph separators some viewers break lines at, and the bidirectional
// formatting characters that reorder how a line reads ("Trojan Source",
// CVE-2021-42574).
const UNSAFE = "\\u0000-\\u001f\\u007f-\\u009f\\u061c\\u200e\\u200f\\u2028-\\u202e\\u2066-\\u2069";

const SHORT: Readonly<Record<string, string>> = {
  "\b": "\\b",
  "\t": "\\t",
  "\n": "\\n",
  "\f": "\\f",
  "\r": "\\r",
  '"': '\\"',
  "\\": "\\\\",
};

function escapeChar(char: string): string {
  return SHORT[char] ?? `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`;
}

const FIELD = new RegExp(`[${UNSAFE}\\\\]`, "g");
const QUOTED = new RegExp(`[${UNSAFE}\\\\"]`, "g");
const CONTENT = new RegExp(`(?!\\t)[${UNSAFE}]`, "g");

/**
 * Escapes a field of a text line, such as a path: control characters and
 * backslashes become JSON-style escapes, so the field stays on its line and
 * reads back unambiguously.
 *
 * @param text The text.
 * @returns The text with `\n`, `\u001b`, `\\` and the like in place of the
 * characters they name.
 */
export function escapeField(text: string): string {
  return text.replace(FIELD, escapeChar);
}

/**
 * A JSON-style quoted string, which also escapes DEL, C1 controls, line
 * separators and bidirectional formatting characters (which
 * `JSON.stringify` leaves raw).
 *
 * @param text The text.
 * @returns `"..."` with escapes.
 */
export function quote(text: string): string {
  return `"${text.replace(QUOTED, escapeChar)}"`;
}

/**
 * Escapes one line of file contents for `--cat`: control characters other
 * than tab become JSON-style escapes; backslashes and everything else stay
 * as they are, so the line reads like `cat` output (`--json` has the exact
 * bytes).
 *
 * @param line One line, without its newline.
 * @returns The line, safe to print after a prefix.
 */
export function escapeContentLine(line: string): string {
  return line.replace(CONTENT, escapeChar);
}
