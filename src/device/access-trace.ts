// The vpl011's access trace (`vpl011 trace NAME`): a bounded ring of the last register accesses and backend
// notifications of a running guest, in memory another process can read (the domain host's insight shm object,
// src/vmm/insight.ts; never guest RAM, so a guest cannot forge it). Written by the vCPU thread only: by the TypeScript
// device (Vpl011.read/write/notification) and by the native fast path (src/cpu/native/fastpath.c, which mirrors this
// layout as TR_*), so every access is seen whichever path served it.
//
// Each record carries, besides the access (offset, width, read/write, value, aborted) and the host's monotonic time,
// the state after it that a replay needs to start from any record (src/device/trace-script.ts): the frontend's ring
// indices and its view of the backend's (what the device last loaded), RIS/IMSC, and the pl011 registers that change
// what reads return (CR, LCR_H, IFLS; ILPR/IBRD/FBRD read back as written). The C path copies the cold registers from
// the header words the TypeScript device keeps current (only TypeScript serves their writes).
//
// Consistency without locks: the writer marks a slot invalid (its seq word := ~index), fills it, then stores the
// record's index into the seq word and publishes the head; a reader takes a record only if its seq word reads the
// expected index both before and after copying it. The header's layout version is checked by the C side at bind time.
//
// Layout (little-endian, from the region's base):
//   int32 [0] magic  [1] capacity (records, a power of two)  [2] enabled  [3] layout
//         [4] head (records written, u32 wrapping)  [5] reserved  [6] cold CR|LCR_H<<16|IFLS<<24  [7] ILPR|FBRD<<8|IBRD<<16
//   f64 @32: time anchor: host monotonic ms, the guest's CNTVCT at that moment, CNTFRQ (0: unknown)
//   records from byte 64, RECORD_BYTES each: uint32 [0] info [1] value [2] in_cons [3] in_prod seen [4] out_prod
//     [5] out_cons seen [6] RIS|IMSC<<16 [7] cold CR.. [8] cold ILPR.. [9] seq; f64 @40 host monotonic ms.
import { performance } from 'node:perf_hooks';
import { HotWord, type HotState } from './hot-state.js';

export const TRACE_MAGIC = 0x5452_4c56; // "VLRT"
export const TRACE_LAYOUT = 0x7011_0101;
export const TRACE_HEADER_BYTES = 64;
export const TRACE_RECORD_BYTES = 48;
/** Default capacity: 8192 records (384 KiB). */
export const TRACE_DEFAULT_CAPACITY = 8192;

export function traceRegionBytes(capacity: number): number {
  return TRACE_HEADER_BYTES + capacity * TRACE_RECORD_BYTES;
}

const H_MAGIC = 0;
const H_CAPACITY = 1;
const H_ENABLED = 2;
const H_LAYOUT = 3;
const H_HEAD = 4;
const H_COLD_CR = 6;
const H_COLD_BAUD = 7;
const A_MONO = 4; // f64 index (byte 32)
const A_CNT = 5;
const A_FREQ = 6;

/** Record kinds (info bits 16-19). */
export const TraceKind = {
  Access: 0,
  /** The backend's event reached the device (Vpl011.notification): it re-read both indices and re-latched RIS. */
  Notify: 1,
} as const;
export type TraceKind = (typeof TraceKind)[keyof typeof TraceKind];

export interface TraceRecord {
  index: number;
  kind: TraceKind;
  offset: number;
  width: 1 | 2 | 4 | 8;
  write: boolean;
  aborted: boolean;
  value: number;
  inCons: number;
  inProdSeen: number;
  outProd: number;
  outConsSeen: number;
  ris: number;
  imsc: number;
  cr: number;
  lcrh: number;
  ifls: number;
  ilpr: number;
  fbrd: number;
  ibrd: number;
  /** Host CLOCK_MONOTONIC, ms. */
  monoMs: number;
}

export interface TraceAnchor {
  monoMs: number;
  counter: number;
  freq: number;
}

/** Offset between performance.now() and CLOCK_MONOTONIC ms (both the host's monotonic clock; hrtime is exactly it). */
const MONO_OFFSET_MS = Number(process.hrtime.bigint()) / 1e6 - performance.now();
export function monoMs(): number {
  return performance.now() + MONO_OFFSET_MS;
}

const WIDTH_CODE: Record<number, number> = { 1: 0, 2: 1, 4: 2, 8: 3 };

export function packInfo(kind: TraceKind, offset: number, width: number, write: boolean, aborted: boolean): number {
  return ((offset & 0xfff) | ((WIDTH_CODE[width] ?? 2) << 12) | (write ? 1 << 14 : 0) | (aborted ? 1 << 15 : 0) | (kind << 16)) >>> 0;
}

/** Initialise a trace region in `buffer` at `byteOffset` (zeroed memory the caller owns). */
export function initTraceRegion(buffer: ArrayBufferLike, byteOffset: number, capacity: number, enabled: boolean): void {
  if (!Number.isInteger(capacity) || capacity < 2 || (capacity & (capacity - 1)) !== 0) throw new RangeError(`trace: capacity ${capacity} is not a power of two`);
  const h = new Int32Array(buffer, byteOffset, TRACE_HEADER_BYTES / 4);
  h[H_CAPACITY] = capacity;
  h[H_LAYOUT] = TRACE_LAYOUT;
  Atomics.store(h, H_ENABLED, enabled ? 1 : 0);
  Atomics.store(h, H_MAGIC, TRACE_MAGIC);
}

/** The TypeScript side's writer (the vCPU thread). */
export class AccessTraceWriter {
  private readonly h: Int32Array;
  private readonly u: Uint32Array;
  private readonly f: Float64Array;
  private readonly mask: number;
  private readonly hot: Int32Array;

  constructor(
    readonly buffer: ArrayBufferLike,
    readonly byteOffset: number,
    hot: HotState,
  ) {
    this.h = new Int32Array(buffer, byteOffset, TRACE_HEADER_BYTES / 4);
    if (this.h[H_MAGIC] !== TRACE_MAGIC || this.h[H_LAYOUT] !== TRACE_LAYOUT) throw new Error('trace: region not initialised');
    const cap = this.h[H_CAPACITY]!;
    this.mask = cap - 1;
    this.u = new Uint32Array(buffer, byteOffset, traceRegionBytes(cap) / 4);
    this.f = new Float64Array(buffer, byteOffset, traceRegionBytes(cap) / 8);
    this.hot = hot.w;
  }

  get enabled(): boolean {
    return this.h[H_ENABLED] !== 0;
  }

  setEnabled(on: boolean): void {
    Atomics.store(this.h, H_ENABLED, on ? 1 : 0);
  }

  /** The guest-time anchor (the machine's timer at one moment). */
  setAnchor(a: TraceAnchor): void {
    this.f[A_MONO] = a.monoMs;
    this.f[A_CNT] = a.counter;
    this.f[A_FREQ] = a.freq;
  }

  /** The pl011 registers that the C path copies into its records (the device calls this after each change). */
  setCold(cr: number, lcrh: number, ifls: number, ilpr: number, fbrd: number, ibrd: number): void {
    this.h[H_COLD_CR] = (cr & 0xffff) | ((lcrh & 0xff) << 16) | ((ifls & 0xff) << 24);
    this.h[H_COLD_BAUD] = (ilpr & 0xff) | ((fbrd & 0xff) << 8) | ((ibrd & 0xffff) << 16);
  }

  /** Append one record with the device's state after it (from the hot state). */
  record(kind: TraceKind, offset: number, width: number, write: boolean, aborted: boolean, value: number): void {
    const i = this.h[H_HEAD]! >>> 0;
    const w = TRACE_HEADER_BYTES / 4 + (i & this.mask) * (TRACE_RECORD_BYTES / 4);
    const u = this.u;
    const hot = this.hot;
    Atomics.store(u, w + 9, ~i >>> 0);
    u[w] = packInfo(kind, offset, width, write, aborted);
    u[w + 1] = value >>> 0;
    u[w + 2] = hot[HotWord.InCons]!;
    u[w + 3] = hot[HotWord.InProdSeen]!;
    u[w + 4] = hot[HotWord.OutProd]!;
    u[w + 5] = hot[HotWord.OutConsSeen]!;
    u[w + 6] = ((hot[HotWord.Ris]! & 0xffff) | (hot[HotWord.Imsc]! << 16)) >>> 0;
    u[w + 7] = this.h[H_COLD_CR]!;
    u[w + 8] = this.h[H_COLD_BAUD]!;
    this.f[w / 2 + 5] = monoMs();
    Atomics.store(u, w + 9, i);
    Atomics.store(this.h, H_HEAD, (i + 1) | 0);
  }
}

/** Switch recording on or off in a region mapped writable (`vpl011 trace NAME --on/--off`); the writers see it at once. */
export function setTraceEnabled(buffer: ArrayBufferLike, byteOffset: number, on: boolean): void {
  const h = new Int32Array(buffer, byteOffset, TRACE_HEADER_BYTES / 4);
  if (Atomics.load(h, H_MAGIC) !== TRACE_MAGIC || h[H_LAYOUT] !== TRACE_LAYOUT) throw new Error('trace: no trace region (an older domain host?)');
  Atomics.store(h, H_ENABLED, on ? 1 : 0);
}

/** A reader in any process (the daemon, the CLI): copies records out, never writes. */
export class AccessTraceReader {
  private readonly h: Int32Array;
  private readonly u: Uint32Array;
  private readonly f: Float64Array;
  readonly capacity: number;

  constructor(buffer: ArrayBufferLike, byteOffset: number, byteLength: number) {
    this.h = new Int32Array(buffer, byteOffset, TRACE_HEADER_BYTES / 4);
    if (Atomics.load(this.h, H_MAGIC) !== TRACE_MAGIC || this.h[H_LAYOUT] !== TRACE_LAYOUT) throw new Error('trace: no trace region (an older domain host?)');
    const cap = this.h[H_CAPACITY]!;
    if (!(cap >= 2 && (cap & (cap - 1)) === 0 && traceRegionBytes(cap) <= byteLength)) throw new Error(`trace: bad capacity ${cap}`);
    this.capacity = cap;
    this.u = new Uint32Array(buffer, byteOffset, traceRegionBytes(cap) / 4);
    this.f = new Float64Array(buffer, byteOffset, traceRegionBytes(cap) / 8);
  }

  get enabled(): boolean {
    return Atomics.load(this.h, H_ENABLED) !== 0;
  }

  /** Records written so far (u32, wrapping). */
  get head(): number {
    return Atomics.load(this.h, H_HEAD) >>> 0;
  }

  anchor(): TraceAnchor {
    return { monoMs: this.f[A_MONO]!, counter: this.f[A_CNT]!, freq: this.f[A_FREQ]! };
  }

  /**
   * Records with index in [from, head), at most `max` of the newest, skipping any the writer overwrote meanwhile.
   * `lost` counts those asked for that are gone (overwritten before or during the copy).
   */
  read(from: number, max: number): { records: TraceRecord[]; next: number; lost: number } {
    const head = this.head;
    let start = from >>> 0;
    let want = (head - start) >>> 0;
    if (want > 0x7fffffff) want = 0; // `from` is ahead of head (a new writer): nothing
    let lost = 0;
    if (want > this.capacity) {
      lost += want - this.capacity;
      start = (head - this.capacity) >>> 0;
      want = this.capacity;
    }
    if (want > max) {
      start = (head - max) >>> 0;
      want = max;
    }
    const records: TraceRecord[] = [];
    const mask = this.capacity - 1;
    for (let k = 0; k < want; k++) {
      const i = (start + k) >>> 0;
      const w = TRACE_HEADER_BYTES / 4 + (i & mask) * (TRACE_RECORD_BYTES / 4);
      if (Atomics.load(this.u, w + 9) >>> 0 !== i) {
        lost++;
        continue;
      }
      const u = this.u;
      const info = u[w]!;
      const r: TraceRecord = {
        index: i,
        kind: ((info >>> 16) & 0xf) as TraceKind,
        offset: info & 0xfff,
        width: ([1, 2, 4, 8] as const)[(info >>> 12) & 3]!,
        write: (info & (1 << 14)) !== 0,
        aborted: (info & (1 << 15)) !== 0,
        value: u[w + 1]!,
        inCons: u[w + 2]!,
        inProdSeen: u[w + 3]!,
        outProd: u[w + 4]!,
        outConsSeen: u[w + 5]!,
        ris: u[w + 6]! & 0xffff,
        imsc: u[w + 6]! >>> 16,
        cr: u[w + 7]! & 0xffff,
        lcrh: (u[w + 7]! >>> 16) & 0xff,
        ifls: u[w + 7]! >>> 24,
        ilpr: u[w + 8]! & 0xff,
        fbrd: (u[w + 8]! >>> 8) & 0xff,
        ibrd: u[w + 8]! >>> 16,
        monoMs: this.f[w / 2 + 5]!,
      };
      if (Atomics.load(this.u, w + 9) >>> 0 !== i) {
        lost++;
        continue;
      }
      records.push(r);
    }
    return { records, next: head, lost };
  }
}
