// Vpl011 behaviour the device tests do not pin, written against mutants StrykerJS left alive (bench/MUTATION.md):
// 64-bit accesses refused on every register (counted, logged with the exact text, ICR's own message), byte-wide
// reads, read-only writes, restore() validation of every field, the log lines (empty read, full ring, corrupt
// ring, DMA, unhandled, TX disabled), the receive-unmasked getter and the IN full -> not full notify.
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { VPL011_PROFILES, Vpl011 } from '../src/device/vpl011.js';
import { ConsoleRing } from '../src/xen/ring.js';
import { MMIO_ABORT, MMIO_DONE } from '../src/device/ports.js';
import { CR, INT, Reg } from '../src/device/spec.js';
import { deviceRig } from './lib/device-rig.js';
import { hex } from '../src/util/hex.js';

const T = { timeout: 20_000 };

test('64-bit accesses are refused on every register, counted and logged; ICR reads have their own message', T, () => {
  const logs: string[] = [];
  const r = deviceRig('sbsa', logs);
  assert.equal(r.dev.read(Reg.ICR, 4), MMIO_ABORT);
  assert.equal(logs[0], 'vpl011: ICR is write-only (read refused)');
  for (const off of [Reg.DR, Reg.FR, Reg.RSR, Reg.RIS, Reg.MIS, Reg.IMSC]) assert.equal(r.dev.read(off, 8), MMIO_ABORT, `read ${off}`);
  for (const off of [Reg.DR, Reg.RSR, Reg.IMSC, Reg.ICR]) assert.equal(r.dev.write(off, 8, 0xff), MMIO_ABORT, `write ${off}`);
  assert.equal(r.dev.counters.refusedAccesses, 11);
  assert.equal(logs[1], 'vpl011: bad read width 8 offset 0x000');
  assert.equal(logs[9], 'vpl011: bad write width 8 offset 0x038');
  assert.equal(logs.length, 10, 'the 11th refusal is rate-limited');
  assert.equal(r.dev.read(Reg.ICR, 8), MMIO_ABORT);
  assert.equal(r.dev.counters.refusedAccesses, 12);
  assert.equal(r.drainBytes().length, 0, 'a refused DR write sent nothing');
});

test('pl011 registers: 64-bit accesses refused; DMACR logged; unhandled offsets logged; read-only writes accepted', T, () => {
  const logs: string[] = [];
  const r = deviceRig('pl011', logs);
  for (const off of [Reg.ILPR, Reg.IBRD, Reg.FBRD, Reg.LCR_H, Reg.CR, Reg.IFLS, Reg.DMACR]) {
    assert.equal(r.dev.read(off, 8), MMIO_ABORT, `read ${off}`);
    assert.equal(r.dev.write(off, 8, 0), MMIO_ABORT, `write ${off}`);
  }
  assert.equal(r.dev.counters.refusedAccesses, 14);
  logs.length = 0;
  assert.equal(r.dev.read(Reg.DMACR, 4), 0);
  assert.equal(r.dev.write(Reg.DMACR, 4, 3), MMIO_DONE);
  assert.deepEqual(logs, ['vpl011: DMACR read (no DMA: reads as 0)', 'vpl011: DMACR write 0x03 ignored (no DMA)']);
  logs.length = 0;
  assert.equal(r.dev.read(0x800, 4), 0);
  assert.equal(r.dev.write(Reg.PERIPH_ID0, 4, 1), MMIO_DONE);
  assert.deepEqual(logs, ['vpl011: unhandled read w4 offset 0x800', 'vpl011: unhandled write w4 offset 0xfe0']);
  for (const off of [Reg.FR, Reg.RIS, Reg.MIS, Reg.RSR]) assert.equal(r.dev.write(off, 4, 0xffff), MMIO_DONE);
  assert.equal(r.dev.read(Reg.FR, 4), 0x90, 'FR writes change nothing');
  logs.length = 0;
  r.dev.write(Reg.CR, 4, CR.UARTEN | CR.TXE | CR.RXE | CR.LBE);
  r.dev.write(Reg.CR, 4, CR.UARTEN | CR.TXE | CR.RXE | CR.LBE);
  assert.deepEqual(logs, [], 'loopback is emulated (test/device-pl011.test.ts): nothing to warn about');
  r.dev.write(Reg.CR, 4, CR.RXE);
  r.dev.write(Reg.DR, 4, 0x41);
  r.dev.write(Reg.DR, 4, 0x42);
  assert.equal(r.dev.counters.txWhileDisabled, 2);
  assert.equal(logs.length, 1, 'TX-disabled warning once');
  assert.match(logs[0]!, /CR\.UARTEN or CR\.TXE clear/);
  assert.equal(r.drainText(), 'AB');
});

test('byte-wide reads: DR returns the byte; FR its low byte; an empty DR read is counted and logged', T, () => {
  const logs: string[] = [];
  const r = deviceRig('sbsa', logs);
  r.fill(Uint8Array.of(0xff, 0x7a));
  assert.equal(r.dev.read(Reg.DR, 1), 0xff);
  assert.equal(r.dev.read(Reg.DR, 2), 0x7a);
  assert.equal(r.dev.counters.bytesIn, 2);
  assert.equal(r.dev.read(Reg.FR, 1), 0x90);
  assert.equal(r.dev.read(Reg.DR, 4), 0);
  assert.equal(r.dev.counters.emptyDrReads, 1);
  assert.deepEqual(logs, ['vpl011: Unexpected IN ring buffer empty']);
});

test('a full OUT drops, counts and logs; a corrupt ring is logged with its indices and notifies', T, () => {
  const logs: string[] = [];
  const r = deviceRig('sbsa', logs);
  for (let i = 0; i < 2048; i++) r.dev.write(Reg.DR, 1, 0x61);
  const before = r.notifies();
  r.dev.write(Reg.DR, 1, 0x62);
  assert.equal(r.dev.counters.txDropped, 1);
  assert.equal(r.dev.counters.bytesOut, 2048);
  assert.deepEqual(logs, ['vpl011: Unexpected OUT ring buffer full']);
  assert.equal(r.notifies(), before, 'a plain full drop does not notify again');
  new DataView(r.sab).setUint32(0xc08, 0x7000, true); // out_cons scribbled ahead of out_prod
  r.dev.write(Reg.DR, 1, 0x63);
  assert.equal(r.notifies(), before + 1, 'corrupt: the backend is told to resynchronise');
  assert.equal(logs[1], 'vpl011: corrupt out ring indices prod=0x00000800 cons=0x00007000');
});

test('reading IN from full notifies the backend once (space again); receiveInterruptsUnmasked follows IMSC', T, () => {
  const r = deviceRig('sbsa');
  assert.equal(r.fill(new Uint8Array(1024).fill(0x31)), 1024);
  const n0 = r.notifies();
  r.dev.read(Reg.DR, 4);
  assert.equal(r.notifies(), n0 + 1);
  r.dev.read(Reg.DR, 4);
  assert.equal(r.notifies(), n0 + 1);
  assert.equal(r.dev.receiveInterruptsUnmasked, false);
  r.dev.write(Reg.IMSC, 4, INT.TX);
  assert.equal(r.dev.receiveInterruptsUnmasked, false);
  r.dev.write(Reg.IMSC, 4, INT.RT);
  assert.equal(r.dev.receiveInterruptsUnmasked, true);
  r.dev.write(Reg.IMSC, 4, INT.RX);
  assert.equal(r.dev.receiveInterruptsUnmasked, true);
});

test('constructor: unknown profile refused; a ring reporter installed before the device still runs', T, () => {
  const sab = new SharedArrayBuffer(4096);
  const ports = { ring: new ConsoleRing(sab), irq: { set: () => {} }, notify: () => {} };
  assert.throws(() => new Vpl011({ ...ports, profile: 'x' as 'sbsa' }), /vpl011: unknown profile x/);
  const seen: string[] = [];
  const ring = new ConsoleRing(sab);
  ring.onCorrupt = (rep) => seen.push(rep.half);
  const logs: string[] = [];
  const dev = new Vpl011({ ring, irq: { set: () => {} }, notify: () => {}, log: (m) => logs.push(m) });
  new DataView(sab).setUint32(0xc04, 0x9000, true);
  dev.notification();
  assert.deepEqual(seen, ['in']);
  assert.equal(logs[0], 'vpl011: corrupt in ring indices prod=0x00009000 cons=0x00000000');
});

test('restore() validates every field with a message naming it', T, () => {
  const r = deviceRig('pl011');
  const good = r.dev.snapshot();
  const ports = { ring: new ConsoleRing(new SharedArrayBuffer(4096)), irq: { set: () => {} }, notify: () => {} };
  const bad = (patch: Record<string, unknown>, re: RegExp) =>
    assert.throws(() => Vpl011.restore({ ...good, ...patch }, ports), re, JSON.stringify(patch));
  assert.throws(() => Vpl011.restore(null, ports), /state is not an object/);
  assert.throws(() => Vpl011.restore(7, ports), /state is not an object/);
  bad({ version: 2 }, /unsupported version 2/);
  bad({ profile: 'x' }, /unsupported profile x/);
  bad({ ris: -1 }, /ris is not a u32/);
  bad({ ris: 1.5 }, /ris is not a u32/);
  bad({ ris: '1' }, /ris is not a u32/);
  bad({ imsc: 0x100000000 }, /imsc is not a u32/);
  bad({ ris: 0x1 }, /ris 0x0*1 has bits vpl011 never raises/);
  bad({ counters: null }, /bad counters/);
  bad({ counters: 5 }, /bad counters/);
  bad({ counters: { bytesOut: -1 } }, /counter bytesOut is not a non-negative integer/);
  bad({ counters: { bytesOut: 1.5 } }, /counter bytesOut/);
  bad({ counters: { bytesOut: '1' } }, /counter bytesOut/);
  bad({ pl011: undefined }, /pl011 state without its registers/);
  bad({ pl011: null }, /pl011 state without its registers/);
  bad({ pl011: { ...good.pl011, cr: 0x10000 } }, /pl011\.cr 0x0*10000 has bits outside 0x0*ff87/);
  bad({ pl011: { ...good.pl011, ibrd: -1 } }, /pl011\.ibrd is not a u32/);
  assert.throws(() => Vpl011.restore({ ...deviceRig('sbsa').dev.snapshot(), pl011: good.pl011 }, ports), /sbsa state carries pl011 registers/);
  const ok = Vpl011.restore({ ...good, imsc: 0xffffffff, counters: { bytesOut: 3, bogus: 'ignored' } }, ports);
  assert.equal(ok.counters.bytesOut, 3);
  assert.equal(ok.read(Reg.IMSC, 4), 0xffffffff);
  const noCounters = Vpl011.restore({ ...good, counters: undefined }, ports);
  assert.equal(noCounters.counters.bytesOut, 0);
});

test('each refused register names its direction and offset; accepted writes return true; the profile list', T, () => {
  assert.deepEqual([...VPL011_PROFILES], ['sbsa', 'pl011']);
  const hex3 = (o: number): string => hex(o, 3);
  for (const profile of ['sbsa', 'pl011'] as const) {
    const regs = profile === 'sbsa' ? [Reg.DR, Reg.FR, Reg.RSR, Reg.RIS, Reg.MIS, Reg.IMSC] : [Reg.ILPR, Reg.IBRD, Reg.FBRD, Reg.LCR_H, Reg.CR, Reg.IFLS, Reg.DMACR];
    for (const off of regs) {
      const logs: string[] = [];
      const r = deviceRig(profile, logs);
      r.dev.read(off, 8);
      if (off !== Reg.FR && off !== Reg.RIS && off !== Reg.MIS) r.dev.write(off, 8, 0);
      const want = [`vpl011: bad read width 8 offset ${hex3(off)}`];
      if (off !== Reg.FR && off !== Reg.RIS && off !== Reg.MIS) want.push(`vpl011: bad write width 8 offset ${hex3(off)}`);
      assert.deepEqual(logs, want, `${profile} ${off}`);
    }
  }
  const s = deviceRig('sbsa');
  assert.equal(s.dev.write(Reg.IMSC, 4, 0), MMIO_DONE);
  assert.equal(s.dev.write(Reg.ICR, 4, 0x7ff), MMIO_DONE);
  assert.equal(s.dev.write(Reg.DR, 4, 0x41), MMIO_DONE);
  const p = deviceRig('pl011');
  for (const off of [Reg.ILPR, Reg.IBRD, Reg.FBRD, Reg.LCR_H, Reg.CR, Reg.IFLS]) assert.equal(p.dev.write(off, 4, 0), MMIO_DONE, `write ${off}`);
});

test('ICR at 64 bits is a width refusal like any other; unhandled sbsa offsets are logged with their direction', T, () => {
  const logs: string[] = [];
  const r = deviceRig('sbsa', logs);
  assert.equal(r.dev.read(Reg.ICR, 8), MMIO_ABORT);
  assert.equal(r.dev.write(Reg.ICR, 8, 1), MMIO_ABORT);
  assert.equal(r.dev.read(0x800, 4), 0);
  assert.equal(r.dev.write(0x800, 4, 1), MMIO_DONE);
  assert.deepEqual(logs, [
    'vpl011: bad read width 8 offset 0x044',
    'vpl011: bad write width 8 offset 0x044',
    'vpl011: unhandled read w4 offset 0x800',
    'vpl011: unhandled write w4 offset 0x800',
  ]);
  assert.equal(r.dev.counters.unhandledAccesses, 2);
});

test('a corrupt IN found by a DR read or by a backend notification notifies the backend; it is not an empty read', T, () => {
  const r = deviceRig('sbsa');
  const dv = new DataView(r.sab);
  dv.setUint32(0xc04, 0x9000, true); // in_prod scribbled far ahead
  const n0 = r.notifies();
  assert.equal(r.dev.read(Reg.DR, 4), 0);
  assert.equal(r.dev.counters.emptyDrReads, 0, 'corrupt, not empty');
  assert.equal(r.notifies(), n0 + 1);
  dv.setUint32(0xc04, 0x20000, true);
  r.dev.notification();
  assert.equal(r.notifies(), n0 + 2);
});

test('FR.RXFF only when IN is exactly full', T, () => {
  const r = deviceRig('sbsa');
  r.fill('a');
  assert.equal(r.dev.read(Reg.FR, 4) & 0x40, 0);
  r.fill(new Uint8Array(1023));
  assert.equal(r.dev.read(Reg.FR, 4) & 0x40, 0x40);
});
