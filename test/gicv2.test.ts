// GICv2 model (Arm IHI 0048B): acknowledge/EOI flow, level-triggered SPIs, PPIs, priority masking, bounded accesses.
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Gicv2, GIC_NR_IRQS } from '../src/xen/gicv2.js';
import { MMIO_DONE } from '../src/xen/mmio.js';

const D = (g: Gicv2) => g.distributor;
const C = (g: Gicv2) => g.cpuInterface;

/** Linux gic_dist_init / gic_cpu_init style bring-up: enable distributor and CPU interface, PMR 0xf0. */
function up(g: Gicv2, ...ids: number[]): void {
  D(g).write(0x000, 4, 1);
  C(g).write(0x000, 4, 1);
  C(g).write(0x004, 4, 0xf0);
  for (const id of ids) {
    D(g).write(0x100 + 4 * Math.floor(id / 32), 4, 1 << id % 32);
    D(g).write(0x400 + (id & ~3), 4, 0xa0a0a0a0);
  }
}

test('a level SPI is signalled, acknowledged (IAR), and re-pends after EOI while the line is still high (IHI 0048B 3.2.4)', () => {
  const g = new Gicv2();
  const outs: boolean[] = [];
  g.onChange = (l) => outs.push(l);
  up(g, 32);
  g.setLevel(32, true);
  assert.equal(g.irqOut, true);
  assert.equal(C(g).read(0x0c, 4), 32);
  assert.equal(g.irqOut, false, 'active: not signalled again');
  assert.equal(C(g).read(0x0c, 4), 1023, 'nothing else pending: spurious');
  C(g).write(0x10, 4, 32);
  assert.equal(g.irqOut, true, 'line still high: pending again after EOI');
  assert.equal(C(g).read(0x0c, 4), 32);
  g.setLevel(32, false);
  C(g).write(0x10, 4, 32);
  assert.equal(g.irqOut, false);
  assert.equal(g.isPending(32), false);
  assert.deepEqual(outs, [true, false, true, false]);
});

test('lowering a level line before acknowledge withdraws the interrupt (pending follows the line)', () => {
  const g = new Gicv2();
  up(g, 32);
  g.setLevel(32, true);
  g.setLevel(32, false);
  assert.equal(g.irqOut, false);
  assert.equal(C(g).read(0x0c, 4), 1023);
});

test('the timer PPI 27 is delivered; a disabled interrupt, a disabled distributor or PMR mask hold it back', () => {
  const g = new Gicv2();
  g.setLevel(27, true);
  assert.equal(g.irqOut, false, 'nothing enabled yet');
  up(g, 27);
  assert.equal(g.irqOut, true);
  C(g).write(0x004, 4, 0x80); // PMR below the priority 0xa0
  assert.equal(g.irqOut, false);
  C(g).write(0x004, 4, 0xf0);
  D(g).write(0x000, 4, 0);
  assert.equal(g.irqOut, false);
  D(g).write(0x000, 4, 1);
  assert.equal(C(g).read(0x0c, 4), 27);
});

test('a higher-priority interrupt preempts an active one; a lower one waits for EOI (running priority)', () => {
  const g = new Gicv2();
  up(g, 27, 32);
  D(g).write(0x400 + 32, 1, 0x80); // SPI 32 more urgent than PPI 27 (0xa0)
  g.setLevel(27, true);
  assert.equal(C(g).read(0x0c, 4), 27);
  g.setLevel(32, true);
  assert.equal(g.irqOut, true, '0x80 < running 0xa0: preempts');
  assert.equal(C(g).read(0x0c, 4), 32);
  assert.equal(C(g).read(0x14, 4), 0x80, 'RPR');
  C(g).write(0x10, 4, 32);
  g.setLevel(32, false);
  assert.equal(C(g).read(0x14, 4), 0xa0);
  C(g).write(0x10, 4, 27);
  assert.equal(C(g).read(0x14, 4), 0xff, 'idle');
});

test('ISENABLER/ICENABLER, ISPENDR/ICPENDR, ISACTIVER read back; SGIs are RAZ/WI for one CPU', () => {
  const g = new Gicv2();
  D(g).write(0x104, 4, 0x5);
  assert.equal(D(g).read(0x104, 4), 0x5);
  D(g).write(0x184, 4, 0x1);
  assert.equal(D(g).read(0x104, 4), 0x4);
  D(g).write(0x204, 4, 0x2);
  assert.equal(D(g).read(0x204, 4), 0x2);
  D(g).write(0x284, 4, 0x2);
  assert.equal(D(g).read(0x204, 4), 0);
  D(g).write(0x200, 4, 0xffff);
  assert.equal(D(g).read(0x200, 4) & 0xffff, 0, 'SGI pending: WI');
  assert.equal(D(g).read(0x004, 4), GIC_NR_IRQS / 32 - 1, 'TYPER.ITLinesNumber');
  assert.equal(D(g).read(0x800, 4), 0x01010101, 'targets: CPU 0');
});

test('reserveSpi/freeSpi implement the Vgic contract (vgic_reserve_virq)', () => {
  const g = new Gicv2();
  assert.equal(g.reserveSpi(32), true);
  assert.equal(g.reserveSpi(32), false);
  assert.equal(g.isReserved(32), true);
  assert.equal(g.reserveSpi(27), false, 'PPIs are not SPIs');
  assert.equal(g.reserveSpi(GIC_NR_IRQS), false);
  g.freeSpi(32);
  assert.equal(g.isReserved(32), false);
});

test('any offset/width/value from the guest is safe: no throw, reads are 32-bit unsigned (property)', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.boolean(), fc.boolean(), fc.integer({ min: 0, max: 0x1fff }), fc.constantFrom(1, 2, 4, 8), fc.integer()), { maxLength: 60 }),
      fc.array(fc.tuple(fc.integer({ min: -5, max: 100 }), fc.boolean()), { maxLength: 10 }),
      (ops, lines) => {
        const g = new Gicv2();
        for (const [id, l] of lines) g.setLevel(id, l);
        for (const [dist, write, off, w, v] of ops) {
          const h = dist ? g.distributor : g.cpuInterface;
          if (write) assert.equal(h.write(off, w as 1 | 2 | 4 | 8, v), MMIO_DONE);
          else {
            const r = h.read(off, w as 1 | 2 | 4 | 8);
            assert.ok(Number.isInteger(r) && r >= 0 && r <= 0xffffffff);
          }
        }
        // The output is consistent with what IAR would return.
        const out = g.irqOut;
        const iar = g.cpuInterface.read(0x0c, 4);
        assert.equal(out, iar !== 1023);
      },
    ),
  );
});
