// Event channels over a SharedArrayBuffer: alloc unbound / bind interdomain / notify / mask / pending / dispatch,
// the coalesced wakeup rule of docs/DESIGN.md, and two threads on one table.
import { test, within } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { EventChannels, EvtchnError, ECS_UNBOUND, ECS_INTERDOMAIN, ECS_FREE, type WaitResult } from '../src/xen/evtchn.js';

test('alloc unbound, bind interdomain (only the named remote), notify both ways, close -> peer unbound', () => {
  const ev = EventChannels.create({ maxDomains: 4, portsPerDomain: 8 });
  const seen: string[] = [];
  const gp = ev.allocUnbound(1, 0, (p) => seen.push(`d1:${p}`));
  assert.equal(ev.state(1, gp), ECS_UNBOUND);
  assert.throws(() => ev.bindInterdomain(2, 1, gp), EvtchnError); // d2 is not the allowed remote
  const bp = ev.bindInterdomain(0, 1, gp, (p) => seen.push(`d0:${p}`));
  assert.equal(ev.state(1, gp), ECS_INTERDOMAIN);
  assert.deepEqual(ev.peer(0, bp), { domid: 1, port: gp });
  assert.equal(ev.notify(0, bp), true);
  assert.equal(ev.dispatch(1), 1);
  assert.equal(ev.notify(1, gp), true);
  assert.equal(ev.dispatch(0), 1);
  assert.deepEqual(seen, [`d1:${gp}`, `d0:${bp}`]);
  ev.close(0, bp);
  assert.equal(ev.state(1, gp), ECS_UNBOUND);
  assert.equal(ev.state(0, bp), ECS_FREE);
  assert.equal(ev.notify(1, gp), false); // unbound: dropped, as Xen
  ev.close(0, bp); // idempotent
});

test('coalesced: a second notify before dispatch does not ring again; pending cleared before the handler', () => {
  const ev = EventChannels.create();
  let inHandlerPending = true;
  const gp = ev.allocUnbound(1, 0, (p) => {
    inHandlerPending = ev.isPending(1, p);
  });
  const bp = ev.bindInterdomain(0, 1, gp);
  const before = ev.doorbell(1);
  assert.equal(ev.notify(0, bp), true);
  assert.equal(ev.notify(0, bp), false);
  assert.equal(ev.doorbell(1), before + 1);
  assert.equal(ev.dispatch(1), 1);
  assert.equal(inHandlerPending, false);
  assert.equal(ev.dispatch(1), 0);
});

test('mask holds the event pending without ringing; unmask re-raises it (evtchn_unmask)', () => {
  const ev = EventChannels.create();
  let runs = 0;
  const gp = ev.allocUnbound(1, 0, () => runs++);
  const bp = ev.bindInterdomain(0, 1, gp);
  ev.mask(1, gp);
  const d0 = ev.doorbell(1);
  ev.notify(0, bp);
  assert.equal(ev.doorbell(1), d0);
  assert.equal(ev.dispatch(1), 0);
  assert.equal(ev.isPending(1, gp), true);
  ev.unmask(1, gp);
  assert.equal(ev.doorbell(1), d0 + 1);
  assert.equal(ev.dispatch(1), 1);
  assert.equal(runs, 1);
});

test('bad ports and domains are errors, never out-of-bounds accesses', () => {
  const ev = EventChannels.create({ maxDomains: 2, portsPerDomain: 4 });
  for (const [d, p] of [
    [0, 0],
    [0, 4],
    [0, -1],
    [2, 1],
    [-1, 1],
    [0, 1.5],
    [0, NaN],
  ] as const) {
    assert.throws(() => ev.notify(d, p), EvtchnError);
    assert.throws(() => ev.isPending(d, p), EvtchnError);
  }
  ev.allocUnbound(0, 1);
  ev.allocUnbound(0, 1);
  ev.allocUnbound(0, 1);
  assert.throws(() => ev.allocUnbound(0, 1), (e: unknown) => e instanceof EvtchnError && e.code === 'ENOSPC');
  assert.throws(() => EventChannels.attach(new SharedArrayBuffer(64)), EvtchnError);
});

test('a throwing handler is counted and does not stop other ports', () => {
  const ev = EventChannels.create();
  let ran = 0;
  const a = ev.allocUnbound(1, 0, () => {
    throw new Error('boom');
  });
  const b = ev.allocUnbound(1, 0, () => ran++);
  ev.notify(0, ev.bindInterdomain(0, 1, a));
  ev.notify(0, ev.bindInterdomain(0, 1, b));
  assert.equal(ev.dispatch(1), 2);
  assert.equal(ran, 1);
  assert.equal(ev.handlerErrors, 1);
});

test('ring order: a waiter that arrives between the doorbell add and the waiter-count load is never left asleep', async () => {
  // The two steps of a ring, with a waiter placed deterministically between them (the ringProbe seam). It read the
  // doorbell before the ring (`seen`). Doorbell first, count second: its compare sees the new doorbell and it does
  // not sleep. The other order (count read first, 0, then the add) would let it sleep with no wake ever sent.
  const ev = EventChannels.create({ maxDomains: 2, portsPerDomain: 4 });
  const gp = ev.allocUnbound(1, 0);
  const bp = ev.bindInterdomain(0, 1, gp);
  const seen = ev.doorbell(1);
  let waiter: Promise<WaitResult> | undefined;
  ev.ringProbe = () => {
    ev.ringProbe = undefined;
    waiter = ev.waitAsync(1, seen, 2000); // bounded only so a broken order fails instead of hanging
  };
  try {
    assert.equal(ev.notify(0, bp), true);
  } finally {
    ev.ringProbe = undefined;
  }
  assert.ok(waiter, 'the probe ran inside the ring');
  const r = await within(waiter, 5000, 'wakeup lost: the waiter slept through the ring');
  assert.equal(r, 'not-equal', 'its compare saw the new doorbell: it never slept');
  assert.equal(ev.waiters(1), 0);
});

test('across a real worker thread: many notifies both ways, no wakeup lost, waits return', async () => {
  const ev = EventChannels.create({ maxDomains: 4, portsPerDomain: 8 });
  const ROUNDS = 2000;
  let got = 0;
  const gp = ev.allocUnbound(1, 0); // the guest's port; its handler lives in the worker
  const bp = ev.bindInterdomain(0, 1, gp, () => got++);
  const url = new URL('../src/xen/evtchn.js', import.meta.url).href;
  // The worker is the vCPU thread: it waits synchronously on domain 1's doorbell, and answers each event.
  const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    import(workerData.url).then(({ EventChannels }) => {
      const ev = EventChannels.attach(workerData.sab);
      let got = 0;
      ev.setHandler(1, workerData.gp, () => { got++; ev.notify(1, workerData.gp); });
      while (got < workerData.rounds) {
        const seen = ev.doorbell(1);
        if (ev.dispatch(1) === 0) ev.waitSync(1, seen, 10000);
      }
      parentPort.postMessage(got);
    });`;
  const w = new Worker(code, { eval: true, workerData: { url, sab: ev.buffer, gp, rounds: ROUNDS } });
  try {
    const done = new Promise<number>((res, rej) => {
      w.once('message', res);
      w.once('error', rej);
      w.once('exit', (c) => rej(new Error(`worker exited (${c}) before answering`)));
    });
    // The backend side: send, then wait (async) for the answer before sending again: a lost wakeup would hang.
    for (let i = 0; i < ROUNDS; i++) {
      ev.notify(0, bp);
      while (got <= i) {
        const seen = ev.doorbell(0);
        if (ev.dispatch(0) > 0) continue;
        const r = await within(ev.waitAsync(0, seen, 10000), 15000, `round ${i}`);
        assert.notEqual(r, 'timed-out', `round ${i}: wakeup lost`);
      }
    }
    assert.equal(await within(done, 15000, 'the worker to finish'), ROUNDS);
    assert.equal(got, ROUNDS);
  } finally {
    // Also when an assertion above failed: a live worker (blocked in waitSync) would keep the run from ending.
    await w.terminate();
  }
});
