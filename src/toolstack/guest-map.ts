// The guest memory map the toolstack lays guests out in: Xen's public arch-arm.h, whose one copy lives in
// src/xen/arch-arm.ts (the hypervisor core uses the same numbers).
export {
  GUEST_GICC_BASE, GUEST_GICC_SIZE, GUEST_GICD_BASE, GUEST_GICD_SIZE, GUEST_MAGIC_BASE, GUEST_PL011_BASE,
  GUEST_PL011_SIZE, GUEST_RAM0_BASE, GUEST_RAM0_SIZE, GUEST_TIMER_PHYS_NS_PPI, GUEST_TIMER_PHYS_S_PPI,
  GUEST_TIMER_VIRT_PPI, GUEST_VPL011_SPI, NR_MAGIC_PAGES,
} from '../xen/arch-arm.js';
import { GUEST_RAM0_BASE } from '../xen/arch-arm.js';

/** Guest RAM is one bank at GUEST_RAM0_BASE (1 GiB); we never use Xen's second bank (RAM1 at 8 GiB). */
export const GUEST_RAM_BASE = GUEST_RAM0_BASE;
