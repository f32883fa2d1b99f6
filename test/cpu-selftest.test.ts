// The start-up self-test on the real library: it passes, and it fails when an expectation is corrupted.
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadUnicorn } from '../src/cpu/unicorn.js';
import { runSelfTest, SELFTEST_CODE, ensureSelfTest } from '../src/cpu/selftest.js';
import { ENV } from '../src/cpu/exception.js';
import { unicornLibraryPath } from '../src/toolstack/cache.js';

const lib = loadUnicorn(unicornLibraryPath());

test('self-test passes on the pinned libunicorn 2.1.1 (env found at uc_context+20, 716c8f1c)', () => {
  const r = runSelfTest(lib);
  assert.deepEqual(r.failures, []);
  assert.equal(r.ok, true);
  assert.equal(r.envOffset, 20);
  assert.equal(ensureSelfTest(lib).ok, true);
});

test('self-test fails when the syndrome offset is wrong (env->exception.syndrome 4 bytes early)', () => {
  const r = runSelfTest(lib, { ...ENV, EXC_SYNDROME: ENV.EXC_SYNDROME - 4 });
  assert.equal(r.ok, false);
  assert.ok(r.failures.some((m) => m.includes('SVC syndrome')), r.failures.join('\n'));
});

test('self-test fails when the fault-address offset is wrong (env->exception.vaddress)', () => {
  const r = runSelfTest(lib, { ...ENV, EXC_VADDRESS: ENV.EXC_VADDRESS + 8 });
  assert.equal(r.ok, false);
  assert.ok(r.failures.some((m) => m.includes('abort vaddress')), r.failures.join('\n'));
});

test('self-test refuses a library version it does not know, with a clear message', () => {
  const r = runSelfTest({ ...lib, version: '2.0.1' });
  assert.equal(r.ok, false);
  assert.match(r.failures[0]!, /2\.0\.1 .* is not a known version/);
});

test('the embedded self-test words are guests/bare/selftest.S assembled', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vpl011-st-'));
  try {
    const src = join(process.cwd(), 'guests', 'bare', 'selftest.S');
    execFileSync('aarch64-linux-gnu-as', ['-o', join(dir, 'st.o'), src]);
    execFileSync('aarch64-linux-gnu-ld', ['-Ttext=0x40000000', '-o', join(dir, 'st.elf'), join(dir, 'st.o')]);
    execFileSync('aarch64-linux-gnu-objcopy', ['-O', 'binary', join(dir, 'st.elf'), join(dir, 'st.bin')]);
    const bin = readFileSync(join(dir, 'st.bin'));
    for (const [off, word] of SELFTEST_CODE) assert.equal(bin.readUInt32LE(off), word, `word at +0x${off.toString(16)}`);
    let nonzero = 0;
    for (let o = 0; o + 4 <= bin.length; o += 4) if (bin.readUInt32LE(o) !== 0) nonzero++;
    assert.equal(nonzero, SELFTEST_CODE.length, 'every assembled word is embedded');
  } finally {
    rmSync(dir, { recursive: true, force: true }); // left behind on every run before
  }
});
