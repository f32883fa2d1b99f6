// The exactly-once log journal (src/daemon/durable-log.ts; docs/DAEMON.md): every state a daemon killed between
// two steps of a batch can leave is recovered to "each ring byte in the log exactly once".
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, truncateSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DurableLog } from '../src/daemon/durable-log.js';

function dir() {
  return mkdtempSync(join(tmpdir(), 'vpl011-dlog-'));
}

class Cursor {
  constructor(public outCons: number) {}
  setOutCons(v: number) {
    this.outCons = v >>> 0;
  }
}

test('killed after the log write, before publishing: recovery publishes (no repeat)', () => {
  const d = dir();
  const log = new DurableLog(join(d, 'g.log'), join(d, 'j'));
  log.record(Buffer.from('hello '), 100);
  // (died here: out_cons not moved)
  log.close();
  const again = new DurableLog(join(d, 'g.log'), join(d, 'j'));
  const ring = new Cursor(100);
  assert.equal(again.recover(ring).action, 'published');
  assert.equal(ring.outCons, 106);
  assert.equal(readFileSync(join(d, 'g.log'), 'utf8'), 'hello ');
  rmSync(d, { recursive: true });
});

test('killed after the journal, before the log write: recovery re-reads the batch (no loss)', () => {
  const d = dir();
  const log = new DurableLog(join(d, 'g.log'), join(d, 'j'));
  log.record(Buffer.from('abc'), 0);
  log.close();
  // Simulate "journal written for a second batch, log write never happened".
  const l2 = new DurableLog(join(d, 'g.log'), join(d, 'j'));
  l2.recover(new Cursor(3));
  l2.record(Buffer.from('defg'), 3);
  l2.close();
  truncateSync(join(d, 'g.log'), 3);
  const l3 = new DurableLog(join(d, 'g.log'), join(d, 'j'));
  const ring = new Cursor(3);
  assert.equal(l3.recover(ring).action, 'redo');
  assert.equal(ring.outCons, 3);
  // The batch is read again from the ring: it lands once.
  l3.record(Buffer.from('defg'), 3);
  ring.setOutCons(7);
  l3.close();
  assert.equal(readFileSync(join(d, 'g.log'), 'utf8'), 'abcdefg');
  rmSync(d, { recursive: true });
});

test('killed in the middle of the log write: the partial bytes are cut and the batch is redone', () => {
  const d = dir();
  const l = new DurableLog(join(d, 'g.log'), join(d, 'j'));
  l.record(Buffer.from('0123456789'), 50);
  l.close();
  truncateSync(join(d, 'g.log'), 4);
  const l2 = new DurableLog(join(d, 'g.log'), join(d, 'j'));
  const ring = new Cursor(50);
  assert.equal(l2.recover(ring).action, 'truncated-redo');
  assert.equal(statSync(join(d, 'g.log')).size, 0);
  assert.equal(ring.outCons, 50);
  l2.record(Buffer.from('0123456789'), 50);
  ring.setOutCons(60);
  l2.close();
  assert.equal(readFileSync(join(d, 'g.log'), 'utf8'), '0123456789', 'the redone batch, once');
  rmSync(d, { recursive: true });
});

test('after a truncated redo, the next batches are journaled against the cut size (a later crash still recovers)', () => {
  const d = dir();
  try {
    const l = new DurableLog(join(d, 'g.log'), join(d, 'j'));
    l.record(Buffer.from('first.'), 0);
    l.record(Buffer.from('0123456789'), 6); // killed 4 bytes into this write
    l.close();
    truncateSync(join(d, 'g.log'), 10);
    const l2 = new DurableLog(join(d, 'g.log'), join(d, 'j'));
    const ring = new Cursor(6);
    assert.equal(l2.recover(ring).action, 'truncated-redo');
    l2.record(Buffer.from('0123456789'), 6); // the redo
    ring.setOutCons(16);
    l2.record(Buffer.from('more'), 16); // more output; killed after its log write, before publishing
    l2.close();
    const l3 = new DurableLog(join(d, 'g.log'), join(d, 'j'));
    const r = l3.recover(ring);
    assert.equal(r.action, 'published', `recovery: ${r.action} ${r.detail ?? ''}`);
    assert.equal(ring.outCons, 20);
    l3.close();
    assert.equal(readFileSync(join(d, 'g.log'), 'utf8'), 'first.0123456789more');
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('a batch that was published before the kill is left alone', () => {
  const d = dir();
  const l = new DurableLog(join(d, 'g.log'), join(d, 'j'));
  l.record(Buffer.from('xyz'), 0xfffffffe); // wraps the 32-bit index
  l.close();
  const l2 = new DurableLog(join(d, 'g.log'), join(d, 'j'));
  const ring = new Cursor(1); // 0xfffffffe + 3
  assert.equal(l2.recover(ring).action, 'none');
  assert.equal(ring.outCons, 1);
  rmSync(d, { recursive: true });
});

test('--timestamp guest: a stamp at each line start, \\r after \\n dropped (xenconsoled), across batches', () => {
  const d = dir();
  const when = new Date(2024, 0, 2, 3, 4, 5);
  const l = new DurableLog(join(d, 'g.log'), join(d, 'j'), 'guest', () => when);
  l.record(Buffer.from('ab\n\rcd'), 0);
  l.record(Buffer.from('e\nf'), 6);
  l.close();
  const s = '[2024-01-02 03:04:05] ';
  assert.equal(readFileSync(join(d, 'g.log'), 'utf8'), `${s}ab\n${s}cde\n${s}f`);
  rmSync(d, { recursive: true });
});

test('killed while writing the journal entry (torn: the check word does not match): the batch is read again', async () => {
  const { openSync, writeSync, closeSync } = await import('node:fs');
  const d = dir();
  const log = new DurableLog(join(d, 'g.log'), join(d, 'j'));
  log.record(Buffer.from('abc'), 0); // batch 1, published below
  log.close();
  // Batch 2's entry half-written: consBefore and n already new, the check word still batch 1's.
  const fd = openSync(join(d, 'j'), 'r+');
  const b = Buffer.alloc(8);
  b.writeUInt32LE(3, 0);
  b.writeUInt32LE(4, 4);
  writeSync(fd, b, 0, 8, 4);
  closeSync(fd);
  const again = new DurableLog(join(d, 'g.log'), join(d, 'j'));
  const ring = new Cursor(3); // batch 1 was published (out_cons 0 -> 3)
  const r = again.recover(ring);
  assert.equal(r.action, 'redo');
  assert.equal(ring.outCons, 3, 'nothing published for the torn batch');
  assert.equal(readFileSync(join(d, 'g.log'), 'utf8'), 'abc', 'the log is untouched');
  again.close();
  rmSync(d, { recursive: true });
});
