// `vpl011 stat --why-irq` at the device level: every driven source (RX, RT, TX) in each of its four states
// (asserted; latched but masked; holding but cleared by ICR; not holding), the never-raised error and modem sources
// per profile, the line sentence, and the GIC sentence for each reason an SPI is or is not signalled. The sentences
// are checked against the device's own registers (MIS, RIS) and line, so a sentence that disagreed with the device
// fails here.
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { deviceRig } from './lib/device-rig.js';
import { INT, Reg } from '../src/device/spec.js';
import { whyIrq } from '../src/device/why-irq.js';
import { Gicv2 } from '../src/xen/gicv2.js';
import { XENCONS_OUT_SIZE } from '../src/xen/ring.js';
import { Vpl011 } from '../src/device/vpl011.js';
import { createXenConsoleRegion, XenConsoleFrontend } from '../src/xen/xen-console.js';

function line(lines: string[], source: string): string {
  const l = lines.find((s) => s.startsWith(`${source}: `));
  assert.ok(l, `no sentence for ${source} in ${JSON.stringify(lines)}`);
  return l;
}

test('why-irq RX: masked although bytes wait, asserted, cleared by ICR, below the level (sbsa: 1008)', () => {
  const r = deviceRig('sbsa');
  r.fill(new Uint8Array(1010));
  let w = whyIrq(r.dev.irqView());
  assert.equal(line(w, 'RX'), 'RX: masked (IMSC.RXIM=0) although 1,010 bytes wait in IN ≥ 1,008 (the RX trigger level); RIS.RXRIS=1, MIS.RXMIS=0');
  assert.equal(r.dev.read(Reg.MIS, 4) & INT.RX, 0);
  r.dev.write(Reg.IMSC, 4, INT.RX);
  w = whyIrq(r.dev.irqView());
  assert.equal(line(w, 'RX'), 'RX: 1,010 bytes wait in IN ≥ 1,008 (the RX trigger level) and IMSC.RXIM=1 → RXI asserted (MIS.RXMIS=1)');
  assert.equal(r.line(), true);
  assert.match(line(w, 'line'), /^line: high: MIS=0x010/);
  r.dev.write(Reg.ICR, 4, INT.RX);
  w = whyIrq(r.dev.irqView());
  assert.match(line(w, 'RX'), /^RX: low although 1,010 bytes wait in IN ≥ 1,008 .*not latched \(cleared by an ICR write.*latches on the next data event/);
  assert.equal(r.line(), false);
  assert.match(line(w, 'line'), /^line: low: MIS=0/);
  for (let i = 0; i < 3; i++) r.dev.read(Reg.DR, 4);
  w = whyIrq(r.dev.irqView());
  assert.equal(line(w, 'RX'), 'RX: low: 1,007 bytes in IN < 1,008 (the RX trigger level) (IMSC.RXIM=1)');
  assert.equal(r.dev.read(Reg.RIS, 4) & INT.RX, 0);
});

test('why-irq RT: data present asserted, masked, ICR-cleared, empty', () => {
  const r = deviceRig('sbsa');
  w0: {
    const w = whyIrq(r.dev.irqView());
    assert.equal(line(w, 'RT'), 'RT: low: IN is empty; masked too (IMSC.RTIM=0)');
    break w0;
  }
  r.fill('hello world!');
  assert.equal(line(whyIrq(r.dev.irqView()), 'RT'), 'RT: masked (IMSC.RTIM=0) although 12 bytes wait in IN (RT = data present: there is no time to time out); RIS.RTRIS=1, MIS.RTMIS=0');
  r.dev.write(Reg.IMSC, 4, INT.RT);
  assert.match(line(whyIrq(r.dev.irqView()), 'RT'), /^RT: 12 bytes wait in IN .* and IMSC.RTIM=1 → RTI asserted/);
  r.dev.write(Reg.ICR, 4, INT.RT);
  assert.match(line(whyIrq(r.dev.irqView()), 'RT'), /^RT: low although 12 bytes wait in IN/);
  for (let i = 0; i < 12; i++) r.dev.read(Reg.DR, 4);
  assert.equal(line(whyIrq(r.dev.irqView()), 'RT'), 'RT: low: IN is empty (IMSC.RTIM=1)');
});

test('why-irq TX: free space against the level (sbsa 16), masked, ICR-cleared, too full', () => {
  const r = deviceRig('sbsa');
  assert.match(line(whyIrq(r.dev.irqView()), 'TX'), /^TX: low although 2,048 bytes free in OUT ≥ 16 .*no data event since reset.*; masked anyway \(IMSC.TXIM=0\)$/);
  r.dev.write(Reg.IMSC, 4, INT.RX); // a data event: TX latches, still masked
  assert.equal(line(whyIrq(r.dev.irqView()), 'TX'), 'TX: masked (IMSC.TXIM=0) although 2,048 bytes free in OUT ≥ 16 (the TX trigger level); RIS.TXRIS=1, MIS.TXMIS=0');
  assert.equal(r.dev.read(Reg.RIS, 4) & INT.TX, INT.TX);
  r.dev.write(Reg.IMSC, 4, INT.TX);
  for (let i = 0; i < 100; i++) r.dev.write(Reg.DR, 4, 0x41);
  assert.equal(line(whyIrq(r.dev.irqView()), 'TX'), 'TX: 1,948 bytes free in OUT ≥ 16 (the TX trigger level) and IMSC.TXIM=1 → TXI asserted (MIS.TXMIS=1)');
  r.dev.write(Reg.ICR, 4, INT.TX);
  assert.match(line(whyIrq(r.dev.irqView()), 'TX'), /^TX: low although 1,948 bytes free/);
  for (let i = 100; i < XENCONS_OUT_SIZE - 10; i++) r.dev.write(Reg.DR, 4, 0x41);
  assert.equal(line(whyIrq(r.dev.irqView()), 'TX'), 'TX: low: only 10 bytes free in OUT < 16 (the TX trigger level; the backend has not drained it) (IMSC.TXIM=1)');
  assert.equal(r.dev.read(Reg.RIS, 4) & INT.TX, 0);
  r.drainBytes();
  assert.match(line(whyIrq(r.dev.irqView()), 'TX'), /TXI asserted/, 'the backend drained and notified: re-latched');
});

test('why-irq pl011: the levels follow IFLS and FEN; RXE=0 hides IN; modem sources listed', () => {
  const r = deviceRig('pl011');
  r.dev.write(Reg.LCR_H, 4, 0x70); // FEN, 8 bits
  r.dev.write(Reg.IFLS, 4, 0x12); // 1/2 both ways: 16 bytes
  r.fill('0123456789');
  let w = whyIrq(r.dev.irqView());
  assert.equal(line(w, 'RX'), 'RX: low: 10 bytes in IN < 16 (the RX trigger level); masked too (IMSC.RXIM=0)');
  assert.match(line(w, 'TX'), /2,048 bytes free in OUT ≥ 16 \(the TX trigger level\)/);
  for (const s of ['FE', 'PE', 'BE', 'OE', 'RI', 'CTS', 'DCD', 'DSR']) assert.match(line(w, s), /never raised/);
  r.dev.write(Reg.LCR_H, 4, 0x60); // character mode: one byte
  assert.match(line(whyIrq(r.dev.irqView()), 'RX'), /10 bytes wait in IN ≥ 1 /);
  r.dev.write(Reg.CR, 4, 0x101); // UARTEN|TXE, RXE off
  w = whyIrq(r.dev.irqView());
  assert.match(line(w, 'RX'), /receiver is off: CR.RXE=0, so the 10 bytes in IN are not seen/);
  assert.match(line(w, 'RT'), /^RT: low: nothing is visible/);
  // sbsa has no modem sources.
  const s = whyIrq(deviceRig('sbsa').dev.irqView());
  assert.ok(!s.some((l) => l.startsWith('RI:') || l.startsWith('CTS:')));
  assert.ok(s.some((l) => l.startsWith('OE:')));
});

test('why-irq GIC sentence: each reason an SPI is not signalled, and signalled', () => {
  const g = new Gicv2();
  const say = () => whyIrq(deviceRig('sbsa').dev.irqView(), g.spiView(32)).at(-1)!;
  assert.match(say(), /^GIC: SPI 32 line low, not pending.* → nothing to signal$/);
  g.setLevel(32, true);
  assert.match(say(), /→ not signalled: the guest has not enabled it/);
  g.distributor.write(0x104, 4, 1); // ISENABLER1: SPI 32
  assert.match(say(), /→ not signalled: the distributor is off/);
  g.distributor.write(0x000, 4, 1);
  assert.match(say(), /→ not signalled: the CPU interface is off/);
  g.cpuInterface.write(0x00, 4, 1);
  assert.match(say(), /→ not signalled: priority 0x00 is not above the mask GICC_PMR=0x00/);
  g.cpuInterface.write(0x04, 4, 0xf0);
  assert.match(say(), /^GIC: SPI 32 line high, pending, not active, enabled, priority 0x00 → signalled to the vCPU \(IRQ\)$/);
  assert.equal(g.irqOut, true);
  assert.equal(g.acknowledge(), 32);
  assert.match(say(), /→ not signalled: already active/);
});

test('why-irq with the backend in Xen (dom0less): its buffer sizes, and TX re-latches only on a DR write', () => {
  const dev = new Vpl011({ ring: new XenConsoleFrontend(createXenConsoleRegion(), 1), irq: { set() {} }, notify() {} });
  dev.write(Reg.IMSC, 4, INT.TX);
  dev.write(Reg.DR, 4, 0x41);
  const v = dev.irqView();
  assert.equal(v.outSize, 128);
  assert.equal(v.inSize, 32);
  assert.match(line(whyIrq(v), 'TX'), /TXI asserted/);
  dev.write(Reg.ICR, 4, INT.TX);
  dev.write(Reg.IMSC, 4, INT.TX); // an IMSC write is a data event, but not for TXI with this backend
  assert.equal(dev.read(Reg.RIS, 4) & INT.TX, 0);
  assert.match(line(whyIrq(dev.irqView()), 'TX'), /^TX: low although .*latches on the next DR write \(the backend is Xen: only a DR write sets TXI\)/);
  dev.write(Reg.DR, 4, 0x42);
  assert.match(line(whyIrq(dev.irqView()), 'TX'), /TXI asserted/);
  assert.match(line(whyIrq(dev.irqView()), 'RX'), /< 16 \(the RX trigger level\)/, 'RX against Xen\'s 32-byte IN: 32 - 16');
});
