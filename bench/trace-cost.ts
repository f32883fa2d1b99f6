// What `vpl011 trace` costs: the bare-metal TX flood (bench/bare.ts's workload: guests/bare/tx-flood.S, an FR read
// and a DR write per byte, drained by the real console backend) with no insight region, with the region but the
// trace off (the snapshot publishing only), and with the trace recording every access; alternating, N rounds.
// Reported: the vCPU thread's CPU time per byte (what tracing adds to; wall time on a shared machine mostly measures
// the other jobs) and, for reference, the wall-clock MB/s.
// Run: npm run build && node dist/bench/trace-cost.js [--rounds N] [--only no-region,trace-off,trace-on,ts-trace-on]
import { Worker } from 'node:worker_threads';
import { loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import { buildBareGuest, BARE_LOAD_ADDR } from '../src/vmm/bare-guests.js';
import { EventChannels } from '../src/xen/evtchn.js';
import { ConsoleRingBackend } from '../src/xen/ring.js';
import { NR_MAGIC_PAGES, VUART_PFN_OFFSET, XEN_PAGE_SIZE } from '../src/xen/arch-arm.js';
import { Console } from '../src/console/console.js';
import { ConsoleBackend } from '../src/console/backend.js';
import { INSIGHT_BYTES } from '../src/vmm/insight.js';
import { AccessTraceReader } from '../src/device/access-trace.js';
import { INSIGHT_TRACE_OFFSET } from '../src/vmm/insight.js';
import { median } from './lib/stats.js';
import { TX_BYTES } from './bare.js';

/** ts-trace-on: the trace on with the native fast path off (VPL011_NATIVE=0): the alternative to recording in C. */
type Mode = 'no-region' | 'trace-off' | 'trace-on' | 'ts-trace-on';

async function once(mode: Mode, bytes: number): Promise<{ ns: number; cpu: number; mbs: number; traced: number }> {
  const data = buildBareGuest('tx-flood');
  const evtchnSab = EventChannels.create().buffer as SharedArrayBuffer;
  const magicPages = new SharedArrayBuffer(NR_MAGIC_PAGES * XEN_PAGE_SIZE);
  const insight = mode === 'no-region' ? undefined : new SharedArrayBuffer(INSIGHT_BYTES);
  const image = { ramBase: BARE_LOAD_ADDR, ramSize: 0x200000, segments: [{ addr: BARE_LOAD_ADDR, data, what: 'tx-flood' }], entry: BARE_LOAD_ADDR, x0: 0 };
  const w = new Worker(new URL('./lib/trace-cost-worker.js', import.meta.url), {
    workerData: { image, evtchn: evtchnSab, magicPages, insight, trace: mode === 'trace-on' || mode === 'ts-trace-on' },
    env: { ...process.env, ...(mode === 'ts-trace-on' ? { VPL011_NATIVE: '0' } : {}) },
  });
  const evtchn = EventChannels.attach(evtchnSab);
  let con: Console | undefined;
  let backend: ConsoleBackend | undefined;
  let detach: (() => void) | undefined;
  let got = 0;
  const done = new Promise<{ vcpuSeconds: number; cpuNs: number }>((resolve, reject) => {
    w.on('message', (m: { type: string; port?: number; vcpuSeconds?: number; cpuNs?: number; exit?: { reason: string; message?: string } }) => {
      if (m.type === 'vuart') {
        const localPort = evtchn.bindInterdomain(0, 1, m.port!);
        const ring = new ConsoleRingBackend(magicPages, VUART_PFN_OFFSET * XEN_PAGE_SIZE);
        con = new Console({ name: 'tx', domid: 1, ring, evtchn, backendDomid: 0, localPort });
        con.onOutput = (c) => void (got += c.length);
        backend = new ConsoleBackend(0);
        detach = backend.add(con, evtchn, localPort);
        void backend.start();
      } else if (m.type === 'exit') {
        if (m.exit?.reason !== 'poweroff') reject(new Error(`tx-flood: ${m.exit?.reason} ${m.exit?.message ?? ''}`));
        else resolve({ vcpuSeconds: m.vcpuSeconds!, cpuNs: m.cpuNs! });
      }
    });
    w.on('error', reject);
  });
  try {
    const r = await done;
    con?.flush();
    if (got !== bytes) throw new Error(`tx-flood: ${got} bytes of ${bytes} arrived`);
    const traced = insight ? new AccessTraceReader(insight, INSIGHT_TRACE_OFFSET, INSIGHT_BYTES - INSIGHT_TRACE_OFFSET).head : 0;
    return { ns: (r.vcpuSeconds * 1e9) / bytes, cpu: r.cpuNs / bytes, mbs: bytes / r.vcpuSeconds / 1e6, traced };
  } finally {
    detach?.();
    await backend?.stop();
    con?.close();
    await w.terminate();
  }
}

export async function run(argv = process.argv.slice(2)): Promise<void> {
  let rounds = 5;
  const bytes = TX_BYTES; // what guests/bare/tx-flood.S writes
  let modes: Mode[] = ['no-region', 'trace-off', 'trace-on'];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--rounds') rounds = Number(argv[++i]);
    else if (argv[i] === '--only') modes = (argv[++i] ?? '').split(',') as Mode[];
  }
  const res: Record<Mode, number[]> = { 'no-region': [], 'trace-off': [], 'trace-on': [], 'ts-trace-on': [] };
  const load0 = loadavg()[0]!;
  for (let r = 0; r < rounds; r++) {
    // Rotate the order so a load spike does not always hit the same mode.
    for (let k = 0; k < modes.length; k++) {
      const mode = modes[(k + r) % modes.length]!;
      const x = await once(mode, bytes);
      res[mode].push(x.cpu);
      process.stdout.write(`round ${r + 1} ${mode}: vCPU ${x.cpu.toFixed(1)} ns CPU/byte (wall ${x.ns.toFixed(1)} ns, ${x.mbs.toFixed(2)} MB/s)${mode.endsWith('trace-on') ? `, ${x.traced} records` : ''}\n`);
    }
  }
  const base = median(res[modes[0]!]);
  process.stdout.write(`\nload ${load0.toFixed(1)} -> ${loadavg()[0]!.toFixed(1)}; ${bytes} bytes, ${rounds} rounds, medians:\n`);
  for (const m of modes) {
    const v = median(res[m]);
    process.stdout.write(`${m}: ${v.toFixed(1)} ns of vCPU CPU per byte (${((v / base - 1) * 100).toFixed(1)}% vs ${modes[0]})\n`);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await run();
