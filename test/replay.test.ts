// `vpl011 replay`: script parsing, output format, exit codes, and the example scripts under test/fixtures/replay.
import { test } from 'node:test';
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

test('bad lines give "line N: reason" and exit code 2; pl011 profile not available yet', () => {
  const { code, out } = run('read 0x18\nfrob 1\nwrite 0x1000 1\nread 0 3\nbackend-in "x\nprofile pl011');
  assert.equal(code, 2);
  assert.equal(out[0], 'line 2: unknown step "frob"');
  assert.match(out[1]!, /^line 3: offset/);
  assert.match(out[2]!, /^line 4: bad width/);
  assert.match(out[3]!, /^line 5: unterminated/);
  assert.equal(out[4], 'line 6: profile must come before any other step');
  assert.equal(run('profile pl011').out[0], 'line 1: profile pl011 not available');
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
