/**
 * The version `fdpass --version` prints. It is a constant rather than an
 * import of `deno.json`, so that it reads the same from a clone, from an
 * installed copy and from JSR; `tests/cli_test.ts` checks that it equals the
 * `version` in `deno.json`, so the two cannot drift apart unnoticed.
 *
 * @module
 */

/** The package version, as in `deno.json`. */
export const VERSION = "0.1.0";
