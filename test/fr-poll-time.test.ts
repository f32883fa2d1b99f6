// Issue 7 §2: a polling guest keeps hardware time. guests/bare/fr-poll.S fills the ring until FR.TXFF and then polls
// FR a bounded number of times behind a ring nobody drains; on hardware (~1 us per trapped read) 100,000 reads take
// ~0.1 s. Parking the vCPU to save host CPU must not stretch that: before the fix each read could sleep 1 ms
// (FR_STALL_MS), ~100 s in all.
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { startDomainThread, type DomainExit } from '../src/vmm/domain-thread.js';
import { buildBareGuest, BARE_LOAD_ADDR } from '../src/vmm/bare-guests.js';
import type { GuestImage } from '../src/toolstack/guest-image.js';

function image(polls: number): GuestImage {
  const data = buildBareGuest('fr-poll', { defines: { POLLS: polls } });
  return { ramBase: BARE_LOAD_ADDR, ramSize: 0x200000, segments: [{ addr: BARE_LOAD_ADDR, data, what: 'fr-poll' }], entry: BARE_LOAD_ADDR, x0: 0 };
}

/** The exit, or 'timeout' after `ms` (then the domain is stopped: a failing test never hangs). */
async function exitWithin(dom: ReturnType<typeof startDomainThread>, ms: number): Promise<DomainExit | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), ms)));
  try {
    return await Promise.race([dom.exited, t]);
  } finally {
    clearTimeout(timer);
  }
}

test('a guest polling FR.TXFF 100,000 times behind a ring no one drains gives up in hardware time', { timeout: 60_000 }, async (t) => {
  const dom = startDomainThread({ domid: 1, name: 'fr-poll', image: image(100_000) });
  try {
    await dom.vuartPort;
    const t0 = performance.now();
    const exit = await exitWithin(dom, 20_000);
    const ms = performance.now() - t0;
    assert.notEqual(exit, 'timeout', 'the guest was still polling after 20 s (each read parked ~1 ms)');
    if (exit === 'timeout') return;
    assert.equal(exit.reason, 'poweroff', `the guest gave up (SYSTEM_OFF), not ${exit.reason} ${exit.message ?? ''}`);
    t.diagnostic(`100,000 polls: ${ms.toFixed(0)} ms, ${exit.stats?.frStalls} parks`);
    // Hardware: ~100 ms. Generous for a loaded 2-core machine; the failure it guards against is ~100 s.
    assert.ok(ms < 3000, `gave up after ${ms.toFixed(0)} ms`);
    // How much it was parked depends on the host's trap cost and load (test/device-poll-pacer checks the pacing on
    // a simulated clock; the next test, the back-off).
    assert.ok(exit.stats !== undefined && exit.stats.mmio >= 100_000, 'every poll trapped');
  } finally {
    await dom.stop();
  }
});

test('a guest polling FR forever behind a stalled backend backs off: little host CPU once the poll is long', { timeout: 60_000 }, async (t) => {
  const dom = startDomainThread({ domid: 1, name: 'fr-poll', image: image(0) });
  try {
    await dom.vuartPort;
    await new Promise((r) => setTimeout(r, 2500)); // past the window in which a bounded poll keeps hardware time
    const c0 = process.cpuUsage();
    const w0 = performance.now();
    await new Promise((r) => setTimeout(r, 1000));
    const c = process.cpuUsage(c0);
    const share = (c.user + c.system) / 1000 / (performance.now() - w0);
    t.diagnostic(`CPU while parked: ${(share * 100).toFixed(1)} % of a core`);
    assert.ok(share < 0.3, `the polling vCPU used ${(share * 100).toFixed(0)} % of a core`);
  } finally {
    await dom.stop();
  }
  const exit = await dom.exited;
  assert.equal(exit.reason, 'stopped', exit.message);
});
