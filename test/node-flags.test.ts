// The VMM's node flags have one definition, bin/node-flags: the launcher (./vpl011) runs node with them, and the
// benchmarks measure the VMM started the same way (bench/lib/targets.ts vpl011Command). docs/PERF.md, "Idle".
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConsoleProcess } from './lib/console-process.js';
import { buildBareGuestFile } from '../src/vmm/bare-guests.js';
import { vpl011Command, vpl011NodeFlags } from '../bench/lib/targets.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const SPIN = buildBareGuestFile('spin');

test('bin/node-flags holds the flags (--no-memory-reducer among them), comments dropped', { timeout: 10_000 }, () => {
  const flags = vpl011NodeFlags(repo);
  assert.ok(flags.includes('--no-memory-reducer'), JSON.stringify(flags));
  for (const f of flags) assert.match(f, /^--[a-z0-9-]+(=\S+)?$/, `one flag per entry: ${f}`);
});

test('./vpl011 runs node with bin/node-flags before bin/vpl011.js, as the benchmark command does', { timeout: 60_000 }, async () => {
  const flags = vpl011NodeFlags(repo);
  const bench = vpl011Command();
  assert.ok(bench !== undefined);
  assert.deepEqual(bench.args, [...flags, join(repo, 'bin', 'vpl011.js')]);

  // The launcher execs node, so the child's pid becomes the VMM's: its command line is what the user runs.
  const p = new ConsoleProcess('launcher', join(repo, 'vpl011'), ['run', '--bare', '--kernel', SPIN, '--timeout', '30']);
  try {
    await p.expect(/spinning\n/, 30_000);
    const argv = readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
    const bin = argv.findIndex((a) => a.endsWith(join('bin', 'vpl011.js')));
    assert.ok(bin > 0, `node runs bin/vpl011.js: ${JSON.stringify(argv)}`);
    assert.deepEqual(argv.slice(1, bin), flags, `the node flags: ${JSON.stringify(argv)}`);
  } finally {
    await p.kill();
  }
});
