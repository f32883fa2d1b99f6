// The device's ports: every interface the UART models talk through, and nothing else. The device imports only this
// module (and its own folder); the hypervisor core implements it: src/xen/mmio.ts dispatches to an MmioHandler,
// src/xen/vgic.ts hands out IrqLines, src/xen/ring.ts's ConsoleRing is a DeviceRing, src/xen/evtchn.ts notifies.
// So the dependency points one way (xen -> device), as in rust-vmm's vm-superio, whose serial device is generic
// over its interrupt and output traits.
import type { HotState } from './hot-state.js';

// ---- MMIO: one result convention for both directions --------------------------------------------------------------

export type AccessWidth = 1 | 2 | 4 | 8;

/**
 * A refused access, in both directions: a read returns it instead of a value, a write instead of MMIO_DONE (Xen:
 * the handler returns 0, handle_mmio answers IO_ABORT). What a refused access does to the guest is the domain's
 * policy (src/xen/domain.ts), not the handler's. A number, not an object, so the per-byte path allocates nothing.
 */
export const MMIO_ABORT = -1;
/** A write the handler accepted (including a write it ignores: RAZ/WI is accepted). */
export const MMIO_DONE = 0;

/** A read's result: the value (an unsigned 32-bit number; 8-byte reads return the low word) or MMIO_ABORT. */
export type MmioReadResult = number;
/** A write's result: MMIO_DONE or MMIO_ABORT. */
export type MmioWriteResult = typeof MMIO_DONE | typeof MMIO_ABORT;

export interface MmioHandler {
  read(offset: number, width: AccessWidth): MmioReadResult;
  /** `value` holds the low 32 bits of the access. */
  write(offset: number, width: AccessWidth, value: number): MmioWriteResult;
}

// ---- the interrupt line ---------------------------------------------------------------------------------------------

/** One level-triggered interrupt line, as a device drives it (Xen: vgic_inject_irq(d, NULL, irq, level)). */
export interface IrqLine {
  set(level: boolean): void;
}

// ---- the console ring, as the device (its frontend) sees it -----------------------------------------------------

/** Sizes of the two halves of struct xencons_interface (xen/include/public/io/console.h). */
export const XENCONS_IN_SIZE = 1024;
export const XENCONS_OUT_SIZE = 2048;

/** A half of the ring has prod - cons larger than its size; returned instead of a level, a byte or a count. */
export const RING_CORRUPT = -2;
/** DeviceRing.getIn(): the IN half is empty. */
export const RING_EMPTY = -1;
/** DeviceRing.putOut(): the OUT half is full (nothing stored). */
export const RING_FULL = -3;

export interface RingCorruptionReport {
  half: 'in' | 'out';
  prod: number;
  cons: number;
}

/** The ring's frontend end, as the device uses it (implemented by src/xen/ring.ts ConsoleRing). */
export interface DeviceRing {
  /** The hot-state region the ring's private indices and the device's state share (src/device/hot-state.ts). */
  readonly hot: HotState;
  /** IN level (bytes queued for the guest) as of the last ring operation or refresh(); never RING_CORRUPT. */
  readonly inLevel: number;
  /** OUT level as of the last ring operation or refresh(); a corrupt OUT half reads as full. */
  readonly outLevel: number;
  /** Corrupt-index detections so far. */
  readonly corruptEvents: number;
  /** Called on each detection (for logs); must not throw. */
  onCorrupt: ((report: RingCorruptionReport) => void) | undefined;
  /** Re-read both halves' levels; returns how many halves were found corrupt (and resynchronised). */
  refresh(): number;
  /** Count and report a corruption the native fast path detected. */
  reportNativeCorrupt(half: 'in' | 'out', prod: number, cons: number): void;
  /** Pop one byte from IN: the byte (0..255), RING_EMPTY or RING_CORRUPT. */
  getIn(): number;
  /** Push one byte to OUT: the OUT level seen after publishing (1 = it was empty), RING_FULL or RING_CORRUPT. */
  putOut(byte: number): number;
}

// ---- the notifier ------------------------------------------------------------------------------------------------

/** Signal the console backend (Xen: notify_via_xen_event_channel). */
export type Notifier = () => void;
