// Console ring ABI (xencons_interface, xen/include/public/io/console.h + ring.h): layout, index arithmetic,
// both ends, hostile indices.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ConsoleRing,
  ConsoleRingBackend,
  RING_CORRUPT,
  RING_EMPTY,
  RING_FULL,
  XENCONS_IN_SIZE,
  XENCONS_OUT_SIZE,
  xenconsQueued,
  ringLevel,
} from '../src/xen/ring.js';

test('layout: out[] at 0x400, out_prod at 0xC0C little-endian, in_cons at 0xC00 (console.h)', () => {
  const sab = new SharedArrayBuffer(8192);
  const f = new ConsoleRing(sab, 4096);
  f.putOut(0x41);
  const dv = new DataView(sab, 4096);
  assert.equal(dv.getUint8(0x400), 0x41);
  assert.equal(dv.getUint32(0xc0c, true), 1);
  const b = new ConsoleRingBackend(sab, 4096);
  b.writeIn(Uint8Array.of(7, 8));
  assert.equal(dv.getUint8(0), 7);
  assert.equal(dv.getUint32(0xc04, true), 2);
  assert.equal(f.getIn(), 7);
  assert.equal(dv.getUint32(0xc00, true), 1);
  b.setConnection(0);
  assert.equal(dv.getUint8(0xc10), 0);
  b.setConnection(1);
  assert.equal(dv.getUint8(0xc10), 1);
});

test('xencons_queued matches ring.h, including wrap of the free-running u32 indices', () => {
  assert.equal(xenconsQueued(5, 5, 1024), 0);
  assert.equal(xenconsQueued(1024, 0, 1024), 1024);
  assert.equal(xenconsQueued(3, 0xfffffffe, 1024), 5);
  assert.equal(ringLevel(3, 0xfffffffe, 1024), 5);
  assert.equal(ringLevel(2000, 0, 1024), RING_CORRUPT);
  assert.equal(xenconsQueued(2000, 0, 1024), 2000 - 1024); // Xen only masks
});

test('bytes cross the wrap of both halves in order (free-running indices near 2^32)', () => {
  const sab = new SharedArrayBuffer(4096);
  const dv = new DataView(sab);
  const start = 0xffffff00;
  for (const o of [0xc00, 0xc04, 0xc08, 0xc0c]) dv.setUint32(o, start, true);
  const f = new ConsoleRing(sab);
  const b = new ConsoleRingBackend(sab);
  const got: number[] = [];
  for (let i = 0; i < 5000; i++) {
    assert.ok(f.putOut(i & 0xff) > 0);
    if (i % 700 === 699) for (const x of b.drainOut()) got.push(x);
  }
  for (const x of b.drainOut()) got.push(x);
  assert.equal(got.length, 5000);
  got.forEach((x, i) => assert.equal(x, i & 0xff));
  const src = Uint8Array.from({ length: 3000 }, (_, i) => (i * 7) & 0xff);
  let sent = 0;
  const rx: number[] = [];
  while (rx.length < src.length) {
    sent += b.writeIn(src.subarray(sent, Math.min(src.length, sent + 300)));
    for (let v = f.getIn(); v >= 0; v = f.getIn()) rx.push(v);
  }
  assert.deepEqual(rx, Array.from(src));
});

test('full and empty: OUT holds exactly 2048, IN exactly 1024', () => {
  const sab = new SharedArrayBuffer(4096);
  const f = new ConsoleRing(sab);
  const b = new ConsoleRingBackend(sab);
  for (let i = 0; i < XENCONS_OUT_SIZE; i++) assert.equal(f.putOut(1), i + 1);
  assert.equal(f.putOut(1), RING_FULL);
  assert.equal(b.writeIn(new Uint8Array(5000)), XENCONS_IN_SIZE);
  assert.equal(b.inFree(), 0);
  assert.equal(b.writeIn(new Uint8Array(1)), 0);
  for (let i = 0; i < XENCONS_IN_SIZE; i++) assert.equal(f.getIn(), 0);
  assert.equal(f.getIn(), RING_EMPTY);
});

test('hostile indices: corrupt distances are counted, resynchronised, never out of bounds', () => {
  const sab = new SharedArrayBuffer(4096);
  const dv = new DataView(sab);
  const f = new ConsoleRing(sab);
  const b = new ConsoleRingBackend(sab);
  const reports: string[] = [];
  f.onCorrupt = (r) => reports.push(r.half);
  dv.setUint32(0xc04, 0x80000000, true); // in_prod far ahead
  assert.equal(f.getIn(), RING_CORRUPT);
  assert.equal(f.corruptEvents, 1);
  assert.equal(f.getIn(), RING_EMPTY); // resynchronised: in_cons = in_prod
  dv.setUint32(0xc08, 0x12345, true); // out_cons ahead of out_prod
  // The frontend still believes its cached out_cons, stores one byte (masked, in bounds), then sees the corrupt
  // index on its post-publish load: the level reads as full.
  assert.equal(f.putOut(1), XENCONS_OUT_SIZE);
  assert.equal(f.corruptEvents, 2);
  assert.equal(f.putOut(1), RING_CORRUPT); // nothing stored now
  assert.equal(f.corruptEvents, 3);
  assert.equal(b.readOut(new Uint8Array(4096)), 0); // backend resyncs out_cons := out_prod
  assert.equal(b.corruptEvents, 1);
  assert.equal(f.putOut(0x42), 1);
  assert.deepEqual(Array.from(b.drainOut()), [0x42]);
  assert.deepEqual(reports, ['in', 'out', 'out']);
  // Random scribbles: no exception, no hang.
  for (let i = 0; i < 2000; i++) {
    dv.setUint32(0xc00 + 4 * (i % 4), (Math.random() * 2 ** 32) >>> 0, true);
    f.putOut(i);
    f.getIn();
    b.readOut(new Uint8Array(64));
    b.writeIn(new Uint8Array(64));
    f.refresh();
  }
});

test('bad placement is refused: offset not a multiple of 4 or page past the end', () => {
  assert.throws(() => new ConsoleRing(new SharedArrayBuffer(8192), 2), RangeError);
  assert.throws(() => new ConsoleRingBackend(new SharedArrayBuffer(4096), 4), RangeError);
  assert.throws(() => new ConsoleRingBackend(new SharedArrayBuffer(4096)).setConnection(7), RangeError);
});
