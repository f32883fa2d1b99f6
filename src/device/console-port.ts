// The vpl011's byte I/O port: where DR writes go and DR reads come from. Xen's vpl011.c has two backends behind
// the same registers (docs/DOM0LESS.md):
//   - a console domain over the xencons ring page (src/xen/ring.ts ConsoleRing: IN 1024, OUT 2048, notified
//     through an event channel; xl/libxl guests);
//   - Xen itself (src/xen/xen-console.ts XenConsoleFrontend: a 32-byte IN buffer and a 128-byte OUT line buffer in
//     hypervisor memory; dom0less guests).
// The device only sees levels and sizes through this interface, so one FIFO/interrupt core serves both; the one
// place the backends differ in register semantics is `txAlwaysReady` (d3784f16bb, 1213ebfb9f).

import type { HotState } from './hot-state.js';

export interface RingCorruptionReport {
  half: 'in' | 'out';
  prod: number;
  cons: number;
}

export interface Vpl011ConsolePort {
  /** The device's hot state (FR/RIS/IMSC/levels); the native fast path shares it for the ring backend. */
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
  /** IN and OUT levels as of the last operation or refresh(). */
  readonly inLevel: number;
  readonly outLevel: number;
  /** Corrupt-index events seen (0 forever for a port whose indices only the host writes). */
  readonly corruptEvents: number;
  onCorrupt: ((report: RingCorruptionReport) => void) | undefined;
  /** Reload the other side's indices and recompute both levels; returns the corrupt halves found. */
  refresh(): number;
  /** Push one byte of guest output: the OUT level after the push, or RING_FULL / RING_CORRUPT (nothing stored). */
  putOut(byte: number): number;
  /** Pop one byte of guest input: the byte, or RING_EMPTY / RING_CORRUPT. */
  getIn(): number;
  /** A corruption found by the native fast path (ring backend only). */
  reportNativeCorrupt(half: 'in' | 'out', prod: number, cons: number): void;
}
