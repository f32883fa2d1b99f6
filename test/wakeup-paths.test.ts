// The fast wakeup paths of docs/PERF.md: evtchn wakes only counted waiters (never losing one), and a vCPU whose guest
// spins on an unchanged UARTFR waits on its doorbell instead of trapping (TXFF: waiting for the backend; RXFE: an
// idle polled guest), with no byte lost or reordered.
import { vuartBackend } from './lib/vuart-backend.js';
import { test, within } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { EventChannels, type DoorbellWaker, type WaitResult } from '../src/xen/evtchn.js';
import { startDomainThread } from '../src/vmm/domain-thread.js';
import { buildBareGuest, streamPattern, BARE_LOAD_ADDR, type BareGuest } from '../src/vmm/bare-guests.js';
import type { GuestImage } from '../src/toolstack/guest-image.js';

/** A DoorbellWaker that records wakes and lets the test resolve async waits by hand (the cross-process shape). */
class CountingWaker implements DoorbellWaker {
  wakes = 0;
  pending: { seen: number; index: number; words: Int32Array; resolve: (r: WaitResult) => void }[] = [];
  wake(words: Int32Array, index: number): void {
    this.wakes++;
    for (const p of this.pending.splice(0)) p.resolve(Atomics.load(words, index) !== p.seen ? 'ok' : 'timed-out');
  }
  wait(words: Int32Array, index: number, seen: number): WaitResult {
    return Atomics.load(words, index) !== seen ? 'not-equal' : 'timed-out';
  }
  waitAsync(words: Int32Array, index: number, seen: number): Promise<WaitResult> {
    if (Atomics.load(words, index) !== seen) return Promise.resolve('not-equal');
    return new Promise((resolve) => this.pending.push({ seen, index, words, resolve }));
  }
}

test('evtchn: a notify wakes (Atomics.notify / futex) only when a waiter is counted; the doorbell still moves (wakeup rule)', async () => {
  const base = EventChannels.create({ maxDomains: 4, portsPerDomain: 8 });
  const waker = new CountingWaker();
  const ev = EventChannels.attach(new Uint8Array(base.buffer as SharedArrayBuffer).slice().buffer, waker);
  const gp = ev.allocUnbound(1, 0);
  const bp = ev.bindInterdomain(0, 1, gp);
  // Nobody waits on domain 0: the notify marks pending and bumps the doorbell, but wakes nobody.
  const d0 = ev.doorbell(0);
  assert.equal(ev.waiters(0), 0);
  assert.ok(ev.notify(1, gp));
  assert.equal(ev.doorbell(0), d0 + 1, 'the doorbell moved');
  assert.equal(waker.wakes, 0, 'no wake without a waiter');
  // A waiter that read the doorbell before that notify does not sleep: its compare sees the change.
  assert.equal(await ev.waitAsync(0, d0, 1000), 'not-equal');
  assert.equal(ev.waiters(0), 0, 'the count is undone when the wait ends');
  // A waiter that is asleep is counted, and the next notify wakes it.
  assert.ok(ev.clearPending(0, bp));
  const seen = ev.doorbell(0);
  const w = ev.waitAsync(0, seen, Infinity);
  assert.equal(ev.waiters(0), 1, 'counted before its compare');
  assert.ok(ev.notify(1, gp));
  assert.equal(waker.wakes, 1);
  assert.equal(await w, 'ok');
  assert.equal(ev.waiters(0), 0);
  // waitSync counts itself too and undoes it, whatever the result.
  assert.equal(ev.waitSync(0, ev.doorbell(0) - 1, 1000), 'not-equal');
  assert.equal(ev.waiters(0), 0);
});

/**
 * The vCPU's doorbell sleeps bounded far beyond what these tests allow a wake (instead of 1 ms / 1 s): only a real
 * wake ends them in time. Still bounded, so a test that fails stops its guest within seconds.
 */
const NO_FALLBACK_MS = 5_000;
const NO_FALLBACK = { frStallMs: NO_FALLBACK_MS, idleMs: NO_FALLBACK_MS };

function image(name: BareGuest, defines?: Record<string, number>): GuestImage {
  const data = buildBareGuest(name, defines ? { defines } : {});
  return { ramBase: BARE_LOAD_ADDR, ramSize: 0x200000, segments: [{ addr: BARE_LOAD_ADDR, data, what: name }], entry: BARE_LOAD_ADDR, x0: 0 };
}

test('a guest spinning on FR.TXFF behind a slow backend waits on its doorbell: every byte arrives in order, few traps (TRM 3.3.3 TXFF)', async () => {
  const COUNT = 32 * 1024;
  const dom = startDomainThread({ domid: 1, name: 'stream', image: image('stream', { COUNT }), sleepBounds: NO_FALLBACK });
  try {
    const port = await dom.vuartPort;
    const { ev, local, ring } = vuartBackend(dom, port);
    const chunks: Buffer[] = [];
    const buf = new Uint8Array(4096);
    let drains = 0;
    const drain = (): void => {
      drains++;
      for (let n; (n = ring.readOut(buf)) > 0; ) chunks.push(Buffer.from(buf.subarray(0, n)));
      ev.notify(0, local); // space freed: xenconsoled notifies after each batch
    };
    // A slow backend: one drain every 5 ms, so the 2 KiB ring is full most of the time and the guest polls TXFF.
    const timer = setInterval(drain, 5);
    let exit;
    try {
      // Each stall ends only by the backend's notify (its bound is 5 s, and the ring fills 16 times): lost wakes fail this.
      exit = await within(dom.exited, 30_000, 'the stream (a vCPU whose wake is lost sleeps 5 s per stall)');
    } finally {
      clearInterval(timer);
    }
    drain();
    assert.equal(exit.reason, 'poweroff', exit.message);
    assert.ok(drains >= COUNT / 2048, `the backend drained ${drains} times: the ring filled and emptied repeatedly`);
    assert.ok(Buffer.concat(chunks).equals(streamPattern(COUNT)), 'the stream arrived exactly');
    const s = exit.stats!;
    assert.ok(s.frStalls > 0, 'the vCPU waited for the backend');
    // One FR read and one DR write per byte, plus about two FR reads per wait: spinning for 5 ms per ring would be
    // hundreds of thousands of FR traps per drain.
    assert.ok(s.mmio < 2 * COUNT + 4 * s.frStalls + 1000, `traps ${s.mmio} for ${COUNT} bytes, ${s.frStalls} waits`);
  } finally {
    await dom.stop(); // also when an assertion failed: the worker must not outlive the test
  }
});

test('an idle guest polling FR.RXFE sleeps on its doorbell between bursts of reads, and input still wakes it at once', async () => {
  const dom = startDomainThread({ domid: 1, name: 'hello', image: image('hello'), sleepBounds: NO_FALLBACK });
  try {
    const port = await dom.vuartPort;
    const { ev, local, ring } = vuartBackend(dom, port);
    let out = '';
    const buf = new Uint8Array(2048);
    const pump = (): void => {
      for (let n; (n = ring.readOut(buf)) > 0; ) out += Buffer.from(buf.subarray(0, n)).toString('latin1');
    };
    // Let it reach its RXFE loop and idle there for a while.
    for (let i = 0; i < 30 && !out.includes('\n'); i++) {
      await new Promise((r) => setTimeout(r, 10));
      pump();
    }
    await new Promise((r) => setTimeout(r, 300));
    // Input: each byte echoed; EOT powers off. A vCPU sleeping on the doorbell is woken by this notify.
    assert.equal(ring.writeIn(new TextEncoder().encode('xy\x04')), 3);
    const t0 = performance.now();
    ev.notify(0, local);
    // The vCPU sleeps with a 5 s bound: only the notify's wake can end this well before it.
    const exit = await within(dom.exited, 30_000, 'the guest to see its input');
    const latency = performance.now() - t0;
    pump();
    assert.ok(latency < NO_FALLBACK_MS / 2, `input to poweroff took ${latency.toFixed(1)} ms (a lost wake: ${NO_FALLBACK_MS} ms)`);
    assert.equal(exit.reason, 'poweroff', exit.message);
    assert.equal(out, 'hello from bare metal\nxy');
    const s = exit.stats!;
    assert.ok(s.frStalls > 0, 'the idle vCPU waited');
    // A busy poll of FR runs millions of traps a second; sleeping, about FR_SPIN_READS per millisecond at most.
    assert.ok(s.mmio < 100_000, `traps while idle: ${s.mmio}`);
  } finally {
    await dom.stop(); // also when an assertion failed: the worker must not outlive the test
  }
});
