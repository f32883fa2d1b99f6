// A read-only NOR flash bank behind the MMIO bus (the qemu-virt layout's second bank, where U-Boot keeps its
// environment): reads return the file's bytes, erased flash (0xff) past them; writes are ignored and counted.
// We model no CFI command set (QEMU's pflash_cfi01 does): the guest DT describes no flash, so U-Boot's CFI driver
// probes none, and `saveenv` cannot program it. Bank 0, which the vCPU executes firmware from, is read-only RAM
// instead (a trapped region cannot be executed); see Machine.
import { MMIO_DONE, type AccessWidth, type MmioHandler, type MmioWriteResult } from '../xen/mmio.js';

export class FlashBank implements MmioHandler {
  /** Writes the bank ignored (a guest's program/erase commands), as a ROM ignores them; for tests and debugging. */
  ignoredWrites = 0;

  constructor(
    readonly size: number,
    private readonly contents: Uint8Array = new Uint8Array(0),
  ) {
    if (contents.length > size) throw new RangeError(`flash: ${contents.length} bytes do not fit a ${size}-byte bank`);
  }

  read(offset: number, width: AccessWidth): number {
    let v = 0;
    // Little-endian; an 8-byte read returns its low word (the bus's contract), so at most 4 bytes matter.
    for (let k = Math.min(width, 4) - 1; k >= 0; k--) {
      const at = offset + k;
      v = (v << 8) | (at < this.contents.length ? this.contents[at]! : 0xff);
    }
    return v >>> 0;
  }

  write(_offset: number, _width: AccessWidth, _value: number): MmioWriteResult {
    this.ignoredWrites++;
    return MMIO_DONE;
  }
}
