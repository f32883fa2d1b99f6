// The vGIC as the devices see it: Xen's vgic_reserve_virq / vgic_free_virq / vgic_inject_irq(d, NULL, irq, level).
// Implemented by the GICv2 model (src/xen/gicv2.ts). A device never holds it: it gets one IrqLine (its port,
// src/device/ports.ts) from spiLine().

import type { IrqLine } from '../device/ports.js';

export interface Vgic {
  /** Reserve an SPI (INTID 32..). Returns false if it is out of range or already reserved (nothing changes). */
  reserveSpi(intid: number): boolean;
  /** Free an SPI this caller reserved. Freeing one that is not reserved is a no-op. */
  freeSpi(intid: number): void;
  isReserved(intid: number): boolean;
  /** Drive a level-triggered line. Idempotent: setting the level it already has changes nothing. */
  setLevel(intid: number, level: boolean): void;
}

export type { IrqLine };

export function spiLine(vgic: Vgic, intid: number): IrqLine {
  return { set: (level) => vgic.setLevel(intid, level) };
}
