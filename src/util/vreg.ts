// Sub-word access to 32-bit registers: Xen's vreg_reg32_extract / vreg_reg32_update / vreg_reg32_clearbits
// (xen/arch/arm/include/asm/vreg.h, VREG_REG_HELPERS(32, 0x3)). `byteOffset` is the access address & 3 and
// `width` the access size in bytes (1, 2 or 4); the register's bytes [offset, offset+width) are the ones touched.
// Allocation-free and pure, so they are safe on the MMIO fast path.

/** The low `width` bytes as a mask: 1 -> 0xff, 2 -> 0xffff, 4 -> 0xffffffff. */
export function widthMask(width: number): number {
  return width >= 4 ? 0xffffffff : (1 << (width * 8)) - 1;
}

/** vreg_reg32_extract: the bytes an access of `width` at `byteOffset` reads from `reg`. */
export function vregReg32Extract(reg: number, byteOffset: number, width: number): number {
  return ((reg >>> ((byteOffset & 3) * 8)) & widthMask(width)) >>> 0;
}

/** vreg_reg32_update: `reg` with the accessed bytes replaced by `value`'s low bytes. */
export function vregReg32Update(reg: number, value: number, byteOffset: number, width: number): number {
  const shift = (byteOffset & 3) * 8;
  const mask = (widthMask(width) << shift) >>> 0;
  return ((reg & ~mask) | ((value << shift) & mask)) >>> 0;
}

/** vreg_reg32_clearbits: write-one-to-clear of the accessed bytes (used for ICR). */
export function vregReg32Clearbits(reg: number, value: number, byteOffset: number, width: number): number {
  const shift = (byteOffset & 3) * 8;
  const mask = (widthMask(width) << shift) >>> 0;
  return (reg & ~((value << shift) & mask)) >>> 0;
}
