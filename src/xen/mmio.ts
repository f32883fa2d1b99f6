// MMIO trap dispatch for one domain: Xen's register_mmio_handler / handle_mmio, with an access record of
// (offset, width, value). A handler refuses an access by returning MMIO_ABORT, in either direction (the handler
// interface is the device's port, src/device/ports.ts); what a refused access does to the guest is the domain's
// policy (see Domain), not the bus's.
import {
  MMIO_ABORT,
  MMIO_DONE,
  type AccessWidth,
  type MmioHandler,
  type MmioReadResult,
  type MmioWriteResult,
} from '../device/ports.js';

export { MMIO_ABORT, MMIO_DONE, type AccessWidth, type MmioHandler, type MmioReadResult, type MmioWriteResult };

export interface MmioRegion {
  readonly base: number;
  readonly size: number;
  readonly name: string;
  readonly handler: MmioHandler;
}

export class MmioBus {
  // Sorted by base; few regions per domain, so a linear scan is cheaper than anything cleverer.
  private regions: MmioRegion[] = [];

  register(base: number, size: number, handler: MmioHandler, name: string): MmioRegion {
    if (!Number.isSafeInteger(base) || !Number.isSafeInteger(size) || base < 0 || size <= 0) {
      throw new RangeError(`mmio: bad region ${name} base=${base} size=${size}`);
    }
    for (const r of this.regions) {
      // Half-open intervals: Xen's cmp_mmio_handler once matched base+size (b7ed331353); we do not.
      if (base < r.base + r.size && r.base < base + size) {
        throw new Error(`mmio: ${name} [0x${base.toString(16)}, +0x${size.toString(16)}) overlaps ${r.name}`);
      }
    }
    const region: MmioRegion = { base, size, handler, name };
    this.regions.push(region);
    this.regions.sort((a, b) => a.base - b.base);
    return region;
  }

  unregister(region: MmioRegion): void {
    this.regions = this.regions.filter((r) => r !== region);
  }

  find(addr: number): MmioRegion | undefined {
    for (const r of this.regions) if (addr >= r.base && addr < r.base + r.size) return r;
    return undefined;
  }

  list(): readonly MmioRegion[] {
    return this.regions;
  }

  /** Dispatch a read; an address no handler claims is refused like any other bad access. */
  read(addr: number, width: AccessWidth): MmioReadResult {
    const r = this.find(addr);
    return r ? r.handler.read(addr - r.base, width) : MMIO_ABORT;
  }

  write(addr: number, width: AccessWidth, value: number): MmioWriteResult {
    const r = this.find(addr);
    return r ? r.handler.write(addr - r.base, width, value) : MMIO_ABORT;
  }
}
