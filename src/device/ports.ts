// The device's ports: every interface the UART models talk through, and nothing else. The device imports only this
// module (and its own folder); the hypervisor core implements it: src/xen/mmio.ts dispatches to an MmioHandler,
// src/xen/vgic.ts hands out IrqLines, src/xen/ring.ts's ConsoleRing and src/xen/xen-console.ts's XenConsoleFrontend are ConsolePorts, src/xen/evtchn.ts notifies.
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
/** ConsolePort.getIn(): the IN half is empty. */
export const RING_EMPTY = -1;
/** ConsolePort.putOut(): the OUT half is full (nothing stored). */
export const RING_FULL = -3;

export interface RingCorruptionReport {
  half: 'in' | 'out';
  prod: number;
  cons: number;
}

/**
 * The device's byte port: where DR writes go and DR reads come from. Xen's vpl011.c has two backends behind the same
 * registers (docs/DOM0LESS.md): a console domain over the xencons ring page (src/xen/ring.ts ConsoleRing: IN 1024,
 * OUT 2048, notified through an event channel; xl/libxl guests), and Xen itself (src/xen/xen-console.ts
 * XenConsoleFrontend: a 32-byte IN buffer and a 128-byte OUT line buffer in hypervisor memory; dom0less guests).
 * The device sees only levels and sizes through this interface, so one FIFO/interrupt core serves both; the one
 * place the backends differ in register semantics is `txAlwaysReady` (Xen commits d3784f16bb, 1213ebfb9f).
 */
export interface ConsolePort {
  /** The hot-state region the port's private indices and the device's state share (src/device/hot-state.ts). */
  readonly hot: HotState;
  /** IN capacity: RXFF when the level equals it, RXI when the level is >= inSize - 16. */
  readonly inSize: number;
  /** OUT capacity: TXFF/BUSY when the level equals it, TXI while the level is <= outSize - 16. */
  readonly outSize: number;
  /**
   * The backend in Xen: output never waits (TXFE and TXI are set by every DR write, TXFF/BUSY never), and only a DR
   * write sets TXI (input arriving does not recompute TX state, 1213ebfb9f).
   */
  readonly txAlwaysReady: boolean;
  /** IN level (bytes queued for the guest) as of the last operation or refresh(); never RING_CORRUPT. */
  readonly inLevel: number;
  /** OUT level as of the last operation or refresh(); a corrupt OUT half reads as full. */
  readonly outLevel: number;
  /** Corrupt-index detections so far (0 forever for a port whose indices only the host writes). */
  readonly corruptEvents: number;
  /** Called on each detection (for logs); must not throw. */
  onCorrupt: ((report: RingCorruptionReport) => void) | undefined;
  /** Re-read the other side's indices and both levels; returns how many halves were found corrupt (and resynchronised). */
  refresh(): number;
  /** Count and report a corruption the native fast path detected (ring backend only). */
  reportNativeCorrupt(half: 'in' | 'out', prod: number, cons: number): void;
  /** Pop one byte from IN: the byte (0..255), RING_EMPTY or RING_CORRUPT. */
  getIn(): number;
  /** Push one byte to OUT: the OUT level seen after publishing (1 = it was empty), RING_FULL or RING_CORRUPT. */
  putOut(byte: number): number;
}

// ---- line events: what the console backend says about a received byte besides its value ------------------------

/** One line event: the IN-ring position (in_prod value) of the byte, and its error bits (DR[11:8] >> 8, TRM 3.3.1). */
export interface LineEventEntry {
  pos: number;
  bits: number;
}

/**
 * The consumer end of a domain's line-event queue (BREAK, framing/parity errors, overrun), as the device uses it;
 * implemented by src/xen/line-events.ts LineEventQueue over host-only shared memory (never guest RAM).
 */
export interface LineEventSource {
  /** Entries waiting (0 after a resynchronisation of an out-of-range head). */
  pending(): number;
  /** The oldest waiting entry, or undefined. */
  peek(): LineEventEntry | undefined;
  /** Drop the oldest entry (after peek()). */
  take(): void;
  /** The i-th waiting entry from the oldest (0-based), or undefined. */
  at(i: number): LineEventEntry | undefined;
  /** Entries ever posted / taken (u32 counts; head - tail = pending). */
  head(): number;
  tail(): number;
  /** The bits of the entry with absolute number n (tail <= n < head). */
  bitsOf(n: number): number;
}

// ---- the notifier ------------------------------------------------------------------------------------------------

/** Signal the console backend (Xen: notify_via_xen_event_channel). */
export type Notifier = () => void;
