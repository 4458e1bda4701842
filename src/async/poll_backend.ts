/**
 * The portable backend: `poll(2)` over every fd with a waiter, rebuilt for
 * each wait, plus a pipe that cuts a wait short.
 *
 * @module
 */

import { libc } from "../../ffi/libc.ts";
import { pipeFds, setNonblocking } from "../core/fd_ops.ts";
import type { Backend, Interest, Report } from "./backend.ts";

/** `poll` over a rebuilt array; see {@linkcode Backend}. */
export class PollBackend implements Backend {
  readonly name = "poll";
  readonly dynamic = false;
  readonly edge = false;
  readonly #wakeRead: number;
  readonly #wakeWrite: number;
  // Off-heap: the kernel writes revents here from Deno's blocking thread.
  #fds: Uint8Array = new Uint8Array(new ArrayBuffer(8 * 64));
  #view: DataView = new DataView(this.#fds.buffer);
  #count = 0;
  readonly #byte = new Uint8Array(new ArrayBuffer(64));

  /** Creates the wake pipe. */
  constructor() {
    const [r, w] = pipeFds();
    try {
      setNonblocking(r, true);
      setNonblocking(w, true);
    } catch (error) {
      libc().lib.close(r);
      libc().lib.close(w);
      throw error;
    }
    this.#wakeRead = r;
    this.#wakeWrite = w;
  }

  arm(): boolean {
    return true;
  }

  matches(): boolean {
    return false;
  }

  idle(): void {}

  unwanted(): void {}

  forget(): void {}

  #fill(interests: ReadonlyMap<number, Interest>): number {
    const { layout } = libc();
    const p = layout.pollfd;
    const c = layout.constants;
    const needed = (interests.size + 1) * p.size;
    if (needed > this.#fds.byteLength) {
      let size = this.#fds.byteLength;
      while (size < needed) size *= 2;
      this.#fds = new Uint8Array(new ArrayBuffer(size));
      this.#view = new DataView(this.#fds.buffer);
    }
    let i = 0;
    const put = (fd: number, events: number) => {
      const at = i++ * p.size;
      this.#view.setInt32(at + p.fd, fd, true);
      this.#view.setInt16(at + p.events, events, true);
      this.#view.setInt16(at + p.revents, 0, true);
    };
    put(this.#wakeRead, c.POLLIN);
    for (const [fd, interest] of interests) {
      put(fd, (interest.read ? c.POLLIN : 0) | (interest.write ? c.POLLOUT : 0));
    }
    this.#count = i;
    return i;
  }

  wait(interests: ReadonlyMap<number, Interest>, timeout: number): Promise<number> {
    const n = this.#fill(interests);
    return libc().lib.poll_wait(this.#fds, BigInt(n), timeout);
  }

  events(_count: number, report: Report): void {
    const { layout } = libc();
    const p = layout.pollfd;
    const c = layout.constants;
    const broken = c.POLLERR | c.POLLHUP | c.POLLNVAL;
    // Entry 0 is the wake pipe.
    for (let i = 1; i < this.#count; i++) {
      const at = i * p.size;
      const revents = this.#view.getInt16(at + p.revents, true);
      if (revents === 0) continue;
      const hangup = (revents & broken) !== 0;
      report(
        this.#view.getInt32(at + p.fd, true),
        hangup || (revents & c.POLLIN) !== 0,
        hangup || (revents & c.POLLOUT) !== 0,
        hangup,
      );
    }
  }

  wake(): void {
    libc().lib.write(this.#wakeWrite, this.#byte, 1n);
  }

  drainWake(): void {
    while (Number(libc().lib.read(this.#wakeRead, this.#byte, 64n)) > 0) {
      // Emptied: the pipe is nonblocking.
    }
  }

  probe(interests: ReadonlyMap<number, Interest>): number {
    const { lib, errno } = libc();
    const n = this.#fill(interests);
    return lib.poll(this.#fds, BigInt(n), 0) < 0 ? errno[0]! : 0;
  }

  close(): void {
    libc().lib.close(this.#wakeRead);
    libc().lib.close(this.#wakeWrite);
  }
}
