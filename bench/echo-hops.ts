// Where an echo round trip spends its time, hop by hop (docs/PERF.md "Echo latency").
// Run: npm run build && node dist/bench/echo-hops.js [--samples N] [--rounds R] [--slow MS]
//
// Boots `vpl011 run` with VPL011_HOPTRACE (src/util/hop-trace.ts), does bench/guest.ts's echo workload (stty raw
// -echo isig; cat; one character at a time, the next sent when the previous came back, stdout read eagerly), and puts
// the VMM's per-thread hop lines and this harness's send/receive times on one CLOCK_MONOTONIC time line. For every
// sample the hops are, each measured from the previous one:
//   in      the harness's write until the backend thread has the byte (stdin readable, event loop)
//   notify  ... until the backend has put it into IN and rings the guest's doorbell
//   vcpu    ... until the vCPU thread sees it (woken from its WFI sleep, or at a safe point while running)
//   irq     ... until the RX interrupt is raised (HCR_EL2.VI)
//   guest   ... until the guest has written the echo to DR and the vCPU rings the backend (the Linux tty path)
//   bwake   ... until the backend thread runs (Atomics.waitAsync, event loop)
//   out     ... until it is about to write the byte to stdout
//   recv    ... until this harness has read it (the write() and the reader's wakeup)
// Printed: each hop's p50/p90/p99/max over all samples, and the hops of every sample slower than --slow ms, with the
// garbage collections that fell inside it. A hop that is long in a slow sample is where its time went; whether the
// thread was waiting for a CPU there takes `perf sched` (docs/PERF.md).
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { vpl011Process, type ConsoleProcess } from '../test/lib/console-process.js';
import { DEFAULT_LIMITS, ECHO_SAMPLES, ECHO_WARMUP, PROMPT, bootToPrompt, powerOff } from './lib/workloads.js';
import { percentile } from './lib/stats.js';

const HOPS = ['in', 'notify', 'vcpu', 'irq', 'guest', 'bwake', 'out', 'recv'] as const;
type Hop = (typeof HOPS)[number];

interface Line {
  ms: number;
  /** 'M' the backend's (main) thread, 'V' the vCPU's worker thread. */
  thread: 'M' | 'V';
  id: string;
  detail: string;
}

interface Sample {
  sentMs: number;
  gotMs: number;
}

class UsageError extends Error {}

function parseArgs(argv: string[]): { samples: number; rounds: number; slowMs: number } {
  const o = { samples: ECHO_SAMPLES, rounds: 1, slowMs: 1 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = Number(argv[i + 1]);
    if (a === '--samples' && Number.isInteger(v) && v > 0 && v <= 100_000) o.samples = v;
    else if (a === '--rounds' && Number.isInteger(v) && v > 0 && v <= 100) o.rounds = v;
    else if (a === '--slow' && v > 0) o.slowMs = v;
    else throw new UsageError(`bad argument ${a} ${argv[i + 1] ?? ''} (--samples N, --rounds R, --slow MS)`);
    i++;
  }
  return o;
}

async function command(p: ConsoleProcess, line: string, waitFor = PROMPT): Promise<void> {
  const off = p.length;
  await p.write(line + '\n');
  await p.waitFor(waitFor, off, DEFAULT_LIMITS.commandMs, `"${waitFor}" after "${line}"`);
}

function readLines(dir: string): Line[] {
  const lines: Line[] = [];
  for (const f of readdirSync(dir)) {
    const thread = f.endsWith('.0') ? 'M' : 'V';
    for (const text of readFileSync(join(dir, f), 'utf8').split('\n')) {
      const [ms, id, ...rest] = text.split(' ');
      if (id === undefined) continue;
      lines.push({ ms: Number(ms), thread, id, detail: rest.join(' ') });
    }
  }
  return lines.sort((a, b) => a.ms - b.ms);
}

/** The hop durations of one sample (ms), or undefined when a hop is missing (e.g. output written before its line). */
function hopsOf(s: Sample, lines: Line[], guestDomid: string): Record<Hop, number> | undefined {
  const inside = lines.filter((l) => l.ms >= s.sentMs && l.ms <= s.gotMs);
  let t = s.sentMs;
  const out = {} as Record<Hop, number>;
  const next = (hop: Hop, pred: (l: Line) => boolean): boolean => {
    const l = inside.find((x) => x.ms >= t && pred(x));
    if (!l) return false;
    out[hop] = l.ms - t;
    t = l.ms;
    return true;
  };
  const ok =
    next('in', (l) => l.thread === 'M' && l.id === 'in') &&
    next('notify', (l) => l.thread === 'M' && l.id === 'ring' && l.detail === guestDomid) &&
    next('vcpu', (l) => l.thread === 'V' && (l.id === 'wake' || l.id === 'db')) &&
    next('irq', (l) => l.thread === 'V' && l.id === 'irq1') &&
    next('guest', (l) => l.thread === 'V' && l.id === 'ring' && l.detail === '0') &&
    next('bwake', (l) => l.thread === 'M' && l.id === 'bwake') &&
    next('out', (l) => l.thread === 'M' && l.id === 'out');
  if (!ok) return undefined;
  out.recv = s.gotMs - t;
  return out;
}

const f3 = (x: number) => x.toFixed(3).padStart(7);

export async function run(argv = process.argv.slice(2)): Promise<void> {
  const o = parseArgs(argv);
  const dir = mkdtempSync(join(tmpdir(), 'vpl011-hops-'));
  const p = vpl011Process(['run', '--timeout', '900'], { VPL011_HOPTRACE: join(dir, 'hops') });
  const samples: Sample[] = [];
  try {
    await measure(p, o, samples);
    report(readLines(dir), samples, o.slowMs);
  } finally {
    if (!p.exitStatus) await p.kill(2000);
    rmSync(dir, { recursive: true, force: true });
  }
}

async function measure(p: ConsoleProcess, o: { samples: number; rounds: number }, samples: Sample[]): Promise<void> {
  await bootToPrompt(p, DEFAULT_LIMITS);
  await command(p, 'stty raw -echo isig');
  await command(p, 'echo HOPS-$((40+2)); cat', 'HOPS-42');
  p.readEvery(0);
  for (let r = 0; r < o.rounds; r++) {
    for (let i = 0; i < ECHO_WARMUP + o.samples; i++) {
      const ch = String.fromCharCode(0x61 + (i % 26));
      const from = p.length;
      const t0 = process.hrtime.bigint();
      await p.write(ch);
      const got = await p.waitFor(ch, from, DEFAULT_LIMITS.echoCharMs, `echo of "${ch}"`);
      if (i >= ECHO_WARMUP) samples.push({ sentMs: Number(t0) / 1e6, gotMs: Number(got.ns) / 1e6 });
    }
  }
  const stop = p.length;
  await p.write('\x03');
  await p.waitFor(PROMPT, stop, DEFAULT_LIMITS.commandMs, 'prompt after ^C');
  await command(p, 'stty sane');
  await powerOff(p, DEFAULT_LIMITS);
}

function report(lines: Line[], samples: Sample[], slowMs: number): void {
  const totals = samples.map((s) => s.gotMs - s.sentMs);
  process.stdout.write(
    `${samples.length} round trips, load average ${loadavg()[0]!.toFixed(2)}: p50 ${percentile(totals, 50).toFixed(3)} ` +
      `p90 ${percentile(totals, 90).toFixed(3)} p99 ${percentile(totals, 99).toFixed(3)} max ${Math.max(...totals).toFixed(3)} ms\n`,
  );
  const rows = samples.map((s) => ({ s, h: hopsOf(s, lines, '1') }));
  const whole = rows.filter((r) => r.h !== undefined) as { s: Sample; h: Record<Hop, number> }[];
  process.stdout.write(`hops (ms) of the ${whole.length} samples whose every hop was seen:\n`);
  process.stdout.write(`${'hop'.padEnd(7)}     p50     p90     p99     max\n`);
  for (const h of HOPS) {
    const v = whole.map((r) => r.h[h]);
    process.stdout.write(`${h.padEnd(7)} ${f3(percentile(v, 50))} ${f3(percentile(v, 90))} ${f3(percentile(v, 99))} ${f3(Math.max(...v))}\n`);
  }
  const slow = whole.filter((r) => r.s.gotMs - r.s.sentMs >= slowMs);
  process.stdout.write(`\nsamples of ${slowMs} ms or more (${slow.length}; ${rows.filter((r) => !r.h && r.s.gotMs - r.s.sentMs >= slowMs).length} more with a hop not seen):\n`);
  process.stdout.write(`${'total'.padStart(7)} ${HOPS.map((h) => h.padStart(7)).join(' ')}  gc\n`);
  for (const r of slow) {
    const gcs = lines.filter((l) => l.id === 'gc' && l.ms >= r.s.sentMs - 5 && l.ms <= r.s.gotMs).map((l) => `${l.thread}:${l.detail}`);
    process.stdout.write(`${f3(r.s.gotMs - r.s.sentMs)} ${HOPS.map((h) => f3(r.h[h])).join(' ')}  ${gcs.join(' ')}\n`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  run().catch((e: unknown) => {
    process.stderr.write(`echo-hops: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = e instanceof UsageError ? 2 : 1;
  });
}
