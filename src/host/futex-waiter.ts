// The waiter thread of FutexWaker (./futex.ts): sleeps in FUTEX_WAIT on one word of a shared mapping and posts each
// new value to the owning thread. The bounded sleep (FutexWaker's pollMs, 250 ms) only lets the thread notice
// termination; wakeups do not depend on it (tests prove that with a poll far longer than they wait).
import { parentPort, workerData } from 'node:worker_threads';
import { futexWait } from './futex.js';
import { viewOf } from './libc.js';

const { address, pollMs } = workerData as { address: bigint; initial: number; pollMs: number };
const word = new Int32Array(viewOf(address, 4));
let posted: number | undefined;
for (;;) {
  const v = Atomics.load(word, 0);
  if (v !== posted) {
    posted = v;
    parentPort!.postMessage(v);
  }
  futexWait(address, v, pollMs);
}
