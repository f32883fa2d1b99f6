// EventChannels behaviour the main event-channel tests do not pin, each written against a mutant StrykerJS left
// alive (bench/MUTATION.md): option and header validation, byte sizes, createIn over existing memory, ENOSPC while
// binding (the remote port is released), close() of both kinds, the return values of notify/clearPending, masked
// and handler-less ports in dispatch, per-domain doorbells and waiter counts, wakes only when someone waits, and the
// wait paths (not-equal, timed-out, a supplied waker).
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { LINE_EVENT_WORDS } from '../src/xen/line-events.js';
import { EventChannels, EvtchnError, ECS_FREE, ECS_INTERDOMAIN, ECS_UNBOUND, type DoorbellWaker, type WaitResult } from '../src/xen/evtchn.js';

const T = { timeout: 20_000 };
const code = (c: string, re?: RegExp) => (e: unknown) => e instanceof EvtchnError && e.code === c && e.name === 'EvtchnError' && (re ? re.test(e.message) : true);

test('options: ranges at both edges, integers only; byteLength is the table size', T, () => {
  for (const bad of [{ maxDomains: 0 }, { maxDomains: 1025 }, { maxDomains: 1.5 }, { portsPerDomain: 1 }, { portsPerDomain: 4097 }, { portsPerDomain: 2.5 }]) {
    assert.throws(() => EventChannels.create(bad), code('EINVAL', /out of range/), JSON.stringify(bad));
  }
  assert.equal(EventChannels.create({ maxDomains: 1024, portsPerDomain: 2 }).maxDomains, 1024);
  assert.equal(EventChannels.create({ maxDomains: 1, portsPerDomain: 4096 }).portsPerDomain, 4096);
  const def = EventChannels.create();
  assert.deepEqual([def.maxDomains, def.portsPerDomain], [16, 64]);
  // Header, doorbells, port records, and each domain's line-event area (LINE_EVENT_WORDS = 36, table VERSION 2).
  assert.equal(LINE_EVENT_WORDS, 36);
  assert.equal(EventChannels.byteLength({ maxDomains: 3, portsPerDomain: 5 }), (8 + 3 + 3 * 5 * 8 + 3 * 36) * 4);
  assert.equal(EventChannels.byteLength(), (8 + 16 + 16 * 64 * 8 + 16 * 36) * 4);
  assert.equal(EventChannels.create({ maxDomains: 3, portsPerDomain: 5 }).buffer.byteLength, (8 + 3 + 3 * 5 * 8 + 3 * 36) * 4);
  // The areas are disjoint, within the table, after the port records.
  const t = EventChannels.create({ maxDomains: 3, portsPerDomain: 5 });
  const areas = [0, 1, 2].map((d) => t.lineEventWords(d));
  assert.deepEqual(areas.map((a) => [a.byteOffset / 4, a.length]), [[131, 36], [167, 36], [203, 36]]);
  assert.throws(() => t.lineEventWords(3), code('EINVAL', /bad domain id/));
});

test('attach validates: a plain ArrayBuffer needs a waker, too small, bad magic, header larger than the buffer', T, () => {
  const ev = EventChannels.create({ maxDomains: 2, portsPerDomain: 4 });
  assert.throws(() => EventChannels.attach(new ArrayBuffer(4096) as unknown as SharedArrayBuffer), code('EINVAL', /must be a SharedArrayBuffer/));
  assert.throws(() => EventChannels.attach(new SharedArrayBuffer(28)), code('EINVAL', /too small/));
  assert.throws(() => EventChannels.attach(new SharedArrayBuffer(32)), code('EINVAL', /bad magic/));
  const copy = (bytes: number, patch?: (w: Int32Array) => void): SharedArrayBuffer => {
    const sab = new SharedArrayBuffer(bytes);
    new Uint8Array(sab).set(new Uint8Array(ev.buffer).subarray(0, bytes));
    if (patch) patch(new Int32Array(sab));
    return sab;
  };
  assert.throws(() => EventChannels.attach(copy(ev.buffer.byteLength - 4)), code('EINVAL', /header does not match/));
  assert.throws(() => EventChannels.attach(copy(ev.buffer.byteLength, (w) => void (w[1] = 1))), code('EINVAL', /bad magic\/version/));
  assert.throws(() => EventChannels.attach(copy(ev.buffer.byteLength, (w) => void (w[2] = 0))), code('EINVAL', /header does not match/));
  assert.throws(() => EventChannels.attach(copy(ev.buffer.byteLength, (w) => void (w[3] = 1))), code('EINVAL', /header does not match/));
  const b = EventChannels.attach(copy(ev.buffer.byteLength));
  assert.deepEqual([b.maxDomains, b.portsPerDomain], [2, 4]);
});

/** A waker that records calls and behaves like Atomics on a SharedArrayBuffer-less table (never sleeps). */
class RecordingWaker implements DoorbellWaker {
  calls: string[] = [];
  wake(_w: Int32Array, index: number): void {
    this.calls.push(`wake ${index}`);
  }
  wait(w: Int32Array, index: number, seen: number, timeoutMs: number): WaitResult {
    this.calls.push(`wait ${index} ${seen} ${timeoutMs}`);
    return Atomics.load(w, index) !== seen ? 'not-equal' : 'timed-out';
  }
  waitAsync(w: Int32Array, index: number, seen: number, timeoutMs: number): Promise<WaitResult> {
    this.calls.push(`waitAsync ${index} ${seen} ${timeoutMs}`);
    return Promise.resolve(Atomics.load(w, index) !== seen ? 'not-equal' : 'timed-out');
  }
}

test('createIn: initialises zeroed memory, keeps an existing table (pending bits survive), refuses a small buffer', T, () => {
  const opts = { maxDomains: 2, portsPerDomain: 4 };
  const mem = new ArrayBuffer(EventChannels.byteLength(opts));
  const waker = new RecordingWaker();
  const a = EventChannels.createIn(mem, opts, waker);
  const gp = a.allocUnbound(1, 0);
  const bp = a.bindInterdomain(0, 1, gp);
  a.notify(0, bp);
  const again = EventChannels.createIn(mem, { maxDomains: 9, portsPerDomain: 9 }, waker);
  assert.deepEqual([again.maxDomains, again.portsPerDomain], [2, 4], 'an existing table is attached as it is');
  assert.equal(again.isPending(1, gp), true);
  assert.equal(again.state(0, bp), ECS_INTERDOMAIN);
  assert.throws(() => EventChannels.createIn(new ArrayBuffer(64), opts, waker), code('EINVAL', /too small/));
  assert.throws(() => EventChannels.createIn(new ArrayBuffer(64), { maxDomains: 0 }, waker), code('EINVAL'));
});

test('with a waker: wake only when a waiter is counted; waits are delegated with the doorbell index and undone', T, async () => {
  const opts = { maxDomains: 2, portsPerDomain: 4 };
  const waker = new RecordingWaker();
  const ev = EventChannels.createIn(new ArrayBuffer(EventChannels.byteLength(opts)), opts, waker);
  const gp = ev.allocUnbound(1, 0);
  const bp = ev.bindInterdomain(0, 1, gp);
  assert.equal(ev.notify(0, bp), true);
  assert.deepEqual(waker.calls, [], 'nobody waits: no wake');
  assert.equal(ev.wakesSent, 0);
  assert.equal(ev.waitSync(1, 1, 5), 'timed-out');
  assert.equal(ev.waitSync(1, 0, 5), 'not-equal');
  assert.equal(await ev.waitAsync(1, 1, 7), 'timed-out');
  assert.deepEqual(waker.calls, ['wait 9 1 5', 'wait 9 0 5', 'waitAsync 9 1 7']);
  assert.equal(ev.waiters(1), 0, 'every wait undid its count');
  // A waiter counted (as during a sleep in another thread): ring() wakes it through the waker.
  const w = new Int32Array(ev.buffer);
  const waitersWord = 8 + 2 + 1 * 4 * 8; // port 0's record of domain 1
  Atomics.add(w, waitersWord, 1);
  assert.equal(ev.waiters(1), 1);
  ev.clearPending(1, gp);
  assert.equal(ev.notify(0, bp), true);
  ev.kick(1);
  assert.deepEqual(waker.calls.slice(3), ['wake 9', 'wake 9']);
  assert.equal(ev.wakesSent, 2);
  assert.equal(ev.waiters(0), 0, 'per domain');
});

test('a waker whose waitAsync fails still undoes the waiter count', T, async () => {
  const opts = { maxDomains: 1, portsPerDomain: 2 };
  const waker: DoorbellWaker = {
    wake: () => {},
    wait: () => 'ok',
    waitAsync: () => Promise.reject(new Error('gone')),
  };
  const ev = EventChannels.createIn(new ArrayBuffer(EventChannels.byteLength(opts)), opts, waker);
  await assert.rejects(ev.waitAsync(0, 0, 10), /gone/);
  assert.equal(ev.waiters(0), 0);
  const throwing: DoorbellWaker = { ...waker, waitAsync: () => { throw new Error('sync'); } };
  const ev2 = EventChannels.createIn(new ArrayBuffer(EventChannels.byteLength(opts)), opts, throwing);
  await assert.rejects(ev2.waitAsync(0, 0, 10), /sync/);
  assert.equal(ev2.waiters(0), 0);
});

test('Atomics waits: not-equal at once, timed-out, woken by a notify (wakesSent counts only real wakes)', T, async () => {
  const ev = EventChannels.create({ maxDomains: 2, portsPerDomain: 4 });
  const gp = ev.allocUnbound(1, 0);
  const bp = ev.bindInterdomain(0, 1, gp);
  assert.equal(ev.waitSync(1, 5, 1000), 'not-equal');
  assert.equal(ev.waitSync(1, 0, 1), 'timed-out');
  assert.equal(await ev.waitAsync(1, 5, 1000), 'not-equal');
  assert.equal(await ev.waitAsync(1, 0, 1), 'timed-out');
  assert.equal(ev.waiters(1), 0);
  const p = ev.waitAsync(1, 0, 10_000);
  assert.equal(ev.waiters(1), 1, 'counted before the compare');
  assert.equal(ev.waiters(0), 0);
  assert.equal(ev.notify(0, bp), true);
  assert.equal(ev.wakesSent, 1);
  assert.equal(await p, 'ok');
  assert.equal(ev.waiters(1), 0);
  ev.kick(0);
  assert.equal(ev.wakesSent, 1, 'a ring with nobody waiting sends no wake');
  assert.equal(ev.doorbell(0), 1);
  assert.equal(ev.doorbell(1), 1);
});

test('binding: only an unbound port for this domain; no free local port -> ENOSPC and the remote port stays bindable', T, () => {
  const ev = EventChannels.create({ maxDomains: 3, portsPerDomain: 3 });
  const gp = ev.allocUnbound(1, 0);
  assert.equal(ev.remoteDomain(1, gp), 0);
  assert.equal(ev.state(1, gp), ECS_UNBOUND);
  assert.equal(ev.peer(1, gp), undefined);
  assert.throws(() => ev.bindInterdomain(0, 1, 2), code('EINVAL', /not unbound for domain 0/));
  ev.allocUnbound(0, 2);
  ev.allocUnbound(0, 2); // domain 0 is now full
  assert.throws(() => ev.bindInterdomain(0, 1, gp), code('ENOSPC', /domain 0 has no free port/));
  assert.equal(ev.state(1, gp), ECS_UNBOUND, 'released after the failed bind');
  ev.close(0, 1);
  const bp = ev.bindInterdomain(0, 1, gp);
  assert.equal(bp, 1, 'the lowest free port');
  assert.deepEqual(ev.peer(1, gp), { domid: 0, port: 1 });
  assert.deepEqual(ev.peer(0, bp), { domid: 1, port: gp });
  assert.throws(() => ev.bindInterdomain(0, 1, gp), code('EINVAL'), 'already bound');
  assert.throws(() => ev.allocUnbound(0, 3), code('EINVAL', /bad domain id 3/));
});

test('close: an unbound port is freed; an interdomain one frees itself and unbinds the peer; state is reset', T, () => {
  const ev = EventChannels.create({ maxDomains: 2, portsPerDomain: 4 });
  const gp = ev.allocUnbound(1, 0);
  const bp = ev.bindInterdomain(0, 1, gp);
  ev.mask(0, bp);
  ev.notify(1, gp);
  assert.equal(ev.isPending(0, bp), true);
  ev.close(0, bp);
  assert.equal(ev.state(0, bp), ECS_FREE);
  assert.equal(ev.state(1, gp), ECS_UNBOUND);
  assert.equal(ev.remoteDomain(1, gp), 0, 'the peer is unbound for the same domain again');
  assert.equal(ev.peer(1, gp), undefined);
  assert.equal(ev.notify(1, gp), false, 'sending on an unbound port is dropped');
  const again = ev.allocUnbound(0, 1);
  assert.equal(again, bp);
  assert.equal(ev.isPending(0, again), false, 'a reused port starts clear');
  assert.equal(ev.isMasked(0, again), false);
  assert.equal(ev.remoteDomain(0, again), 1);
  ev.close(1, gp);
  assert.equal(ev.state(1, gp), ECS_FREE);
  assert.equal(ev.remoteDomain(1, gp), 0);
  ev.close(1, gp); // idempotent
});

test('notify, mask, clearPending, dispatch: return values and what stays pending', T, () => {
  const ev = EventChannels.create({ maxDomains: 2, portsPerDomain: 5 });
  const ran: number[] = [];
  const a = ev.allocUnbound(1, 0, (p) => ran.push(p));
  const b = ev.allocUnbound(1, 0); // no handler in this thread
  const c = ev.allocUnbound(1, 0, (p) => ran.push(p));
  const pa = ev.bindInterdomain(0, 1, a);
  const pb = ev.bindInterdomain(0, 1, b);
  const pc = ev.bindInterdomain(0, 1, c);
  ev.mask(1, c);
  assert.equal(ev.isMasked(1, c), true);
  assert.equal(ev.notify(0, pa), true);
  assert.equal(ev.notify(0, pb), true);
  assert.equal(ev.notify(0, pc), false, 'masked: pending but no ring');
  assert.equal(ev.doorbell(1), 2);
  assert.equal(ev.dispatch(1), 1);
  assert.deepEqual(ran, [a]);
  assert.equal(ev.isPending(1, b), true, 'no handler here: stays pending');
  assert.equal(ev.isPending(1, c), true, 'masked: stays pending');
  assert.equal(ev.clearPending(1, b), true);
  assert.equal(ev.clearPending(1, b), false);
  ev.unmask(1, c);
  assert.equal(ev.doorbell(1), 3, 'unmask of a pending port rings');
  ev.unmask(1, c);
  assert.equal(ev.doorbell(1), 3, 'unmask of an unmasked port does not');
  ev.mask(1, a);
  ev.unmask(1, a);
  assert.equal(ev.doorbell(1), 3, 'unmask of a port that is not pending does not');
  assert.equal(ev.dispatch(1), 1);
  assert.deepEqual(ran, [a, c]);
  assert.equal(ev.dispatch(0), 0, 'no handlers for domain 0 in this object');
  const other = EventChannels.attach(ev.buffer as SharedArrayBuffer);
  ev.notify(0, pa);
  assert.equal(other.dispatch(1), 0, 'handlers are per object');
  assert.equal(ev.dispatch(1), 1);
  ev.setHandler(1, a, undefined);
  ev.notify(0, pa);
  assert.equal(ev.dispatch(1), 0);
  assert.equal(ev.handlerErrors, 0);
  assert.equal(ev.lastHandlerError, undefined);
});

test('a wrong magic alone is refused; createIn tells a short buffer from a bad header', T, () => {
  const ev = EventChannels.create({ maxDomains: 2, portsPerDomain: 4 });
  const sab = new SharedArrayBuffer(ev.buffer.byteLength);
  new Uint8Array(sab).set(new Uint8Array(ev.buffer));
  new Int32Array(sab)[0] = 0x1234;
  assert.throws(() => EventChannels.attach(sab), code('EINVAL', /bad magic/));
  const waker = new RecordingWaker();
  const short = new ArrayBuffer(16);
  new Int32Array(short)[0] = 0x45564348; // the magic in a buffer too short for a header
  assert.throws(() => EventChannels.createIn(short, {}, waker), code('EINVAL', /^evtchn: shared memory too small/));
  const headerOnly = new ArrayBuffer(32);
  new Int32Array(headerOnly)[0] = 0x45564348;
  new Int32Array(headerOnly)[1] = 2;
  assert.throws(() => EventChannels.createIn(headerOnly, {}, waker), code('EINVAL', /header does not match/));
});

test('a scribbled table (the peer record points elsewhere) is never followed out of range and never unbinds a stranger', T, () => {
  const ev = EventChannels.create({ maxDomains: 2, portsPerDomain: 4 });
  const w = new Int32Array(ev.buffer);
  const rec = (d: number, p: number): number => 8 + 2 + (d * 4 + p) * 8;
  const gp = ev.allocUnbound(1, 0);
  const bp = ev.bindInterdomain(0, 1, gp);
  w[rec(0, bp) + 1] = 99; // remote domain out of range
  assert.equal(ev.notify(0, bp), false);
  w[rec(0, bp) + 1] = 1;
  w[rec(0, bp) + 2] = 0; // remote port 0 (never valid)
  assert.equal(ev.notify(0, bp), false);
  w[rec(0, bp) + 2] = 4; // remote port past the end
  assert.equal(ev.notify(0, bp), false);
  w[rec(0, bp) + 2] = -1;
  assert.equal(ev.notify(0, bp), false);
  assert.doesNotThrow(() => ev.close(0, bp));
  assert.equal(ev.state(1, gp), ECS_INTERDOMAIN, 'the real peer was not found through the scribbled record: left alone');
  // A peer that is bound to someone else is left alone by close.
  const g2 = ev.allocUnbound(1, 0);
  const b2 = ev.bindInterdomain(0, 1, g2);
  w[rec(1, g2) + 2] = 3; // g2 now claims to be bound to port 3, not b2
  ev.close(0, b2);
  assert.equal(ev.state(1, g2), ECS_INTERDOMAIN);
  w[rec(1, g2) + 2] = b2;
  w[rec(1, g2) + 1] = 0;
  const b3 = ev.allocUnbound(0, 1);
  assert.equal(b3, b2);
  w[rec(1, g2) + 1] = 1; // claims the wrong domain
  const gp3 = ev.allocUnbound(1, 0);
  const bp3 = ev.bindInterdomain(0, 1, gp3);
  w[rec(1, gp3) + 1] = 1;
  ev.close(0, bp3);
  assert.equal(ev.state(1, gp3), ECS_INTERDOMAIN, 'a peer naming another domain is not unbound');
});

test('a port unbound for another domain cannot be bound from domain 0; bad ports are named; scribbled domains -1 and max', T, () => {
  const ev = EventChannels.create({ maxDomains: 3, portsPerDomain: 4 });
  const gp = ev.allocUnbound(1, 2); // only domain 2 may bind it
  assert.throws(() => ev.bindInterdomain(0, 1, gp), code('EINVAL', /not unbound for domain 0/));
  assert.equal(ev.state(1, gp), ECS_UNBOUND);
  assert.throws(() => ev.notify(0, 0), code('EINVAL', /^evtchn: bad port 0 for domain 0$/));
  const bp = ev.bindInterdomain(2, 1, gp);
  const w = new Int32Array(ev.buffer);
  const rec = (d: number, p: number): number => 8 + 3 + (d * 4 + p) * 8;
  for (const bad of [-1, 3]) {
    w[rec(2, bp) + 1] = bad;
    assert.equal(ev.notify(2, bp), false, `remote domain ${bad}`);
  }
});
