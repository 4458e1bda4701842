/**
 * SIGINT and SIGTERM for the long-running subcommands (`recv`, `hold`):
 * they stop the command, which then cleans up and exits with 128 + the
 * signal number, as in a shell.
 *
 * @module
 */

/** What {@linkcode stopOnSignals} gives: a signal to stop on, and the status to exit with. */
export interface Stopper extends Disposable {
  /** Aborted on SIGINT or SIGTERM. */
  readonly signal: AbortSignal;
  /** 130 after SIGINT, 143 after SIGTERM, or `fallback` when none came. */
  exitStatus(fallback: number): number;
}

/**
 * Listens for SIGINT and SIGTERM until disposed.
 *
 * @returns The stopper; dispose it to remove the listeners.
 */
export function stopOnSignals(): Stopper {
  const controller = new AbortController();
  let status: number | null = null;
  const handlers: [Deno.Signal, () => void][] = [
    ["SIGINT", () => {
      status ??= 130;
      controller.abort();
    }],
    ["SIGTERM", () => {
      status ??= 143;
      controller.abort();
    }],
  ];
  for (const [signal, handler] of handlers) Deno.addSignalListener(signal, handler);
  return {
    signal: controller.signal,
    exitStatus: (fallback) => status ?? fallback,
    [Symbol.dispose](): void {
      for (const [signal, handler] of handlers) Deno.removeSignalListener(signal, handler);
    },
  };
}
