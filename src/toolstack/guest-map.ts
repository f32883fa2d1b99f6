// The guest memory maps (layouts) the toolstack lays guests out in, in one module: nothing else hard-codes a
// guest address. Two layouts (docs/LAYOUTS.md):
//  - "xen" (the default): Xen's public arch-arm.h, whose one copy lives in src/xen/arch-arm.ts (the hypervisor core
//    uses the same numbers);
//  - "qemu-virt": where QEMU 7.2's arm64 `virt` board puts RAM, flash, its PL011 and the GICv2 (hw/arm/virt.c
//    base_memmap / a15irqmap), for firmware built for that board (Debian's u-boot-qemu).
export {
  GUEST_GICC_BASE, GUEST_GICC_SIZE, GUEST_GICD_BASE, GUEST_GICD_SIZE, GUEST_MAGIC_BASE, GUEST_PL011_BASE,
  GUEST_PL011_SIZE, GUEST_RAM0_BASE, GUEST_RAM0_SIZE, GUEST_TIMER_PHYS_NS_PPI, GUEST_TIMER_PHYS_S_PPI,
  GUEST_TIMER_VIRT_PPI, GUEST_VPL011_SPI, NR_MAGIC_PAGES,
} from '../xen/arch-arm.js';
import {
  GUEST_GICC_BASE, GUEST_GICC_SIZE, GUEST_GICD_BASE, GUEST_GICD_SIZE, GUEST_PL011_BASE, GUEST_PL011_SIZE,
  GUEST_RAM0_BASE, GUEST_RAM0_SIZE, GUEST_TIMER_PHYS_NS_PPI, GUEST_TIMER_PHYS_S_PPI, GUEST_TIMER_VIRT_PPI,
  GUEST_VPL011_SPI,
} from '../xen/arch-arm.js';

/** Guest RAM is one bank at GUEST_RAM0_BASE (1 GiB); we never use Xen's second bank (RAM1 at 8 GiB). */
export const GUEST_RAM_BASE = GUEST_RAM0_BASE;

export type LayoutName = 'xen' | 'qemu-virt';
export const LAYOUT_NAMES: readonly LayoutName[] = ['xen', 'qemu-virt'];

export interface Window {
  base: number;
  size: number;
}

/** One guest memory map: plain data (it travels to the vCPU's worker thread with the guest image). */
export interface GuestLayout {
  name: LayoutName;
  /** RAM starts here; its size is the config's `memory`, at most ramMaxSize. */
  ramBase: number;
  ramMaxSize: number;
  gicd: Window;
  gicc: Window;
  /** The vpl011's MMIO window and its interrupt (a GIC INTID, >= 32). */
  uart: Window;
  uartIntid: number;
  /** The arch timer's PPIs (INTIDs): secure physical, non-secure physical, virtual. */
  timerPpis: { physS: number; physNs: number; virt: number };
  /**
   * NOR flash banks (qemu-virt: two 64 MiB banks at 0 and 64 MiB). Bank 0 holds the firmware and is read-only
   * memory the vCPU executes from; the others read as the file given or erased flash (0xff); writes are ignored.
   */
  flash: Window[];
  /** The DT's root "compatible" and "model". */
  compatible: string[];
  model: string;
}

const MiB = 1024 * 1024;

export const XEN_LAYOUT: GuestLayout = {
  name: 'xen',
  ramBase: GUEST_RAM0_BASE,
  ramMaxSize: GUEST_RAM0_SIZE,
  gicd: { base: GUEST_GICD_BASE, size: GUEST_GICD_SIZE },
  gicc: { base: GUEST_GICC_BASE, size: GUEST_GICC_SIZE },
  uart: { base: GUEST_PL011_BASE, size: GUEST_PL011_SIZE },
  uartIntid: GUEST_VPL011_SPI,
  timerPpis: { physS: GUEST_TIMER_PHYS_S_PPI, physNs: GUEST_TIMER_PHYS_NS_PPI, virt: GUEST_TIMER_VIRT_PPI },
  flash: [],
  // libxl writes "xen,xenvm-<major>.<minor>", "xen,xenvm". We lay the guest out exactly as a Xen 4.20 guest
  // (addresses, SPI, node names), so we claim that layout, but we add no /hypervisor node: we offer no
  // hypercalls or grant tables, and Linux would probe them from that node. "model" says honestly what runs it.
  compatible: ['xen,xenvm-4.20', 'xen,xenvm'],
  model: 'vpl011 (Xen 4.20 guest layout, Unicorn vCPU)',
};

/**
 * QEMU 7.2 hw/arm/virt.c: VIRT_FLASH 0 (2 x 64 MiB), VIRT_GIC_DIST 0x08000000, VIRT_GIC_CPU 0x08010000,
 * VIRT_UART 0x09000000 with a15irqmap[VIRT_UART] = 1 (SPI 1 = INTID 33), VIRT_MEM 0x40000000 (RAM up to 255 GiB;
 * we allow what the Xen layout allows). The GIC windows are the sizes our GICv2 decodes (QEMU maps 64 KiB each).
 */
export const QEMU_VIRT_LAYOUT: GuestLayout = {
  name: 'qemu-virt',
  ramBase: 0x40000000,
  ramMaxSize: GUEST_RAM0_SIZE,
  gicd: { base: 0x08000000, size: 0x1000 },
  gicc: { base: 0x08010000, size: 0x2000 },
  uart: { base: 0x09000000, size: 0x1000 },
  uartIntid: 32 + 1,
  timerPpis: { physS: GUEST_TIMER_PHYS_S_PPI, physNs: GUEST_TIMER_PHYS_NS_PPI, virt: GUEST_TIMER_VIRT_PPI },
  flash: [{ base: 0, size: 64 * MiB }, { base: 64 * MiB, size: 64 * MiB }],
  compatible: ['linux,dummy-virt'],
  model: 'vpl011 (QEMU virt board layout, Unicorn vCPU)',
};

export function guestLayout(name: LayoutName): GuestLayout {
  return name === 'qemu-virt' ? QEMU_VIRT_LAYOUT : XEN_LAYOUT;
}

/**
 * Where a firmware's payload goes under qemu-virt: U-Boot's own defaults for QEMU's virt board (its
 * include/configs/qemu-arm.h env: fdt_addr, kernel_addr_r, ramdisk_addr_r), so `booti ${kernel_addr_r}
 * ${ramdisk_addr_r}:<size> ${fdt_addr}` finds what the toolstack loaded without setting anything.
 */
export const QEMU_VIRT_BOOT = {
  /** The DTB: at the start of RAM, where QEMU puts it and U-Boot's OF_BOARD code reads it. */
  fdtAddr: 0x40000000,
  kernelAddr: 0x40400000,
  ramdiskAddr: 0x44000000,
} as const;
