// Console ring behaviour the main ring tests do not pin, each written against a mutant StrykerJS could leave alive
// (bench/MUTATION.md): placement at an offset, unsigned index getters, connection byte, refresh() counts and
// reports, the corruption checks after publishing (getIn) and in refresh() (OUT), adopt(), peek/commit edge cases,
// clamped drains, partial and wrapping copies in both directions.
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import {
  ConsoleRing,
  ConsoleRingBackend,
  RING_CORRUPT,
  RING_EMPTY,
  RING_FULL,
  XENCONSOLE_CONNECTED,
  XENCONSOLE_DISCONNECTED,
  XENCONS_IN_SIZE,
  XENCONS_OUT_SIZE,
  ringLevel,
  xenconsMask,
  xenconsQueued,
  type RingCorruptionReport,
} from '../src/xen/ring.js';

const T = { timeout: 20_000 };

function pair(offset = 0, bytes = 4096) {
  const sab = new SharedArrayBuffer(bytes);
  const dv = new DataView(sab, offset);
  return { sab, dv, f: new ConsoleRing(sab, offset), b: new ConsoleRingBackend(sab, offset) };
}

test('index helpers at their edges', T, () => {
  assert.equal(xenconsMask(2049, 2048), 1);
  assert.equal(xenconsMask(-1, 1024), 1023);
  assert.equal(ringLevel(2048, 0, 2048), 2048);
  assert.equal(ringLevel(2049, 0, 2048), RING_CORRUPT);
  assert.equal(ringLevel(0, 1, 2048), RING_CORRUPT);
  assert.equal(ringLevel(3, 0xfffffffe, 2048), 5);
  assert.equal(xenconsQueued(5, 5, 1024), 0);
  assert.equal(xenconsQueued(1024, 0, 1024), 1024);
  assert.equal(xenconsQueued(3, 1, 1024), 2);
  assert.equal(xenconsQueued(1, 1023, 1024), 2);
});

test('a ring at an offset uses only its page; offsets must fit and be multiples of 4', T, () => {
  const { sab, f, b } = pair(4096, 12288);
  f.putOut(0x41);
  b.writeIn(Uint8Array.of(0x42));
  assert.deepEqual(Array.from(b.drainOut()), [0x41]);
  assert.equal(f.getIn(), 0x42);
  assert.ok(new Uint8Array(sab, 0, 4096).every((x) => x === 0), 'the page before is untouched');
  assert.ok(new Uint8Array(sab, 8192).every((x) => x === 0), 'the page after is untouched');
  assert.equal(f.byteOffset, 4096);
  assert.equal(f.page.byteOffset, 4096);
  assert.equal(f.page.length, 4096);
  assert.doesNotThrow(() => new ConsoleRing(new SharedArrayBuffer(8192), 4096));
  assert.throws(() => new ConsoleRing(new SharedArrayBuffer(8192), 4100), /does not fit/);
  assert.throws(() => new ConsoleRing(new SharedArrayBuffer(8192), -4), /not a non-negative multiple of 4/);
  assert.throws(() => new ConsoleRing(new SharedArrayBuffer(8192), 1.5), RangeError);
});

test('index getters are unsigned; the connection byte reads back what the backend sets', T, () => {
  const { dv, f, b } = pair();
  dv.setUint32(0xc00, 0xffffffff, true);
  dv.setUint32(0xc04, 0xfffffff0, true);
  dv.setUint32(0xc08, 0x80000000, true);
  dv.setUint32(0xc0c, 0x80000001, true);
  assert.deepEqual([f.inCons, f.inProd, f.outCons, f.outProd], [0xffffffff, 0xfffffff0, 0x80000000, 0x80000001]);
  assert.equal(f.outQueued(), 1);
  assert.equal(f.inQueued(), RING_CORRUPT);
  assert.equal(b.inFree(), 0, 'a corrupt IN has no free space');
  assert.equal(f.connection, XENCONSOLE_CONNECTED);
  b.setConnection(XENCONSOLE_DISCONNECTED);
  assert.equal(f.connection, 1);
  assert.equal(dv.getUint8(0xc10), 1);
  b.setConnection(XENCONSOLE_CONNECTED);
  assert.equal(f.connection, 0);
});

test('refresh(): counts corrupt halves, resyncs IN, reads a corrupt OUT as full, reports exact indices', T, () => {
  const { dv, f } = pair();
  const reports: RingCorruptionReport[] = [];
  f.onCorrupt = (r) => reports.push(r);
  assert.equal(f.refresh(), 0);
  dv.setUint32(0xc04, 5000, true); // in_prod far ahead of in_cons 0
  dv.setUint32(0xc08, 7, true); // out_cons ahead of out_prod 0
  assert.equal(f.refresh(), 2);
  assert.deepEqual(reports, [{ half: 'in', prod: 5000, cons: 0 }, { half: 'out', prod: 0, cons: 7 }]);
  assert.equal(f.inCons, 5000, 'IN resynchronised in the page');
  assert.equal(f.inLevel, 0);
  assert.equal(f.outLevel, XENCONS_OUT_SIZE, 'OUT reads as full until the backend resyncs');
  assert.equal(f.outCons, 7, 'the frontend never moves out_cons');
  assert.equal(f.corruptEvents, 2);
  assert.equal(f.refresh(), 1, 'IN is fine now; OUT still corrupt');
  dv.setUint32(0xc08, 0, true);
  dv.setUint32(0xc04, 5003, true);
  assert.equal(f.refresh(), 0);
  assert.equal(f.inLevel, 3);
  assert.equal(f.outLevel, 0);
});

test('a reporter that throws does not escape; the event is still counted', T, () => {
  const { dv, f } = pair();
  f.onCorrupt = () => {
    throw new Error('reporter bug');
  };
  dv.setUint32(0xc04, 5000, true);
  assert.equal(f.getIn(), RING_CORRUPT);
  assert.equal(f.corruptEvents, 1);
});

test('getIn: in_prod scribbled after our last look is caught by the check after publishing in_cons', T, () => {
  const { dv, f, b } = pair();
  assert.equal(b.writeIn(Uint8Array.of(1, 2)), 2);
  assert.equal(f.getIn(), 1); // in_prod 2 seen after the publish
  assert.equal(f.inLevel, 1);
  dv.setUint32(0xc04, 0x80000000, true); // the guest scribbles in_prod
  assert.equal(f.getIn(), 2, 'the byte the cached level promised');
  assert.equal(f.corruptEvents, 1, 'the post-publish load saw the corrupt distance');
  assert.equal(f.inCons, 0x80000000, 'resynchronised in the page');
  assert.equal(f.inLevel, 0);
  assert.equal(f.getIn(), RING_EMPTY);
  assert.equal(f.inLevel, 0);
});

test('getIn levels: IN full, a read leaves size-1 (the backend is owed a wake), then empties', T, () => {
  const { f, b } = pair();
  assert.equal(b.writeIn(new Uint8Array(2000).fill(9)), XENCONS_IN_SIZE, 'IN takes exactly its size');
  assert.equal(b.inFree(), 0);
  assert.equal(b.writeIn(Uint8Array.of(1)), 0);
  assert.equal(f.getIn(), 9);
  assert.equal(f.inLevel, XENCONS_IN_SIZE - 1);
  assert.equal(b.inFree(), 1);
  for (let i = 1; i < XENCONS_IN_SIZE; i++) assert.equal(f.getIn(), 9);
  assert.equal(f.getIn(), RING_EMPTY);
});

test('adopt(): a frontend attached to a ring with traffic continues at the page indices', T, () => {
  const { dv, sab, b } = pair();
  dv.setUint32(0xc08, 90, true);
  dv.setUint32(0xc0c, 100, true);
  dv.setUint32(0xc00, 10, true);
  dv.setUint32(0xc04, 12, true);
  const f = new ConsoleRing(sab);
  assert.equal(f.outLevel, 10);
  assert.equal(f.inLevel, 2);
  assert.equal(f.putOut(0x55), 11);
  assert.equal(new Uint8Array(sab)[0x400 + 100], 0x55);
  assert.equal(f.outProd, 101);
  assert.equal(b.drainOut().length, 11);
});

test('putOut: full is RING_FULL with nothing stored; a drain seen on the re-look lets the next byte in', T, () => {
  const { f, b } = pair();
  for (let i = 0; i < XENCONS_OUT_SIZE - 1; i++) assert.equal(f.putOut(i & 0xff), i + 1);
  assert.equal(f.putOut(7), XENCONS_OUT_SIZE);
  assert.equal(f.outLevel, XENCONS_OUT_SIZE);
  assert.equal(f.putOut(8), RING_FULL);
  assert.equal(f.outProd, XENCONS_OUT_SIZE);
  const got = new Uint8Array(3);
  assert.equal(b.readOut(got), 3);
  assert.deepEqual(Array.from(got), [0, 1, 2]);
  assert.equal(f.putOut(9), XENCONS_OUT_SIZE - 2, 'the re-look saw 3 bytes of space');
  assert.equal(f.outLevel, XENCONS_OUT_SIZE - 2);
  assert.equal(f.outProd, XENCONS_OUT_SIZE + 1);
});

test('peekOut / commitOut: nothing published until commit; bad counts and a moved out_cons are refused', T, () => {
  const { dv, f, b } = pair();
  for (let i = 0; i < 5; i++) f.putOut(i);
  const dst = new Uint8Array(8);
  assert.equal(b.peekOut(dst), 5);
  assert.equal(b.outCons, 0, 'peek does not publish');
  assert.equal(b.peekedCons, 0);
  assert.equal(b.commitOut(6), false);
  assert.equal(b.commitOut(-1), false);
  assert.equal(b.commitOut(1.5), false);
  assert.equal(b.commitOut(2), true);
  assert.equal(b.outCons, 2);
  assert.equal(b.peekedCons, 2);
  assert.equal(b.commitOut(1), false, 'one commit per peek');
  assert.equal(b.peekOut(dst), 3);
  assert.deepEqual(Array.from(dst.subarray(0, 3)), [2, 3, 4]);
  dv.setUint32(0xc08, 3, true); // the guest moves out_cons under us
  assert.equal(b.commitOut(3), false, 'a batch is not trusted twice');
  assert.equal(b.outCons, 3);
  assert.equal(b.peekOut(dst), 2);
  assert.equal(b.commitOut(0), true, 'zero is a valid commit that publishes nothing');
  assert.equal(b.outCons, 3);
  assert.equal(b.commitOut(2), false, 'the peek was consumed by the zero commit');
  dv.setUint32(0xc08, 9000, true); // corrupt: out_cons ahead of out_prod
  assert.equal(b.peekOut(dst), 0);
  assert.equal(b.corruptEvents, 1);
  assert.equal(b.outCons, 5, 'resynchronised to out_prod');
  assert.equal(b.peekedCons, 5);
  b.setOutCons(0xffffffff);
  assert.equal(b.outCons, 0xffffffff);
});

test('readOut and drainOut: partial reads keep the rest; drains are clamped; copies wrap in order', T, () => {
  const { dv, f, b } = pair();
  dv.setUint32(0xc08, XENCONS_OUT_SIZE - 2, true);
  dv.setUint32(0xc0c, XENCONS_OUT_SIZE - 2, true);
  f.adopt();
  for (let i = 0; i < 6; i++) f.putOut(0x10 + i);
  const two = new Uint8Array(2);
  assert.equal(b.readOut(two), 2);
  assert.deepEqual(Array.from(two), [0x10, 0x11]);
  assert.equal(b.drainOut(0).length, 0);
  assert.equal(b.drainOut(-5).length, 0);
  assert.deepEqual(Array.from(b.drainOut(3)), [0x12, 0x13, 0x14]);
  assert.deepEqual(Array.from(b.drainOut(99999)), [0x15]);
  for (let i = 0; i < XENCONS_OUT_SIZE; i++) f.putOut(i & 0xff);
  assert.equal(b.drainOut(99999).length, XENCONS_OUT_SIZE, 'at most the ring size');
  assert.equal(b.readOut(new Uint8Array(4)), 0);
});

test('writeIn: partial when nearly full, wraps in order, refuses a corrupt IN (reported, nothing written)', T, () => {
  const { dv, f, b } = pair();
  dv.setUint32(0xc00, XENCONS_IN_SIZE - 1, true);
  dv.setUint32(0xc04, XENCONS_IN_SIZE - 1, true);
  f.adopt();
  assert.equal(b.writeIn(Uint8Array.of(1, 2, 3)), 3);
  assert.deepEqual([f.getIn(), f.getIn(), f.getIn(), f.getIn()], [1, 2, 3, RING_EMPTY]);
  assert.equal(b.writeIn(new Uint8Array(XENCONS_IN_SIZE - 2).fill(4)), XENCONS_IN_SIZE - 2);
  assert.equal(b.writeIn(Uint8Array.of(5, 6, 7)), 2, 'only two bytes of space left');
  assert.equal(b.writeIn(new Uint8Array(0)), 0);
  dv.setUint32(0xc00, 0, true);
  dv.setUint32(0xc04, 0x40000000, true);
  assert.equal(b.writeIn(Uint8Array.of(1)), 0);
  assert.equal(b.corruptEvents, 1);
  assert.equal(b.inProd, 0x40000000, 'nothing written');
});

test('full is not corrupt: a full OUT refreshes and fills without a corruption event; exact reports per half', T, () => {
  const { dv, f, b } = pair();
  for (let i = 0; i < XENCONS_OUT_SIZE; i++) f.putOut(i & 0xff);
  assert.equal(f.outLevel, XENCONS_OUT_SIZE);
  assert.equal(f.refresh(), 0);
  assert.equal(f.corruptEvents, 0, 'exactly full is a level, not a corruption');
  const fr: RingCorruptionReport[] = [];
  const br: RingCorruptionReport[] = [];
  f.onCorrupt = (r) => fr.push(r);
  b.onCorrupt = (r) => br.push(r);
  dv.setUint32(0xc08, 9000, true);
  assert.equal(b.peekOut(new Uint8Array(4)), 0);
  assert.deepEqual(br, [{ half: 'out', prod: XENCONS_OUT_SIZE, cons: 9000 }]);
  dv.setUint32(0xc00, 0, true);
  dv.setUint32(0xc04, 0x40000000, true);
  assert.equal(b.writeIn(Uint8Array.of(1)), 0);
  assert.deepEqual(br[1], { half: 'in', prod: 0x40000000, cons: 0 });
  dv.setUint32(0xc00, 0, true);
  dv.setUint32(0xc04, 0, true);
  f.adopt();
  assert.equal(b.writeIn(Uint8Array.of(1, 2)), 2);
  assert.equal(f.getIn(), 1);
  dv.setUint32(0xc04, 0x80000000, true);
  assert.equal(f.getIn(), 2);
  assert.deepEqual(fr, [{ half: 'in', prod: 0x80000000, cons: 2 }]);
});

test('commitOut of exactly the peeked count; placement and connection errors say what is wrong', T, () => {
  const { f, b } = pair();
  f.putOut(1);
  f.putOut(2);
  assert.equal(b.peekOut(new Uint8Array(8)), 2);
  assert.equal(b.commitOut(2), true);
  assert.equal(b.outCons, 2);
  assert.throws(() => new ConsoleRing(new SharedArrayBuffer(8192), 2), /byte offset 2 is not a non-negative multiple of 4/);
  assert.throws(() => b.setConnection(7), /ring: bad connection value 7/);
});
