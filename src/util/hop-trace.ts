// Per-hop timestamps of the console path, for finding where a slow echo round trip lost its time
// (bench/echo-hops.ts, docs/PERF.md "Echo latency"). Off unless VPL011_HOPTRACE names a file prefix: then each thread
// appends "<CLOCK_MONOTONIC ms> <hop> [detail]" lines to <prefix>.<pid>.<threadId> whenever it is about to sleep
// (hopFlush), plus one line per V8 garbage collection ("gc <ms>"). Off, a hop costs one test of a constant.
//
// The clock is the one process.hrtime and the harness use (CLOCK_MONOTONIC), so the lines of the VMM's threads and
// the harness's own send/receive times fall on one time line.
import { openSync, writeSync } from 'node:fs';
import { threadId } from 'node:worker_threads';
import { PerformanceObserver, performance } from 'node:perf_hooks';

const prefix = process.env.VPL011_HOPTRACE;
export const hopTraceOn = prefix !== undefined && prefix !== '';
/** Lines kept in memory between flushes at most (a thread that never sleeps still writes them out). */
const MAX_PENDING = 4096;
const pending: string[] = [];
let fd = -1;

function monoMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Record a hop of this thread now (no-op unless VPL011_HOPTRACE is set). */
export function hop(id: string, detail?: number): void {
  if (!hopTraceOn) return;
  pending.push(`${monoMs().toFixed(4)} ${id}${detail === undefined ? '' : ' ' + String(detail)}`);
  if (pending.length >= MAX_PENDING) hopFlush();
}

/** Write this thread's recorded hops out (call where the thread is about to sleep: the write is off the hot path). */
export function hopFlush(): void {
  if (!hopTraceOn || pending.length === 0) return;
  try {
    if (fd < 0) fd = openSync(`${prefix}.${process.pid}.${threadId}`, 'a');
    writeSync(fd, pending.join('\n') + '\n');
  } catch {
    // a diagnostic: a failed write loses these lines, never the console's bytes
  }
  pending.length = 0;
}

if (hopTraceOn) {
  // Garbage collections of this thread's isolate, on the same time line (a GC pause stops the thread's hops).
  new PerformanceObserver((list) => {
    const offset = monoMs() - performance.now();
    for (const e of list.getEntries()) pending.push(`${(e.startTime + offset).toFixed(4)} gc ${e.duration.toFixed(3)}`);
  }).observe({ entryTypes: ['gc'] });
}
