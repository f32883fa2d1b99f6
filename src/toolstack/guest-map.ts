// The guest memory map, as Xen's public header xen/include/public/arch-arm.h lays it out for guests.
// The hypervisor core keeps its own copy in src/xen/arch-arm.ts (device-core helper); once that lands the
// toolstack should import from there and this file should re-export it, so there is one source of truth.

/** GUEST_RAM0_BASE: guest RAM starts at 1 GiB. */
export const GUEST_RAM_BASE = 0x4000_0000;
/** GUEST_PL011_BASE / GUEST_PL011_SIZE: the vpl011 MMIO window. */
export const GUEST_PL011_BASE = 0x2200_0000;
export const GUEST_PL011_SIZE = 0x1000;
/** GUEST_VPL011_SPI: INTID 32, i.e. SPI number 0 in a DT interrupt specifier. */
export const GUEST_VPL011_SPI = 32;
/** GUEST_GICD_BASE / GUEST_GICC_BASE and sizes (GICv2). */
export const GUEST_GICD_BASE = 0x0300_1000;
export const GUEST_GICD_SIZE = 0x1000;
export const GUEST_GICC_BASE = 0x0300_2000;
export const GUEST_GICC_SIZE = 0x2000;
/** GUEST_MAGIC_BASE: 4 magic pages (console, xenstore, memaccess, vuart at +3: VUART_PFN_OFFSET). */
export const GUEST_MAGIC_BASE = 0x3900_0000;
export const GUEST_MAGIC_PAGES = 4;
/** GUEST_TIMER_*_PPI as INTIDs: secure phys 29, non-secure phys 30, virt 27, hyp 26. */
export const GUEST_TIMER_PHYS_S_PPI = 29;
export const GUEST_TIMER_PHYS_NS_PPI = 30;
export const GUEST_TIMER_VIRT_PPI = 27;
export const GUEST_TIMER_HYP_PPI = 26;
