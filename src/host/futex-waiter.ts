// The waiter thread of FutexWaker (./futex.ts): sleeps in FUTEX_WAIT on one word of a shared mapping and posts each
// new value to the owning thread. The sleep is unbounded unless FutexWaker's pollMs says otherwise: an idle daemon
// must not wake without work; FutexWaker.close() wakes the thread until it has seen its termination.
import { parentPort, workerData } from 'node:worker_threads';
import { futexWait, WAITER_ENDED, WAITER_STOP } from './futex.js';
import { viewOf } from './libc.js';

const { address, pollMs, control: controlBuffer } = workerData as { address: bigint; initial: number; pollMs: number; control: SharedArrayBuffer };
const word = new Int32Array(viewOf(address, 4));
const control = new Int32Array(controlBuffer);
let posted: number | undefined;
while (Atomics.load(control, WAITER_STOP) === 0) {
  const v = Atomics.load(word, 0);
  if (v !== posted) {
    posted = v;
    parentPort!.postMessage(v);
  }
  futexWait(address, v, pollMs);
}
Atomics.store(control, WAITER_ENDED, 1);
Atomics.notify(control, WAITER_ENDED);
