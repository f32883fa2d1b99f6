// What the toolstack hands to the VMM: guest RAM contents and the boot register state.
// Built by src/toolstack (Image/ELF/raw loaders, FDT, initramfs); consumed by src/vmm (loads it into guest RAM).

export interface GuestSegment {
  /** Guest-physical address; the segment must lie inside [ramBase, ramBase + ramSize). */
  addr: number;
  data: Uint8Array;
  /** For messages: "kernel", "dtb", "initrd", ... */
  what: string;
}

export interface GuestImage {
  ramBase: number;
  ramSize: number;
  segments: GuestSegment[];
  /** PC at the first instruction (EL1h, MMU off, DAIF masked). */
  entry: number;
  /** X0 at entry: the DTB address for Linux's arm64 boot protocol (0 for bare-metal programs that ignore it). */
  x0: number;
}
