/**
 * The epoll backend (Linux, epoll(7)): edge-triggered registrations kept
 * between waits, and an eventfd that cuts a wait short.
 *
 * A registration stays armed after a report (`EPOLLET`), so a receive that
 * waits again on a socket already armed for reading makes no `epoll_ctl`.
 * It is armed for the directions someone waits in; when nobody waits any
 * more, reading stays armed, writing does not (a writability edge comes
 * each time the peer reads). An fd reported while nobody waits is disarmed
 * (`EPOLLONESHOT` with no events: an error or hangup is still reported
 * once), so a socket nobody reads costs at most one report.
 *
 * With `wakeOnPeerRead` (the io_uring backend), a socket armed for reading
 * is armed for writability edges too, as Deno's own sockets are (tokio
 * registers both directions, edge-triggered). Such an edge comes when the
 * peer reads what this side sent, typically just before it answers: the
 * wake-up it brings finds the thread about to receive the answer instead
 * of deep asleep. With the io_uring doorbell this halved the async
 * ping-pong's round trip on this project's 2-core virtual machines, with
 * fewer context switches and less CPU per round trip; with the epoll
 * backend, whose every wake-up passes through a thread of Deno's blocking
 * pool, it cost more than it saved, so that backend leaves it off.
 *
 * @module
 */

import { libc } from "../../ffi/libc.ts";
import { errnoError } from "../core/errors.ts";
import { check } from "../core/syscall.ts";
import type { Backend, Interest, Report } from "./backend.ts";

const MAX_EVENTS = 256;

/** The directions a registration is armed for (bits). */
const READ = 1;
const WRITE = 2;

/** Options of {@linkcode EpollBackend}. */
export interface EpollBackendOptions {
  /**
   * Arm sockets waited on for reading for writability edges too (see the
   * module doc). Default `false`.
   */
  wakeOnPeerRead?: boolean;
}

/** epoll with edge-triggered registrations; see {@linkcode Backend}. */
export class EpollBackend implements Backend {
  readonly name = "epoll";
  readonly dynamic = true;
  readonly edge = true;
  readonly #epfd: number;
  readonly #wakeFd: number;
  // Off-heap: the kernel writes events here from Deno's blocking thread.
  readonly #events: Uint8Array;
  readonly #eventsView: DataView;
  readonly #ctl = new Uint8Array(new ArrayBuffer(16));
  readonly #ctlView = new DataView(this.#ctl.buffer);
  readonly #counter = new BigUint64Array(new ArrayBuffer(8));
  // fd -> generation of its registration. An event carries the generation
  // it was registered with: an fd number closed behind our back stays
  // registered for its old file (epoll(7), "Questions and answers" 6), and
  // a new registration under the same number gets a new generation, so the
  // old file's events are recognised and dropped.
  readonly #armed = new Map<number, number>();
  // fd -> the directions its registration is armed for (READ | WRITE), 0
  // when it is disarmed. Kept in step with #armed.
  readonly #directions = new Map<number, number>();
  #generations = 0;
  readonly #wakeOnPeerRead: boolean;
  // Set when the epoll fd turned out to be closed behind our back: its
  // number may belong to another file by now and must not be closed again.
  #lost = false;

  /**
   * Creates the epoll fd and the wake eventfd.
   *
   * @param options See {@linkcode EpollBackendOptions}.
   */
  constructor(options: EpollBackendOptions = {}) {
    this.#wakeOnPeerRead = options.wakeOnPeerRead ?? false;
    const { lib, layout } = libc();
    const c = layout.constants;
    if (!layout.features.epoll || !layout.features.eventfd || layout.epollEvent === null) {
      throw new Deno.errors.NotSupported("epoll is not available on this platform");
    }
    let epfd = -1;
    check(() => epfd = lib.epoll_create1!(c.EPOLL_CLOEXEC), "epoll_create1");
    let wakeFd = -1;
    try {
      check(() => wakeFd = lib.eventfd!(0, c.EFD_CLOEXEC | c.EFD_NONBLOCK), "eventfd");
    } catch (error) {
      lib.close(epfd);
      throw error;
    }
    this.#epfd = epfd;
    this.#wakeFd = wakeFd;
    this.#events = new Uint8Array(new ArrayBuffer(layout.epollEvent.size * MAX_EVENTS));
    this.#eventsView = new DataView(this.#events.buffer);
    // The wake fd stays armed, level-triggered.
    this.#control(c.EPOLL_CTL_ADD, wakeFd, c.EPOLLIN);
  }

  #control(op: number, fd: number, events: number, generation = 0): number {
    const { lib, layout } = libc();
    const e = layout.epollEvent!;
    this.#ctlView.setUint32(e.events, events, true);
    // epoll_data_t as two halves: the fd number, then the generation.
    this.#ctlView.setUint32(e.data, fd, true);
    this.#ctlView.setUint32(e.data + 4, generation, true);
    return lib.epoll_ctl!(this.#epfd, op, fd, this.#ctl);
  }

  matches(fd: number, read: boolean, write: boolean): boolean {
    return this.#directions.get(fd) === ((read ? READ : 0) | (write ? WRITE : 0));
  }

  arm(fd: number, read: boolean, write: boolean): boolean {
    const { layout, errno } = libc();
    const c = layout.constants;
    const directions = (read ? READ : 0) | (write ? WRITE : 0);
    const mask = this.#mask(directions);
    // EPOLL_CTL_MOD and _ADD look at the fd as it is now: ready already, it
    // is reported at once, edge or not.
    const known = this.#armed.get(fd);
    if (known !== undefined && this.#control(c.EPOLL_CTL_MOD, fd, mask, known) === 0) {
      this.#directions.set(fd, directions);
      return true;
    }
    if (known === undefined || errno[0] === layout.errno.ENOENT) {
      // New, or our record outlived the registration (the number was closed
      // and reused behind our back): register afresh.
      const generation = this.#generations = (this.#generations + 1) >>> 0;
      if (this.#control(c.EPOLL_CTL_ADD, fd, mask, generation) === 0) {
        this.#armed.set(fd, generation);
        this.#directions.set(fd, directions);
        return true;
      }
      if (errno[0] === layout.errno.EEXIST) {
        // Registered by a record we dropped: take it over.
        if (this.#control(c.EPOLL_CTL_MOD, fd, mask, generation) === 0) {
          this.#armed.set(fd, generation);
          this.#directions.set(fd, directions);
          return true;
        }
      }
    }
    const e = errno[0]!;
    this.#armed.delete(fd);
    this.#directions.delete(fd);
    // Regular files and directories cannot be polled: always ready.
    if (e === layout.errno.EPERM) return false;
    throw errnoError(e, "epoll_ctl");
  }

  /** The epoll events for `directions` (READ | WRITE, not 0). */
  #mask(directions: number): number {
    const c = libc().layout.constants;
    const writable = (directions & WRITE) !== 0 || this.#wakeOnPeerRead;
    return ((directions & READ) !== 0 ? c.EPOLLIN : 0) | (writable ? c.EPOLLOUT : 0) | c.EPOLLET;
  }

  idle(fd: number, _fired: boolean): void {
    const armed = this.#directions.get(fd);
    if (armed === undefined || (armed & WRITE) === 0) return;
    if (armed === (READ | WRITE) && this.#wakeOnPeerRead) {
      // Armed for reading, the events stay the same.
      this.#directions.set(fd, READ);
      return;
    }
    // Writability edges come each time the peer reads: stop them.
    this.#disarm(fd, armed & READ);
  }

  unwanted(fd: number): void {
    const armed = this.#directions.get(fd);
    if (armed !== undefined && armed !== 0) this.#disarm(fd, 0);
  }

  /** Re-arms `fd` for `directions` only (0: disarmed); forgets it if that fails. */
  #disarm(fd: number, directions: number): void {
    const c = libc().layout.constants;
    // With no events, a one-shot registration reports an error or hangup
    // once and then never fires.
    const mask = directions === 0 ? c.EPOLLONESHOT : this.#mask(directions);
    if (this.#control(c.EPOLL_CTL_MOD, fd, mask, this.#armed.get(fd)!) === 0) {
      this.#directions.set(fd, directions);
    } else {
      this.#armed.delete(fd);
      this.#directions.delete(fd);
    }
  }

  forget(fd: number): void {
    if (!this.#armed.delete(fd)) return;
    this.#directions.delete(fd);
    // ENOENT/EBADF: already gone with a close; nothing to undo.
    this.#control(libc().layout.constants.EPOLL_CTL_DEL, fd, 0);
  }

  wait(_interests: ReadonlyMap<number, Interest>, timeout: number): Promise<number> {
    return libc().lib.epoll_wait!(this.#epfd, this.#events, MAX_EVENTS, timeout);
  }

  /** The epoll fd, for a backend that watches it as a whole (io_uring). */
  get fd(): number {
    return this.#epfd;
  }

  /**
   * Collects what is ready now, on this thread (`epoll_wait` with a zero
   * timeout), for {@linkcode events}.
   *
   * @returns The event count, or -1 on failure.
   */
  collect(): number {
    return libc().lib.epoll_wait_now!(this.#epfd, this.#events, MAX_EVENTS, 0);
  }

  events(count: number, report: Report): void {
    const { layout } = libc();
    const e = layout.epollEvent!;
    const c = layout.constants;
    const broken = c.EPOLLERR | c.EPOLLHUP;
    for (let i = 0; i < count; i++) {
      const at = i * e.size;
      const mask = this.#eventsView.getUint32(at + e.events, true);
      const fd = this.#eventsView.getInt32(at + e.data, true);
      if (fd === this.#wakeFd) continue;
      // A registration left behind for a file whose number was reused.
      if (this.#eventsView.getUint32(at + e.data + 4, true) !== this.#armed.get(fd)) continue;
      const hangup = (mask & broken) !== 0;
      report(fd, hangup || (mask & c.EPOLLIN) !== 0, hangup || (mask & c.EPOLLOUT) !== 0, hangup);
    }
  }

  wake(): void {
    this.#counter[0] = 1n;
    libc().lib.write(this.#wakeFd, this.#counter, 8n);
  }

  drainWake(): void {
    libc().lib.read(this.#wakeFd, this.#counter, 8n);
  }

  probe(): number {
    // The epoll fd itself is what can go bad (closed or replaced behind our
    // back): touching the wake fd's registration tells.
    const { layout, errno } = libc();
    const c = layout.constants;
    if (this.#control(c.EPOLL_CTL_MOD, this.#wakeFd, c.EPOLLIN) === 0) return 0;
    const e = errno[0]!;
    if (e === layout.errno.EBADF || e === layout.errno.EINVAL) this.#lost = true;
    return e;
  }

  close(): void {
    libc().lib.close(this.#wakeFd);
    if (!this.#lost) libc().lib.close(this.#epfd);
  }
}
