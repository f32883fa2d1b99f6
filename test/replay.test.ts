// `vpl011 replay`: script parsing, output format, exit codes, and the example scripts under test/fixtures/replay.
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runReplay } from '../src/cli/replay.js';

const fixtures = fileURLToPath(new URL('../../test/fixtures/replay/', import.meta.url));

function run(script: string): { code: number; out: string[] } {
  const out: string[] = [];
  const code = runReplay(script, (l) => out.push(l));
  return { code, out };
}

test('output lines and exit code 0', () => {
  const { code, out } = run('read 0x18\nwrite 0 0x41 1\nbackend-drain\nbackend-in "hi\\n"\nwrite 0x38 0x40\nirq\nread 0x44\nexpect 0x18 0x80');
  assert.deepEqual(out, [
    'read 0x018 w4 = 0x00000090',
    'write 0x000 w1 0x41',
    'drained "A"',
    'in 3 of 3',
    'write 0x038 w4 0x40',
    'irq 1',
    'abort read 0x044 w4',
    'expect 0x018 w4 = 0x00000080 ok',
    'ok',
  ]);
  assert.equal(code, 0);
});

test('a mismatch is reported and gives exit code 1', () => {
  const { code, out } = run('expect 0x18 0x10\nexpect 0x18 0x90');
  assert.equal(code, 1);
  assert.match(out[0]!, /MISMATCH/);
  assert.equal(out.at(-1), 'failed 1');
});

test('bad lines give "line N: reason" and exit code 2; profile only first, sbsa or pl011', () => {
  const { code, out } = run('read 0x18\nfrob 1\nwrite 0x1000 1\nread 0 3\nbackend-in "x\nprofile pl011');
  assert.equal(code, 2);
  assert.equal(out[0], 'line 2: unknown step "frob"');
  assert.match(out[1]!, /^line 3: offset/);
  assert.match(out[2]!, /^line 4: bad width/);
  assert.match(out[3]!, /^line 5: unterminated/);
  assert.equal(out[4], 'line 6: profile must come before any other step');
  assert.equal(run('profile pl012').out[0], 'line 1: unknown profile "pl012" (sbsa or pl011)');
  assert.equal(run('irq 2').out[0], 'line 1: bad irq level "2" (0 or 1)');
  assert.equal(run('expect-out x').out[0], 'line 1: expect-out needs a "quoted string"');
});

test('profile pl011 builds the full PL011: PeriphID/PCellID read, CR resets to 0x300 (sbsa: RAZ)', () => {
  const pl = run('profile pl011\nread 0xfe0\nread 0xfe8\nread 0xff0\nread 0xffc\nread 0x30\nread 0x34');
  assert.deepEqual(pl.out.slice(0, 6), [
    'read 0xfe0 w4 = 0x00000011',
    'read 0xfe8 w4 = 0x00000034',
    'read 0xff0 w4 = 0x0000000d',
    'read 0xffc w4 = 0x000000b1',
    'read 0x030 w4 = 0x00000300',
    'read 0x034 w4 = 0x00000012',
  ]);
  assert.equal(pl.code, 0);
  const sb = run('profile sbsa\nread 0xfe0\nread 0x30');
  assert.deepEqual(sb.out.slice(0, 2), ['read 0xfe0 w4 = 0x00000000', 'read 0x030 w4 = 0x00000000']);
});

test('irq 0|1 and expect-out are expectations: a difference is a mismatch (exit 1)', () => {
  const good = run('write 0 0x41 1\nwrite 0 0x42 1\nexpect-out "AB"\nirq 0\nwrite 0x38 0x20\nirq 1');
  assert.deepEqual(good.out, ['write 0x000 w1 0x41', 'write 0x000 w1 0x42', 'drained "AB" ok', 'irq 0 ok', 'write 0x038 w4 0x20', 'irq 1 ok', 'ok']);
  assert.equal(good.code, 0);
  const bad = run('write 0 0x41 1\nexpect-out "AB"\nirq 1');
  assert.equal(bad.code, 1);
  assert.equal(bad.out[1], 'drained "A" MISMATCH (line 2: expected "AB")');
  assert.equal(bad.out[2], 'irq 0 MISMATCH (line 3: expected 1)');
  assert.equal(bad.out.at(-1), 'failed 2');
});

test('backend-in puts only what fits (1024) and \\xNN escapes', () => {
  const { out } = run(`backend-in "${'\\x41'.repeat(1030)}"\nbackend-in "z"\nread 0\n`);
  assert.equal(out[0], 'in 1024 of 1030');
  assert.equal(out[1], 'in 0 of 1');
  assert.equal(out[2], 'read 0x000 w4 = 0x00000041');
});

for (const f of readdirSync(fixtures).filter((n) => n.endsWith('.txt'))) {
  test(`fixture ${f} passes`, () => {
    const { code, out } = run(readFileSync(fixtures + f, 'utf8'));
    assert.equal(out.at(-1), 'ok', out.join('\n'));
    assert.equal(code, 0);
  });
}

test('the pl011 fixtures depend on the profile: run as sbsa they fail (IDs RAZ, CR RAZ)', () => {
  for (const f of ['pl011-linux-amba.txt', 'pl011-uboot.txt']) {
    const text = readFileSync(fixtures + f, 'utf8').replace('profile pl011', 'profile sbsa');
    const { code, out } = run(text);
    assert.equal(code, 1, f);
    assert.ok(out.some((l) => l.includes('MISMATCH')), f);
  }
});

test('quiet backend steps move data without telling the device; notify tells it (what `vpl011 trace` writes)', () => {
  const r = run(
    [
      'write 0x038 0x50', // RXIM|RTIM
      'backend-in "x" quiet',
      'expect 0x018 0x90', // the device has not looked: RXFE still
      'irq 0',
      'notify',
      'expect 0x018 0x80', // now it has: RXFE clear, RTI up
      'irq 1',
      'write 0x000 0x41',
      'expect 0x018 0x00',
      'backend-drain quiet',
      'expect 0x018 0x00', // OUT drained behind the device's back: TXFE not yet
      'notify',
      'expect 0x018 0x80',
      'expect 0x000 0x78',
    ].join('\n'),
  );
  assert.equal(r.code, 0, r.out.join('\n'));
  assert.ok(r.out.includes('notified'));
  const loud = run(['write 0x038 0x50', 'backend-in "x"', 'expect 0x018 0x90'].join('\n'));
  assert.equal(loud.code, 1, 'without quiet the device is told at once');
  for (const bad of ['backend-in "x" loud', 'backend-drain 3 loud', 'backend-drain quiet 3', 'notify now']) {
    const b = run(bad);
    assert.equal(b.code, 2, bad);
    assert.match(b.out[0]!, /^line 1: /);
  }
});
