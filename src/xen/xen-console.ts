// The vpl011 backend in Xen (dom0less guests, Xen's `struct vpl011_xen_backend` and vpl011_{write,read}_data_xen,
// vpl011_rx_char_xen in xen/arch/arm/vpl011.c): per domain a 32-byte IN buffer and a 128-byte OUT line buffer in
// hypervisor memory, never in guest RAM. Here that memory is one SharedArrayBuffer region per domain, shared by the
// domain's vCPU worker (XenConsoleFrontend, the device's port) and the main thread's console mux (XenConsoleHost).
//
// Output (upstream's rules, HEAD c447b7308b; docs/DOM0LESS.md):
//   - the domain without the console focus: bytes collect in out[128]; on '\n', or when 126 bytes are held
//     (SBSA_UART_OUT_BUF_SIZE - 2), the line is flushed with a '\n' appended if missing and printed as
//     printk("DOM%u: %s");
//   - the focused domain: each byte is printed at once (printk("%c")), without a DOMn prefix; if bytes were held
//     from before the focus came here, they and this byte are printed first with a forced '\n'.
// A flush becomes a record in a bounded queue (QUEUE_BYTES) to the mux, which adds the prefixes and writes the
// terminal. Xen's printk never waits (its serial driver drops characters when its buffer is full); here a full queue
// makes the DR write wait until the mux drains it (no byte lost), in slices that check for a stop. The guest still
// sees upstream's registers: TXFE and TXI set after every write, TXFF/BUSY never.
//
// Input: the mux (Xen's __serial_rx for the focused domain) puts bytes into in[32]; a DR read takes them. When in[]
// is full the mux holds the rest back (upstream returns -ENOSPC and loses the byte) until the guest reads.
//
// Wakeups: the domain's vuart event channel (a host transport here: upstream has no event channel in this mode, and
// the guest never sees it). The frontend notifies when the record queue goes from empty to non-empty and when a DR
// read takes IN from full to not full (the device's rule); the mux notifies after putting input into IN. Each side
// stores its own index, then loads the other's (Dekker), so a notification is sent or the final check sees the data.

import { HotState } from '../device/hot-state.js';
import type { ConsolePort, RingCorruptionReport } from '../device/ports.js';
import { RING_EMPTY } from './ring.js';

/** SBSA_UART_FIFO_SIZE: Xen's IN buffer. */
export const XEN_CONSOLE_IN_SIZE = 32;
/** SBSA_UART_OUT_BUF_SIZE: Xen's OUT line buffer. */
export const XEN_CONSOLE_OUT_SIZE = 128;
/** A held line is flushed when it reaches this many bytes (room for the forced '\n' and the NUL). */
export const XEN_CONSOLE_LINE_MAX = XEN_CONSOLE_OUT_SIZE - 2;
/** The record queue to the mux: a few dozen lines, so a slow terminal holds the guest back, not the host's memory. */
export const QUEUE_BYTES = 4096;

/** Record kinds in the queue: [kind u8][len u8][len bytes]. */
export const RecordKind = {
  /** printk("%s") / printk("%c"): the focused domain's output, no DOMn prefix. */
  Plain: 1,
  /** printk("DOM%u: %s"): a whole line (ending in '\n') of a domain without the focus. */
  Line: 2,
} as const;
export type RecordKind = (typeof RecordKind)[keyof typeof RecordKind];

// Int32 words.
const W_MAGIC = 0;
const W_FOCUS = 1; // mux: 1 while this domain has the console focus
const W_IN_CONS = 2; // vCPU
const W_IN_PROD = 3; // mux
const W_OUT_PROD = 4; // vCPU: bytes held in out[]
const W_Q_PROD = 5; // vCPU
const W_Q_CONS = 6; // mux
const W_STOP = 7; // mux: the domain is going away; a DR write waiting for queue space gives up
const W_Q_WAITS = 8; // vCPU: DR writes that waited for the mux (statistics)
const W_LINES = 9; // vCPU: Line records queued
const WORDS = 16;
const IN_OFFSET = WORDS * 4;
const OUT_OFFSET = IN_OFFSET + XEN_CONSOLE_IN_SIZE;
const QUEUE_OFFSET = OUT_OFFSET + XEN_CONSOLE_OUT_SIZE;
export const XEN_CONSOLE_REGION_BYTES = QUEUE_OFFSET + QUEUE_BYTES;
const MAGIC = 0x78636f6e; // "xcon"
const QUEUE_MASK = QUEUE_BYTES - 1;
/** A DR write waiting for queue space re-checks the stop flag this often. */
const WAIT_SLICE_MS = 20;

/** A new, zeroed region for one domain (made by the main thread, handed to the domain's worker). */
export function createXenConsoleRegion(): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(XEN_CONSOLE_REGION_BYTES);
  new Int32Array(sab, 0, WORDS)[W_MAGIC] = MAGIC;
  return sab;
}

class Region {
  protected readonly w: Int32Array;
  protected readonly inBuf: Uint8Array;
  protected readonly outBuf: Uint8Array;
  protected readonly queue: Uint8Array;
  constructor(readonly buffer: SharedArrayBuffer) {
    if (!(buffer instanceof SharedArrayBuffer) || buffer.byteLength !== XEN_CONSOLE_REGION_BYTES) {
      throw new RangeError('xen console: not a console region');
    }
    this.w = new Int32Array(buffer, 0, WORDS);
    if (Atomics.load(this.w, W_MAGIC) !== MAGIC) throw new RangeError('xen console: not a console region (bad magic)');
    this.inBuf = new Uint8Array(buffer, IN_OFFSET, XEN_CONSOLE_IN_SIZE);
    this.outBuf = new Uint8Array(buffer, OUT_OFFSET, XEN_CONSOLE_OUT_SIZE);
    this.queue = new Uint8Array(buffer, QUEUE_OFFSET, QUEUE_BYTES);
  }
  /** Bytes queued for the mux. */
  protected queued(): number {
    return (Atomics.load(this.w, W_Q_PROD) - Atomics.load(this.w, W_Q_CONS)) >>> 0;
  }
  /** Statistics: DR writes that waited for the mux, Line records queued, bytes held in the line buffer. */
  stats(): { queueWaits: number; lines: number; held: number } {
    return { queueWaits: Atomics.load(this.w, W_Q_WAITS), lines: Atomics.load(this.w, W_LINES), held: Atomics.load(this.w, W_OUT_PROD) };
  }
}

/** The vCPU side: the device's byte port (ConsolePort) over the domain's region. */
export class XenConsoleFrontend extends Region implements ConsolePort {
  readonly hot = new HotState();
  readonly inSize = XEN_CONSOLE_IN_SIZE;
  /** Never reached: output is taken at once (the level is always 0). */
  readonly outSize = XEN_CONSOLE_OUT_SIZE;
  readonly txAlwaysReady = true;
  inLevel = 0;
  readonly outLevel = 0;
  /** Only the host writes the indices this side reads: nothing can corrupt them. */
  readonly corruptEvents = 0;
  onCorrupt: ((report: RingCorruptionReport) => void) | undefined;
  /** Wakes the mux (the vuart event channel's notify); set by the vuart init. */
  wake: () => void = () => {};
  private readonly record = new Uint8Array(2 + XEN_CONSOLE_OUT_SIZE);

  constructor(buffer: SharedArrayBuffer, readonly domid: number) {
    super(buffer);
  }

  refresh(): number {
    this.inLevel = (Atomics.load(this.w, W_IN_PROD) - Atomics.load(this.w, W_IN_CONS)) >>> 0;
    if (this.inLevel > XEN_CONSOLE_IN_SIZE) this.inLevel = XEN_CONSOLE_IN_SIZE; // the mux never overfills
    return 0;
  }

  /** vpl011_read_data_xen's buffer half: the byte or RING_EMPTY; inLevel after the pop (31: it was full). */
  getIn(): number {
    const w = this.w;
    const cons = Atomics.load(w, W_IN_CONS);
    const prod = Atomics.load(w, W_IN_PROD); // index before data
    if (prod === cons) {
      this.inLevel = 0;
      return RING_EMPTY;
    }
    const byte = this.inBuf[cons & (XEN_CONSOLE_IN_SIZE - 1)]!;
    const next = (cons + 1) | 0;
    Atomics.store(w, W_IN_CONS, next); // data read before the index is published
    this.inLevel = Math.min((Atomics.load(w, W_IN_PROD) - next) >>> 0, XEN_CONSOLE_IN_SIZE); // after: the mux's final check
    return byte;
  }

  /** vpl011_write_data_xen's buffer half. Always 0: the byte is taken (printed or held in the line buffer). */
  putOut(byte: number): number {
    const w = this.w;
    const out = this.outBuf;
    let n = Atomics.load(w, W_OUT_PROD);
    out[n++] = byte;
    if (Atomics.load(w, W_FOCUS) !== 0) {
      if (n === 1) {
        if (this.emit(RecordKind.Plain, 1)) n = 0;
      } else {
        // Held from before the focus came here: printed now without the prefix, with a forced newline.
        if (byte !== 0x0a) out[n++] = 0x0a;
        if (this.emit(RecordKind.Plain, n)) n = 0;
      }
    } else if (n === XEN_CONSOLE_LINE_MAX || byte === 0x0a) {
      if (byte !== 0x0a) out[n++] = 0x0a;
      if (this.emit(RecordKind.Line, n)) {
        n = 0;
        Atomics.add(w, W_LINES, 1);
      }
    }
    // n stays past the end only if a stop interrupted the emit: the domain is going away; never index past out[].
    Atomics.store(w, W_OUT_PROD, Math.min(n, XEN_CONSOLE_LINE_MAX));
    return 0;
  }

  reportNativeCorrupt(): void {
    // The native fast path serves only the ring backend.
  }

  /** Queue out[0..len) as one record; waits (bounded slices, stop-aware) while the mux has no room. */
  private emit(kind: RecordKind, len: number): boolean {
    const w = this.w;
    const need = 2 + len;
    const prod = Atomics.load(w, W_Q_PROD);
    let waited = false;
    for (;;) {
      const cons = Atomics.load(w, W_Q_CONS);
      if (QUEUE_BYTES - ((prod - cons) >>> 0) >= need) break;
      if (!waited) {
        waited = true;
        Atomics.add(w, W_Q_WAITS, 1);
        this.wake(); // the mux was told when the queue went non-empty; a reminder costs nothing
      }
      if (Atomics.load(w, W_STOP) !== 0) return false;
      Atomics.wait(w as Int32Array<SharedArrayBuffer>, W_Q_CONS, cons, WAIT_SLICE_MS);
    }
    const rec = this.record;
    rec[0] = kind;
    rec[1] = len;
    rec.set(this.outBuf.subarray(0, len), 2);
    const q = this.queue;
    for (let i = 0; i < need; i++) q[(prod + i) & QUEUE_MASK] = rec[i]!;
    const next = (prod + need) | 0;
    Atomics.store(w, W_Q_PROD, next); // record before index
    if (Atomics.load(w, W_Q_CONS) === prod) this.wake(); // the queue was empty as of our publish: the mux may sleep
    return true;
  }
}

/** The main thread's side: focus, input into in[32], records out of the queue. */
export class XenConsoleHost extends Region {
  constructor(buffer: SharedArrayBuffer) {
    super(buffer);
  }

  get focused(): boolean {
    return Atomics.load(this.w, W_FOCUS) !== 0;
  }
  set focused(on: boolean) {
    Atomics.store(this.w, W_FOCUS, on ? 1 : 0);
  }

  /** Tell a DR write waiting for queue space to give up (the domain is being destroyed). */
  stop(): void {
    Atomics.store(this.w, W_STOP, 1);
    Atomics.notify(this.w, W_Q_CONS);
  }

  /** Space in in[32] now. */
  inFree(): number {
    return XEN_CONSOLE_IN_SIZE - ((Atomics.load(this.w, W_IN_PROD) - Atomics.load(this.w, W_IN_CONS)) >>> 0);
  }

  /** vpl011_rx_char_xen for as many bytes as fit; returns how many were taken (the caller holds the rest). */
  writeIn(src: Uint8Array): number {
    const w = this.w;
    const prod = Atomics.load(w, W_IN_PROD);
    const n = Math.min(src.length, this.inFree());
    for (let i = 0; i < n; i++) this.inBuf[(prod + i) & (XEN_CONSOLE_IN_SIZE - 1)] = src[i]!;
    if (n > 0) Atomics.store(w, W_IN_PROD, (prod + n) | 0); // data before index
    return n;
  }

  /**
   * The bytes held in the line buffer, taken (the held count reset). Only once the domain's vCPU has stopped: they
   * are its last, unterminated line, which Xen would free unprinted.
   */
  takeHeld(): Buffer {
    const n = Math.min(Math.max(Atomics.load(this.w, W_OUT_PROD), 0), XEN_CONSOLE_LINE_MAX);
    Atomics.store(this.w, W_OUT_PROD, 0);
    return Buffer.from(this.outBuf.subarray(0, n));
  }

  /** Whether records are waiting (the final check before the mux sleeps). */
  hasRecords(): boolean {
    return this.queued() !== 0;
  }

  /**
   * Take whole records, at most about `maxBytes` of queue, oldest first: each is handed to `take` (the view is valid
   * only during the call). Wakes a DR write waiting for space. Returns the queue bytes consumed.
   */
  readRecords(take: (kind: RecordKind, bytes: Uint8Array) => void, maxBytes = QUEUE_BYTES): number {
    const w = this.w;
    const q = this.queue;
    const prod = Atomics.load(w, W_Q_PROD); // index before data
    let cons = Atomics.load(w, W_Q_CONS);
    let used = 0;
    const rec = new Uint8Array(XEN_CONSOLE_OUT_SIZE);
    while (cons !== prod && used < maxBytes) {
      const kind = q[cons & QUEUE_MASK]! as RecordKind;
      const len = Math.min(q[(cons + 1) & QUEUE_MASK]!, XEN_CONSOLE_OUT_SIZE);
      for (let i = 0; i < len; i++) rec[i] = q[(cons + 2 + i) & QUEUE_MASK]!;
      cons = (cons + 2 + len) | 0;
      used += 2 + len;
      take(kind, rec.subarray(0, len));
    }
    if (used > 0) {
      Atomics.store(w, W_Q_CONS, cons);
      Atomics.notify(w, W_Q_CONS);
    }
    return used;
  }
}
