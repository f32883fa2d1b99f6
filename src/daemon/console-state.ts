// What a console remembers across a daemon killed by -9, kept next to the output journal in
// the same mapped page (<run>/journal/<instance>.journal, src/daemon/durable-log.ts): memory stores to a MAP_SHARED
// file mapping reach the page cache at once and survive the process, with no syscall per update.
//
// Page layout: [0, 64) the output journal entry (durable-log.ts); [64, 128) the counters `list` shows;
// [128, 192) the input journal entry; [256, 4096) the input sessions of resumable clients.
//
// Counters are plain stores, except the two a user checks against something else, made exact with the journals:
// OUT (bytes taken from the ring, = the log's ring bytes) from the output entry's `outBefore`, IN (bytes put into the
// IN ring) from the input entry. Input is journalled like output: before writeIn the entry {inProdBefore, n, slot,
// ackedBefore, bytesInBefore} is sealed; a restarted daemon compares in_prod with it (in_prod is published by us
// alone; the guest only moves in_cons) to know whether the batch reached the ring. So each client session's
// acknowledged input count is exact, and a client that re-sends what was not acknowledged delivers each byte once.
import type { ConsoleCounters } from '../console/console.js';

export const COUNTERS_OFFSET = 64;
const INPUT_OFFSET = 128;
const SESSIONS_OFFSET = 256;
const SESSION_BYTES = 32;
const PAGE_BYTES = 4096;
export const MAX_SESSIONS = (PAGE_BYTES - SESSIONS_OFFSET) / SESSION_BYTES;
/** Input with no session (a raw TCP client, a legacy attach): counted, not acknowledged to anyone. */
export const NO_SESSION = 0xffffffff;

const INPUT_MAGIC = 0x4950_4c56; // "VLPI"
// Input entry (little-endian, at INPUT_OFFSET): magic u32, inProdBefore u32, n u32, slot u32, ackedBefore f64,
// bytesInBefore f64, seq u32, check u32.
const I_MAGIC = 0;
const I_PROD = 4;
const I_N = 8;
const I_SLOT = 12;
const I_ACKED = 16;
const I_BYTESIN = 24;
const I_SEQ = 32;
const I_CHECK = 36;
const INPUT_BYTES = 40;

/** FNV-1a over an entry's words before its check word: an entry torn by a kill does not match. */
export function sealOf(v: DataView, checkAt: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < checkAt; i += 4) h = Math.imul(h ^ v.getUint32(i, true), 16777619);
  return h >>> 0;
}

const FIELDS = ['bytesOut', 'bytesIn', 'dropped', 'corrupt', 'throttled', 'discardedInput'] as const;

/** ConsoleCounters stored in the journal page: every update is a store into the mapping. */
export class PersistedCounters implements ConsoleCounters {
  private f: Float64Array;
  constructor(page: ArrayBuffer) {
    this.f = new Float64Array(page, COUNTERS_OFFSET, 8);
    // A page from an older or damaged journal: anything that is not a count starts again at 0.
    for (let i = 0; i < FIELDS.length; i++) if (!Number.isSafeInteger(this.f[i]) || this.f[i]! < 0) this.f[i] = 0;
  }
  /** The page is about to be unmapped: keep the last values in memory (a late read must not touch the mapping). */
  detach(): void {
    this.f = new Float64Array(this.f);
  }
  get bytesOut(): number { return this.f[0]!; }
  set bytesOut(v: number) { this.f[0] = v; }
  get bytesIn(): number { return this.f[1]!; }
  set bytesIn(v: number) { this.f[1] = v; }
  get dropped(): number { return this.f[2]!; }
  set dropped(v: number) { this.f[2] = v; }
  get corrupt(): number { return this.f[3]!; }
  set corrupt(v: number) { this.f[3] = v; }
  get throttled(): number { return this.f[4]!; }
  set throttled(v: number) { this.f[4] = v; }
  /** Bytes a read-only watcher typed: counted, never delivered. */
  get discardedInput(): number { return this.f[5]!; }
  set discardedInput(v: number) { this.f[5] = v; }
}

/** The slice of the ring input recovery needs. */
export interface InCursor {
  readonly inProd: number;
}

export class InputJournal {
  private readonly entry: DataView;
  private readonly sessions: DataView;
  private seq = 0;

  constructor(page: ArrayBuffer, private readonly counters: PersistedCounters) {
    this.entry = new DataView(page, INPUT_OFFSET, INPUT_BYTES);
    this.sessions = new DataView(page, SESSIONS_OFFSET, PAGE_BYTES - SESSIONS_OFFSET);
  }

  /** Settle the batch a killed daemon left in flight. Call once before the first before(). */
  recover(ring: InCursor): 'none' | 'delivered' | 'not-delivered' | 'ignored' {
    const v = this.entry;
    if (v.getUint32(I_MAGIC, true) !== INPUT_MAGIC) return 'none';
    if (v.getUint32(I_CHECK, true) !== sealOf(v, I_CHECK)) {
      // Torn while being written: before writeIn, and the previous batch's counts were stored before it began.
      this.clear();
      return 'none';
    }
    this.seq = v.getUint32(I_SEQ, true);
    const before = v.getUint32(I_PROD, true);
    const n = v.getUint32(I_N, true);
    const slot = v.getUint32(I_SLOT, true);
    const prod = ring.inProd >>> 0;
    let delivered: number;
    if (prod === ((before + n) >>> 0)) delivered = n;
    else if (prod === before) delivered = 0;
    else {
      this.clear();
      return 'ignored'; // in_prod is not what we left: a guest scribbled on its page; counts stay as stored
    }
    this.counters.bytesIn = v.getFloat64(I_BYTESIN, true) + delivered;
    if (slot < MAX_SESSIONS) this.setAcked(slot, v.getFloat64(I_ACKED, true) + delivered);
    this.clear();
    return delivered > 0 ? 'delivered' : 'not-delivered';
  }

  private clear(): void {
    this.entry.setUint32(I_CHECK, 0, true);
    this.entry.setUint32(I_MAGIC, 0, true);
  }

  /** Seal the entry for `n` bytes about to be written at in_prod `inProdBefore` for `slot` (or NO_SESSION). */
  before(slot: number, n: number, inProdBefore: number): void {
    const v = this.entry;
    v.setUint32(I_MAGIC, INPUT_MAGIC, true);
    v.setUint32(I_PROD, inProdBefore >>> 0, true);
    v.setUint32(I_N, n, true);
    v.setUint32(I_SLOT, slot, true);
    v.setFloat64(I_ACKED, slot < MAX_SESSIONS ? this.acked(slot) : 0, true);
    v.setFloat64(I_BYTESIN, this.counters.bytesIn, true);
    this.seq = (this.seq + 1) >>> 0;
    v.setUint32(I_SEQ, this.seq, true);
    v.setUint32(I_CHECK, sealOf(v, I_CHECK), true);
  }

  /** `n` bytes of `slot` are in the IN ring. (The console adds them to bytesIn.) */
  after(slot: number, n: number): void {
    if (slot < MAX_SESSIONS) this.setAcked(slot, this.acked(slot) + n);
  }

  acked(slot: number): number {
    return this.sessions.getFloat64(slot * SESSION_BYTES + 16, true);
  }

  private setAcked(slot: number, v: number): void {
    this.sessions.setFloat64(slot * SESSION_BYTES + 16, v, true);
  }

  /**
   * The slot of a session id (16 bytes, not all zero): its own, else a free one, else the least recently used one
   * not `inUse` (its client, if it ever comes back, starts from what it says was acknowledged). A new slot starts
   * at `ackedHint`. undefined when every slot is in use.
   */
  /** Every recorded session's acknowledged total, by its id in hex (a migration carries them to the new instance). */
  sessionsAcked(): Map<string, number> {
    const out = new Map<string, number>();
    for (let i = 0; i < MAX_SESSIONS; i++) {
      const id = Buffer.from(this.sessions.buffer, this.sessions.byteOffset + i * SESSION_BYTES, 16);
      if (id.some((b) => b !== 0)) out.set(id.toString('hex'), this.acked(i));
    }
    return out;
  }

  slotFor(id: Uint8Array, ackedHint: number, inUse: (slot: number) => boolean): number | undefined {
    const s = this.sessions;
    let free = -1;
    let oldest = -1;
    for (let i = 0; i < MAX_SESSIONS; i++) {
      const base = i * SESSION_BYTES;
      let same = true;
      let empty = true;
      for (let k = 0; k < 16; k++) {
        const b = s.getUint8(base + k);
        if (b !== id[k]) same = false;
        if (b !== 0) empty = false;
      }
      if (same) {
        s.setFloat64(base + 24, Date.now(), true);
        return i;
      }
      if (empty && free < 0) free = i;
      if (!empty && !inUse(i) && (oldest < 0 || s.getFloat64(base + 24, true) < s.getFloat64(oldest * SESSION_BYTES + 24, true))) oldest = i;
    }
    const slot = free >= 0 ? free : oldest;
    if (slot < 0) return undefined;
    const base = slot * SESSION_BYTES;
    for (let k = 0; k < 16; k++) s.setUint8(base + k, id[k]!);
    s.setFloat64(base + 16, ackedHint, true);
    s.setFloat64(base + 24, Date.now(), true);
    return slot;
  }
}
