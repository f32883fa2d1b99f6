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

interface Watch {
  worker: Worker;
  address: bigint;
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
   * `pollMs`: the waiter thread's futex sleep bound, which only lets it notice termination (close() also wakes it).
   * A test of the wake path sets it far above its own deadline so a missing FUTEX_WAKE fails instead of being
   * delivered late by the poll.
   */
  constructor(
    private readonly mapping: Pick<SharedMapping, 'address'>,
    private readonly pollMs = 250,
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
    const worker = new Worker(new URL('./futex-waiter.js', import.meta.url), {
      workerData: { address, initial: Atomics.load(words, index), pollMs: this.pollMs },
    });
    worker.unref();
    const watch: Watch = { worker, address, latest: Atomics.load(words, index), waiters: new Set() };
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
    const ended = all.map((w) => w.worker.terminate());
    for (const w of all) futexWake(w.address); // return the thread from its futex sleep so it sees the termination
    await Promise.all(ended);
  }
}
