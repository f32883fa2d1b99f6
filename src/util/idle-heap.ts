// V8's memory reducer runs garbage collections, on the background threads too, once a process's allocation rate
// drops: exactly when a VMM becomes idle at a guest's prompt. Measured on `vpl011 run` at the busybox prompt (10 s,
// 1 s after the prompt): the V8 platform threads took 10-15 ms of CPU with 11-15 wakeups each, 15-25 % of the whole
// process's idle CPU; with the reducer off, 0-1.5 ms. A VMM's JS heap is small beside the guest's RAM, so giving
// its unused pages back to the system early is not worth that. The flag is process-wide (worker threads included)
// and is read by the reducer each time it would start, so setting it at run time is enough.
import { setFlagsFromString } from 'node:v8';

let done = false;

/** Turn V8's memory reducer off for this process (idempotent). */
export function quietIdleHeap(): void {
  if (done) return;
  done = true;
  setFlagsFromString('--no-memory-reducer');
}
