// A guest that writes a few bytes and powers off at once: `vpl011 run` must show every byte, every time. The vCPU
// starts only once the console backend has bound the guest's event channel (Xen creates a domain paused and xl
// unpauses it after the console is connected: src/vmm/control.ts CONTROL_UNPAUSED). Before, a guest this quick
// could end, and its teardown (domain_vpl011_deinit) close its port, before the backend bound it: the run failed
// with "port 1 of domain 1 is not unbound" and the bytes were never read.
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { cli } from './lib/cli-process.js';
import { buildBareGuestFile, streamPattern } from '../src/vmm/bare-guests.js';

test('a guest that writes 64 bytes and powers off at once: all 64 shown, exit 0, in every one of 8 runs', { timeout: 300_000 }, async () => {
  const COUNT = 64;
  const kernel = buildBareGuestFile('stream', { defines: { COUNT } });
  const want = streamPattern(COUNT).toString('latin1');
  for (let i = 0; i < 8; i++) {
    const r = await cli(['run', '--bare', '--kernel', kernel, '--memory', '16', '--timeout', '60'], { limitMs: 90_000 });
    assert.equal(r.code, 0, `run ${i + 1}: exit ${r.code}\n${r.stderr}`);
    assert.equal(r.stdout, want, `run ${i + 1}: the guest's output`);
  }
});
