// The vpl011's hot state as one typed memory region: the frontend ring's private indices and levels
// (ConsoleRing), the device's FR/RIS/IMSC/line and level meanings (Vpl011), the counters the data paths bump, and
// the words the native fast path (src/cpu/native/fastpath.c) keeps for the vCPU. The TypeScript device and ring
// read and write their fields here, not in object fields, so the C path and the TypeScript device serve accesses
// from the same state: either can take the next access, with nothing to copy between them.
//
// The region is a SharedArrayBuffer: its backing store never moves, so the C side may keep its address for as
// long as the owning object references it. Only the vCPU thread touches it (the C path runs inside unicorn's
// MMIO callbacks on that thread), so plain loads and stores suffice; the ring page's indices, which another thread
// reads, are published with atomics by both implementations.
//
// This layout is mirrored by #defines in src/cpu/native/fastpath.c (HS_* / HF_*): change both, and HOT_LAYOUT.

/** Int32 words. */
export const HotWord = {
  // ConsoleRing (frontend) private state.
  OutProd: 0,
  OutConsSeen: 1,
  InCons: 2,
  InProdSeen: 3,
  RingInLevel: 4,
  RingOutLevel: 5,
  // Vpl011 state.
  Fr: 6,
  Ris: 7,
  Imsc: 8,
  Line: 9,
  TxiMaxOut: 10,
  RxiMinIn: 11,
  RxOn: 12,
  TxOff: 13,
  WarnedTxOff: 14,
  DevInLevel: 15,
  DevOutLevel: 16,
  /** pl011: the FIFO depth FR reports through (32 with LCR_H.FEN, 1 without); 0: sbsa (FR from the whole ring). */
  FifoDepth: 17,
  /** 1 while only the TypeScript device may take DR and the IMSC/ICR writes (pl011 loopback, CR.LBE). */
  JsOnly: 18,
  /** pl011 receive timeout (src/device/receive-timeout.ts RtMode): 0 untimed, 1 waiting (RT clear), 2 due. */
  RtMode: 19,
  // The vCPU side's words (the native fast path's and the machine's; the TypeScript device never reads them).
  /** 1 while the C path may serve accesses (the device is the domain's vuart and the domain is alive). */
  Enabled: 20,
  /** The machine's FR spin detection (src/vmm/machine.ts), counted by both paths. */
  LastFr: 21,
  FrRepeats: 22,
  /** The doorbell as the C path last saw it before an access: a move sends the access to the machine (dispatch). */
  LastDoorbell: 23,
  Polls: 24,
  /** Set by any trip into JS that may need a safe point (an IRQ to raise, an abort to inject): the MSR filter passes. */
  WantSafePoint: 25,
  /** The doorbell as the MSR filter last saw it. */
  SafeDoorbell: 26,
  MsrSince: 27,
  Magic: 31,
} as const;
export type HotWord = (typeof HotWord)[keyof typeof HotWord];

/** Float64 slots (counters that may pass 2^31, and a time), from byte HOT_F64_OFFSET. */
export const HotF64 = {
  BytesOut: 0,
  BytesIn: 1,
  TxWhileDisabled: 2,
  /** Accesses the C path served without JS. */
  NativeMmio: 3,
  /** MSR hook calls seen by the C filter, and those it passed to JS. */
  MsrTotal: 4,
  MsrPassed: 5,
  /** CLOCK_MONOTONIC ms from which the MSR filter passes every MSR to JS (the timer's next check; Infinity: none). */
  TimerCheckMonoMs: 6,
} as const;
export type HotF64 = (typeof HotF64)[keyof typeof HotF64];

export const HOT_WORDS = 32;
export const HOT_F64_OFFSET = HOT_WORDS * 4;
export const HOT_F64_SLOTS = 8;
export const HOT_BYTES = HOT_F64_OFFSET + HOT_F64_SLOTS * 8;
/** Checked by the C side at bind time (a layout mismatch refuses the fast path rather than corrupting state). */
export const HOT_LAYOUT = 0x7011_0003;

/** One region: its int32 words and float64 slots. */
export class HotState {
  readonly buffer: SharedArrayBuffer;
  readonly w: Int32Array;
  readonly f: Float64Array;

  constructor() {
    this.buffer = new SharedArrayBuffer(HOT_BYTES);
    this.w = new Int32Array(this.buffer, 0, HOT_WORDS);
    this.f = new Float64Array(this.buffer, HOT_F64_OFFSET, HOT_F64_SLOTS);
    this.w[HotWord.Magic] = HOT_LAYOUT;
    this.w[HotWord.LastFr] = -1;
    this.f[HotF64.TimerCheckMonoMs] = Infinity;
  }
}
