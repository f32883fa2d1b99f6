// The console daemon under load: 1,000 consoles on one daemon loop (one core), fed by synthetic producers in a
// worker thread that write the rings directly (no CPU). Measures the aggregate rate to the log files (through the
// daemon's exactly-once log path: Console + DurableLog + ConsoleBackend), the memory per idle console, and the
// keystroke round trip through the daemon on one interactive console while the others stream.
// Run: npm run build && node dist/bench/daemon.js [--consoles N] [--mib-per-console M] [--no-results]
import { Worker } from 'node:worker_threads';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, loadavg, cpus } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { EventChannels } from '../src/xen/evtchn.js';
import { ConsoleRingBackend, XENCONS_PAGE_SIZE } from '../src/xen/ring.js';
import { Console } from '../src/console/console.js';
import { ConsoleBackend } from '../src/console/backend.js';
import { DurableLog } from '../src/daemon/durable-log.js';
import { markdownTable, replaceSection } from './lib/results.js';
import { percentile } from './lib/stats.js';
import { patternByte } from './daemon/pattern.js';
import type { ProducerInit } from './daemon/producer.js';

export const SECTION = 'Console daemon: 1,000 consoles';

function arg(argv: string[], name: string, dflt: number): number {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
}

function memNow(): number {
  const m = process.memoryUsage();
  return m.rss;
}

export async function run(argv: string[] = process.argv.slice(2)): Promise<void> {
  const consoles = arg(argv, '--consoles', 1000);
  const perConsole = Math.round(arg(argv, '--mib-per-console', 0.25) * 1024 * 1024);
  const dir = mkdtempSync(join(tmpdir(), 'vpl011-bench-daemon-'));
  try {
    global.gc?.();
    const ev = EventChannels.create({ maxDomains: consoles + 1, portsPerDomain: consoles + 2 });
    const pages = new SharedArrayBuffer(consoles * XENCONS_PAGE_SIZE);
    const memTables = memNow();
    const backend = new ConsoleBackend(0);
    const ports: number[] = [];
    const list: Console[] = [];
    const logs: DurableLog[] = [];
    for (let i = 0; i < consoles; i++) {
      const domid = i + 1;
      const guestPort = ev.allocUnbound(domid, 0);
      const local = ev.bindInterdomain(0, domid, guestPort);
      ports.push(guestPort);
      const ring = new ConsoleRingBackend(pages, i * XENCONS_PAGE_SIZE);
      const log = new DurableLog(join(dir, `guest-c${i}-vuart0.log`), join(dir, `c${i}.journal`));
      logs.push(log);
      const c = new Console({
        name: `c${i}`, domid, ring, evtchn: ev, backendDomid: 0, localPort: local,
        recorder: (chunk, cons) => log.record(chunk, cons),
      });
      list.push(c);
      backend.add(c, ev, local);
    }
    void backend.start();
    await new Promise((r) => setTimeout(r, 200));
    global.gc?.();
    const memIdle = memNow();
    const perConsoleBytes = (memIdle - memTables) / consoles;

    const control = new Int32Array(new SharedArrayBuffer(4));
    const init: ProducerInit = { pages, evtchn: ev.buffer as SharedArrayBuffer, ports, bytesPerConsole: perConsole, control: control.buffer as SharedArrayBuffer };
    const worker = new Worker(new URL('./daemon/producer.js', import.meta.url), { workerData: init });
    await new Promise<void>((resolve, reject) => {
      worker.on('message', (m: { type: string }) => { if (m.type === 'ready') resolve(); });
      worker.once('error', reject);
    });

    // Keystroke round trips on console 0 while the others stream.
    const rtts: number[] = [];
    let sentAt = 0n;
    let waiting = -1;
    list[0]!.onOutput = (chunk) => {
      if (waiting >= 0 && chunk.includes(waiting)) {
        rtts.push(Number(process.hrtime.bigint() - sentAt) / 1e6);
        waiting = -1;
      }
    };
    const total = perConsole * (consoles - 1);
    const done = () => list.slice(1).reduce((s, c) => s + c.counters.bytesOut, 0) >= total;
    const t0 = process.hrtime.bigint();
    Atomics.store(control, 0, 1);
    Atomics.notify(control, 0);
    let k = 0;
    const deadline = Date.now() + 300_000;
    while (!done() && Date.now() < deadline) {
      if (waiting < 0) {
        waiting = 0x41 + (k++ % 26);
        sentAt = process.hrtime.bigint();
        list[0]!.queueInput(Uint8Array.of(waiting));
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    const t1 = process.hrtime.bigint();
    const seconds = Number(t1 - t0) / 1e9;
    // Keep measuring round trips once the stream has ended, for contrast.
    const loaded = rtts.slice();
    Atomics.store(control, 0, 2);
    await worker.terminate();
    await backend.stop();
    const moved = list.slice(1).reduce((s, c) => s + c.counters.bytesOut, 0);

    // Every log byte-exact.
    let bad = 0;
    for (let i = 1; i < consoles; i++) {
      const got = readFileSync(join(dir, `guest-c${i}-vuart0.log`));
      let ok = got.length === perConsole;
      for (let b = 0; ok && b < got.length; b++) if (got[b] !== patternByte(i, b)) ok = false;
      if (!ok) bad++;
    }
    for (const l of logs) l.close();
    for (const c of list) c.close();

    const mbs = moved / seconds / 1e6;
    const p50 = percentile(loaded, 50);
    const p99 = percentile(loaded, 99);
    const rows = [
      ['consoles', String(consoles), ''],
      ['aggregate rate to the logs (one daemon thread)', `${mbs.toFixed(0)} MB/s`, mbs >= 200 ? 'goal ≥ 200 MB/s: met' : 'goal ≥ 200 MB/s: NOT met'],
      ['bytes moved, logs byte-exact', `${moved} (${consoles - 1} × ${perConsole}), ${bad === 0 ? 'all exact' : `${bad} logs wrong`}`, ''],
      ['memory per idle console (daemon RSS growth / N)', `${(perConsoleBytes / 1024).toFixed(1)} KiB`, perConsoleBytes <= 64 * 1024 ? 'goal ≤ 64 KiB: met' : 'goal ≤ 64 KiB: NOT met'],
      ['keystroke round trip while the others stream, p50 / p99', `${p50.toFixed(2)} / ${p99.toFixed(2)} ms (${loaded.length} samples)`, p99 <= 1 ? 'goal p99 ≤ 1 ms: met' : 'goal p99 ≤ 1 ms: NOT met'],
    ];
    const table = markdownTable(['measure', 'value', 'goal'], rows);
    console.log(table);
    if (bad > 0) process.exitCode = 1;
    if (!argv.includes('--no-results')) {
      replaceSection(
        join(process.cwd(), 'bench', 'RESULTS.md'),
        SECTION,
        `Measured ${new Date().toISOString()} with \`node dist/bench/daemon.js\` (part of \`npm run bench\`); ${cpus().length} host CPUs, ` +
          `load average ${loadavg()[0]!.toFixed(1)} at the end. One Node thread runs the daemon's console loop for all consoles ` +
          `(Console + DurableLog + ConsoleBackend: peek, journal, synchronous log write, publish out_cons); a worker thread ` +
          `plays ${consoles - 1} streaming guests (each writes ${perConsole} bytes of its own pattern straight into its ring, ` +
          `notifying on empty -> non-empty) and one interactive guest that echoes its input. Tables ` +
          `(event channels ${(ev.buffer.byteLength / 1048576).toFixed(1)} MiB, ring pages ${(pages.byteLength / 1048576).toFixed(1)} MiB) ` +
          `are guest/hypervisor memory and not counted per console.\n\n${table}\n`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  run().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
