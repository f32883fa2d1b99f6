// The register audit (issue #10 §3): every FR / RIS / MIS value a driver can see, against the clause that defines it,
// with the FIFOs on and off, in a table. Expected values are written out by hand from the text (not computed by the
// device's own formula), one row per state. pl011 profile: the PL011 TRM r1p5 (ARM DDI 0183G); the FIFOs are windows
// on the xencons rings (docs/DEVICE.md "FIFOs"): RX = the first 32 bytes of IN (1 with FEN = 0), TX = the last 32
// bytes of OUT space (1 with FEN = 0), the ring before them being the line. sbsa profile: Xen's (FR from the ring
// levels: 393a541f7d, b4637ed6cd; interrupts bb2c1a1cc9), which the SBSA generic UART leaves to the implementation.
// RTI here is untimed ("data present", as Xen: no clock given); test/receive-timeout.test.ts times it (docs/DEVICE.md "RTI").
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { deviceRig } from './lib/device-rig.js';
import { CR, LCRH, Reg } from '../src/device/spec.js';
import { LineError } from '../src/xen/line-events.js';

type Row = {
  profile: 'sbsa' | 'pl011';
  /** LCR_H.FEN (pl011); undefined for sbsa. */
  fen?: boolean;
  /** IFLS (pl011), default 0x12 (1/2, 1/2). */
  ifls?: number;
  /** CR (pl011), default UARTEN | TXE | RXE. */
  cr?: number;
  rx: number;
  tx: number;
  fr: number;
  ris: number;
  why: string;
};

const ON = CR.UARTEN | CR.TXE | CR.RXE;
const ROWS: Row[] = [
  // ---- pl011, FIFOs enabled (32 deep, IFLS 1/2 = 16) ----
  { profile: 'pl011', fen: true, rx: 0, tx: 0, fr: 0x90, ris: 0x20, why: '3.3.3 RXFE/TXFE: both FIFOs empty; 3.3.12 TXRIS: TX FIFO at or below its trigger level' },
  { profile: 'pl011', fen: true, rx: 1, tx: 0, fr: 0x80, ris: 0x60, why: '3.3.3 RXFE clear with data; RTRIS: data present (DEVICE.md); RXRIS not yet (1 < 16)' },
  { profile: 'pl011', fen: true, rx: 15, tx: 0, fr: 0x80, ris: 0x60, why: '3.3.12 RXRIS: below the 1/2 trigger (16)' },
  { profile: 'pl011', fen: true, rx: 16, tx: 0, fr: 0x80, ris: 0x70, why: '3.3.12 RXRIS: RX FIFO reached its trigger level' },
  { profile: 'pl011', fen: true, rx: 31, tx: 0, fr: 0x80, ris: 0x70, why: '3.3.3 RXFF clear: 31 of 32' },
  { profile: 'pl011', fen: true, rx: 32, tx: 0, fr: 0xc0, ris: 0x70, why: '3.3.3 RXFF: the receive FIFO is full (32)' },
  { profile: 'pl011', fen: true, rx: 1024, tx: 0, fr: 0xc0, ris: 0x70, why: '3.3.3 RXFF: full (the rest of IN waits on the line)' },
  { profile: 'pl011', fen: true, rx: 0, tx: 1, fr: 0x90, ris: 0x20, why: '3.3.3 TXFE: the byte left the TX FIFO for the line (OUT has 2016 bytes of line before the FIFO)' },
  { profile: 'pl011', fen: true, rx: 0, tx: 2016, fr: 0x90, ris: 0x20, why: '3.3.3 TXFE: the FIFO window is still empty' },
  { profile: 'pl011', fen: true, rx: 0, tx: 2017, fr: 0x18, ris: 0x20, why: '3.3.3 BUSY "as soon as the transmit FIFO becomes non-empty", TXFE clear; 3.3.12 TXRIS: 1 <= 16' },
  { profile: 'pl011', fen: true, rx: 0, tx: 2032, fr: 0x18, ris: 0x20, why: '3.3.12 TXRIS: 16 in the FIFO, at the trigger level' },
  { profile: 'pl011', fen: true, rx: 0, tx: 2033, fr: 0x18, ris: 0x00, why: '3.3.12 TXRIS clear: 17 > 16' },
  { profile: 'pl011', fen: true, rx: 0, tx: 2048, fr: 0x38, ris: 0x00, why: '3.3.3 TXFF: the transmit FIFO is full (32), BUSY' },
  { profile: 'pl011', fen: true, ifls: 0x00, rx: 3, tx: 0, fr: 0x80, ris: 0x60, why: '3.3.9 IFLS RX 1/8 = 4: 3 is below' },
  { profile: 'pl011', fen: true, ifls: 0x00, rx: 4, tx: 0, fr: 0x80, ris: 0x70, why: '3.3.9 IFLS RX 1/8 = 4: reached' },
  { profile: 'pl011', fen: true, ifls: 0x00, rx: 0, tx: 2020, fr: 0x18, ris: 0x20, why: '3.3.9 IFLS TX 1/8 = 4: 4 in the FIFO, at the level' },
  { profile: 'pl011', fen: true, ifls: 0x00, rx: 0, tx: 2021, fr: 0x18, ris: 0x00, why: '3.3.9 IFLS TX 1/8 = 4: 5 is above' },
  { profile: 'pl011', fen: true, ifls: 0x24, rx: 27, tx: 0, fr: 0x80, ris: 0x60, why: '3.3.9 IFLS RX 7/8 = 28: 27 is below' },
  { profile: 'pl011', fen: true, ifls: 0x24, rx: 28, tx: 0, fr: 0x80, ris: 0x70, why: '3.3.9 IFLS RX 7/8 = 28: reached' },
  // ---- pl011, FIFOs disabled: 1-byte holding registers (TRM 2.4.3) ----
  { profile: 'pl011', fen: false, rx: 0, tx: 0, fr: 0x90, ris: 0x20, why: '3.3.3 FEN=0: holding registers empty; TXRIS: TX holding register empty' },
  { profile: 'pl011', fen: false, rx: 1, tx: 0, fr: 0xc0, ris: 0x70, why: '3.3.3 FEN=0: RXFF "when the receive holding register is full" (QEMU 0xc0); RXRIS on one character' },
  { profile: 'pl011', fen: false, rx: 5, tx: 0, fr: 0xc0, ris: 0x70, why: '3.3.3 FEN=0: RXFF (the rest waits on the line)' },
  { profile: 'pl011', fen: false, rx: 0, tx: 2047, fr: 0x90, ris: 0x20, why: '3.3.3 FEN=0: TXFE, the holding register is empty (2047 bytes on the line)' },
  { profile: 'pl011', fen: false, rx: 0, tx: 2048, fr: 0x38, ris: 0x00, why: '3.3.3 FEN=0: TXFF "when the transmit holding register is full", BUSY; TXRIS clear' },
  // ---- pl011, receiver off: nothing is received (3.3.8 RXE) ----
  { profile: 'pl011', fen: true, cr: CR.UARTEN | CR.TXE, rx: 40, tx: 0, fr: 0x90, ris: 0x20, why: '3.3.8 RXE = 0: the receiver is off, RXFE; no RX/RT' },
  // ---- sbsa: Xen's semantics (the SBSA leaves FIFO depth and levels to the implementation) ----
  { profile: 'sbsa', rx: 0, tx: 0, fr: 0x90, ris: 0x20, why: 'Xen b4637ed6cd: reset FR = TXFE|RXFE; TXI with >= 16 free (bb2c1a1cc9)' },
  { profile: 'sbsa', rx: 1, tx: 0, fr: 0x80, ris: 0x60, why: 'Xen bb2c1a1cc9: RTI = data present' },
  { profile: 'sbsa', rx: 1007, tx: 0, fr: 0x80, ris: 0x60, why: 'Xen bb2c1a1cc9: RXI from IN size - 16 = 1008' },
  { profile: 'sbsa', rx: 1008, tx: 0, fr: 0x80, ris: 0x70, why: 'Xen bb2c1a1cc9: RXI at 1008' },
  { profile: 'sbsa', rx: 1024, tx: 0, fr: 0xc0, ris: 0x70, why: 'Xen: RXFF when IN is full' },
  { profile: 'sbsa', rx: 0, tx: 1, fr: 0x10, ris: 0x20, why: 'Xen: TXFE only when OUT is empty' },
  { profile: 'sbsa', rx: 0, tx: 2032, fr: 0x10, ris: 0x20, why: 'Xen bb2c1a1cc9: TXI while >= 16 free' },
  { profile: 'sbsa', rx: 0, tx: 2033, fr: 0x10, ris: 0x00, why: 'Xen bb2c1a1cc9: TXI clear with 15 free' },
  { profile: 'sbsa', rx: 0, tx: 2048, fr: 0x38, ris: 0x00, why: 'Xen 393a541f7d: TXFF|BUSY only when OUT is full' },
];

function setUp(row: Row) {
  const r = deviceRig(row.profile);
  if (row.profile === 'pl011') {
    r.dev.write(Reg.IFLS, 4, row.ifls ?? 0x12);
    r.dev.write(Reg.LCR_H, 4, (3 << LCRH.WLEN_SHIFT) | (row.fen ? LCRH.FEN : 0));
    r.dev.write(Reg.CR, 4, row.cr ?? ON);
  }
  return r;
}

test('FR / RIS / MIS audit: every row equals the TRM (pl011) or Xen (sbsa) clause it cites', () => {
  const failures: string[] = [];
  for (const row of ROWS) {
    const r = setUp(row);
    for (let i = 0; i < row.tx; i++) r.dev.write(Reg.DR, 4, 0x41);
    if (row.rx > 0) assert.equal(r.fill(new Uint8Array(row.rx).fill(0x61)), row.rx);
    r.dev.write(Reg.IMSC, 4, 0x7ff); // an event: RIS holds every condition that is true; MIS = RIS & IMSC
    const fr = r.dev.read(Reg.FR, 4);
    const ris = r.dev.read(Reg.RIS, 4);
    const mis = r.dev.read(Reg.MIS, 4);
    const tag = `${row.profile}${row.fen === undefined ? '' : row.fen ? ' FEN=1' : ' FEN=0'}${row.ifls !== undefined ? ` IFLS=0x${row.ifls.toString(16)}` : ''} rx=${row.rx} tx=${row.tx}`;
    if (fr !== row.fr) failures.push(`${tag}: FR 0x${fr.toString(16)}, ${row.why} says 0x${row.fr.toString(16)}`);
    if (ris !== row.ris) failures.push(`${tag}: RIS 0x${ris.toString(16)}, ${row.why} says 0x${row.ris.toString(16)}`);
    if (mis !== row.ris) failures.push(`${tag}: MIS 0x${mis.toString(16)} != RIS & IMSC (3.3.13)`);
    r.dev.write(Reg.IMSC, 4, 0);
    if (r.dev.read(Reg.MIS, 4) !== 0) failures.push(`${tag}: MIS with IMSC = 0`);
  }
  assert.deepEqual(failures, [], `register values that differ from their clause:\n${failures.join('\n')}`);
});

for (const profile of ['pl011', 'sbsa'] as const) {
  test(`${profile}: DR[11:8], RSR/ECR and the error interrupts (TRM 3.3.1, 3.3.2, 3.3.12-14) for BREAK, framing, parity, overrun`, () => {
    const r = setUp({ profile, fen: true, rx: 0, tx: 0, fr: 0, ris: 0, why: '' });
    r.dev.write(Reg.ICR, 4, 0x7ff);
    assert.equal(r.lineEvent(LineError.BE, 0x00), true);
    // 3.3.12: BERIS is raised when the break is received, before the character is read.
    assert.equal(r.dev.read(Reg.RIS, 4) & 0x780, 0x200, 'BERIS');
    assert.equal(r.dev.read(Reg.MIS, 4) & 0x780, 0, 'masked (IMSC.BEIM = 0)');
    r.dev.write(Reg.IMSC, 4, 0x200);
    assert.equal(r.line(), true, 'BEIM unmasked: the line rises');
    assert.equal(r.dev.read(Reg.DR, 4), 0x400, '3.3.1: a break is one 0x00 character with BE');
    assert.equal(r.dev.read(Reg.RSR, 4), 0x4, '3.3.2: RSR.BE after reading DR');
    assert.equal(r.dev.read(Reg.RIS, 4) & 0x200, 0x200, 'error interrupts stay until ICR (not a level)');
    r.dev.write(Reg.ICR, 4, 0x200);
    assert.equal(r.dev.read(Reg.RIS, 4) & 0x200, 0, '3.3.14: ICR clears BEIS');
    assert.equal(r.line(), false);
    r.dev.write(Reg.RSR, 4, 0);
    assert.equal(r.dev.read(Reg.RSR, 4), 0, '3.3.2: any ECR write clears RSR');
    // Framing / parity / overrun, each with its own character, among plain ones, in order.
    r.fill('a');
    r.lineEvent(LineError.FE, 0x62);
    r.fill('c');
    r.lineEvent(LineError.PE, 0x64);
    r.lineEvent(LineError.OE, 0x65, false); // posted but not yet notified: the read must still carry it
    assert.equal(r.dev.read(Reg.RIS, 4) & 0x780, 0x180, 'FEIS | PEIS received');
    const got = [0, 1, 2, 3, 4].map(() => [r.dev.read(Reg.DR, 4), r.dev.read(Reg.RSR, 4)]);
    assert.deepEqual(got, [[0x61, 0], [0x162, 1], [0x63, 0], [0x264, 2], [0x865, 8]]);
    assert.equal(r.dev.read(Reg.RIS, 4) & 0x780, 0x580, 'OEIS too once seen');
    assert.equal(r.dev.read(Reg.DR, 1), 0, 'empty');
    assert.equal(r.dev.counters.rxErrors, 4);
    // A byte-wide DR read returns the data only (bits 7:0).
    r.lineEvent(LineError.FE, 0x66);
    assert.equal(r.dev.read(Reg.DR, 1), 0x66);
    assert.equal(r.dev.read(Reg.RSR, 4), 1, 'RSR still tells');
  });
}

test('line events: bounded queue (refusals counted), stale entries after a resync dropped and counted, a scribbled head resynchronised', () => {
  const r = deviceRig('pl011');
  let posted = 0;
  while (r.lineEvents.post(r.backend.inProd + posted, LineError.FE)) posted++;
  assert.equal(posted, 16, 'capacity');
  assert.equal(r.lineEvents.refused, 1, 'the refused post is counted');
  // Entries for positions the guest never reads (the ring was resynchronised past them): dropped on the next read.
  r.lineEvents.reset();
  r.lineEvents.post((r.backend.inProd - 5) >>> 0, LineError.PE);
  r.fill('z');
  assert.equal(r.dev.read(Reg.DR, 4), 0x7a, 'the stale entry does not attach to this byte');
  assert.equal(r.dev.counters.staleLineEvents, 1);
  // Someone scribbles the head far away: the consumer resynchronises instead of reading garbage.
  Atomics.store(r.lineWords, 0, 12345);
  assert.equal(r.lineEvents.pending(), 0);
  assert.equal(r.lineEvents.resyncs, 1);
});
