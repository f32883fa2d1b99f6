// Futex wait/wake on a word of a MAP_SHARED mapping: the cross-process form of Atomics.wait/notify (which only work
// between threads of one process). FUTEX_WAIT compares the word with the value the caller last saw, so a change
// that lands before the sleep makes it return at once: the evtchn wakeup rule (docs/DESIGN.md) holds across
// processes as it does across threads.
//
// waitAsync for a process's event loop: one small waiter thread per watched word (in practice one per process: the
// daemon watches domain 0's doorbell) that futex-waits and posts each new value it sees; see FutexWaker.
import { Worker } from 'node:worker_threads';
import { EAGAIN, EINTR, ETIMEDOUT, FUTEX_WAIT, FUTEX_WAKE, libc, timespec } from './libc.js';
/** What a wait ended with: Atomics.wait's own three answers, which futex(2)'s outcomes map onto. */
export type WaitResult = 'ok' | 'not-equal' | 'timed-out';
import type { SharedMapping } from './shm.js';

const INT_MAX = 0x7fffffff;

/**
 * Sleep while the 32-bit word at `address` equals `expected`, at most timeoutMs (Infinity: forever).
 * 'not-equal' if it already differed, 'ok' when woken (or spuriously: callers re-check), 'timed-out'.
 */
export function futexWait(address: bigint, expected: number, timeoutMs: number): WaitResult {
  const c = libc();
  const r = c.futex(address, FUTEX_WAIT, expected | 0, timespec(timeoutMs));
  if (r === 0) return 'ok';
  const e = c.errno();
  if (e === EAGAIN) return 'not-equal';
  if (e === ETIMEDOUT) return 'timed-out';
  if (e === EINTR) return 'ok';
  throw new Error(`futex wait failed (errno ${e})`);
}

/** Wake up to `count` waiters on the word at `address`; returns how many were woken. */
export function futexWake(address: bigint, count = INT_MAX): number {
  return Math.max(0, libc().futex(address, FUTEX_WAKE, count, null));
}

/** The waiter thread's control words (a SharedArrayBuffer): the owner sets STOP, the thread sets ENDED on its way out. */
export const WAITER_STOP = 0;
export const WAITER_ENDED = 1;

interface Watch {
  worker: Worker;
  address: bigint;
  /** [WAITER_STOP, WAITER_ENDED] */
  control: Int32Array;
  /** The newest value the waiter thread has posted. */
  latest: number;
  waiters: Set<{ seen: number; resolve: (r: WaitResult) => void }>;
}

/**
 * A doorbell waker for a table in a SharedMapping (structurally src/xen/evtchn.ts's DoorbellWaker; host/ is below
 * xen/ and does not import it): wake = futex wake, wait = futex wait, waitAsync = a
 * waiter thread per word. The thread loops { v = load(word); post(v) if new; futexWait(word, v) }, so it never
 * sleeps while the word differs from the last value it posted; a waitAsync(seen) resolves on the first posted
 * value != seen (doorbells only grow, so a change after the caller read `seen` is always seen).
 */
export class FutexWaker {
  private readonly watches = new Map<number, Watch>();

  /**
   * `pollMs`: the waiter thread's futex sleep bound. Unbounded by default: an idle daemon must not wake without
   * work (a 250 ms bound woke it 4 times a second), and close() ends the thread by waking it until it has exited.
   */
  constructor(
    private readonly mapping: Pick<SharedMapping, 'address'>,
    private readonly pollMs = Infinity,
  ) {}

  private addr(words: Int32Array, index: number): bigint {
    return this.mapping.address + BigInt(words.byteOffset + index * 4);
  }

  wake(words: Int32Array, index: number): void {
    futexWake(this.addr(words, index));
  }

  wait(words: Int32Array, index: number, seen: number, timeoutMs: number): WaitResult {
    if (Atomics.load(words, index) !== seen) return 'not-equal';
    return futexWait(this.addr(words, index), seen, timeoutMs);
  }

  waitAsync(words: Int32Array, index: number, seen: number, timeoutMs: number): Promise<WaitResult> {
    if (Atomics.load(words, index) !== seen) return Promise.resolve('not-equal');
    const w = this.watch(words, index);
    return new Promise<WaitResult>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const entry = {
        seen,
        resolve: (r: WaitResult) => {
          if (timer) clearTimeout(timer);
          w.waiters.delete(entry);
          resolve(r);
        },
      };
      w.waiters.add(entry);
      if (Number.isFinite(timeoutMs)) timer = setTimeout(() => entry.resolve('timed-out'), Math.max(0, timeoutMs));
      // Re-check after registering: a post may have been handled between the load above and now.
      if (Atomics.load(words, index) !== seen) entry.resolve('ok');
    });
  }

  private watch(words: Int32Array, index: number): Watch {
    let w = this.watches.get(index);
    if (w) return w;
    const address = this.addr(words, index);
    const control = new Int32Array(new SharedArrayBuffer(8));
    const worker = new Worker(new URL('./futex-waiter.js', import.meta.url), {
      workerData: { address, initial: Atomics.load(words, index), pollMs: this.pollMs, control: control.buffer },
    });
    worker.unref();
    const watch: Watch = { worker, address, control, latest: Atomics.load(words, index), waiters: new Set() };
    liveWatches.add(watch);
    void worker.once('exit', () => liveWatches.delete(watch));
    worker.on('message', (v: number) => {
      watch.latest = v;
      for (const e of [...watch.waiters]) if (e.seen !== v) e.resolve('ok');
    });
    worker.on('error', () => {
      // The waiter died (should not happen); fail open: resolve everyone so loops poll instead of hanging.
      this.watches.delete(index);
      for (const e of [...watch.waiters]) e.resolve('ok');
    });
    this.watches.set(index, watch);
    w = watch;
    return w;
  }

  /** Stop the waiter threads (they also stop with the process). */
  async close(): Promise<void> {
    const all = [...this.watches.values()];
    this.watches.clear();
    for (const w of all) for (const e of [...w.waiters]) e.resolve('ok');
    await Promise.all(all.map((w) => endWaiter(w)));
  }
}

/** How often close() wakes a waiter thread until it has exited. */
const CLOSE_WAKE_MS = 10;

/**
 * Neither terminate() nor the process's exit can interrupt the waiter's FUTEX_WAIT (a native call), and the waiter
 * sleeps without a bound, so it is asked to stop (WAITER_STOP, read after every wake) and woken. One wake can land
 * just before the thread goes to sleep again (lost: the word did not change), so the wake is repeated until the
 * thread has ended.
 */
async function endWaiter(w: Watch): Promise<void> {
  Atomics.store(w.control, WAITER_STOP, 1);
  const ended = new Promise<void>((resolve) => {
    w.worker.once('exit', () => resolve());
    if (liveWatches.has(w) === false) resolve();
  });
  futexWake(w.address);
  const again = setInterval(() => futexWake(w.address), CLOSE_WAKE_MS);
  try {
    await ended;
  } finally {
    clearInterval(again);
  }
}

/** Waiter threads not yet ended, of every FutexWaker: the process's exit waits for them (Node joins its workers). */
const liveWatches = new Set<Watch>();
/** At most this long (ms) for the waiter threads at process exit. */
const EXIT_STOP_MS = 2000;

// Node joins worker threads when the process exits, after the 'exit' listeners: a waiter asleep in FUTEX_WAIT would
// hold the exit for ever. Stop them synchronously here (no timers run any more): stop word, wake, wait for ENDED.
process.once('exit', () => {
  const deadline = Date.now() + EXIT_STOP_MS;
  for (const w of liveWatches) {
    Atomics.store(w.control, WAITER_STOP, 1);
    while (Atomics.load(w.control, WAITER_ENDED) === 0 && Date.now() < deadline) {
      futexWake(w.address);
      Atomics.wait(w.control, WAITER_ENDED, 0, 1);
    }
  }
});
