// The FR poll pacer (src/device/poll-pacer.ts) on a simulated clock: a guest that reads FR at a given host cost per
// trap, parked for what the pacer answers. Checks the pacer's promises directly: a bounded poll of N reads ends
// within N x READ_COST_MS + SLACK_MS (+ one park), parks save host time when trapping is cheaper than hardware, no
// park exceeds MAX_PARK_MS, and a poll that outlasts the paced window backs off.
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { FrPollPacer, READ_COST_MS, SLACK_MS, MAX_PARK_MS, PACED_WINDOW_MS, SPIN_READS } from '../src/device/poll-pacer.js';
import { FR } from '../src/device/spec.js';

/** N reads of the same FR at `trapMs` each; returns the elapsed simulated time, time parked, and the longest park. */
function poll(n: number, fr: number, trapMs: number, pacer = new FrPollPacer()): { elapsed: number; parked: number; longest: number } {
  let now = 1000;
  const t0 = now;
  let parked = 0;
  let longest = 0;
  for (let i = 0; i < n; i++) {
    now += trapMs;
    const p = pacer.frRead(fr, now);
    now += p;
    parked += p;
    longest = Math.max(longest, p);
  }
  return { elapsed: now - t0, parked, longest };
}

const TXFF = FR.TXFF | FR.BUSY;

test('a bounded TXFF poll keeps hardware time whatever the trap costs, and parks when trapping is cheaper', { timeout: 10_000 }, () => {
  for (const trapMs of [0.0001, 0.0003, 0.0008, 0.002]) {
    const n = 100_000;
    const r = poll(n, TXFF, trapMs);
    const hardware = n * READ_COST_MS;
    // Never later than the hardware schedule plus the slack (and the trap cost itself, when that exceeds hardware's).
    assert.ok(r.elapsed <= Math.max(hardware, n * trapMs) + SLACK_MS + 1e-6, `trap ${trapMs}: ${r.elapsed} ms`);
    assert.ok(r.longest <= MAX_PARK_MS);
    if (trapMs < READ_COST_MS) {
      // What the host saves: all but the trap cost of the hardware time (within the park granularity).
      assert.ok(r.parked >= hardware - n * trapMs - 1, `trap ${trapMs}: parked only ${r.parked} ms of ${hardware}`);
    }
  }
});

test('an unchanged FR without TXFF counts as polling only after SPIN_READS reads; a changed value starts over', { timeout: 10_000 }, () => {
  const p = new FrPollPacer();
  const rxfe = FR.RXFE | FR.TXFE;
  for (let i = 1; i < SPIN_READS; i++) assert.equal(p.frRead(rxfe, 0), 0, `read ${i}`);
  assert.ok(p.frRead(rxfe, 0) > 0, 'polling at read SPIN_READS: parked (the slack lets it sleep)');
  assert.equal(p.frRead(TXFF, 0), 0, 'a new value: not polling');
  assert.ok(p.frRead(TXFF, 0) > 0, 'TXFF: polling from the 2nd read');
  p.reset();
  assert.equal(p.frRead(TXFF, 0), 0, 'after another access: a new episode');
});

test('a poll that outlasts the paced window is an event wait: parks back off to MAX_PARK_MS per read', { timeout: 10_000 }, () => {
  const p = new FrPollPacer();
  const n = Math.ceil(PACED_WINDOW_MS / READ_COST_MS) + 10;
  poll(n, TXFF, 0.0003, p);
  assert.equal(p.frRead(TXFF, 1e9), MAX_PARK_MS);
});
