// What the toolstack hands to the VMM: guest RAM contents and the boot register state.
// Built by src/toolstack (Image/ELF/raw loaders, FDT, initramfs); consumed by src/vmm (loads it into guest RAM).
import type { GuestLayout } from './guest-map.js';

export interface GuestSegment {
  /** Guest-physical address; the segment must lie inside [ramBase, ramBase + ramSize). */
  addr: number;
  data: Uint8Array;
  /** For messages: "kernel", "dtb", "initrd", ... */
  what: string;
}

/** A flash bank's initial contents (qemu-virt layout): bank k of the layout, the file's bytes from its start. */
export interface FlashContents {
  bank: number;
  data: Uint8Array;
  what: string;
}

export interface GuestImage {
  /** The memory map the guest was laid out in (where the machine puts its GIC, vpl011, flash); default Xen's. */
  layout?: GuestLayout;
  /** Flash banks with contents (the rest read as erased flash). */
  flash?: FlashContents[];
  ramBase: number;
  ramSize: number;
  /**
   * Guest RAM itself, when the toolstack read the images straight into it (Linux): the VMM maps it in place, and
   * the segments that are views of it at their own address are there already (not copied again).
   */
  ram?: SharedArrayBuffer;
  segments: GuestSegment[];
  /** PC at the first instruction (EL1h, MMU off, DAIF masked): in RAM, or in flash bank 0 for firmware. */
  entry: number;
  /** X0 at entry: the DTB address for Linux's arm64 boot protocol (0 for bare-metal programs that ignore it). */
  x0: number;
}
