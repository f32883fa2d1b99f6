// An idle daemon must not wake periodically without work (issue 7 §4, idle): FutexWaker's waiter thread (the
// daemon's waitAsync on domain 0's doorbell) sleeps in FUTEX_WAIT until a wake, and close() still ends it.
import { test, within } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { openSharedMapping } from '../src/host/shm.js';
import { futexWake, FutexWaker } from '../src/host/futex.js';

const name = `/vpl011-test-${process.pid}-futex-idle`;

function threadIds(): Set<string> {
  return new Set(readdirSync('/proc/self/task'));
}

/** Voluntary context switches of a thread: each is one return from a sleep (a wake, a timeout). */
function wakeups(tid: string): number {
  try {
    const m = /voluntary_ctxt_switches:\s+(\d+)/.exec(readFileSync(`/proc/self/task/${tid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0; // ended
  }
}

test('FutexWaker: the waiter thread sleeps until a wake (no periodic wakeups), a wake still arrives, close() ends it', { timeout: 60_000 }, async () => {
  const m = openSharedMapping(name, { create: true, size: 4096 });
  const waker = new FutexWaker(m);
  try {
    const words = new Int32Array(m.buffer);
    const before = threadIds();
    const first = waker.waitAsync(words, 0, 0, Infinity);
    // The waiter thread starts, posts the current value and goes to sleep: give it time to settle.
    await new Promise((r) => setTimeout(r, 500));
    const added = [...threadIds()].filter((t) => !before.has(t));
    assert.ok(added.length >= 1, 'the waiter thread started');
    const count = () => added.reduce((s, t) => s + wakeups(t), 0);
    const start = count();
    await new Promise((r) => setTimeout(r, 1500));
    const idle = count() - start;
    // A 250 ms poll woke it 6 times here. One spare wake for anything the runtime does on its own.
    assert.ok(idle <= 1, `the waiter thread woke ${idle} times in 1.5 s with nothing to do`);
    // A real wake is still delivered.
    Atomics.add(words, 0, 1);
    futexWake(m.address);
    assert.equal(await within(first, 10_000, 'the wake'), 'ok');
  } finally {
    await within(waker.close(), 10_000, 'close() ending the waiter thread');
    m.unlink();
    m.close();
  }
});

test('FutexWaker.close() ends a waiter thread at any point of its loop (repeated closes)', { timeout: 120_000 }, async () => {
  const m = openSharedMapping(name, { create: true, size: 4096 });
  try {
    const words = new Int32Array(m.buffer);
    for (let i = 0; i < 20; i++) {
      const waker = new FutexWaker(m);
      const p = waker.waitAsync(words, 0, Atomics.load(words, 0), Infinity);
      // Close at varying moments: before the thread ran, while it posts, while it sleeps.
      if (i % 3 === 1) await new Promise((r) => setImmediate(r));
      if (i % 3 === 2) await new Promise((r) => setTimeout(r, 20 + i));
      await within(waker.close(), 10_000, `close() #${i}`);
      assert.equal(await within(p, 1000, 'the pending waitAsync'), 'ok');
    }
  } finally {
    m.unlink();
    m.close();
  }
});
