// The vCPU thread of bench/trace-cost.ts: a Machine over the given SABs with or without an insight region (and with
// the access trace on or off), as src/vmm/worker.ts builds it for the daemon's domain host.
import { parentPort, workerData } from 'node:worker_threads';
import { Machine } from '../../src/vmm/machine.js';
import { EventChannels } from '../../src/xen/evtchn.js';
import type { GuestImage } from '../../src/toolstack/guest-image.js';
import koffi from 'koffi';

// The vCPU thread's own CPU time (CLOCK_THREAD_CPUTIME_ID): on a shared machine, wall time mostly measures the others.
const clockGettime = koffi.load('libc.so.6').func('int clock_gettime(int clk, _Out_ uint8_t *ts)') as (c: number, b: Buffer) => number;
function threadCpuNs(): number {
  const b = Buffer.alloc(16);
  clockGettime(3, b);
  return Number(b.readBigInt64LE(0)) * 1e9 + Number(b.readBigInt64LE(8));
}

interface Init { image: GuestImage; evtchn: SharedArrayBuffer; magicPages: SharedArrayBuffer; insight?: SharedArrayBuffer; trace: boolean }
const init = workerData as Init;
const m = new Machine({
  domid: 1, name: 'trace-cost', image: init.image, evtchn: EventChannels.attach(init.evtchn), magicPages: init.magicPages,
  ...(init.insight ? { insight: init.insight, trace: init.trace } : {}),
});
parentPort!.postMessage({ type: 'vuart', port: m.vuartPort });
const t0 = process.hrtime.bigint();
const c0 = threadCpuNs();
const exit = m.run();
const cpuNs = threadCpuNs() - c0;
const vcpuSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
parentPort!.postMessage({ type: 'exit', exit, stats: m.stats(), vcpuSeconds, cpuNs });
m.close();
