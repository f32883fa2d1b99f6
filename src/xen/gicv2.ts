// GICv2 distributor + CPU interface for one vCPU (Arm IHI 0048B), implementing Vgic for the devices.
// Level-triggered SPIs follow their line: pending = latch | line (a level line re-pends after EOI while still high,
// IHI 0048B 3.2.4). PPIs 16..31 carry the timer (27). SGIs are RAZ/WI (one CPU). Every offset/width/value from the
// guest is bounded: unknown offsets read as zero and ignore writes.
import { MMIO_DONE, type AccessWidth, type MmioHandler, type MmioWriteResult } from './mmio.js';
import type { Vgic } from './vgic.js';
import type { SpiView } from '../device/why-irq.js';

export const GIC_NR_IRQS = 64; // 32 private + 32 SPIs: ITLinesNumber = 1
const SPURIOUS = 1023;
const IDLE_PRIO = 0x100;

/** Gicv2.snapshot(): registers, and one entry per interrupt for each per-interrupt array. */
export interface GicState {
  dctlr: number;
  cctlr: number;
  pmr: number;
  bpr: number;
  enabled: number[];
  latch: number[];
  line: number[];
  active: number[];
  prio: number[];
  edge: number[];
  activeStack: number[];
}

export class Gicv2 implements Vgic {
  private dctlr = 0;
  private cctlr = 0;
  private pmr = 0;
  private bpr = 0;
  private readonly enabled = new Uint8Array(GIC_NR_IRQS);
  private readonly latch = new Uint8Array(GIC_NR_IRQS); // software/edge pending
  private readonly line = new Uint8Array(GIC_NR_IRQS);
  private readonly active = new Uint8Array(GIC_NR_IRQS);
  private readonly prio = new Uint8Array(GIC_NR_IRQS);
  private readonly edge = new Uint8Array(GIC_NR_IRQS);
  private readonly reserved = new Uint8Array(GIC_NR_IRQS);
  private readonly activeStack: number[] = [];
  /** The CPU's IRQ input; recomputed on every change. The VMM raises the vCPU line only at safe points. */
  irqOut = false;
  onChange: (level: boolean) => void = () => {};

  reserveSpi(intid: number): boolean {
    if (!Number.isInteger(intid) || intid < 32 || intid >= GIC_NR_IRQS || this.reserved[intid]) return false;
    this.reserved[intid] = 1;
    return true;
  }
  freeSpi(intid: number): void {
    if (Number.isInteger(intid) && intid >= 32 && intid < GIC_NR_IRQS) this.reserved[intid] = 0;
  }
  isReserved(intid: number): boolean {
    return Number.isInteger(intid) && intid >= 32 && intid < GIC_NR_IRQS && this.reserved[intid] === 1;
  }
  /** Drive a line (SPI or PPI). Edge-configured lines latch on a rising edge. */
  setLevel(intid: number, level: boolean): void {
    if (!Number.isInteger(intid) || intid < 16 || intid >= GIC_NR_IRQS) return;
    const v = level ? 1 : 0;
    if (this.line[intid] === v) return;
    if (v && this.edge[intid]) this.latch[intid] = 1;
    this.line[intid] = v;
    this.update();
  }

  private pending(i: number): boolean {
    return this.latch[i] === 1 || (this.line[i] === 1 && !this.edge[i]);
  }
  private runningPrio(): number {
    const n = this.activeStack.length;
    return n ? this.prio[this.activeStack[n - 1]!]! : IDLE_PRIO;
  }
  /** Highest-priority pending, enabled, inactive interrupt (lowest INTID wins ties). */
  private best(): { id: number; prio: number } {
    let id = SPURIOUS;
    let bp = IDLE_PRIO;
    for (let i = 0; i < GIC_NR_IRQS; i++) {
      if (this.enabled[i] && !this.active[i] && this.pending(i) && this.prio[i]! < bp) {
        id = i;
        bp = this.prio[i]!;
      }
    }
    return { id, prio: bp };
  }
  private signalled(): { id: number; prio: number } | null {
    if (!(this.dctlr & 1) || !(this.cctlr & 1)) return null;
    const b = this.best();
    if (b.id === SPURIOUS || b.prio >= this.pmr || b.prio >= this.runningPrio()) return null;
    return b;
  }
  private update(): void {
    const out = this.signalled() !== null;
    if (out !== this.irqOut) {
      this.irqOut = out;
      this.onChange(out);
    }
  }

  private bits(arr: Uint8Array, first: number, pred?: (i: number) => boolean): number {
    let v = 0;
    for (let k = 0; k < 32; k++) {
      const i = first + k;
      if (i < GIC_NR_IRQS && (pred ? pred(i) : arr[i])) v |= 1 << k;
    }
    return v >>> 0;
  }
  private setBits(arr: Uint8Array, first: number, v: number, to: 0 | 1, minId = 0): void {
    for (let k = 0; k < 32; k++) {
      const i = first + k;
      if (i >= minId && i < GIC_NR_IRQS && v & (1 << k)) arr[i] = to;
    }
  }

  /** GICD_* (IHI 0048B 4.3). Byte accesses are allowed to the priority/target registers; the rest is 32-bit. */
  readonly distributor: MmioHandler = {
    read: (off: number, width: AccessWidth): number => {
      if (width === 1 && off >= 0x400 && off < 0x400 + GIC_NR_IRQS) return this.prio[off - 0x400]!;
      if (width === 1 && off >= 0x800 && off < 0x800 + GIC_NR_IRQS) return 1;
      const o = off & ~3;
      if (o === 0x000) return this.dctlr;
      if (o === 0x004) return GIC_NR_IRQS / 32 - 1; // ITLinesNumber, CPUNumber 0
      if (o === 0x008) return 0x0200043b; // IIDR: Arm implementation
      const first = (o & 0x7f) * 8;
      if (o >= 0x100 && o < 0x200) return this.bits(this.enabled, first);
      if (o >= 0x200 && o < 0x300) return this.bits(this.latch, first, (i) => this.pending(i));
      if (o >= 0x300 && o < 0x400) return this.bits(this.active, first);
      if (o >= 0x400 && o < 0x400 + GIC_NR_IRQS) {
        const b = o - 0x400;
        return (this.prio[b]! | (this.prio[b + 1]! << 8) | (this.prio[b + 2]! << 16) | (this.prio[b + 3]! << 24)) >>> 0;
      }
      if (o >= 0x800 && o < 0x800 + GIC_NR_IRQS) return 0x01010101; // one CPU: every target is CPU 0
      if (o >= 0xc00 && o < 0xc00 + GIC_NR_IRQS / 4) {
        let v = 0;
        const f = (o - 0xc00) * 4;
        for (let k = 0; k < 16; k++) if (this.edge[f + k]) v |= 2 << (2 * k);
        return v >>> 0;
      }
      if (o === 0xfe8) return 0x20; // ICPIDR2: GICv2
      return 0;
    },
    write: (off: number, width: AccessWidth, value: number): MmioWriteResult => {
      const v = value >>> 0;
      if (width === 1) {
        if (off >= 0x400 && off < 0x400 + GIC_NR_IRQS) this.prio[off - 0x400] = v & 0xf8; // 5 priority bits
        this.update();
        return MMIO_DONE;
      }
      const o = off & ~3;
      const first = (o & 0x7f) * 8;
      if (o === 0x000) this.dctlr = v & 1;
      else if (o >= 0x100 && o < 0x180) this.setBits(this.enabled, first, v, 1);
      else if (o >= 0x180 && o < 0x200) this.setBits(this.enabled, first, v, 0);
      else if (o >= 0x200 && o < 0x280) this.setBits(this.latch, first, v, 1, 16); // SGIs: RAZ/WI
      else if (o >= 0x280 && o < 0x300) this.setBits(this.latch, first, v, 0); // a high level line stays pending
      else if (o >= 0x300 && o < 0x380) this.setBits(this.active, first, v, 1, 16);
      else if (o >= 0x380 && o < 0x400) this.setBits(this.active, first, v, 0);
      else if (o >= 0x400 && o < 0x400 + GIC_NR_IRQS) {
        for (let k = 0; k < 4; k++) this.prio[o - 0x400 + k] = (v >>> (8 * k)) & 0xf8;
      } else if (o >= 0xc00 && o < 0xc00 + GIC_NR_IRQS / 4) {
        const f = (o - 0xc00) * 4;
        for (let k = 0; k < 16; k++) if (f + k >= 32) this.edge[f + k] = (v >>> (2 * k + 1)) & 1; // SGI/PPI config fixed
      }
      this.update();
      return MMIO_DONE;
    },
  };

  /** GICC_* (IHI 0048B 4.4). */
  readonly cpuInterface: MmioHandler = {
    read: (off: number, _w: AccessWidth): number => {
      switch (off & ~3) {
        case 0x00: return this.cctlr;
        case 0x04: return this.pmr;
        case 0x08: return this.bpr;
        case 0x0c: return this.acknowledge();
        case 0x14: return this.runningPrio() === IDLE_PRIO ? 0xff : this.runningPrio();
        case 0x18: { const b = this.best(); return b.id; }
        case 0xfc: return 0x0202043b; // GICC_IIDR: GICv2
        default: return 0;
      }
    },
    write: (off: number, _w: AccessWidth, value: number): MmioWriteResult => {
      const v = value >>> 0;
      switch (off & ~3) {
        case 0x00: this.cctlr = v & 1; break;
        case 0x04: this.pmr = v & 0xf8; break;
        case 0x08: this.bpr = v & 7; break;
        case 0x10: this.eoi(v & 0x3ff); break; // EOIR (EOImode 0: priority drop + deactivate)
        case 0x1000: this.deactivate(v & 0x3ff); break; // DIR
        default: break;
      }
      this.update();
      return MMIO_DONE;
    },
  };

  /** GICC_IAR: the highest pending interrupt becomes active; a level line's pending follows the line. */
  acknowledge(): number {
    const b = this.signalled();
    if (!b) return SPURIOUS;
    this.active[b.id] = 1;
    this.latch[b.id] = 0;
    this.activeStack.push(b.id);
    this.update();
    return b.id;
  }
  private eoi(id: number): void {
    if (id >= GIC_NR_IRQS) return;
    const k = this.activeStack.lastIndexOf(id);
    if (k >= 0) this.activeStack.splice(k, 1);
    this.active[id] = 0;
  }
  private deactivate(id: number): void {
    if (id < GIC_NR_IRQS) this.active[id] = 0;
  }
  /** One interrupt's state and whether it is what the CPU interface signals now (`vpl011 stat`, why-irq.ts). */
  spiView(intid: number): SpiView {
    const i = Number.isInteger(intid) && intid >= 0 && intid < GIC_NR_IRQS ? intid : 0;
    const sig = this.signalled();
    return {
      intid,
      line: this.line[i] === 1,
      enabled: this.enabled[i] === 1,
      pending: this.pending(i),
      active: this.active[i] === 1,
      priority: this.prio[i]!,
      distributorOn: (this.dctlr & 1) !== 0,
      cpuInterfaceOn: (this.cctlr & 1) !== 0,
      pmr: this.pmr,
      runningPriority: this.runningPrio(),
      signalled: sig !== null && sig.id === i,
    };
  }
  /** The guest-visible state, for save/restore (SPI reservations are the toolstack's and are rebuilt, not saved). */
  snapshot(): GicState {
    return {
      dctlr: this.dctlr, cctlr: this.cctlr, pmr: this.pmr, bpr: this.bpr,
      enabled: [...this.enabled], latch: [...this.latch], line: [...this.line], active: [...this.active],
      prio: [...this.prio], edge: [...this.edge], activeStack: [...this.activeStack],
    };
  }

  /** Why a saved GIC state cannot be loaded (one line), or null: every field within what the guest could set. */
  static stateProblem(v: unknown): string | null {
    if (typeof v !== 'object' || v === null) return 'GIC state is not an object';
    const s = v as Record<string, unknown>;
    const masks: Record<string, number> = { dctlr: 1, cctlr: 1, pmr: 0xf8, bpr: 7 };
    for (const [k, m] of Object.entries(masks)) {
      const x = s[k];
      if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || (x & ~m) !== 0) return `GIC ${k} is out of range`;
    }
    const arrays: Record<string, number> = { enabled: 1, latch: 1, line: 1, active: 1, prio: 0xf8, edge: 1 };
    for (const [k, m] of Object.entries(arrays)) {
      const a = s[k];
      if (!Array.isArray(a) || a.length !== GIC_NR_IRQS) return `GIC ${k} is not ${GIC_NR_IRQS} entries`;
      if (!a.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0 && (x & ~m) === 0)) return `GIC ${k} has an entry out of range`;
    }
    const st = s.activeStack;
    if (!Array.isArray(st) || st.length > GIC_NR_IRQS) return 'GIC active stack is not a list of interrupts';
    const seen = new Set<number>();
    for (const id of st) {
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= GIC_NR_IRQS || seen.has(id)) return 'GIC active stack has a bad entry';
      seen.add(id);
    }
    return null;
  }

  /** Load a state checked by stateProblem (throws otherwise) and recompute the output. */
  load(v: unknown): void {
    const problem = Gicv2.stateProblem(v);
    if (problem !== null) throw new Error(problem);
    const s = v as GicState;
    this.dctlr = s.dctlr; this.cctlr = s.cctlr; this.pmr = s.pmr; this.bpr = s.bpr;
    this.enabled.set(s.enabled); this.latch.set(s.latch); this.line.set(s.line); this.active.set(s.active);
    this.prio.set(s.prio); this.edge.set(s.edge);
    this.activeStack.splice(0, this.activeStack.length, ...s.activeStack);
    this.update();
  }

  /** For tests and stats. */
  isPending(id: number): boolean {
    return id >= 0 && id < GIC_NR_IRQS && this.pending(id);
  }
  isActive(id: number): boolean {
    return id >= 0 && id < GIC_NR_IRQS && this.active[id] === 1;
  }
}
