// Event channels: Xen's alloc_unbound_xen_event_channel / evtchn_bind_interdomain / notify_via_xen_event_channel /
// evtchn mask-pending, with ALL state in one SharedArrayBuffer so the two ends can live in different threads.
// Each thread makes its own EventChannels object over the same buffer (create() once, attach() elsewhere); the
// handler table is per object (per thread), the port table, pending/mask bits and doorbells are shared.
//
// Ports are per domain, numbered 1..portsPerDomain-1 (port 0 is never valid, as in Xen). Every (domid, port) from
// any caller is validated; a bad one throws EvtchnError and never indexes outside the table.
//
// Wakeup rule (docs/DESIGN.md; coalesced, never lost):
//   notify(d, p) sets the PEER port's pending word with an atomic compare-exchange 0 -> 1. Only on that 0 -> 1
//   transition, and only if the peer port is unmasked, does it Atomics.add the peer domain's doorbell word and
//   Atomics.notify it. A second notify before the consumer runs changes nothing (coalesced).
//   A consumer reads its doorbell (`seen = doorbell(d)`), then dispatch(d) clears each pending word (atomic 1 -> 0)
//   BEFORE running that port's handler, then sleeps only while the doorbell still equals `seen`
//   (waitSync/waitAsync). A notify that lands after the clear sets the word again and bumps the doorbell, so the
//   sleeper either sees a changed doorbell (and does not sleep) or is woken by Atomics.notify: never lost.
//   unmask() of a port that is pending bumps the doorbell (Xen's evtchn_unmask re-raises the upcall).
//
// Waking only sleepers (docs/PERF.md: an Atomics.notify per DR write was a third of the vCPU thread's time in a TX
// flood, and a cross-process futex wake is a ~1 us syscall): each domain has a WAITERS word, the count of threads
// (in any process) inside waitSync/waitAsync for that doorbell. A waiter increments it BEFORE its wait compares the
// doorbell with `seen`, and decrements it after waking; ring() adds to the doorbell, THEN loads WAITERS and calls
// Atomics.notify / the futex wake only if it is non-zero. All four are sequentially consistent atomics (and the
// futex compare happens in the kernel after the waiter's locked add), so either ring() sees the waiter's count, or
// the waiter's compare sees the new doorbell: never lost. The count may over-count (a waiter that died, a waitAsync
// nobody resolves yet): that only costs a needless wake. The word is the unused record of port 0 (never a valid
// port), so the table's layout and VERSION are unchanged.
//
// After the port records, each domain has a line-event area (src/xen/line-events.ts): host-only memory for what
// the console backend tells the domain's vpl011 besides bytes (BREAK, framing/parity errors). It lives here because
// every party that serves a domain maps this table already (VERSION 2 added it).

import { hop } from '../util/hop-trace.js';
import { Vpl011Error } from '../util/errors.js';
import { LINE_EVENT_WORDS } from './line-events.js';

export type EvtchnHandler = (port: number) => void;

export class EvtchnError extends Vpl011Error<'EINVAL' | 'ENOSPC' | 'EBUSY'> {
  constructor(code: EvtchnError['code'], message: string) {
    super(code, `evtchn: ${message}`);
  }
}

/** Per-port state (Xen's ECS_*). */
export const ECS_FREE = 0;
const ECS_RESERVED = 1; // transient: being allocated, bound or closed by some thread
export const ECS_UNBOUND = 2;
export const ECS_INTERDOMAIN = 3;

const MAGIC = 0x45564348; // "EVCH"
const VERSION = 2;
const HEADER_WORDS = 8;
const PORT_WORDS = 8;
// Word offsets inside one port's record.
const P_STATE = 0;
const P_REMOTE_DOM = 1;
const P_REMOTE_PORT = 2;
const P_PENDING = 3;
const P_MASKED = 4;
// In the record of port 0 (never a valid port): the domain's waiter count (see the wakeup rule above).
const P0_WAITERS = 0;

export interface EvtchnOptions {
  /** Domain ids 0..maxDomains-1 are valid. Default 16. */
  maxDomains?: number;
  /** Ports 1..portsPerDomain-1 are valid. Default 64. */
  portsPerDomain?: number;
}

export type WaitResult = 'ok' | 'not-equal' | 'timed-out';

/**
 * How doorbells wake and sleep. Default (a SharedArrayBuffer table shared by threads): Atomics.notify / wait /
 * waitAsync. For a table in cross-process shared memory (a plain ArrayBuffer over a MAP_SHARED mapping, where
 * Atomics.wait is unavailable and would not cross processes anyway) the host layer supplies a futex-based waker
 * (src/host/futex.ts FutexWaker). `wait` must return at once when the word no longer equals `seen`.
 */
export interface DoorbellWaker {
  wake(words: Int32Array, index: number): void;
  wait(words: Int32Array, index: number, seen: number, timeoutMs: number): WaitResult;
  waitAsync(words: Int32Array, index: number, seen: number, timeoutMs: number): Promise<WaitResult>;
}

// Atomics.waitAsync is ES2024 (Node >= 16 has it); the project's lib is ES2022.
type WaitAsyncFn = (
  ta: Int32Array,
  index: number,
  value: number,
  timeout?: number,
) => { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };

export class EventChannels {
  readonly buffer: SharedArrayBuffer | ArrayBuffer;
  readonly maxDomains: number;
  readonly portsPerDomain: number;
  private readonly words: Int32Array;
  private readonly portBase: number;
  // This thread's handlers, [domid][port].
  private readonly handlers: (EvtchnHandler | undefined)[][] = [];
  /** Doorbell rings from this object that had a waiter to wake (Atomics.notify or the futex wake was called). */
  wakesSent = 0;
  /** Handler exceptions caught by dispatch() (a handler never throws into the waiter's loop). */
  handlerErrors = 0;
  lastHandlerError: unknown = undefined;

  /**
   * Test seam (undefined in production; one property test per ring): called inside a doorbell ring between its two
   * steps (the doorbell add and the waiter-count load), so a test can put a waiter exactly there and prove the
   * order of the two steps (test/evtchn.test.ts).
   */
  ringProbe: ((domid: number) => void) | undefined = undefined;

  /** Set for a table in cross-process shared memory; undefined for a SharedArrayBuffer table. */
  private readonly waker: DoorbellWaker | undefined;

  private constructor(buffer: SharedArrayBuffer | ArrayBuffer, waker?: DoorbellWaker) {
    if (waker === undefined && !(buffer instanceof SharedArrayBuffer)) {
      throw new EvtchnError('EINVAL', 'the table must be a SharedArrayBuffer (or come with a cross-process waker)');
    }
    this.waker = waker;
    if (buffer.byteLength < HEADER_WORDS * 4) throw new EvtchnError('EINVAL', 'buffer too small for an event-channel table');
    const words = new Int32Array(buffer);
    if (Atomics.load(words, 0) !== MAGIC || Atomics.load(words, 1) !== VERSION) {
      throw new EvtchnError('EINVAL', 'buffer is not an event-channel table (bad magic/version)');
    }
    const maxDomains = Atomics.load(words, 2);
    const ports = Atomics.load(words, 3);
    if (maxDomains < 1 || ports < 2 || words.length < EventChannels.wordsFor(maxDomains, ports)) {
      throw new EvtchnError('EINVAL', 'event-channel table header does not match its size');
    }
    this.buffer = buffer;
    this.words = words;
    this.maxDomains = maxDomains;
    this.portsPerDomain = ports;
    this.portBase = HEADER_WORDS + maxDomains;
  }

  private static wordsFor(maxDomains: number, ports: number): number {
    return HEADER_WORDS + maxDomains + maxDomains * ports * PORT_WORDS + maxDomains * LINE_EVENT_WORDS;
  }

  /** Make a new table (all ports free, doorbells 0). */
  static create(opts: EvtchnOptions = {}): EventChannels {
    const { maxDomains, ports } = EventChannels.checkOptions(opts);
    const sab = new SharedArrayBuffer(EventChannels.wordsFor(maxDomains, ports) * 4);
    const w = new Int32Array(sab);
    w[2] = maxDomains;
    w[3] = ports;
    w[1] = VERSION;
    Atomics.store(w, 0, MAGIC);
    return new EventChannels(sab);
  }

  /** Attach another thread to an existing table (validates the header). */
  static attach(buffer: SharedArrayBuffer): EventChannels;
  /** Attach to a table in cross-process shared memory (src/host/shm.ts), sleeping and waking through `waker`. */
  static attach(buffer: ArrayBuffer | SharedArrayBuffer, waker: DoorbellWaker): EventChannels;
  static attach(buffer: ArrayBuffer | SharedArrayBuffer, waker?: DoorbellWaker): EventChannels {
    return new EventChannels(buffer, waker);
  }

  /** Bytes a table with these options needs (to size a shared-memory object). */
  static byteLength(opts: EvtchnOptions = {}): number {
    const { maxDomains, ports } = EventChannels.checkOptions(opts);
    return EventChannels.wordsFor(maxDomains, ports) * 4;
  }

  /**
   * Initialise a table in place in cross-process shared memory (zero-filled, at least byteLength(opts) bytes) and
   * attach to it. If the memory already holds a valid table (a restarted daemon), it is attached as it is: ports,
   * pending bits and doorbells survive the restart.
   */
  static createIn(buffer: ArrayBuffer, opts: EvtchnOptions, waker: DoorbellWaker): EventChannels {
    const { maxDomains, ports } = EventChannels.checkOptions(opts);
    const w = new Int32Array(buffer);
    if (w.length >= HEADER_WORDS && Atomics.load(w, 0) === MAGIC) return new EventChannels(buffer, waker);
    if (buffer.byteLength < EventChannels.wordsFor(maxDomains, ports) * 4) {
      throw new EvtchnError('EINVAL', 'shared memory too small for this event-channel table');
    }
    Atomics.store(w, 2, maxDomains);
    Atomics.store(w, 3, ports);
    Atomics.store(w, 1, VERSION);
    Atomics.store(w, 0, MAGIC);
    return new EventChannels(buffer, waker);
  }

  private static checkOptions(opts: EvtchnOptions): { maxDomains: number; ports: number } {
    const maxDomains = opts.maxDomains ?? 16;
    const ports = opts.portsPerDomain ?? 64;
    if (!Number.isInteger(maxDomains) || maxDomains < 1 || maxDomains > 1024) {
      throw new EvtchnError('EINVAL', `maxDomains ${maxDomains} out of range 1..1024`);
    }
    if (!Number.isInteger(ports) || ports < 2 || ports > 4096) {
      throw new EvtchnError('EINVAL', `portsPerDomain ${ports} out of range 2..4096`);
    }
    return { maxDomains, ports };
  }

  // ---- validation -------------------------------------------------------------------------------------------

  private checkDom(domid: number): void {
    if (!Number.isInteger(domid) || domid < 0 || domid >= this.maxDomains) {
      throw new EvtchnError('EINVAL', `bad domain id ${String(domid)}`);
    }
  }

  /** The word index of a port record; validates both numbers. */
  private rec(domid: number, port: number): number {
    this.checkDom(domid);
    if (!Number.isInteger(port) || port < 1 || port >= this.portsPerDomain) {
      throw new EvtchnError('EINVAL', `bad port ${String(port)} for domain ${domid}`);
    }
    return this.portBase + (domid * this.portsPerDomain + port) * PORT_WORDS;
  }

  private doorbellIndex(domid: number): number {
    this.checkDom(domid);
    return HEADER_WORDS + domid;
  }

  // ---- allocation and binding -------------------------------------------------------------------------------

  private claimFreePort(domid: number): number {
    for (let p = 1; p < this.portsPerDomain; p++) {
      const r = this.rec(domid, p);
      if (Atomics.compareExchange(this.words, r + P_STATE, ECS_FREE, ECS_RESERVED) === ECS_FREE) {
        Atomics.store(this.words, r + P_PENDING, 0);
        Atomics.store(this.words, r + P_MASKED, 0);
        return p;
      }
    }
    throw new EvtchnError('ENOSPC', `domain ${domid} has no free port`);
  }

  /**
   * alloc_unbound_xen_event_channel: a port in `domid` that only `remoteDomid` may bind. The handler (optional) runs
   * in this thread's dispatch(domid) when the port is notified.
   */
  allocUnbound(domid: number, remoteDomid: number, handler?: EvtchnHandler): number {
    this.checkDom(remoteDomid);
    const port = this.claimFreePort(domid);
    const r = this.rec(domid, port);
    Atomics.store(this.words, r + P_REMOTE_DOM, remoteDomid);
    Atomics.store(this.words, r + P_REMOTE_PORT, 0);
    this.setHandler(domid, port, handler);
    Atomics.store(this.words, r + P_STATE, ECS_UNBOUND);
    return port;
  }

  /**
   * evtchn_bind_interdomain: bind a new port in `domid` to (remoteDomid, remotePort), which must be unbound and
   * allocated for `domid`. Returns the local port.
   */
  bindInterdomain(domid: number, remoteDomid: number, remotePort: number, handler?: EvtchnHandler): number {
    this.checkDom(domid);
    const rr = this.rec(remoteDomid, remotePort);
    const w = this.words;
    if (Atomics.load(w, rr + P_STATE) !== ECS_UNBOUND || Atomics.load(w, rr + P_REMOTE_DOM) !== domid) {
      throw new EvtchnError('EINVAL', `port ${remotePort} of domain ${remoteDomid} is not unbound for domain ${domid}`);
    }
    if (Atomics.compareExchange(w, rr + P_STATE, ECS_UNBOUND, ECS_RESERVED) !== ECS_UNBOUND) {
      throw new EvtchnError('EBUSY', `port ${remotePort} of domain ${remoteDomid} changed while binding`);
    }
    let port: number;
    try {
      port = this.claimFreePort(domid);
    } catch (e) {
      Atomics.store(w, rr + P_STATE, ECS_UNBOUND);
      throw e;
    }
    const lr = this.rec(domid, port);
    Atomics.store(w, lr + P_REMOTE_DOM, remoteDomid);
    Atomics.store(w, lr + P_REMOTE_PORT, remotePort);
    this.setHandler(domid, port, handler);
    Atomics.store(w, lr + P_STATE, ECS_INTERDOMAIN);
    Atomics.store(w, rr + P_REMOTE_PORT, port);
    Atomics.store(w, rr + P_STATE, ECS_INTERDOMAIN);
    return port;
  }

  /**
   * evtchn_close / free_xen_event_channel: free the port; an interdomain peer goes back to unbound (for this domain),
   * as in Xen. Closing a free port is a no-op (so teardown can be idempotent).
   */
  close(domid: number, port: number): void {
    const r = this.rec(domid, port);
    const w = this.words;
    const state = Atomics.load(w, r + P_STATE);
    if (state === ECS_FREE) return;
    if (Atomics.compareExchange(w, r + P_STATE, state, ECS_RESERVED) !== state) {
      throw new EvtchnError('EBUSY', `port ${port} of domain ${domid} changed while closing`);
    }
    if (state === ECS_INTERDOMAIN) {
      const rd = Atomics.load(w, r + P_REMOTE_DOM);
      const rp = Atomics.load(w, r + P_REMOTE_PORT);
      if (this.validPair(rd, rp)) {
        const rr = this.rec(rd, rp);
        if (
          Atomics.load(w, rr + P_REMOTE_DOM) === domid &&
          Atomics.load(w, rr + P_REMOTE_PORT) === port &&
          Atomics.compareExchange(w, rr + P_STATE, ECS_INTERDOMAIN, ECS_RESERVED) === ECS_INTERDOMAIN
        ) {
          Atomics.store(w, rr + P_REMOTE_PORT, 0);
          Atomics.store(w, rr + P_STATE, ECS_UNBOUND);
        }
      }
    }
    this.setHandler(domid, port, undefined);
    Atomics.store(w, r + P_PENDING, 0);
    Atomics.store(w, r + P_MASKED, 0);
    Atomics.store(w, r + P_REMOTE_DOM, 0);
    Atomics.store(w, r + P_REMOTE_PORT, 0);
    Atomics.store(w, r + P_STATE, ECS_FREE);
  }

  private validPair(domid: number, port: number): boolean {
    return Number.isInteger(domid) && domid >= 0 && domid < this.maxDomains && port >= 1 && port < this.portsPerDomain;
  }

  /** Install (or remove, with undefined) this thread's handler for a port. */
  setHandler(domid: number, port: number, handler: EvtchnHandler | undefined): void {
    this.rec(domid, port);
    let table = this.handlers[domid];
    if (!table) {
      table = new Array<EvtchnHandler | undefined>(this.portsPerDomain).fill(undefined);
      this.handlers[domid] = table;
    }
    table[port] = handler;
  }

  // ---- queries ----------------------------------------------------------------------------------------------

  state(domid: number, port: number): number {
    const s = Atomics.load(this.words, this.rec(domid, port) + P_STATE);
    return s === ECS_RESERVED ? ECS_FREE : s;
  }

  /** The (domid, port) this port is bound to, or undefined if it is not interdomain. */
  peer(domid: number, port: number): { domid: number; port: number } | undefined {
    const r = this.rec(domid, port);
    if (Atomics.load(this.words, r + P_STATE) !== ECS_INTERDOMAIN) return undefined;
    return { domid: Atomics.load(this.words, r + P_REMOTE_DOM), port: Atomics.load(this.words, r + P_REMOTE_PORT) };
  }

  /** For an unbound port: the domain allowed to bind it. */
  remoteDomain(domid: number, port: number): number {
    return Atomics.load(this.words, this.rec(domid, port) + P_REMOTE_DOM);
  }

  isPending(domid: number, port: number): boolean {
    return Atomics.load(this.words, this.rec(domid, port) + P_PENDING) !== 0;
  }

  isMasked(domid: number, port: number): boolean {
    return Atomics.load(this.words, this.rec(domid, port) + P_MASKED) !== 0;
  }

  /** Clear a pending bit; returns whether it was set. */
  clearPending(domid: number, port: number): boolean {
    return Atomics.compareExchange(this.words, this.rec(domid, port) + P_PENDING, 1, 0) === 1;
  }

  // ---- notify, mask -----------------------------------------------------------------------------------------

  /**
   * notify_via_xen_event_channel / EVTCHNOP_send from (domid, port): mark the peer port pending and, on its 0 -> 1
   * transition while unmasked, ring the peer domain's doorbell. Returns true if the peer's doorbell was rung.
   * Sending on an unbound port is silently dropped, as Xen does.
   */
  notify(domid: number, port: number): boolean {
    const r = this.rec(domid, port);
    const w = this.words;
    if (Atomics.load(w, r + P_STATE) !== ECS_INTERDOMAIN) return false;
    const rd = Atomics.load(w, r + P_REMOTE_DOM);
    const rp = Atomics.load(w, r + P_REMOTE_PORT);
    if (!this.validPair(rd, rp)) return false; // a half-built binding; nothing valid to signal
    const rr = this.rec(rd, rp);
    if (Atomics.compareExchange(w, rr + P_PENDING, 0, 1) !== 0) return false; // already pending: coalesced
    if (Atomics.load(w, rr + P_MASKED) !== 0) return false;
    this.ring(rd);
    return true;
  }

  mask(domid: number, port: number): void {
    Atomics.store(this.words, this.rec(domid, port) + P_MASKED, 1);
  }

  /** Unmask; if the port is pending, ring the doorbell so the event is not lost (Xen's evtchn_unmask). */
  unmask(domid: number, port: number): void {
    const r = this.rec(domid, port);
    if (Atomics.exchange(this.words, r + P_MASKED, 0) !== 0 && Atomics.load(this.words, r + P_PENDING) !== 0) {
      this.ring(domid);
    }
  }

  private ring(domid: number): void {
    const i = HEADER_WORDS + domid;
    const w = this.words;
    Atomics.add(w, i, 1);
    if (this.ringProbe !== undefined) this.ringProbe(domid);
    // After the add (the Dekker half): a waiter counted itself before comparing the doorbell with its `seen`.
    hop('ring', domid);
    if (Atomics.load(w, this.portBase + domid * this.portsPerDomain * PORT_WORDS + P0_WAITERS) === 0) return;
    this.wakesSent++;
    if (this.waker) this.waker.wake(w, i);
    else Atomics.notify(w, i);
  }

  /** Index of a domain's waiter count (validated domid). */
  private waitersIndex(domid: number): number {
    this.checkDom(domid);
    return this.portBase + domid * this.portsPerDomain * PORT_WORDS + P0_WAITERS;
  }

  /** Threads currently sleeping (or about to) on the domain's doorbell; for tests and diagnostics. */
  waiters(domid: number): number {
    return Atomics.load(this.words, this.waitersIndex(domid));
  }

  /**
   * Ring a domain's doorbell without marking any port pending: wakes a sleeper on that domain so it re-checks its
   * own state (e.g. a vCPU idle in WFI told to stop). Never a substitute for notify().
   */
  kick(domid: number): void {
    this.checkDom(domid);
    this.ring(domid);
  }

  // ---- consumer side ----------------------------------------------------------------------------------------

  /** A one-word view of the domain's doorbell (for native code that polls it: src/cpu/native.ts). */
  /** A domain's line-event area (src/xen/line-events.ts), a view into the table. */
  lineEventWords(domid: number): Int32Array {
    this.checkDom(domid);
    const i = this.portBase + this.maxDomains * this.portsPerDomain * PORT_WORDS + domid * LINE_EVENT_WORDS;
    return this.words.subarray(i, i + LINE_EVENT_WORDS);
  }

  doorbellView(domid: number): Int32Array {
    const i = this.doorbellIndex(domid);
    return this.words.subarray(i, i + 1);
  }

  /** The domain's doorbell counter: read it before dispatch(), wait on it after. */
  doorbell(domid: number): number {
    return Atomics.load(this.words, this.doorbellIndex(domid));
  }

  /**
   * Run this thread's handlers for the domain's pending, unmasked ports, clearing each pending word before its
   * handler. Ports without a handler in this thread stay pending. Returns how many handlers ran. A handler's
   * exception is caught and counted (handlerErrors / lastHandlerError), and the other ports still run.
   */
  dispatch(domid: number): number {
    this.checkDom(domid);
    const table = this.handlers[domid];
    if (!table) return 0;
    const w = this.words;
    let ran = 0;
    for (let p = 1; p < this.portsPerDomain; p++) {
      const h = table[p];
      if (h === undefined) continue;
      const r = this.portBase + (domid * this.portsPerDomain + p) * PORT_WORDS;
      if (Atomics.load(w, r + P_MASKED) !== 0) continue;
      if (Atomics.compareExchange(w, r + P_PENDING, 1, 0) !== 1) continue;
      ran++;
      try {
        h(p);
      } catch (e) {
        this.handlerErrors++;
        this.lastHandlerError = e;
      }
    }
    return ran;
  }

  /**
   * Synchronous wait for the vCPU thread (a guest idling in WFI): sleep while the doorbell equals `seen`, at most
   * timeoutMs (Infinity allowed). Not for a browser main thread; fine in Node's main thread and workers.
   */
  waitSync(domid: number, seen: number, timeoutMs: number): WaitResult {
    const i = this.doorbellIndex(domid);
    const wi = this.waitersIndex(domid);
    const w = this.words;
    Atomics.add(w, wi, 1); // before the compare inside the wait (the wakeup rule's waiter count)
    try {
      if (this.waker) return this.waker.wait(w, i, seen, timeoutMs);
      return Atomics.wait(w as Int32Array<SharedArrayBuffer>, i, seen, timeoutMs);
    } finally {
      Atomics.sub(w, wi, 1);
    }
  }

  /** Asynchronous wait for the backend (Atomics.waitAsync): resolves when the doorbell moves or the timeout ends. */
  waitAsync(domid: number, seen: number, timeoutMs: number): Promise<WaitResult> {
    const i = this.doorbellIndex(domid);
    const wi = this.waitersIndex(domid);
    const w = this.words;
    const waitAsync = (Atomics as unknown as { waitAsync?: WaitAsyncFn }).waitAsync;
    if (!this.waker && typeof waitAsync !== 'function') {
      return Promise.reject(new Error('evtchn: Atomics.waitAsync is not available (Node >= 16 required)'));
    }
    Atomics.add(w, wi, 1); // before the compare (the wakeup rule's waiter count); undone when the wait ends
    const done = (r: WaitResult): WaitResult => {
      Atomics.sub(w, wi, 1);
      return r;
    };
    const fail = (e: unknown): never => {
      Atomics.sub(w, wi, 1);
      throw e;
    };
    try {
      if (this.waker) return this.waker.waitAsync(w, i, seen, timeoutMs).then(done, fail);
      const res = waitAsync!(w, i, seen, timeoutMs);
      return res.async ? res.value.then(done, fail) : Promise.resolve(done(res.value));
    } catch (e) {
      Atomics.sub(w, wi, 1); // the wait never started
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
  }
}
