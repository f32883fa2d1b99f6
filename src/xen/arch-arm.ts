// The guest physical memory map and fixed interrupt numbers from Xen's public header
// xen/include/public/arch-arm.h, in one place so the toolstack, the hypervisor core and the device agree.

/** Xen's page size: XEN_PAGE_SHIFT = 12. A GFN is a guest address >> 12. */
export const XEN_PAGE_SHIFT = 12;
export const XEN_PAGE_SIZE = 1 << XEN_PAGE_SHIFT;

/** The vPL011 (SBSA UART) MMIO window: GUEST_PL011_BASE / GUEST_PL011_SIZE. */
export const GUEST_PL011_BASE = 0x22000000;
export const GUEST_PL011_SIZE = 0x1000;

/** The vPL011 interrupt: GUEST_VPL011_SPI, INTID 32 (SPI 0), level-high in the guest DT. */
export const GUEST_VPL011_SPI = 32;

/** GICv2 distributor and CPU interface (GUEST_GICD_BASE / GUEST_GICC_BASE). */
export const GUEST_GICD_BASE = 0x03001000;
export const GUEST_GICD_SIZE = 0x1000;
export const GUEST_GICC_BASE = 0x03002000;
export const GUEST_GICC_SIZE = 0x2000;

/** PPIs Xen gives every guest: GUEST_TIMER_*_PPI and GUEST_EVTCHN_PPI. */
export const GUEST_TIMER_VIRT_PPI = 27;
export const GUEST_TIMER_PHYS_S_PPI = 29;
export const GUEST_TIMER_PHYS_NS_PPI = 30;
export const GUEST_EVTCHN_PPI = 31;

/** Magic pages (console, xenstore, memaccess, vuart): GUEST_MAGIC_BASE / GUEST_MAGIC_SIZE, NR_MAGIC_PAGES. */
export const GUEST_MAGIC_BASE = 0x39000000;
export const GUEST_MAGIC_SIZE = 0x01000000;
export const NR_MAGIC_PAGES = 4;
/** Page offsets inside the magic area (libxc xg_dom_arm.c alloc_magic_pages). */
export const CONSOLE_PFN_OFFSET = 0;
export const XENSTORE_PFN_OFFSET = 1;
export const MEMACCESS_PFN_OFFSET = 2;
export const VUART_PFN_OFFSET = 3;
/** GFN of the vuart ring page: 0x39003. */
export const GUEST_VUART_GFN = (GUEST_MAGIC_BASE >>> XEN_PAGE_SHIFT) + VUART_PFN_OFFSET;

/** The first RAM bank: GUEST_RAM0_BASE / GUEST_RAM0_SIZE (3 GiB). */
export const GUEST_RAM0_BASE = 0x40000000;
export const GUEST_RAM0_SIZE = 0xc0000000;
