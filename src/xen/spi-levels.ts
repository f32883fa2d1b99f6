// A small, real Vgic for where no CPU is attached (the replay tool, unit tests): it tracks SPI reservations and
// line levels exactly as the interface promises, and counts rising edges so a test can see a duplicate or lost
// assertion. The GICv2 model (src/xen/gicv2.ts) is the one a running guest uses.

import type { Vgic } from './vgic.js';

export const SPI_BASE = 32;

export class SpiLevels implements Vgic {
  private readonly reserved: Uint8Array;
  private readonly levels: Uint8Array;
  private readonly rises: Uint32Array;

  /** `nrSpis` SPIs: INTIDs 32 .. 32+nrSpis-1 (Xen's d->arch.vgic.nr_spis). */
  constructor(readonly nrSpis = 32) {
    if (!Number.isInteger(nrSpis) || nrSpis < 1 || nrSpis > 988) throw new RangeError(`vgic: bad SPI count ${nrSpis}`);
    this.reserved = new Uint8Array(nrSpis);
    this.levels = new Uint8Array(nrSpis);
    this.rises = new Uint32Array(nrSpis);
  }

  private index(intid: number): number {
    const i = intid - SPI_BASE;
    return Number.isInteger(intid) && i >= 0 && i < this.nrSpis ? i : -1;
  }

  reserveSpi(intid: number): boolean {
    const i = this.index(intid);
    if (i < 0 || this.reserved[i]) return false;
    this.reserved[i] = 1;
    return true;
  }

  freeSpi(intid: number): void {
    const i = this.index(intid);
    if (i < 0) return;
    this.reserved[i] = 0;
    this.levels[i] = 0;
  }

  isReserved(intid: number): boolean {
    const i = this.index(intid);
    return i >= 0 && this.reserved[i] === 1;
  }

  setLevel(intid: number, level: boolean): void {
    const i = this.index(intid);
    if (i < 0) throw new RangeError(`vgic: INTID ${String(intid)} is not an SPI of this domain`);
    const v = level ? 1 : 0;
    if (v === 1 && this.levels[i] === 0) this.rises[i]!++;
    this.levels[i] = v;
  }

  /** The line's current level. */
  level(intid: number): boolean {
    const i = this.index(intid);
    return i >= 0 && this.levels[i] === 1;
  }

  /** How many times the line went 0 -> 1. */
  risingEdges(intid: number): number {
    const i = this.index(intid);
    return i >= 0 ? this.rises[i]! : 0;
  }
}
