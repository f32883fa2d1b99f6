// Scenarios for the interleaving explorer (test/lib/interleave.ts): the shared-memory wakeup rules, run on the real
// EventChannels, ConsoleRing / ConsoleRingBackend and Vpl011 code. Each actor is one thread's part of the protocol.
// Sleeps use finite timeouts; under the explorer a timeout fires only when nothing else can run, so every
// 'timed-out' an actor counts is a wakeup the protocol owed it and did not deliver (a fallback hiding a lost wakeup).
//
// `mutant` params swap in a mutated copy of one function, in the actor threads only, to prove the scenarios bite:
//   waiters-before-doorbell  EventChannels ring(): the waiter count loaded BEFORE the doorbell add;
//   unmask-no-ring           EventChannels unmask(): the pending re-raise removed;
//   out-cons-before-publish  ConsoleRing putOut(): out_cons loaded BEFORE out_prod is published.
import { isMainThread } from 'node:worker_threads';
import { EventChannels } from '../../src/xen/evtchn.js';
import { ConsoleRing, ConsoleRingBackend, XENCONS_IN_SIZE, XENCONS_OUT_SIZE } from '../../src/xen/ring.js';
import { Vpl011 } from '../../src/device/vpl011.js';
import { FR, Reg } from '../../src/device/spec.js';
import type { Scenario } from './interleave.js';

export type Mutant = 'none' | 'waiters-before-doorbell' | 'unmask-no-ring' | 'out-cons-before-publish';

// The table every scenario starts from: domain 1 (the guest side) port 1 bound to domain 0 (the backend) port 1.
const GUEST = 1;
const BACKEND = 0;
const EVTCHN_OPTS = { maxDomains: 2, portsPerDomain: 2 };

function initTable(pool: SharedArrayBuffer[], maskGuestPort = false): { gp: number; bp: number } {
  const ev = EventChannels.create(EVTCHN_OPTS);
  const gp = ev.allocUnbound(GUEST, BACKEND);
  const bp = ev.bindInterdomain(BACKEND, GUEST, gp);
  if (maskGuestPort) ev.mask(GUEST, gp);
  new Uint8Array(pool[0]!).set(new Uint8Array(ev.buffer));
  return { gp, bp };
}

function applyMutant(m: Mutant | undefined): void {
  if (isMainThread || m === undefined || m === 'none') return; // never in the test runner's own thread
  type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  if (m === 'waiters-before-doorbell') {
    // evtchn.ts ring() with the two atomics swapped. Layout: doorbells at 8 + domid; waiters at port 0's word 0.
    (EventChannels.prototype as unknown as Any).ring = function (this: Any, domid: number): void {
      const w = this.words as Int32Array;
      const i = 8 + domid;
      const waiters = Atomics.load(w, this.portBase + domid * this.portsPerDomain * 8);
      Atomics.add(w, i, 1);
      if (waiters === 0) return;
      this.wakesSent++;
      Atomics.notify(w, i);
    };
  } else if (m === 'unmask-no-ring') {
    (EventChannels.prototype as unknown as Any).unmask = function (this: Any, domid: number, port: number): void {
      Atomics.store(this.words, this.rec(domid, port) + 4, 0);
    };
  } else if (m === 'out-cons-before-publish') {
    (ConsoleRing.prototype as unknown as Any).putOut = function (this: Any, byte: number): number {
      const idx = this.idx as Int32Array;
      const prod = this.outProdPriv as number;
      let level = (prod - this.outConsSeen) >>> 0;
      if (level >= XENCONS_OUT_SIZE) {
        const c = Atomics.load(idx, 2);
        this.outConsSeen = c;
        level = (prod - c) >>> 0;
        if (level >= XENCONS_OUT_SIZE) {
          this.outLevel = XENCONS_OUT_SIZE;
          return -1;
        }
      }
      this.outData[prod & (XENCONS_OUT_SIZE - 1)] = byte;
      const next = (prod + 1) | 0;
      this.outProdPriv = next;
      const cons = Atomics.load(idx, 2); // MUTANT: before the publish
      Atomics.store(idx, 3, next);
      this.outConsSeen = cons;
      level = (next - cons) >>> 0;
      this.outLevel = level;
      return level;
    };
  }
}

/** Sleep on a domain's doorbell the way every consumer here does; counts a timeout (a wakeup that never came). */
function sleep(ev: EventChannels, domid: number, seen: number, stats: { timeouts: number; sleeps: number }): void {
  stats.sleeps++;
  if (ev.waitSync(domid, seen, 1000) === 'timed-out') stats.timeouts++;
}

function pendingOf(pool: SharedArrayBuffer[], domid: number, port: number): boolean {
  return EventChannels.attach(pool[0]!).isPending(domid, port);
}

interface ConsumerResult {
  handled: number;
  timeouts: number;
  sleeps: number;
  msgs: number;
}

/**
 * Doorbell and waiter count, pending bits: `notifiers` threads each publish a message (an atomic add) and notify
 * the guest port; the consumer (guest side) loops doorbell -> dispatch -> check -> waitSync until it has seen
 * every message. Properties: no lost wakeup (no timeout), and every 0 -> 1 pending transition is consumed exactly
 * once: handler runs + the final pending bit = the notifies that rang.
 */
function doorbell(p: { notifiers?: number; mutant?: Mutant }): Scenario {
  applyMutant(p.mutant);
  const notifiers = p.notifiers ?? 1;
  const consumer = (pool: SharedArrayBuffer[]) => {
    const ev = EventChannels.attach(pool[0]!);
    const msgs = new Int32Array(pool[1]!);
    let handled = 0;
    ev.setHandler(GUEST, 1, () => void handled++);
    return (): ConsumerResult => {
      const stats = { timeouts: 0, sleeps: 0 };
      let seenMsgs = 0;
      for (let round = 0; round < 2 * notifiers + 4; round++) {
        const seen = ev.doorbell(GUEST);
        ev.dispatch(GUEST);
        seenMsgs = Atomics.load(msgs, 0);
        if (seenMsgs >= notifiers) break;
        sleep(ev, GUEST, seen, stats);
      }
      return { handled, msgs: seenMsgs, ...stats };
    };
  };
  const notifier = (pool: SharedArrayBuffer[]) => {
    const ev = EventChannels.attach(pool[0]!);
    const msgs = new Int32Array(pool[1]!);
    return (): { rang: boolean } => {
      Atomics.add(msgs, 0, 1);
      return { rang: ev.notify(BACKEND, 1) };
    };
  };
  return {
    buffers: [EventChannels.byteLength(EVTCHN_OPTS), 8],
    init: (pool) => void initTable(pool),
    actors: [consumer, ...Array.from({ length: notifiers }, () => notifier)],
    check(pool, results) {
      const c = results[0] as ConsumerResult;
      const rang = results.slice(1).filter((r) => (r as { rang: boolean }).rang).length;
      if (c.timeouts !== 0) throw new Error(`consumer slept through a notify (${c.timeouts} timeouts)`);
      if (c.msgs !== notifiers) throw new Error(`consumer saw ${c.msgs} of ${notifiers} messages`);
      const pending = pendingOf(pool, GUEST, 1) ? 1 : 0;
      if (rang !== c.handled + pending) {
        throw new Error(`pending bits inconsistent: ${rang} notifies rang, ${c.handled} handled, final pending ${pending}`);
      }
      if (Atomics.load(new Int32Array(pool[0]!), 8 + GUEST) !== rang) {
        throw new Error('the guest doorbell moved a different number of times than notifies rang');
      }
    },
  };
}

/**
 * Unmask re-raises a pending event (Xen's evtchn_unmask): the guest port starts masked; one thread notifies it (the
 * event stays pending, no doorbell), another unmasks it, the consumer sleeps until its handler has run.
 */
function unmask(p: { mutant?: Mutant }): Scenario {
  applyMutant(p.mutant);
  const consumer = (pool: SharedArrayBuffer[]) => {
    const ev = EventChannels.attach(pool[0]!);
    let handled = 0;
    ev.setHandler(GUEST, 1, () => void handled++);
    return (): ConsumerResult => {
      const stats = { timeouts: 0, sleeps: 0 };
      for (let round = 0; round < 6 && handled === 0; round++) {
        const seen = ev.doorbell(GUEST);
        if (ev.dispatch(GUEST) > 0) break;
        sleep(ev, GUEST, seen, stats);
      }
      return { handled, msgs: 0, ...stats };
    };
  };
  const notifier = (pool: SharedArrayBuffer[]) => {
    const ev = EventChannels.attach(pool[0]!);
    return () => ({ rang: ev.notify(BACKEND, 1) });
  };
  const unmasker = (pool: SharedArrayBuffer[]) => {
    const ev = EventChannels.attach(pool[0]!);
    return () => {
      ev.unmask(GUEST, 1);
      return null;
    };
  };
  return {
    buffers: [EventChannels.byteLength(EVTCHN_OPTS)],
    init: (pool) => void initTable(pool, true),
    actors: [consumer, notifier, unmasker],
    check(pool, results) {
      const c = results[0] as ConsumerResult;
      if (c.timeouts !== 0) throw new Error(`consumer slept through the unmasked event (${c.timeouts} timeouts)`);
      if (c.handled !== 1) throw new Error(`handler ran ${c.handled} times, expected 1`);
      if (pendingOf(pool, GUEST, 1)) throw new Error('event still pending after its handler ran');
    },
  };
}

interface GuestResult {
  timeouts: number;
  sleeps: number;
  dropped: number;
  bytesOut: number;
}
interface BackendResult {
  got: string; // base64
  timeouts: number;
  sleeps: number;
}

/**
 * The OUT ring end to end: a Vpl011 (real device, real ConsoleRing, its notify edges through the real event
 * channel) written by a guest thread that, like a driver, writes DR only while FR.TXFF is clear and otherwise sleeps
 * on its doorbell (the vCPU's WFI) until the backend's notification; a backend thread drains OUT with
 * ConsoleRingBackend.readOut, notifies the guest after each batch, and sleeps on its doorbell when OUT is empty.
 * The ring starts with `prefill` bytes queued at index `start` (near 2^32: the indices wrap) and the guest writes
 * `write` more. Properties: the backend receives exactly the bytes in order (none lost, none doubled), the device
 * dropped none, and nobody needed a timeout.
 */
function ringOut(p: { prefill: number; write: number; start: number; mutant?: Mutant }): Scenario {
  applyMutant(p.mutant);
  const total = p.prefill + p.write;
  const byteAt = (i: number): number => (i * 7 + 3) & 0xff;
  const guest = (pool: SharedArrayBuffer[]) => {
    const ev = EventChannels.attach(pool[0]!);
    const dev = new Vpl011({ ring: new ConsoleRing(pool[1]!), irq: { set: () => {} }, notify: () => void ev.notify(GUEST, 1), profile: 'sbsa' });
    ev.setHandler(GUEST, 1, () => dev.notification());
    return (): GuestResult => {
      const stats = { timeouts: 0, sleeps: 0 };
      for (let i = p.prefill; i < total; i++) {
        for (let round = 0; round < 8 && (dev.read(Reg.FR, 2) & FR.TXFF) !== 0; round++) {
          const seen = ev.doorbell(GUEST);
          ev.dispatch(GUEST);
          if ((dev.read(Reg.FR, 2) & FR.TXFF) === 0) break;
          sleep(ev, GUEST, seen, stats);
        }
        dev.write(Reg.DR, 2, byteAt(i));
      }
      return { ...stats, dropped: dev.counters.txDropped, bytesOut: dev.counters.bytesOut };
    };
  };
  const backend = (pool: SharedArrayBuffer[]) => {
    const ev = EventChannels.attach(pool[0]!);
    const ring = new ConsoleRingBackend(pool[1]!);
    ev.setHandler(BACKEND, 1, () => {});
    return (): BackendResult => {
      const stats = { timeouts: 0, sleeps: 0 };
      const got: number[] = [];
      const buf = new Uint8Array(XENCONS_OUT_SIZE);
      for (let round = 0; round < 4 * total + 8 && got.length < total; round++) {
        const seen = ev.doorbell(BACKEND);
        ev.dispatch(BACKEND);
        const n = ring.readOut(buf);
        if (n > 0) {
          for (let k = 0; k < n; k++) got.push(buf[k]!);
          ev.notify(BACKEND, 1); // space for the guest (the event channel coalesces)
          continue; // the final check: read again before sleeping
        }
        sleep(ev, BACKEND, seen, stats);
      }
      return { got: Buffer.from(got).toString('base64'), ...stats };
    };
  };
  return {
    buffers: [EventChannels.byteLength(EVTCHN_OPTS), 4096],
    init(pool) {
      initTable(pool);
      const page = new Uint8Array(pool[1]!);
      for (let i = 0; i < p.prefill; i++) page[0x400 + ((p.start + i) & (XENCONS_OUT_SIZE - 1))] = byteAt(i);
      const idx = new Int32Array(pool[1]!, 0xc00, 4);
      idx[2] = p.start | 0; // out_cons
      idx[3] = (p.start + p.prefill) | 0; // out_prod
    },
    actors: [guest, backend],
    check(_pool, results) {
      const g = results[0] as GuestResult;
      const b = results[1] as BackendResult;
      if (g.timeouts !== 0) throw new Error(`guest slept through the backend's notification (${g.timeouts} timeouts)`);
      if (b.timeouts !== 0) throw new Error(`backend slept through the device's notify (${b.timeouts} timeouts)`);
      if (g.dropped !== 0) throw new Error(`device dropped ${g.dropped} bytes`);
      const got = Buffer.from(b.got, 'base64');
      const want = Buffer.from(Array.from({ length: total }, (_, i) => byteAt(i)));
      if (!got.equals(want)) throw new Error(`backend got ${got.length} bytes, not the ${total} written in order`);
    },
  };
}

interface InBackendResult {
  sent: number;
  timeouts: number;
  sleeps: number;
}

/**
 * The IN ring's space wakeup: IN starts full (1024 bytes queued at index `start`); the backend has `write` more
 * bytes and sleeps on its doorbell while IN is full; the guest reads `read` bytes through DR (each read that takes
 * IN from full to not full must notify the backend, vpl011.ts). Properties: the guest reads the oldest bytes in
 * order, the backend never needs a timeout, and at the end IN holds exactly the rest followed by the backend's
 * bytes (none lost, none doubled).
 */
function ringIn(p: { write: number; read: number; start: number; mutant?: Mutant }): Scenario {
  applyMutant(p.mutant);
  const byteAt = (i: number): number => (i * 13 + 5) & 0xff;
  const guest = (pool: SharedArrayBuffer[]) => {
    const ev = EventChannels.attach(pool[0]!);
    const dev = new Vpl011({ ring: new ConsoleRing(pool[1]!), irq: { set: () => {} }, notify: () => void ev.notify(GUEST, 1), profile: 'sbsa' });
    ev.setHandler(GUEST, 1, () => dev.notification());
    return (): number[] => {
      const got: number[] = [];
      for (let i = 0; i < p.read; i++) got.push(dev.read(Reg.DR, 2));
      return got;
    };
  };
  const backend = (pool: SharedArrayBuffer[]) => {
    const ev = EventChannels.attach(pool[0]!);
    const ring = new ConsoleRingBackend(pool[1]!);
    ev.setHandler(BACKEND, 1, () => {});
    const src = Uint8Array.from({ length: p.write }, (_, k) => byteAt(XENCONS_IN_SIZE + k));
    return (): InBackendResult => {
      const stats = { timeouts: 0, sleeps: 0 };
      let sent = 0;
      for (let round = 0; round < 4 * p.write + 8 && sent < p.write; round++) {
        const seen = ev.doorbell(BACKEND);
        ev.dispatch(BACKEND);
        const n = ring.writeIn(src.subarray(sent));
        if (n > 0) {
          sent += n;
          ev.notify(BACKEND, 1); // input for the guest
          continue;
        }
        sleep(ev, BACKEND, seen, stats); // IN full: wait for the device's space notification
      }
      return { sent, ...stats };
    };
  };
  return {
    buffers: [EventChannels.byteLength(EVTCHN_OPTS), 4096],
    init(pool) {
      initTable(pool);
      const page = new Uint8Array(pool[1]!);
      for (let i = 0; i < XENCONS_IN_SIZE; i++) page[(p.start + i) & (XENCONS_IN_SIZE - 1)] = byteAt(i);
      const idx = new Int32Array(pool[1]!, 0xc00, 4);
      idx[0] = p.start | 0; // in_cons
      idx[1] = (p.start + XENCONS_IN_SIZE) | 0; // in_prod: full
    },
    actors: [guest, backend],
    check(pool, results) {
      const got = results[0] as number[];
      const b = results[1] as InBackendResult;
      if (b.timeouts !== 0) throw new Error(`backend slept through the device's space notification (${b.timeouts} timeouts)`);
      if (b.sent !== p.write) throw new Error(`backend sent ${b.sent} of ${p.write}`);
      const want = Array.from({ length: p.read }, (_, i) => byteAt(i));
      if (got.join() !== want.join()) throw new Error(`guest read ${got.join()} not ${want.join()}`);
      const idx = new Int32Array(pool[1]!, 0xc00, 4);
      const cons = idx[0]! >>> 0;
      const level = (idx[1]! - idx[0]!) >>> 0;
      if (level !== XENCONS_IN_SIZE - p.read + p.write) throw new Error(`IN holds ${level} bytes`);
      const page = new Uint8Array(pool[1]!);
      for (let k = 0; k < level; k++) {
        if (page[(cons + k) & (XENCONS_IN_SIZE - 1)] !== byteAt(p.read + k)) throw new Error(`IN byte ${k} is wrong: lost or doubled`);
      }
    },
  };
}

export const scenarios: Record<string, (p: any) => Scenario> = { doorbell, unmask, ringOut, ringIn }; // eslint-disable-line @typescript-eslint/no-explicit-any
