// The guest-physical ranges nothing is mapped at: the VMM maps them as MMIO that refuses every access, so that a
// guest access there goes to the domain's mmio_policy (Xen: a data abort injected, or the domain crashed) instead
// of unicorn ending the run with UC_ERR_*_UNMAPPED. Xen's guest physical map ends at 2^40
// (GUEST_RAM1_BASE + GUEST_RAM1_SIZE, public/arch-arm.h); the Cortex-A72's PARange is 44 bits.

export interface PhysRange {
  base: number;
  size: number;
}

/** The guest physical address space the holes cover: the A72's 44-bit PARange. */
export const GUEST_PA_LIMIT = 2 ** 44;

/** Everything in [0, limit) that no range covers, in address order. Ranges must be page-aligned (4 KiB). */
export function addressHoles(mapped: readonly PhysRange[], limit = GUEST_PA_LIMIT): PhysRange[] {
  const sorted = [...mapped].filter((r) => r.size > 0).sort((a, b) => a.base - b.base);
  const holes: PhysRange[] = [];
  let at = 0;
  for (const r of sorted) {
    if (r.base % 4096 !== 0 || r.size % 4096 !== 0) throw new Error(`address holes: 0x${r.base.toString(16)}+0x${r.size.toString(16)} is not page-aligned`);
    if (r.base > at) holes.push({ base: at, size: Math.min(r.base, limit) - at });
    at = Math.max(at, r.base + r.size);
    if (at >= limit) break;
  }
  if (at < limit) holes.push({ base: at, size: limit - at });
  return holes.filter((h) => h.size > 0);
}
