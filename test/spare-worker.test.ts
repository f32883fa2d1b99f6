// `vpl011 run` starts the vCPU's worker before it builds the guest (src/vmm/spare-worker.ts). A run refused before
// any domain exists must still be one line and exit 2: the unused worker is told to end, never terminated (koffi
// aborts the process when its thread is terminated inside a call: `run --kernel /etc/passwd` ended with SIGABRT
// in 3 of 80 runs when discard() used terminate()).
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { SpareWorker } from '../src/vmm/spare-worker.js';
import { vpl011Process } from './lib/console-process.js';

test('a discarded spare worker ends by itself once loaded (exit code 0), not by terminate() (exit code 1)', { timeout: 60_000 }, async () => {
  for (const delayMs of [0, 5, 20, 60]) {
    const spare = new SpareWorker();
    const code = new Promise<number>((resolve) => spare.worker.once('exit', resolve));
    await new Promise((r) => setTimeout(r, delayMs)); // at different points of its loading
    spare.discard();
    spare.discard(); // idempotent
    assert.equal(await code, 0, `discarded after ${delayMs} ms`);
    assert.equal(spare.error, undefined);
    assert.throws(() => spare.adopt(), /already in use/);
  }
});

test('run refused before a domain exists (bad kernel, bad option, --help): one line and exit 2 (0 for --help), every time', { timeout: 240_000 }, async () => {
  const cases: Array<[string[], number, RegExp]> = [
    [['run', '--kernel', '/etc/passwd', '--memory', '64'], 2, /^vpl011: kernel \/etc\/passwd: not an arm64 Linux Image: .*\n$/],
    [['run', '--config', '/nonexistent'], 2, /^vpl011: \/nonexistent: no such file\n$/],
    [['run', '--bogus'], 2, /^vpl011: unknown option '--bogus' \(--help lists the options\)\n$/],
    [['run', '--help'], 0, /^$/],
  ];
  for (let i = 0; i < 8; i++) {
    for (const [args, want, stderr] of cases) {
      const p = vpl011Process(args);
      try {
        const e = await p.exitWithin(30_000);
        assert.equal(e.signal, null, `${args.join(' ')}: killed by ${e.signal}; stderr: ${p.stderr}`);
        assert.equal(e.code, want, `${args.join(' ')}: stderr: ${p.stderr}`);
        assert.match(p.stderr, stderr, args.join(' '));
      } finally {
        await p.kill();
      }
    }
  }
});
