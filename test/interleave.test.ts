// Interleaving exploration of the shared-memory wakeup rules: the real EventChannels, ConsoleRing /
// ConsoleRingBackend and Vpl011 code, one worker thread per actor, every atomic operation a scheduling point, and a
// depth-first search over the interleavings (test/lib/interleave.ts; scenarios in test/lib/interleave-scenarios.ts).
// Each test states the interleavings explored and asserts the search was complete (within its preemption bound),
// that a sleeper really slept and was woken in some of them (the property is not vacuous), and that no schedule
// broke a property. The mutant tests swap in a mutated copy of one function and require the explorer to find a
// failing schedule: an ordering bug fails every run, not by chance.
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { explore, describe, type ExploreOptions, type ExploreReport } from './lib/interleave.js';

const SCENARIOS = new URL('./lib/interleave-scenarios.js', import.meta.url);
const TIMEOUT = { timeout: 120_000 };

async function run(scenario: string, params: Record<string, unknown>, opts: Partial<ExploreOptions> = {}): Promise<ExploreReport> {
  return explore({ module: SCENARIOS, scenario, params, ...opts });
}

function assertClean(name: string, r: ExploreReport, log: (s: string) => void): void {
  log(describe(name, r));
  assert.deepEqual(r.failures.map((f) => `${f.kind}: ${f.message} [${f.trace}]`), []);
  assert.equal(r.complete, true, 'the bounded search space was explored to the end');
  assert.ok(r.sleptAndWoken > 0, 'some schedule put a sleeper to sleep and woke it (the wakeup path was exercised)');
}

test('doorbell + waiter count, 2 actors: every interleaving (no preemption bound), no lost wakeup, pending bits consistent', TIMEOUT, async (t) => {
  const r = await run('doorbell', { notifiers: 1 }, { preemptionBound: Infinity });
  assertClean('doorbell/2 actors/unbounded', r, (s) => t.diagnostic(s));
  assert.ok(r.schedules > 300, `explored ${r.schedules}`);
});

test('doorbell + waiter count, 3 actors (two notifiers, coalescing): bound 2, no lost wakeup, pending bits consistent', TIMEOUT, async (t) => {
  const r = await run('doorbell', { notifiers: 2 }, { preemptionBound: 2 });
  assertClean('doorbell/3 actors/bound 2', r, (s) => t.diagnostic(s));
});

test('unmask of a pending port re-raises it, 3 actors (sleeper, notifier, unmasker): bound 2', TIMEOUT, async (t) => {
  const r = await run('unmask', {}, { preemptionBound: 2 });
  assertClean('unmask/3 actors/bound 2', r, (s) => t.diagnostic(s));
});

test('OUT ring through the device: no byte lost or doubled, notify edges wake the backend; indices wrap 2^32', TIMEOUT, async (t) => {
  const r = await run('ringOut', { prefill: 1, write: 2, start: -2 }, { preemptionBound: 2 });
  assertClean('ringOut/wrap/bound 2', r, (s) => t.diagnostic(s));
});

test('OUT ring reaches full: the guest waits on TXFF for the backend, nothing dropped, lost or doubled', TIMEOUT, async (t) => {
  const r = await run('ringOut', { prefill: 2046, write: 3, start: -1000 }, { preemptionBound: 2 });
  assertClean('ringOut/full/bound 2', r, (s) => t.diagnostic(s));
});

test('IN ring full -> a DR read notifies the backend waiting for space; IN content exact afterwards', TIMEOUT, async (t) => {
  const r = await run('ringIn', { write: 2, read: 3, start: -1 }, { preemptionBound: 2 });
  assertClean('ringIn/full/bound 2', r, (s) => t.diagnostic(s));
});

// ---- the explorer bites: mutated copies of the ordering-critical functions must fail, deterministically ----------

test('mutant: waiter count loaded before the doorbell add in ring() is a lost wakeup, found in every run', TIMEOUT, async (t) => {
  const first: number[] = [];
  for (let i = 0; i < 2; i++) {
    const r = await run('doorbell', { notifiers: 1, mutant: 'waiters-before-doorbell' }, { preemptionBound: Infinity });
    t.diagnostic(describe('doorbell/mutant waiters-before-doorbell', r));
    assert.equal(r.failures.length, 1);
    assert.equal(r.failures[0]!.kind, 'lost-wakeup');
    first.push(r.failures[0]!.schedule);
  }
  assert.equal(first[0], first[1], 'the same schedule fails each time (deterministic)');
  const ring = await run('ringOut', { prefill: 1, write: 2, start: -2, mutant: 'waiters-before-doorbell' }, { preemptionBound: 2 });
  t.diagnostic(describe('ringOut/mutant waiters-before-doorbell', ring));
  assert.equal(ring.failures[0]?.kind, 'lost-wakeup');
});

test('mutant: unmask without re-raising the pending event leaves the sleeper asleep', TIMEOUT, async (t) => {
  const r = await run('unmask', { mutant: 'unmask-no-ring' }, { preemptionBound: 2 });
  t.diagnostic(describe('unmask/mutant unmask-no-ring', r));
  assert.equal(r.failures.length, 1);
  assert.match(r.failures[0]!.message, /slept through the unmasked event/);
});

test('mutant: putOut loading out_cons before publishing out_prod loses the backend wakeup', TIMEOUT, async (t) => {
  const r = await run('ringOut', { prefill: 1, write: 2, start: -2, mutant: 'out-cons-before-publish' }, { preemptionBound: 2 });
  t.diagnostic(describe('ringOut/mutant out-cons-before-publish', r));
  assert.equal(r.failures.length, 1);
  assert.match(r.failures[0]!.message, /backend slept through the device's notify/);
});
