// MMIO trap dispatch for one domain: Xen's register_mmio_handler / handle_mmio, with an access record of
// (offset, width, value). A handler refuses an access by returning MMIO_ABORT (reads) or false (writes);
// what a refused access does to the guest is the domain's policy (see Domain), not the bus's.

export type AccessWidth = 1 | 2 | 4 | 8;

/** A read handler returns this instead of a value to refuse the access (Xen: handler returns 0 -> IO_ABORT). */
export const MMIO_ABORT = -1;

export interface MmioHandler {
  /** Returns the value (an unsigned 32-bit number; 8-byte reads return the low word) or MMIO_ABORT. */
  read(offset: number, width: AccessWidth): number;
  /** Returns false to refuse the access. `value` holds the low 32 bits of the access. */
  write(offset: number, width: AccessWidth, value: number): boolean;
}

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
  read(addr: number, width: AccessWidth): number {
    const r = this.find(addr);
    return r ? r.handler.read(addr - r.base, width) : MMIO_ABORT;
  }

  write(addr: number, width: AccessWidth, value: number): boolean {
    const r = this.find(addr);
    return r ? r.handler.write(addr - r.base, width, value) : false;
  }
}
