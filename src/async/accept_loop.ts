/**
 * The `for await` loop of a listener: connections until it is closed.
 *
 * @module
 */

/** What the loop needs from a listener. */
export interface Accepting<T> {
  /** Whether the listener was closed. */
  readonly closed: boolean;
  /** Accepts one connection. */
  accept(): Promise<T>;
}

/**
 * Yields accepted connections until the listener is closed; a close while
 * an accept waits ends the loop instead of throwing.
 *
 * @param listener The listener.
 * @returns An async iterator of connections.
 */
export async function* acceptUntilClosed<T>(listener: Accepting<T>): AsyncGenerator<T> {
  while (!listener.closed) {
    let conn: T;
    try {
      conn = await listener.accept();
    } catch (error) {
      if (listener.closed) return;
      throw error;
    }
    yield conn;
  }
}
