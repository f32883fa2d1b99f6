// The CPU self-test's verdict is kept per library file: a second start skips the ~90 ms test; a changed library
// file (new ctime), a malformed verdict or a failing test runs (and never stores) accordingly.
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unicornLibraryPath } from '../src/toolstack/cache.js';

const here = (m: string) => new URL(m, import.meta.url).href;

/** A fresh process (the verdict is per thread once known): { cached, ok } or the error message. */
function start(lib: string, dir: string, version?: string): { cached?: boolean; layout?: string; error?: string } {
  const script = `
    const u = await import(${JSON.stringify(here('../src/cpu/unicorn.js'))});
    const c = await import(${JSON.stringify(here('../src/cpu/selftest-cache.js'))});
    const x = await import(${JSON.stringify(here('../src/cpu/exact-fault.js'))});
    const lib = u.loadUnicorn(${JSON.stringify(lib)});
    try {
      const r = c.ensureSelfTestCached(${version ? `{ ...lib, version: ${JSON.stringify(version)} }` : 'lib'}, ${JSON.stringify(dir)});
      x.faultLayout(lib);
      console.log(JSON.stringify({ cached: r.cached, layout: x.faultLayoutSource() }));
    } catch (e) { console.log(JSON.stringify({ error: e.message.split('\\n')[0] })); }`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!);
}

test('self-test verdict: stored after a pass, reused, invalidated by a changed library or a bad file; failures not stored', { timeout: 120_000 }, () => {
  const tmp = mkdtempSync(join(tmpdir(), 'vpl011-selftest-'));
  try {
    const lib = join(tmp, 'libunicorn.so.2');
    copyFileSync(unicornLibraryPath(), lib);
    const dir = join(tmp, 'verdicts');
    assert.deepEqual(start(lib, dir), { cached: false, layout: 'proved' }, 'first start runs the test (and proves the exact-fault layout)');
    assert.equal(readdirSync(dir).length, 1, 'one verdict stored');
    assert.deepEqual(start(lib, dir), { cached: true, layout: 'stored' }, 'second start reuses it, layout included (no scratch engine)');
    const later = new Date(Date.now() + 5000);
    utimesSync(lib, later, later); // the file changed (mtime and ctime): its verdict no longer applies
    assert.deepEqual(start(lib, dir), { cached: false, layout: 'proved' }, 'a changed library runs the test again');
    assert.deepEqual(start(lib, dir), { cached: true, layout: 'stored' });
    for (const f of readdirSync(dir)) writeFileSync(join(dir, f), '{"ok": tru');
    assert.deepEqual(start(lib, dir), { cached: false, layout: 'proved' }, 'a malformed verdict runs the test');
    for (const f of readdirSync(dir)) {
      const text = readFileSync(join(dir, f), 'utf8');
      if (text.startsWith('{"ok": tru')) continue; // the verdict of the library before its change, left malformed
      writeFileSync(join(dir, f), JSON.stringify({ ...JSON.parse(text), faultLayout: { ucCpu: -8 } }));
    }
    assert.deepEqual(start(lib, dir), { cached: true, layout: 'proved' }, 'a malformed stored layout is proved again, not used');
    const failDir = join(tmp, 'fail');
    const failed = start(lib, failDir, '2.0.1');
    assert.match(failed.error ?? '', /self-test failed/, 'an unknown version still fails');
    assert.throws(() => readdirSync(failDir), /ENOENT/, 'and nothing was stored for it');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
