// The console's persistent state (src/daemon/console-state.ts): counters and input acknowledgements are exact after
// a daemon killed between any two steps of a batch (the end-to-end runs are test/daemon-heal and daemon-resume).
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DurableLog } from '../src/daemon/durable-log.js';
import { InputJournal, MAX_SESSIONS, NO_SESSION } from '../src/daemon/console-state.js';

class Cursor {
  constructor(public outCons: number, public inProd = 0) {}
  setOutCons(v: number) {
    this.outCons = v >>> 0;
  }
}

function withLog(fn: (open: () => DurableLog, dir: string) => void): void {
  const d = mkdtempSync(join(tmpdir(), 'vpl011-cstate-'));
  try {
    fn(() => new DurableLog(join(d, 'g.log'), join(d, 'j')), d);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
}

test('OUT after recovery is exact whichever step the kill came after', () => {
  // [what the ring's out_cons says at restart, log cut back to, expected OUT]
  const cases: [string, number, number | undefined, number][] = [
    ['killed after the log write, before publishing', 10, undefined, 15],
    ['killed after publishing, before counting', 15, undefined, 15],
    ['killed before the log write', 10, 10, 10],
    ['killed in the middle of the log write', 10, 12, 10],
  ];
  for (const [what, cons, cut, want] of cases) {
    withLog((open, d) => {
      const log = open();
      log.record(Buffer.from('0123456789'), 0);
      log.counters.bytesOut = 10; // the console counts after publishing
      log.record(Buffer.from('abcde'), 10);
      // (killed: OUT not counted for the second batch)
      log.close();
      if (cut !== undefined) truncateSync(join(d, 'g.log'), cut);
      const again = open();
      again.recover(new Cursor(cons));
      assert.equal(again.counters.bytesOut, want, what);
      again.close();
    });
  }
});

test('counters persist in the journal page; a torn or missing entry keeps the stored values', () => {
  withLog((open) => {
    const log = open();
    log.counters.bytesIn = 7;
    log.counters.dropped = 3;
    log.counters.discardedInput = 2;
    log.close();
    const again = open();
    assert.equal(again.recover(new Cursor(0)).action, 'none');
    assert.deepEqual([again.counters.bytesIn, again.counters.dropped, again.counters.discardedInput], [7, 3, 2]);
    again.close();
    // Values read after close come from memory, not the unmapped page.
    assert.equal(again.counters.bytesIn, 7);
  });
});

test('input: acknowledged counts and IN are exact after a kill before, during or after writeIn', () => {
  const id = Buffer.alloc(16, 0xab);
  for (const [what, inProdAtRestart, afterDone, want] of [
    ['killed before writeIn', 100, false, 0],
    ['killed after writeIn, before acknowledging', 104, false, 4],
    ['killed after acknowledging', 104, true, 4],
  ] as const) {
    withLog((open) => {
      const log = open();
      const ij = new InputJournal(log.page, log.counters);
      const slot = ij.slotFor(id, 0, () => false)!;
      ij.before(slot, 4, 100);
      if (afterDone) {
        ij.after(slot, 4);
        log.counters.bytesIn += 4;
      }
      log.close();
      const again = open();
      const ij2 = new InputJournal(again.page, again.counters);
      ij2.recover({ inProd: inProdAtRestart });
      const slot2 = ij2.slotFor(id, 999, () => false)!;
      assert.equal(slot2, slot, `${what}: the session keeps its slot`);
      assert.equal(ij2.acked(slot2), want, `${what}: acknowledged`);
      assert.equal(again.counters.bytesIn, want, `${what}: IN`);
      again.close();
    });
  }
});

test('input journal: a scribbled in_prod is ignored; input without a session is counted', () => {
  withLog((open) => {
    const log = open();
    const ij = new InputJournal(log.page, log.counters);
    ij.before(NO_SESSION, 5, 0);
    ij.after(NO_SESSION, 5);
    log.counters.bytesIn = 5;
    log.close();
    const again = open();
    assert.equal(new InputJournal(again.page, again.counters).recover({ inProd: 12345 }), 'ignored');
    assert.equal(again.counters.bytesIn, 5);
    again.close();
  });
});

test('session slots: a new session starts at the hint; when all are taken the least recently used idle one goes', () => {
  withLog((open) => {
    const log = open();
    const ij = new InputJournal(log.page, log.counters);
    const ids = Array.from({ length: MAX_SESSIONS }, (_, i) => Buffer.from((0x1000 + i).toString(16).padStart(32, 'f'), 'hex'));
    for (const id of ids) assert.notEqual(ij.slotFor(id, 5, () => false), undefined);
    assert.equal(ij.acked(0), 5);
    const busy = () => true;
    assert.equal(ij.slotFor(Buffer.alloc(16, 0xcd), 0, busy), undefined, 'every slot attached: refused');
    const fresh = ij.slotFor(Buffer.alloc(16, 0xcd), 1, (s) => s !== 3);
    assert.equal(fresh, 3, 'the only idle slot is reused');
    assert.equal(ij.acked(3), 1);
    log.close();
  });
});
