// sched_yield(2) for the vCPU thread: hand the CPU to a thread it has just woken.
//
// Why (docs/PERF.md "Echo latency"): when the vCPU's guest writes a byte, the vCPU rings the backend's doorbell and
// keeps running the guest (the rest of its write() system call, its scheduler, then WFI: 0.1 ms, or milliseconds when
// a timer tick or another task is due). If the backend's thread was woken onto this CPU (the other one busy), Linux's
// EEVDF scheduler lets the running vCPU finish its slice first, and the byte waited up to 3.5 ms in the ring
// (perf sched on the 2-core host). Yielding right after such a wake lets the backend run at once; with nothing else
// runnable on this CPU it returns immediately.
//
// Best effort: without Linux's libc (or koffi's) it does nothing.
import { libcFunction } from './libc.js';

let yieldFn: (() => number) | null | undefined;

/** Give up the CPU to another runnable thread on it, if there is one. */
export function yieldCpu(): void {
  if (yieldFn === undefined) {
    yieldFn = null;
    if (process.platform === 'linux') {
      try {
        yieldFn = libcFunction('int sched_yield()') as () => number;
      } catch {
        yieldFn = null;
      }
    }
  }
  yieldFn?.();
}
