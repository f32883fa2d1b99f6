// DurableLog behaviour the crash tests do not pin, each test written against a mutant StrykerJS left alive
// (bench/MUTATION.md): notes, line-start tracking across reopen and truncation, exact recovery details, the size the
// next journal entry records after a truncated redo, the 'ignored' and 'none' recoveries, timestamps, and close().
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DurableLog, stampOf } from '../src/daemon/durable-log.js';

const T = { timeout: 20_000 };
const WHEN = new Date(2024, 0, 2, 3, 4, 5);
const S = '[2024-01-02 03:04:05] ';

class Cursor {
  constructor(public outCons: number) {}
  setOutCons(v: number): void {
    this.outCons = v >>> 0;
  }
}

/** A temp dir for one test, removed whatever happens; `open` makes logs that are all closed at the end. */
function withDir(fn: (d: { log: string; journal: string; open: (ts?: 'none' | 'guest') => DurableLog }) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'vpl011-mutlog-'));
  const opened: DurableLog[] = [];
  const log = join(dir, 'g.log');
  const journal = join(dir, 'j');
  try {
    fn({ log, journal, open: (ts = 'none') => { const l = new DurableLog(log, journal, ts, () => WHEN); opened.push(l); return l; } });
  } finally {
    for (const l of opened) l.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a fresh journal recovers as "none" (not as a torn entry)', T, () => {
  withDir(({ open }) => {
    const ring = new Cursor(7);
    assert.deepEqual(open().recover(ring), { action: 'none' });
    assert.equal(ring.outCons, 7);
  });
});

test('note(): own line, a newline first only when the log is mid-line; empty batches do not change that', T, () => {
  withDir(({ log, open }) => {
    const l = open();
    l.record(Buffer.from('ab'), 0);
    l.note('one');
    l.record(Buffer.from('cd\n'), 2);
    l.record(new Uint8Array(0), 5);
    l.note('two');
    assert.equal(readFileSync(log, 'utf8'), 'ab\n[vpl011: one]\ncd\n[vpl011: two]\n');
    assert.equal(l.bytesWritten, 5, 'bytesWritten counts ring bytes written, not notes');
  });
});

test('a note counts in the log size: the next batch killed after its write is published, not truncated', T, () => {
  withDir(({ log, open }) => {
    const l = open();
    l.record(Buffer.from('abc'), 0);
    l.note('crashed');
    l.record(Buffer.from('defg'), 3); // killed here, before publishing
    l.close();
    const ring = new Cursor(3);
    assert.equal(open().recover(ring).action, 'published');
    assert.equal(ring.outCons, 7);
    assert.equal(readFileSync(log, 'utf8'), 'abc\n[vpl011: crashed]\ndefg');
  });
});

test('opening an existing log: timestamps continue mid-line or start a new stamped line, as its last byte says', T, () => {
  withDir(({ log, open }) => {
    writeFileSync(log, 'old');
    const a = open('guest');
    a.record(Buffer.from('x\ny'), 0);
    a.close();
    assert.equal(readFileSync(log, 'utf8'), `oldx\n${S}y`);
    writeFileSync(log, 'old\n');
    const b = open('guest');
    b.record(Buffer.from('z'), 0);
    assert.equal(readFileSync(log, 'utf8'), `old\n${S}z`);
  });
});

test('reopen() after the log was moved away writes a fresh, stamped file', T, () => {
  withDir(({ log, open }) => {
    const l = open('guest');
    l.record(Buffer.from('a'), 0);
    renameSync(log, `${log}.1`);
    l.reopen();
    l.record(Buffer.from('b'), 1);
    assert.equal(readFileSync(`${log}.1`, 'utf8'), `${S}a`);
    assert.equal(readFileSync(log, 'utf8'), `${S}b`);
  });
});

test('timestamps: a batch that ends with a newline gets no stamp until more output; stampOf pads to two digits', T, () => {
  withDir(({ log, open }) => {
    const l = open('guest');
    l.record(Buffer.from('a\n'), 0);
    assert.equal(readFileSync(log, 'utf8'), `${S}a\n`);
    l.record(Buffer.from('\rb'), 2);
    assert.equal(readFileSync(log, 'utf8'), `${S}a\n${S}b`);
  });
  assert.equal(stampOf(new Date(2024, 9, 10, 10, 10, 10)), '2024-10-10 10:10:10');
  assert.equal(stampOf(new Date(2024, 10, 12, 13, 14, 15)), '2024-11-12 13:14:15');
  assert.equal(stampOf(new Date(2024, 0, 1, 0, 0, 9)), '2024-01-01 00:00:09');
});

test('the default clock is the wall clock', T, () => {
  const dir = mkdtempSync(join(tmpdir(), 'vpl011-mutlog-'));
  const l = new DurableLog(join(dir, 'g.log'), join(dir, 'j'), 'guest');
  try {
    l.record(Buffer.from('x'), 0);
    assert.match(readFileSync(join(dir, 'g.log'), 'utf8'), /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] x$/);
    const y = new Date().getFullYear();
    assert.ok(readFileSync(join(dir, 'g.log'), 'utf8').startsWith(`[${y}`) || readFileSync(join(dir, 'g.log'), 'utf8').startsWith(`[${y - 1}`));
  } finally {
    l.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('recovery details are exact; a recovered journal is cleared (a second recovery does nothing)', T, () => {
  withDir(({ log, open }) => {
    const l = open();
    l.record(Buffer.from('abc'), 0);
    l.record(Buffer.from('defghij'), 3); // killed mid-write: 2 of its 7 bytes reached the log
    l.close();
    truncateSync(log, 5);
    const r = open();
    const ring = new Cursor(3);
    assert.deepEqual(r.recover(ring), { action: 'truncated-redo', detail: '2 partial bytes removed' });
    assert.equal(readFileSync(log, 'utf8'), 'abc');
    assert.deepEqual(r.recover(ring), { action: 'none' });
    r.record(Buffer.from('defghij'), 3); // killed after the log write
    r.close();
    const p = open();
    const ring2 = new Cursor(3);
    assert.deepEqual(p.recover(ring2), { action: 'published', detail: '7 bytes were in the log but not released from the ring' });
    assert.equal(ring2.outCons, 10);
    assert.deepEqual(p.recover(ring2), { action: 'none' });
  });
});

test('after a truncated redo the log size is current: the redone batch, killed after its write, is published intact', T, () => {
  withDir(({ log, open }) => {
    const l = open('guest');
    l.record(Buffer.from('abc\n'), 0);
    l.record(Buffer.from('0123456789'), 4);
    l.close();
    truncateSync(log, S.length + 4 + 3); // 3 bytes of the stamped second batch
    const r = open('guest');
    assert.equal(r.recover(new Cursor(4)).action, 'truncated-redo');
    r.record(Buffer.from('0123456789'), 4); // the redo, stamped again (the log ends with a newline)
    r.close();
    const ring = new Cursor(4);
    assert.equal(open('guest').recover(ring).action, 'published');
    assert.equal(ring.outCons, 14);
    assert.equal(readFileSync(log, 'utf8'), `${S}abc\n${S}0123456789`);
  });
});

test('after a truncated redo mid-line, the redone batch is not stamped', T, () => {
  withDir(({ log, open }) => {
    const l = open('guest');
    l.record(Buffer.from('abc'), 0);
    l.record(Buffer.from('de\nf'), 3);
    l.close();
    truncateSync(log, S.length + 3 + 1);
    const r = open('guest');
    assert.equal(r.recover(new Cursor(3)).action, 'truncated-redo');
    r.record(Buffer.from('de\nf'), 3);
    assert.equal(readFileSync(log, 'utf8'), `${S}abcde\n${S}f`);
  });
});

test('a journal that matches neither out_cons nor its publication is ignored: ring and log untouched', T, () => {
  withDir(({ log, open }) => {
    const l = open();
    l.record(Buffer.from('abcd'), 10);
    l.close();
    const ring = new Cursor(99);
    assert.deepEqual(open().recover(ring), { action: 'ignored', detail: 'journal cons 10+4 does not match out_cons 99' });
    assert.equal(ring.outCons, 99);
    assert.equal(readFileSync(log, 'utf8'), 'abcd');
  });
});

test('close() is idempotent, releases the file descriptor, and removes the journal only when asked', T, () => {
  const dir = mkdtempSync(join(tmpdir(), 'vpl011-mutlog-'));
  try {
    const fds = (): number => readdirSync('/proc/self/fd').length;
    const before = fds();
    const l = new DurableLog(join(dir, 'g.log'), join(dir, 'j'));
    l.record(Buffer.from('a'), 0);
    l.close();
    assert.equal(fds(), before, 'no descriptor left open');
    l.close();
    assert.equal(existsSync(join(dir, 'j')), true, 'the journal stays for a restarted daemon');
    const m = new DurableLog(join(dir, 'g.log'), join(dir, 'j'));
    m.close(true);
    assert.equal(existsSync(join(dir, 'j')), false);
    m.close(true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('two notes in a row: no blank line; a guest line after a note is stamped', T, () => {
  withDir(({ log, open }) => {
    const l = open('guest');
    l.note('a');
    l.note('b');
    l.record(Buffer.from('x'), 0);
    assert.equal(readFileSync(log, 'utf8'), `[vpl011: a]\n[vpl011: b]\n${S}x`);
  });
});

test('a batch after a note, killed mid-write, is truncated back to just after the note', T, () => {
  withDir(({ log, open }) => {
    const l = open();
    l.record(Buffer.from('abc'), 0);
    l.note('crashed');
    l.record(Buffer.from('defg'), 3);
    l.close();
    const full = readFileSync(log, 'utf8');
    truncateSync(log, full.length - 2);
    assert.deepEqual(open().recover(new Cursor(3)), { action: 'truncated-redo', detail: '2 partial bytes removed' });
    assert.equal(readFileSync(log, 'utf8'), 'abc\n[vpl011: crashed]\n');
  });
});

test('a first batch cut back to an empty log is redone with its stamp', T, () => {
  withDir(({ log, open }) => {
    const l = open('guest');
    l.record(Buffer.from('ab'), 0);
    l.close();
    truncateSync(log, 1);
    const r = open('guest');
    assert.equal(r.recover(new Cursor(0)).action, 'truncated-redo');
    r.record(Buffer.from('ab'), 0);
    assert.equal(readFileSync(log, 'utf8'), `${S}ab`);
  });
});

test('a torn entry says so; opening a non-empty log leaves no descriptor behind', T, () => {
  withDir(({ log, journal, open }) => {
    const l = open();
    l.record(Buffer.from('abc'), 0);
    l.close();
    const j = readFileSync(journal);
    j.writeUInt32LE(j.readUInt32LE(4) + 1, 4); // consBefore changed after the check word was written
    writeFileSync(journal, j);
    const fds = (): number => readdirSync('/proc/self/fd').length;
    const before = fds();
    const r = new DurableLog(log, journal);
    try {
      assert.deepEqual(r.recover(new Cursor(3)), { action: 'redo', detail: 'torn journal entry' });
    } finally {
      r.close();
    }
    assert.equal(fds(), before);
  });
});
