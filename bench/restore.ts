// Fast start from a saved domain (issue #12, docs/SAVE.md): `vpl011 run --restore` of the default Linux guest saved
// at the busybox prompt against a cold boot to the prompt, each measured from process start to a *working* prompt
// (a typed `echo` answered). A benchmark, not a test: it prints the medians and appends nothing to RESULTS.md by
// itself (the figures there are copied by hand with the machine's load).
// Run: npm run build && node dist/bench/restore.js [--runs N]   (also: node dist/bench/run.js restore)
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConsoleProcess, killAll } from '../test/lib/console-process.js';
import { median, nsToMs } from './lib/stats.js';
import { vpl011Command } from './lib/targets.js';
import { PROMPT } from './lib/workloads.js';

const BOOT_MS = 180_000;

/** Start `args`, type an echo at the first prompt, and return ms from process start to its answer. */
async function toWorkingPrompt(label: string, args: string[], needPrompt: boolean): Promise<{ ms: number; p: ConsoleProcess }> {
  const v = vpl011Command();
  if (!v) throw new Error('bin/vpl011.js not found');
  const p = new ConsoleProcess(label, v.cmd, [...v.args, ...args], { cwd: v.cwd });
  // A restored guest sits at its prompt already (printed before the save): type at once and wait for the answer.
  const from = needPrompt ? (await p.waitFor(PROMPT, 0, BOOT_MS, 'first prompt')).at : 0;
  await p.write('echo ready-$((40+2))\n');
  const { ns } = await p.waitFor('ready-42\r\n', from, BOOT_MS, 'the echo answered');
  return { ms: nsToMs(ns - p.startNs), p };
}

export async function run(argv: string[] = []): Promise<void> {
  const i = argv.indexOf('--runs');
  const runs = i >= 0 ? Math.max(1, Math.min(20, Number(argv[i + 1]) || 3)) : 3;
  const dir = mkdtempSync(join(tmpdir(), 'vpl011-bench-restore-'));
  const file = join(dir, 'prompt.save');
  try {
    // The saved file: the default guest at its prompt.
    const s = await toWorkingPrompt('save', ['run', '--timeout', '300', '--save', file], true);
    process.kill(s.p.pid, 'SIGUSR1');
    const e = await s.p.exited;
    if (e.code !== 0) throw new Error(`the saving run ended with ${e.code}`);
    const size = statSync(file).size;

    const cold: number[] = [];
    const warm: number[] = [];
    for (let r = 0; r < runs; r++) {
      const c = await toWorkingPrompt('cold', ['run', '--timeout', '300'], true);
      cold.push(c.ms);
      await c.p.kill();
      const w = await toWorkingPrompt('restore', ['run', '--timeout', '300', '--restore', file], false);
      warm.push(w.ms);
      await w.p.kill();
    }
    const f = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
    process.stdout.write(
      `restore vs cold boot, process start to a working busybox prompt (median of ${runs}; load ${loadavg()[0]!.toFixed(1)}):\n` +
        `  cold boot    ${f(median(cold))}   (runs: ${cold.map(f).join(', ')})\n` +
        `  run --restore ${f(median(warm))}   (runs: ${warm.map(f).join(', ')})\n` +
        `  saved file   ${(size / 1024 / 1024).toFixed(1)} MiB (sparse RAM, deflate level 1)\n`,
    );
  } finally {
    killAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  run(process.argv.slice(2)).then(
    () => process.exit(0),
    (e: Error) => {
      process.stderr.write(`bench/restore: ${e.message}\n`);
      process.exit(1);
    },
  );
}
