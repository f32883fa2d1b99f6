// A short A/B of the console's bulk output: boot and the 4 MiB `cat` only (bench/lib/workloads.ts's tx), for QEMU
// read in 2 ms batches and read eagerly, and for vpl011 on its native fast path and on its TypeScript path
// (VPL011_NATIVE=0), alternating, in one run. For a shared machine where the full bench/guest.ts would take too
// long; the figures it prints are those bench/RESULTS.md and docs/PERF.md quote with this command.
// Run: npm run build && node dist/bench/tx-ab.js [--runs N] [--only qemu,qemu-eager,vpl011,vpl011-ts]
import { loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import { ensureGuestImages } from '../src/toolstack/fetch.js';
import { ConsoleProcess, killAll } from '../test/lib/console-process.js';
import { median } from './lib/stats.js';
import { QEMU, qemuLinuxArgs, vpl011Command, vpl011LinuxArgs } from './lib/targets.js';
import { bootToPrompt, BULK_READ_MS, DEFAULT_LIMITS, powerOff, tx } from './lib/workloads.js';
import { errorMessage } from '../src/util/errors.js';

type Target = 'qemu' | 'qemu-eager' | 'vpl011' | 'vpl011-ts';
const ALL: Target[] = ['qemu', 'qemu-eager', 'vpl011', 'vpl011-ts'];

export async function run(argv: string[] = process.argv.slice(2)): Promise<void> {
  let runs = 2;
  let targets = ALL;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--runs') runs = Number(argv[++i]);
    else if (argv[i] === '--only') targets = (argv[++i] ?? '').split(',') as Target[];
  }
  if (!Number.isInteger(runs) || runs < 1 || !targets.every((t) => ALL.includes(t))) throw new Error('usage: tx-ab [--runs N] [--only qemu,qemu-eager,vpl011,vpl011-ts]');
  const images = await ensureGuestImages({ quiet: true });
  const ours = vpl011Command();
  if (!ours) throw new Error('bin/vpl011.js is missing');
  const res: Record<Target, { boot: number[]; tx: number[]; notes: string[] }> = {
    qemu: { boot: [], tx: [], notes: [] }, 'qemu-eager': { boot: [], tx: [], notes: [] }, vpl011: { boot: [], tx: [], notes: [] }, 'vpl011-ts': { boot: [], tx: [], notes: [] },
  };
  const load = [loadavg()[0]!];
  try {
    for (let i = 0; i < runs; i++) {
      for (const t of targets) {
        const p = t.startsWith('qemu')
          ? new ConsoleProcess(t, QEMU, qemuLinuxArgs(images.kernel, images.initrd))
          : new ConsoleProcess(t, ours.cmd, [...ours.args, ...vpl011LinuxArgs(600)], { cwd: ours.cwd, env: { VPL011_NATIVE: t === 'vpl011-ts' ? '0' : '1' } });
        const eager = t === 'qemu-eager';
        p.readEvery(eager ? 0 : BULK_READ_MS);
        try {
          const boot = await bootToPrompt(p, DEFAULT_LIMITS);
          const r = await tx(p, { ...DEFAULT_LIMITS, txMs: 400_000 });
          res[t].boot.push(boot);
          if (r.ok) res[t].tx.push(r.mbs);
          else res[t].notes.push(r.detail);
          process.stdout.write(`[tx-ab] ${t} run ${i + 1}: boot ${boot.toFixed(2)} s, tx ${r.mbs.toFixed(2)} MB/s (${r.detail}), load ${loadavg()[0]!.toFixed(1)}\n`);
          await powerOff(p, DEFAULT_LIMITS);
        } catch (e) {
          res[t].notes.push(errorMessage(e).split('\n')[0]!);
          process.stdout.write(`[tx-ab] ${t} run ${i + 1}: FAILED ${errorMessage(e).split('\n')[0]}\n`);
          await p.kill(2000);
        }
      }
    }
  } finally {
    killAll();
  }
  load.push(loadavg()[0]!);
  process.stdout.write(`\nload average ${load.map((l) => l.toFixed(1)).join(' -> ')}\n| target | reader | boot (s), median | cat 4 MiB (MB/s), median | runs |\n|---|---|---|---|---|\n`);
  for (const t of targets) {
    const r = res[t];
    const reader = t === 'qemu-eager' ? 'eager' : `batched (${BULK_READ_MS} ms)`;
    process.stdout.write(`| ${t} | ${reader} | ${median(r.boot).toFixed(2)} | ${median(r.tx).toFixed(2)} | ${r.tx.map((x) => x.toFixed(2)).join(', ')}${r.notes.length ? `; ${r.notes.join('; ')}` : ''} |\n`);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await run();
