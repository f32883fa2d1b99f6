// Line events (BREAK, framing/parity errors, overrun) from the console backend to a domain's vpl011, carried
// host-side. The xencons ring carries bytes only, and its page is guest RAM (a guest can write anything there), so
// what happened on the "line" around a byte travels in host-only shared memory instead: a small bounded queue per
// domain in the event-channel table's line-event area (src/xen/evtchn.ts lineEventWords), which every party that
// maps the table (the backend's thread or process, the domain's vCPU thread) already has.
//
// An entry is (IN-ring position, error bits): "the byte the backend puts at in_prod == position carries these
// errors". The backend posts the entry BEFORE it publishes that byte's in_prod (so a frontend that sees the byte
// sees the entry: both are sequentially consistent atomics); the device takes the entry when it pops the byte at
// that position from IN and returns the bits in DR[11:8] / RSR[3:0] (PL011 TRM 3.3.1, 3.3.2).
//
// One producer (the console backend of the domain) and one consumer (the domain's vpl011). Bounded: at most
// LINE_EVENT_CAPACITY entries are outstanding; post() refuses beyond that (counted in the area, and the caller keeps
// the event and its byte queued: backpressure, not loss). The consumer trusts nothing: a head that is not within
// capacity of its tail (a scribble by some other code) resynchronises the queue and is counted.

import type { LineEventEntry, LineEventSource } from '../device/ports.js';

/** Error bits of one received character: DR bits 11:8 shifted down, which are also RSR bits 3:0 (TRM 3.3.1-2). */
export const LineError = {
  FE: 1 << 0, // framing error
  PE: 1 << 1, // parity error
  BE: 1 << 2, // break: the character is 0x00 and the line was held low for longer than a character
  OE: 1 << 3, // overrun: characters were lost before this one (strict mode only; see Console `overrun`)
} as const;
export type LineError = (typeof LineError)[keyof typeof LineError];
export const LINE_ERROR_MASK = 0xf;

/** Outstanding entries per domain. */
export const LINE_EVENT_CAPACITY = 16;
// Word offsets in a domain's area.
const W_HEAD = 0; // entries posted (producer's count, u32 wrapping)
const W_TAIL = 1; // entries taken (consumer's count)
const W_REFUSED = 2; // posts refused because the queue was full
const W_RESYNCS = 3; // consumer resynchronisations (head out of range)
const W_ENTRIES = 4;
/** Int32 words of one domain's area. */
export const LINE_EVENT_WORDS = W_ENTRIES + 2 * LINE_EVENT_CAPACITY;
/** Word offsets the native fast path checks (src/cpu/native/fastpath.c LE_HEAD / LE_TAIL). */
export const LINE_EVENT_HEAD_WORD = W_HEAD;
export const LINE_EVENT_TAIL_WORD = W_TAIL;

export type { LineEventEntry };

/** One domain's queue over its area (both ends construct one over the same words). */
export class LineEventQueue implements LineEventSource {
  constructor(readonly words: Int32Array) {
    if (words.length < LINE_EVENT_WORDS) throw new RangeError('line events: area too small');
  }

  // ---- producer (the console backend) ----

  /** Post `bits` for the byte about to go in at IN position `pos`. False (counted) when the queue is full. */
  post(pos: number, bits: number): boolean {
    const w = this.words;
    const head = Atomics.load(w, W_HEAD) >>> 0;
    const tail = Atomics.load(w, W_TAIL) >>> 0;
    if (((head - tail) >>> 0) >= LINE_EVENT_CAPACITY) {
      Atomics.add(w, W_REFUSED, 1);
      return false;
    }
    const e = W_ENTRIES + 2 * (head % LINE_EVENT_CAPACITY);
    Atomics.store(w, e, pos | 0);
    Atomics.store(w, e + 1, bits & LINE_ERROR_MASK);
    Atomics.store(w, W_HEAD, (head + 1) | 0); // entry before head: a consumer that sees the head sees the entry
    return true;
  }

  /** Free entries now (the producer's view). */
  free(): number {
    const used = (Atomics.load(this.words, W_HEAD) - Atomics.load(this.words, W_TAIL)) >>> 0;
    return used >= LINE_EVENT_CAPACITY ? 0 : LINE_EVENT_CAPACITY - used;
  }

  get refused(): number {
    return Atomics.load(this.words, W_REFUSED) >>> 0;
  }

  // ---- consumer (the vpl011) ----

  /** Entries waiting (0 after a resynchronisation of an out-of-range head). */
  pending(): number {
    const w = this.words;
    const head = Atomics.load(w, W_HEAD) >>> 0;
    const tail = Atomics.load(w, W_TAIL) >>> 0;
    const n = (head - tail) >>> 0;
    if (n > LINE_EVENT_CAPACITY) {
      Atomics.store(w, W_TAIL, head | 0);
      Atomics.add(w, W_RESYNCS, 1);
      return 0;
    }
    return n;
  }

  /** The oldest waiting entry, or undefined. */
  peek(): LineEventEntry | undefined {
    if (this.pending() === 0) return undefined;
    const tail = Atomics.load(this.words, W_TAIL) >>> 0;
    const e = W_ENTRIES + 2 * (tail % LINE_EVENT_CAPACITY);
    return { pos: Atomics.load(this.words, e) >>> 0, bits: Atomics.load(this.words, e + 1) & LINE_ERROR_MASK };
  }

  /** Drop the oldest entry (after peek()). */
  take(): void {
    if (this.pending() === 0) return;
    Atomics.add(this.words, W_TAIL, 1);
  }

  /** The n-th waiting entry from the oldest (0-based), or undefined. For the device's "received" scan. */
  at(i: number): LineEventEntry | undefined {
    if (i < 0 || i >= this.pending()) return undefined;
    const tail = Atomics.load(this.words, W_TAIL) >>> 0;
    const e = W_ENTRIES + 2 * ((tail + i) % LINE_EVENT_CAPACITY);
    return { pos: Atomics.load(this.words, e) >>> 0, bits: Atomics.load(this.words, e + 1) & LINE_ERROR_MASK };
  }

  /** Entries ever posted / taken (u32 counts; head - tail = pending). */
  head(): number {
    return Atomics.load(this.words, W_HEAD) >>> 0;
  }
  tail(): number {
    return Atomics.load(this.words, W_TAIL) >>> 0;
  }
  /** The bits of the entry with absolute number n (tail <= n < head). */
  bitsOf(n: number): number {
    return Atomics.load(this.words, W_ENTRIES + 2 * ((n >>> 0) % LINE_EVENT_CAPACITY) + 1) & LINE_ERROR_MASK;
  }

  get resyncs(): number {
    return Atomics.load(this.words, W_RESYNCS) >>> 0;
  }

  /** Clear the queue (a new ring: domain_vpl011_init). */
  reset(): void {
    Atomics.store(this.words, W_TAIL, Atomics.load(this.words, W_HEAD));
  }
}
