// Console ring ABI (xencons_interface, xen/include/public/io/console.h + ring.h): layout, index arithmetic,
// both ends, hostile indices.
import { test } from './lib/bounded.js';
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
});

test('random index scribbles: every result in range, every corrupt distance counted', () => {
  const sab = new SharedArrayBuffer(4096);
  const dv = new DataView(sab);
  const f = new ConsoleRing(sab);
  const b = new ConsoleRingBackend(sab);
  // Deterministic scribbles (xorshift32), half of them small moves that keep a distance legal.
  let x = 0x9e3779b9;
  const rnd = () => ((x ^= x << 13), (x ^= x >>> 17), (x ^= x << 5), x >>> 0);
  const page = (o: number) => dv.getUint32(o, true);
  let corruptSeen = 0;
  const frontOps = (i: number) => {
    const p = f.putOut(i & 0xff);
    assert.ok(p === RING_FULL || p === RING_CORRUPT || (p >= 0 && p <= XENCONS_OUT_SIZE), `putOut -> ${p}`);
    const g = f.getIn();
    assert.ok(g === RING_EMPTY || g === RING_CORRUPT || (g >= 0 && g <= 0xff), `getIn -> ${g}`);
    f.refresh();
    assert.ok(f.inLevel >= 0 && f.inLevel <= XENCONS_IN_SIZE && f.outLevel >= 0 && f.outLevel <= XENCONS_OUT_SIZE);
  };
  const backOps = () => {
    const r = b.readOut(new Uint8Array(64));
    assert.ok(r >= 0 && r <= 64);
    const w = b.writeIn(new Uint8Array(64));
    assert.ok(w >= 0 && w <= 64);
  };
  for (let i = 0; i < 4000; i++) {
    const o = 0xc00 + 4 * (i % 4);
    dv.setUint32(o, i % 8 < 4 ? rnd() : (page(o) + (rnd() % 8)) >>> 0, true);
    // Corrupt by more than the one byte a publish before the check could move it (cons just past prod is legal again
    // after the frontend's next put), so the detecting side must count it.
    const far = (prod: number, cons: number, size: number) => {
      const d = (prod - cons) >>> 0;
      return d > size + 1 && d < 2 ** 32 - 1;
    };
    const corrupt = far(page(0xc04), page(0xc00), XENCONS_IN_SIZE) || far(page(0xc0c), page(0xc08), XENCONS_OUT_SIZE);
    if (corrupt) corruptSeen++;
    if (o === 0xc04 || o === 0xc08) {
      // The backend's index (in_prod / out_cons): the frontend loads and checks it.
      const before = f.corruptEvents;
      frontOps(i);
      if (corrupt) assert.ok(f.corruptEvents > before, `iteration ${i}: the frontend did not count a corrupt ${o === 0xc04 ? 'in_prod' : 'out_cons'}`);
      backOps();
    } else {
      // The frontend's index (in_cons / out_prod): the backend loads and checks it; the frontend then adopts the page
      // (its private copies would otherwise overwrite the scribble on its next publish).
      const before = b.corruptEvents;
      backOps();
      if (corrupt) assert.ok(b.corruptEvents > before, `iteration ${i}: the backend did not count a corrupt ${o === 0xc00 ? 'in_cons' : 'out_prod'}`);
      f.adopt();
      frontOps(i);
    }
  }
  assert.ok(corruptSeen > 1000, `only ${corruptSeen} corrupt scribbles: the loop tests little`);
});

test('getIn: an in_prod scribbled while the cached level looked fine is caught by the post-publish check', () => {
  const sab = new SharedArrayBuffer(4096);
  const dv = new DataView(sab);
  const f = new ConsoleRing(sab);
  const b = new ConsoleRingBackend(sab);
  assert.equal(b.writeIn(Uint8Array.of(1, 2, 3, 4, 5)), 5);
  assert.equal(f.getIn(), 1); // loads in_prod = 5: the next reads use the cached value
  dv.setUint32(0xc04, 0x80000000, true); // in_prod scribbled
  assert.equal(f.getIn(), 2, 'the cached level is legal: the byte is read');
  assert.equal(f.corruptEvents, 1, 'in_prod loaded after publishing in_cons: corrupt, counted');
  assert.equal(f.inLevel, 0);
  assert.equal(dv.getUint32(0xc00, true), 0x80000000, 'resynchronised: in_cons := in_prod');
  assert.equal(f.getIn(), RING_EMPTY);
  assert.equal(f.corruptEvents, 1);
});

test('refresh: a corrupt OUT distance is reported, counted, and reads as full (not as a huge level)', () => {
  const sab = new SharedArrayBuffer(4096);
  const dv = new DataView(sab);
  const f = new ConsoleRing(sab);
  const reports: string[] = [];
  f.onCorrupt = (r) => reports.push(`${r.half} ${r.prod} ${r.cons}`);
  f.putOut(0x41);
  dv.setUint32(0xc08, 0x12345, true); // out_cons beyond out_prod
  assert.equal(f.refresh(), 1);
  assert.equal(f.corruptEvents, 1);
  assert.equal(f.outLevel, XENCONS_OUT_SIZE);
  assert.deepEqual(reports, [`out 1 ${0x12345}`]);
  dv.setUint32(0xc04, 0x7777, true); // and IN
  assert.equal(f.refresh(), 2);
  assert.equal(f.inLevel, 0);
  assert.equal(f.corruptEvents, 3);
});

test('bad placement is refused: offset not a multiple of 4 or page past the end', () => {
  assert.throws(() => new ConsoleRing(new SharedArrayBuffer(8192), 2), RangeError);
  assert.throws(() => new ConsoleRingBackend(new SharedArrayBuffer(4096), 4), RangeError);
  assert.throws(() => new ConsoleRingBackend(new SharedArrayBuffer(4096)).setConnection(7), RangeError);
});

test('the frontend results are distinct: an empty IN, a full OUT and a corrupt half are three different answers', () => {
  assert.equal(new Set([RING_EMPTY, RING_FULL, RING_CORRUPT]).size, 3, 'RING_EMPTY, RING_FULL, RING_CORRUPT');
  const f = new ConsoleRing(new SharedArrayBuffer(4096));
  assert.equal(f.getIn(), RING_EMPTY);
  let r = 0;
  for (let i = 0; i <= XENCONS_OUT_SIZE && r >= 0; i++) r = f.putOut(0x41);
  assert.equal(r, RING_FULL, 'a full OUT is told apart from an empty IN');
  assert.notEqual(f.getIn(), RING_FULL);
});
