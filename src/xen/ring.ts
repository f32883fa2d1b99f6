// The Xen console ring (struct xencons_interface, xen/include/public/io/console.h) as a view over one 4096-byte
// page of an ArrayBuffer or SharedArrayBuffer, with both ends:
//   - ConsoleRing         the frontend, used by the device (Xen's side for the vuart): produces out[], consumes in[];
//   - ConsoleRingBackend  the backend, used by the console daemon (xenconsoled's side): consumes out[], produces in[].
//
// Layout (little-endian): in[1024] @0x000, out[2048] @0x400, in_cons @0xC00, in_prod @0xC04, out_cons @0xC08,
// out_prod @0xC0C, connection (u8) @0xC10. Indices are free-running u32 (ring.h), so all index arithmetic is `>>> 0`.
//
// Ordering (Xen: smp_wmb before publishing an index, smp_rmb after reading one): the producer stores the data, then
// Atomics.store()s its index; the consumer Atomics.load()s the other side's index, then reads the data. Atomics are
// sequentially consistent, which also gives the "store my index, then load yours" (Dekker) order the wakeup rules
// below depend on.
//
// Hostile indices: the other side (and the guest, since the page is guest memory) can write any index. A distance
// prod - cons larger than the ring is "corrupt". Xen only masks indices; we also detect it, count it and recover:
//   - the consumer of that half resynchronises (cons := prod, dropping what was queued) and reports it;
//   - the producer treats a corrupt half as full (writes nothing) until the consumer has resynchronised.
// Every access is masked into the page, so no index value can cause an out-of-bounds access, and no copy loop is
// bounded by an index distance, so none can hang.

import { HotState, HotWord } from '../device/hot-state.js';
import {
  RING_CORRUPT,
  RING_EMPTY,
  RING_FULL,
  XENCONS_IN_SIZE,
  XENCONS_OUT_SIZE,
  type ConsolePort,
  type RingCorruptionReport,
} from '../device/ports.js';

// The ring's sizes and results are the device's port (src/device/ports.ts); re-exported here as the ABI's names.
export { RING_CORRUPT, RING_EMPTY, RING_FULL, XENCONS_IN_SIZE, XENCONS_OUT_SIZE, type RingCorruptionReport };

export const XENCONS_PAGE_SIZE = 4096;

/** Byte offsets inside the page (console.h). */
export const XENCONS_IN_OFFSET = 0x000;
export const XENCONS_OUT_OFFSET = 0x400;
export const XENCONS_IN_CONS = 0xc00;
export const XENCONS_IN_PROD = 0xc04;
export const XENCONS_OUT_CONS = 0xc08;
export const XENCONS_OUT_PROD = 0xc0c;
export const XENCONS_CONNECTION = 0xc10;

/** `connection` values (console.h, ddc2dd1264): the backend writes CONNECTED after mapping the ring. */
export const XENCONSOLE_CONNECTED = 0;
export const XENCONSOLE_DISCONNECTED = 1;


// Word indices of the four u32 indices in the Int32Array that starts at 0xC00.
const W_IN_CONS = 0;
const W_IN_PROD = 1;
const W_OUT_CONS = 2;
const W_OUT_PROD = 3;

const IN_MASK = XENCONS_IN_SIZE - 1;
const OUT_MASK = XENCONS_OUT_SIZE - 1;

// Int32Array and Atomics use the host's byte order; the ABI is little-endian. Every Node target we run on
// (x86-64, arm64) is little-endian; refuse loudly rather than corrupt a ring on anything else.
const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** ring.h `xencons_mask(idx, ring_size)`: the index into the data array. */
export function xenconsMask(idx: number, ringSize: number): number {
  return (idx & (ringSize - 1)) >>> 0;
}

/**
 * ring.h `xencons_queued(prod, cons, ring_size)`, exactly: equal indices are empty, equal masked indices are full,
 * otherwise the wrapped difference of the masked values. Never more than ringSize, whatever the inputs.
 */
export function xenconsQueued(prod: number, cons: number, ringSize: number): number {
  if (prod >>> 0 === cons >>> 0) return 0;
  const p = xenconsMask(prod, ringSize);
  const c = xenconsMask(cons, ringSize);
  if (p === c) return ringSize;
  return p > c ? p - c : ringSize - (c - p);
}

/**
 * The checked distance the ring code uses: (prod - cons) mod 2^32, or RING_CORRUPT if that exceeds ringSize.
 * For any non-corrupt pair it equals xenconsQueued().
 */
export function ringLevel(prod: number, cons: number, ringSize: number): number {
  const d = (prod - cons) >>> 0;
  return d > ringSize ? RING_CORRUPT : d;
}

/** The page and its typed views; shared by both ends. */
class RingPage {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  readonly byteOffset: number;
  /** The whole 4096-byte page. */
  readonly page: Uint8Array;
  protected readonly inData: Uint8Array;
  protected readonly outData: Uint8Array;
  protected readonly idx: Int32Array;
  protected readonly conn: Uint8Array;
  /** Corrupt-index events this end has seen (each detection counts once). */
  corruptEvents = 0;
  /** Optional reporter, called on each detection (for logs); must not throw. */
  onCorrupt: ((report: RingCorruptionReport) => void) | undefined;

  constructor(buffer: ArrayBuffer | SharedArrayBuffer, byteOffset = 0) {
    if (!HOST_LITTLE_ENDIAN) throw new Error('ring: the xencons_interface ABI is little-endian; this host is not');
    if (!Number.isSafeInteger(byteOffset) || byteOffset < 0 || byteOffset % 4 !== 0) {
      throw new RangeError(`ring: byte offset ${byteOffset} is not a non-negative multiple of 4`);
    }
    if (byteOffset + XENCONS_PAGE_SIZE > buffer.byteLength) {
      throw new RangeError(`ring: page at ${byteOffset} does not fit in a ${buffer.byteLength}-byte buffer`);
    }
    this.buffer = buffer;
    this.byteOffset = byteOffset;
    this.page = new Uint8Array(buffer, byteOffset, XENCONS_PAGE_SIZE);
    this.inData = new Uint8Array(buffer, byteOffset + XENCONS_IN_OFFSET, XENCONS_IN_SIZE);
    this.outData = new Uint8Array(buffer, byteOffset + XENCONS_OUT_OFFSET, XENCONS_OUT_SIZE);
    this.idx = new Int32Array(buffer, byteOffset + XENCONS_IN_CONS, 4);
    this.conn = new Uint8Array(buffer, byteOffset + XENCONS_CONNECTION, 1);
  }

  get inCons(): number {
    return Atomics.load(this.idx, W_IN_CONS) >>> 0;
  }
  get inProd(): number {
    return Atomics.load(this.idx, W_IN_PROD) >>> 0;
  }
  get outCons(): number {
    return Atomics.load(this.idx, W_OUT_CONS) >>> 0;
  }
  get outProd(): number {
    return Atomics.load(this.idx, W_OUT_PROD) >>> 0;
  }

  /** IN level (bytes queued for the guest), or RING_CORRUPT. Does not count or repair. */
  inQueued(): number {
    return ringLevel(Atomics.load(this.idx, W_IN_PROD), Atomics.load(this.idx, W_IN_CONS), XENCONS_IN_SIZE);
  }

  /** OUT level (bytes queued for the backend), or RING_CORRUPT. Does not count or repair. */
  outQueued(): number {
    return ringLevel(Atomics.load(this.idx, W_OUT_PROD), Atomics.load(this.idx, W_OUT_CONS), XENCONS_OUT_SIZE);
  }

  get connection(): number {
    return Atomics.load(this.conn, 0);
  }

  protected reportCorrupt(half: 'in' | 'out', prod: number, cons: number): void {
    this.corruptEvents++;
    const cb = this.onCorrupt;
    if (cb) {
      try {
        cb({ half, prod: prod >>> 0, cons: cons >>> 0 });
      } catch {
        // A reporter must not turn a guest's scribble into a host exception.
      }
    }
  }
}

/**
 * The frontend: what Xen does for the vuart. Writes out[] and out_prod, reads in[] and in_cons.
 *
 * Cost model (measured: one Atomics op is ~7 ns in Node 20, a plain typed-array access ~1 ns): the frontend keeps
 * private copies of its own indices (out_prod, in_cons: only it may move them, as Xen keeps them in locals and
 * republishes) and the last values it loaded of the backend's (out_cons, in_prod). Per byte it does exactly one
 * Atomics.store (publish its index) and one Atomics.load (the backend's index, loaded after that store: the
 * Dekker half of the wakeup rule, see ConsoleRingBackend). A guest scribbling on out_prod / in_cons in the page
 * is overwritten by the next publish and, meanwhile, seen and resynchronised by the backend as corruption.
 *
 * After each operation, inLevel / outLevel hold the levels computed from the freshest loads.
 */
export class ConsoleRing extends RingPage implements ConsolePort {
  readonly inSize = XENCONS_IN_SIZE;
  readonly outSize = XENCONS_OUT_SIZE;
  /** A console domain drains OUT at its own pace: TXFF, TXI and TXFE follow the OUT level. */
  readonly txAlwaysReady = false;
  /**
   * The private indices and levels live in the device's hot-state region (src/device/hot-state.ts), shared with the
   * device built over this ring and with the native fast path, so that either implementation serves the next access.
   */
  readonly hot = new HotState();
  private readonly hw = this.hot.w;
  private get outProdPriv(): number {
    return this.hw[HotWord.OutProd]!;
  }
  private set outProdPriv(v: number) {
    this.hw[HotWord.OutProd] = v;
  }
  private get outConsSeen(): number {
    return this.hw[HotWord.OutConsSeen]!;
  }
  private set outConsSeen(v: number) {
    this.hw[HotWord.OutConsSeen] = v;
  }
  private get inConsPriv(): number {
    return this.hw[HotWord.InCons]!;
  }
  private set inConsPriv(v: number) {
    this.hw[HotWord.InCons] = v;
  }
  private get inProdSeen(): number {
    return this.hw[HotWord.InProdSeen]!;
  }
  private set inProdSeen(v: number) {
    this.hw[HotWord.InProdSeen] = v;
  }
  /** IN level (bytes queued for the guest) as of the last operation or refresh(). */
  get inLevel(): number {
    return this.hw[HotWord.RingInLevel]!;
  }
  set inLevel(v: number) {
    this.hw[HotWord.RingInLevel] = v;
  }
  /** OUT level (bytes not yet consumed by the backend) as of the last operation or refresh(). */
  get outLevel(): number {
    return this.hw[HotWord.RingOutLevel]!;
  }
  set outLevel(v: number) {
    this.hw[HotWord.RingOutLevel] = v;
  }

  constructor(buffer: ArrayBuffer | SharedArrayBuffer, byteOffset = 0) {
    super(buffer, byteOffset);
    this.adopt();
  }

  /** A corruption the native fast path found after publishing an index (it cannot call reportCorrupt itself). */
  reportNativeCorrupt(half: 'in' | 'out', prod: number, cons: number): void {
    this.reportCorrupt(half, prod, cons);
  }

  /**
   * Take the frontend's own indices from the page (e.g. when attaching to a ring that already carries traffic,
   * or after restoring a page) and refresh the backend's. Call only while no frontend operation is running.
   */
  adopt(): void {
    this.outProdPriv = Atomics.load(this.idx, W_OUT_PROD);
    this.inConsPriv = Atomics.load(this.idx, W_IN_CONS);
    this.refresh();
  }

  /**
   * Load the backend's indices (Xen's vpl011_data_avail snapshot) and recompute both levels. A corrupt IN half is
   * resynchronised (in_cons := in_prod); a corrupt OUT half reads as full until the backend resynchronises it.
   * Returns the number of corrupt halves found (each also reported and counted).
   */
  refresh(): number {
    const idx = this.idx;
    let found = 0;
    const ip = Atomics.load(idx, W_IN_PROD);
    this.inProdSeen = ip;
    let inL = (ip - this.inConsPriv) >>> 0;
    if (inL > XENCONS_IN_SIZE) {
      this.reportCorrupt('in', ip, this.inConsPriv);
      this.inConsPriv = ip;
      Atomics.store(idx, W_IN_CONS, ip);
      inL = 0;
      found++;
    }
    const oc = Atomics.load(idx, W_OUT_CONS);
    this.outConsSeen = oc;
    let outL = (this.outProdPriv - oc) >>> 0;
    if (outL > XENCONS_OUT_SIZE) {
      this.reportCorrupt('out', this.outProdPriv, oc);
      outL = XENCONS_OUT_SIZE;
      found++;
    }
    this.inLevel = inL;
    this.outLevel = outL;
    return found;
  }

  /**
   * Push one byte to OUT (Xen's vpl011_write_data). Returns the OUT level after the push, computed with out_cons
   * loaded *after* publishing out_prod (so 1 means "the backend may have seen OUT empty": wake it), or RING_FULL
   * (nothing stored) or RING_CORRUPT (nothing stored; reported, counted; outLevel reads as full).
   */
  putOut(byte: number): number {
    const idx = this.idx;
    const prod = this.outProdPriv;
    let level = (prod - this.outConsSeen) >>> 0;
    if (level >= XENCONS_OUT_SIZE) {
      // Looks full (or corrupt) from what we last saw: look again.
      const cons = Atomics.load(idx, W_OUT_CONS);
      this.outConsSeen = cons;
      level = (prod - cons) >>> 0;
      if (level > XENCONS_OUT_SIZE) {
        this.reportCorrupt('out', prod, cons);
        this.outLevel = XENCONS_OUT_SIZE;
        return RING_CORRUPT;
      }
      if (level === XENCONS_OUT_SIZE) {
        this.outLevel = level;
        return RING_FULL;
      }
    }
    this.outData[prod & OUT_MASK] = byte;
    const next = (prod + 1) | 0;
    this.outProdPriv = next;
    Atomics.store(idx, W_OUT_PROD, next); // data before index (smp_wmb; out_prod++)
    const cons = Atomics.load(idx, W_OUT_CONS); // after the publish: see the backend's final check
    this.outConsSeen = cons;
    level = (next - cons) >>> 0;
    if (level > XENCONS_OUT_SIZE) {
      // The backend's index moved somewhere impossible after our check: report; read as full until it resyncs.
      this.reportCorrupt('out', next, cons);
      level = XENCONS_OUT_SIZE;
    }
    this.outLevel = level;
    return level;
  }

  /**
   * Pop one byte from IN (Xen's vpl011_read_data). Returns the byte (0..255), RING_EMPTY, or RING_CORRUPT: a corrupt
   * IN half is resynchronised (in_cons := in_prod, the queued bytes are dropped), reported and counted. After a
   * successful pop, inLevel is computed with in_prod loaded after publishing in_cons, so inLevel === size - 1
   * means "IN was full before this read": a backend waiting for space must be woken.
   */
  getIn(): number {
    const idx = this.idx;
    const cons = this.inConsPriv;
    let prod = this.inProdSeen;
    let level = (prod - cons) >>> 0;
    if (level === 0 || level > XENCONS_IN_SIZE) {
      prod = Atomics.load(idx, W_IN_PROD); // index before data (smp_rmb)
      this.inProdSeen = prod;
      level = (prod - cons) >>> 0;
      if (level === 0) {
        this.inLevel = 0;
        return RING_EMPTY;
      }
      if (level > XENCONS_IN_SIZE) {
        this.reportCorrupt('in', prod, cons);
        this.inConsPriv = prod;
        Atomics.store(idx, W_IN_CONS, prod);
        this.inLevel = 0;
        return RING_CORRUPT;
      }
    }
    const byte = this.inData[cons & IN_MASK]!;
    const next = (cons + 1) | 0;
    this.inConsPriv = next;
    Atomics.store(idx, W_IN_CONS, next); // the data is read before the index is published (smp_mb)
    prod = Atomics.load(idx, W_IN_PROD); // after the publish: see the backend's final check
    this.inProdSeen = prod;
    level = (prod - next) >>> 0;
    if (level > XENCONS_IN_SIZE) {
      this.reportCorrupt('in', prod, next);
      this.inConsPriv = prod;
      Atomics.store(idx, W_IN_CONS, prod);
      level = 0;
    }
    this.inLevel = level;
    return byte;
  }
}

/**
 * The backend: what xenconsoled does. Reads out[] and writes out_cons; writes in[] and in_prod; owns `connection`.
 * Bulk copies: at most two `set()` calls per direction (the wrap), bounded by the caller's buffer and the ring size.
 *
 * Wakeup rule for a backend loop (ring.h's RING_FINAL_CHECK_FOR_* pattern): the frontend only notifies when OUT goes
 * non-empty or full, and when a guest read takes IN from full to not full. So, after readOut() publishes out_cons,
 * check outQueued() again before sleeping; after writeIn() fills IN, check inFree() again before sleeping on space.
 * Both checks load the other side's index after our store, which (with the frontend doing the mirror image) means
 * either we see the new data/space or the frontend sees our index and notifies.
 */
export class ConsoleRingBackend extends RingPage {
  /** Free space in IN (what writeIn can accept now); 0 if IN is corrupt (the frontend will resynchronise). */
  inFree(): number {
    const level = this.inQueued();
    return level === RING_CORRUPT ? 0 : XENCONS_IN_SIZE - level;
  }

  /**
   * Copy up to dst.length queued OUT bytes into dst and publish out_cons. Returns the count. A corrupt OUT half is
   * resynchronised (out_cons := out_prod), reported, counted, and 0 is returned.
   */
  readOut(dst: Uint8Array): number {
    const n = this.peekOut(dst);
    if (n > 0) {
      const cons = (this.peekedCons + n) >>> 0;
      Atomics.store(this.idx, W_OUT_CONS, cons | 0); // data copied before the index is published (xen_mb)
      this.peekedCons = cons;
    }
    this.peeked = 0;
    return n;
  }

  /**
   * The first half of readOut, for a backend that must make the bytes durable before releasing them (the daemon's
   * exactly-once log): copy up to dst.length queued OUT bytes into dst WITHOUT publishing out_cons. Returns the
   * count; a corrupt OUT half is resynchronised, reported, counted, and 0 is returned (as readOut). The out_cons the
   * copy started at is in `peekedCons` until commitOut().
   */
  peekOut(dst: Uint8Array): number {
    const idx = this.idx;
    const prod = Atomics.load(idx, W_OUT_PROD); // index before data
    const cons = Atomics.load(idx, W_OUT_CONS);
    const level = ringLevel(prod, cons, XENCONS_OUT_SIZE);
    this.peekedCons = cons >>> 0;
    this.peeked = 0;
    if (level === RING_CORRUPT) {
      this.reportCorrupt('out', prod, cons);
      Atomics.store(idx, W_OUT_CONS, prod);
      this.peekedCons = prod >>> 0;
      return 0;
    }
    const n = Math.min(level, dst.length);
    if (n === 0) return 0;
    const start = cons & OUT_MASK;
    const first = Math.min(n, XENCONS_OUT_SIZE - start);
    dst.set(this.outData.subarray(start, start + first), 0);
    if (first < n) dst.set(this.outData.subarray(0, n - first), first);
    this.peeked = n;
    return n;
  }

  /** out_cons as read by the last peekOut(). */
  peekedCons = 0;
  private peeked = 0;

  /**
   * The second half: publish out_cons = peekedCons + n for n <= the last peek's count. Returns false (and publishes
   * nothing) if n is out of range or out_cons moved since the peek (only this backend may move it, so that means
   * the guest scribbled on it: the batch is not trusted twice).
   */
  commitOut(n: number): boolean {
    if (!Number.isInteger(n) || n < 0 || n > this.peeked) return false;
    const cons = this.peekedCons;
    if (Atomics.load(this.idx, W_OUT_CONS) >>> 0 !== cons) return false;
    this.peeked = 0;
    if (n === 0) return true;
    Atomics.store(this.idx, W_OUT_CONS, (cons + n) | 0); // data copied (and made durable) before the index (xen_mb)
    this.peekedCons = (cons + n) >>> 0;
    return true;
  }

  /** Publish out_cons directly (a restarted daemon completing a batch its journal says is already in the log). */
  setOutCons(value: number): void {
    Atomics.store(this.idx, W_OUT_CONS, value | 0);
  }

  /** readOut into a fresh array of everything queued now (convenience for tools and tests). */
  drainOut(max = XENCONS_OUT_SIZE): Uint8Array {
    const buf = new Uint8Array(Math.max(0, Math.min(max, XENCONS_OUT_SIZE)));
    const n = this.readOut(buf);
    return buf.subarray(0, n);
  }

  /**
   * Write as much of src as fits into IN and publish in_prod (data before index). Returns the count written; 0 if IN
   * is full or corrupt (a corrupt IN half is reported and counted; the frontend resynchronises it).
   */
  writeIn(src: Uint8Array): number {
    const idx = this.idx;
    const cons = Atomics.load(idx, W_IN_CONS);
    const prod = Atomics.load(idx, W_IN_PROD);
    const level = ringLevel(prod, cons, XENCONS_IN_SIZE);
    if (level === RING_CORRUPT) {
      this.reportCorrupt('in', prod, cons);
      return 0;
    }
    const n = Math.min(XENCONS_IN_SIZE - level, src.length);
    if (n === 0) return 0;
    const start = prod & IN_MASK;
    const first = Math.min(n, XENCONS_IN_SIZE - start);
    this.inData.set(src.subarray(0, first), start);
    if (first < n) this.inData.set(src.subarray(first, n), 0);
    Atomics.store(idx, W_IN_PROD, (prod + n) | 0);
    return n;
  }

  /** Set the connection byte (xenconsoled writes XENCONSOLE_CONNECTED once the ring is mapped). */
  setConnection(value: number): void {
    if (value !== XENCONSOLE_CONNECTED && value !== XENCONSOLE_DISCONNECTED) {
      throw new RangeError(`ring: bad connection value ${value}`);
    }
    Atomics.store(this.conn, 0, value);
  }
}
