// The default Linux guest saved at the prompt with a command running and restored (`vpl011 run --save` then
// `run --restore`, docs/SAVE.md): the command keeps printing, typed commands are answered, the guest's clock
// continues from where it stopped (the wall-clock gap between save and restore is not seen), no line is printed
// twice or lost across the boundary; and bad files are refused by `run --restore` with their reason, exit 2.
import { test, within } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROMPT, vpl011Process, type ConsoleProcess } from './lib/console-process.js';
import { SAVE_FORMAT_VERSION } from '../src/vmm/save-format.js';
import { buildBareGuestFile } from '../src/vmm/bare-guests.js';

const BOOT_MS = 120_000;
const DATE = /\b(\d\d):(\d\d):(\d\d) UTC \d{4}\r?\n/g;
const seconds = (m: RegExpMatchArray) => Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]);

test('Linux at the prompt running `while :; do date; sleep 1; done &`: saved, restored, it keeps printing with its own clock, and answers', { timeout: 600_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vpl011-save-'));
  const file = join(dir, 'guest.save');
  const procs: ConsoleProcess[] = [];
  try {
    const a = vpl011Process(['run', '--timeout', '500', '--save', file]);
    procs.push(a);
    await a.expect(PROMPT, BOOT_MS);
    const loopAt = a.out.length;
    // In the background: it keeps printing while typed commands are answered (an interrupt typed while it forks
    // `date` is not always taken by busybox's loop: a foreground loop would make the test depend on that).
    a.type('while :; do date; sleep 1; done &\n');
    await a.expect(/(UTC \d{4}\r?\n[^]*){3}/, 30_000, loopAt);
    a.child.kill('SIGUSR1');
    const ea = await within(a.exited, 120_000, 'the saving run');
    assert.equal(ea.code, 0, a.stderr);
    assert.match(a.stderr, /domain saved to .*guest\.save; restore it with: vpl011 run --restore/);
    assert.equal(statSync(file).mode & 0o777, 0o600, 'a saved domain holds guest memory: private');
    const before = [...a.out.slice(loopAt).matchAll(DATE)];
    const lastBefore = seconds(before.at(-1)!);

    // A wall-clock gap the guest must not see: its counter continues from the saved value.
    const gapMs = 4000;
    await new Promise((r) => setTimeout(r, gapMs));
    const b = vpl011Process(['run', '--timeout', '500', '--restore', file]);
    procs.push(b);
    await b.expect(/(UTC \d{4}\r?\n[^]*){3}/, 60_000);
    const after = [...b.out.matchAll(DATE)];
    const firstAfter = seconds(after[0]!);
    // The loop sleeps 1 s between dates: the next one is 1 (at most 2) guest seconds after the last one printed.
    assert.ok(firstAfter - lastBefore >= 1 && firstAfter - lastBefore <= 2, `last date before the save ${before.at(-1)![0].trim()}, first after ${after[0]![0].trim()} (a wall-clock jump would be >= ${gapMs / 1000} s)`);
    // No line printed twice, none lost: consecutive dates one or two seconds apart across the boundary.
    const all = [...before, ...after].map(seconds);
    for (let i = 1; i < all.length; i++) assert.ok(all[i]! - all[i - 1]! >= 1 && all[i]! - all[i - 1]! <= 2, `dates ${all[i - 1]} then ${all[i]}`);

    // Typed input is answered by the restored guest.
    const cmdAt = b.out.length;
    b.type('echo restored-$((6*7))\n');
    await b.expect(/restored-42/, 30_000, cmdAt);
    b.type('poweroff -f\n');
    const eb = await within(b.exited, 60_000, 'the restored run');
    assert.equal(eb.code, 0, b.stderr);
  } finally {
    for (const p of procs) p.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('run --restore refuses a truncated, corrupt, newer or foreign file with its reason (exit 2, no domain built)', { timeout: 240_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vpl011-save-'));
  const procs: ConsoleProcess[] = [];
  try {
    // A small real saved domain: the bare-metal hello guest (polling FR for input), saved by `run --save`.
    const file = join(dir, 'ok.save');
    const a = vpl011Process(['run', '--bare', '--kernel', buildBareGuestFile('hello'), '--memory', '16', '--timeout', '200', '--save', file]);
    procs.push(a);
    await a.expect(/hello from bare metal/, 60_000);
    a.child.kill('SIGUSR1');
    const ea = await within(a.exited, 60_000, 'saving run');
    assert.equal(ea.code, 0, `could not make a saved file: ${a.stderr}`);
    const good = readFileSync(file);

    const cases: [string, Buffer, RegExp][] = [
      ['truncated', good.subarray(0, good.length - 100), /truncated/],
      ['corrupt', Buffer.from(good).fill(0x55, 2000, 2010), /corrupt|checksum/],
      ['newer', (() => { const b = Buffer.from(good); b.writeUInt32LE(SAVE_FORMAT_VERSION + 1, 8); return b; })(), /saved by a newer vpl011 \(format 2; this one reads format 1\)/],
      ['foreign', Buffer.from('#!/bin/sh\necho not a saved domain\n'), /not a vpl011 saved domain/],
    ];
    for (const [what, bytes, why] of cases) {
      const f = join(dir, `${what}.save`);
      writeFileSync(f, bytes);
      const p = vpl011Process(['run', '--restore', f]);
      procs.push(p);
      const e = await within(p.exited, 30_000, what);
      assert.equal(e.code, 2, `${what}: exit ${e.code}, stderr ${p.stderr}`);
      assert.match(p.stderr, why, what);
      assert.equal(p.stderr.trim().split('\n').length, 1, `${what}: one line, got ${p.stderr}`);
      assert.doesNotMatch(p.stderr, /at .*\.js:\d+/, `${what}: no stack trace`);
    }
    const c = vpl011Process(['run', '--restore', file, '--memory', '64']);
    procs.push(c);
    assert.equal((await within(c.exited, 30_000, 'clash')).code, 2);
    assert.match(c.stderr, /--memory cannot be used with it/);
  } finally {
    for (const p of procs) p.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});
