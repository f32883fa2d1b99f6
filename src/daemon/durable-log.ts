// A console's log file with exactly-once semantics across a daemon killed at any instant.
//
// The ring is the guest's buffer; the log is the record. Per batch the daemon:
//   1. copies bytes from the OUT ring without publishing out_cons (ConsoleRingBackend.peekOut),
//   2. writes a journal entry {consBefore, n, logSizeBefore, logBytes} into the journal file through a MAP_SHARED
//      mapping (memory stores: in the page cache at once, and kept if we are killed; no syscall per batch, which
//      halved the log path's syscalls in the 1,000-console benchmark), sealed by a check word written last, so an
//      entry torn by a kill is recognised (its batch had not reached the log yet),
//   3. appends the (possibly timestamped) bytes to the log with synchronous writes (once writeSync returns the
//      kernel owns the bytes, even if we are killed next),
//   4. publishes out_cons = consBefore + n (commitOut).
// A restarted daemon, before serving the ring, looks at the journal: if out_cons is still consBefore, the batch was
// not published; the log size tells how far step 3 got: all of it -> publish; none -> the batch is simply read
// again; part -> truncate back to logSizeBefore and read it again. If out_cons moved on, the batch was published.
// So no byte is lost (out_cons never passes bytes not in the log) and none is written twice.
import { closeSync, fstatSync, ftruncateSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { mapFile, type FileMapping } from '../host/shm.js';
import { CRASH_ARMED, crashPoint } from '../util/crash-point.js';
import { PersistedCounters, sealOf } from './console-state.js';

const JOURNAL_MAGIC = 0x4a4c5057; // "WPLJ" (the entry gained outBefore: an older daemon's entry reads as torn)
const JOURNAL_BYTES = 40;
/** The journal file is one page (the mapping's granularity); the entry is its first JOURNAL_BYTES. */
const JOURNAL_FILE_BYTES = 4096;
// Entry layout (little-endian): magic u32, consBefore u32, n u32, logBytes u32, sizeBefore f64, outBefore f64
// (the console's OUT count before the batch, so OUT is exact after recovery), seq u32, check u32.
const J_MAGIC = 0;
const J_CONS = 4;
const J_N = 8;
const J_LOGBYTES = 12;
const J_SIZE = 16;
const J_OUT = 24;
const J_SEQ = 32;
const J_CHECK = 36;

/** FNV-1a over the entry's words before the check: a torn entry (killed mid-way through the stores) does not match. */
function entryCheck(v: DataView): number {
  return sealOf(v, J_CHECK);
}

export type TimestampMode = 'none' | 'guest';

export interface RecoveryResult {
  action: 'none' | 'published' | 'redo' | 'truncated-redo' | 'ignored';
  detail?: string;
}

/** The slice of ConsoleRingBackend recovery needs. */
export interface OutCursor {
  readonly outCons: number;
  setOutCons(value: number): void;
}

export class DurableLog {
  private fd = -1;
  private journal: FileMapping | undefined;
  private jv: DataView | undefined;
  private seq = 0;
  private size = 0;
  private atLineStart = true;
  /** Bytes written to the log (after formatting). */
  bytesWritten = 0;
  /** The console's counters, kept in the journal page (src/daemon/console-state.ts). */
  readonly counters: PersistedCounters;

  constructor(
    readonly path: string,
    readonly journalPath: string,
    private readonly timestamps: TimestampMode = 'none',
    private readonly now: () => Date = () => new Date(),
  ) {
    this.open();
    this.journal = mapFile(journalPath, JOURNAL_FILE_BYTES);
    this.jv = new DataView(this.journal.buffer, 0, JOURNAL_BYTES);
    this.counters = new PersistedCounters(this.journal.buffer);
  }

  /** The journal page (for the console's other persistent state: src/daemon/console-state.ts). */
  get page(): ArrayBuffer {
    return this.journal!.buffer;
  }

  /** The log's size: the offset the next recorded byte gets (resuming clients' cursor). */
  get offset(): number {
    return this.size;
  }

  private open(): void {
    this.fd = openSync(this.path, 'a', 0o640);
    this.size = fstatSync(this.fd).size;
    this.atLineStart = this.size === 0 || this.lastByte() === 0x0a;
  }

  private lastByte(): number {
    if (this.size === 0) return -1;
    const fd = openSync(this.path, 'r');
    try {
      const b = Buffer.alloc(1);
      readSync(fd, b, 0, 1, this.size - 1);
      return b[0]!;
    } finally {
      closeSync(fd);
    }
  }

  /** SIGHUP: reopen the file (logrotate moved it away). */
  reopen(): void {
    closeSync(this.fd);
    this.open();
  }

  /**
   * Finish (or undo) the batch a killed daemon left half-done. Call once, before the first record(), with the
   * ring's cursor.
   */
  recover(ring: OutCursor): RecoveryResult {
    const v = this.jv!;
    if (v.getUint32(J_MAGIC, true) !== JOURNAL_MAGIC) return { action: 'none' };
    // Torn: killed while writing the entry, so before that batch's log write began; the previous batch was
    // published before this entry was started. Nothing to finish: the batch is simply read again.
    if (v.getUint32(J_CHECK, true) !== entryCheck(v)) {
      this.clearJournal();
      return { action: 'redo', detail: 'torn journal entry' };
    }
    const consBefore = v.getUint32(J_CONS, true);
    const n = v.getUint32(J_N, true);
    const logBytes = v.getUint32(J_LOGBYTES, true);
    const sizeBefore = v.getFloat64(J_SIZE, true);
    const outBefore = v.getFloat64(J_OUT, true);
    this.seq = v.getUint32(J_SEQ, true);
    const cons = ring.outCons >>> 0;
    if (cons !== consBefore) {
      if (((consBefore + n) >>> 0) === cons) {
        this.counters.bytesOut = outBefore + n; // published before we died (its count may not have been stored)
        return { action: 'none' };
      }
      return { action: 'ignored', detail: `journal cons ${consBefore}+${n} does not match out_cons ${cons}` };
    }
    const size = fstatSync(this.fd).size;
    if (size >= sizeBefore + logBytes) {
      ring.setOutCons((consBefore + n) | 0);
      this.counters.bytesOut = outBefore + n;
      if (CRASH_ARMED) crashPoint('recover-publish');
      this.clearJournal();
      return { action: 'published', detail: `${n} bytes were in the log but not released from the ring` };
    }
    this.counters.bytesOut = outBefore;
    if (size === sizeBefore) {
      this.clearJournal();
      return { action: 'redo' };
    }
    ftruncateSync(this.fd, sizeBefore);
    this.size = sizeBefore;
    this.atLineStart = this.size === 0 || this.lastByte() === 0x0a;
    if (CRASH_ARMED) crashPoint('recover-truncate');
    this.clearJournal();
    return { action: 'truncated-redo', detail: `${size - sizeBefore} partial bytes removed` };
  }

  private clearJournal(): void {
    const v = this.jv!;
    v.setUint32(J_CHECK, 0, true);
    v.setUint32(J_MAGIC, 0, true);
  }

  /**
   * Steps 2 and 3 for one batch of ring bytes that started at out_cons `consBefore`. Throws if the log cannot be
   * written (the caller then does not publish: the bytes stay in the ring).
   */
  record(chunk: Uint8Array, consBefore: number): void {
    const out = this.format(chunk);
    const v = this.jv!;
    v.setUint32(J_MAGIC, JOURNAL_MAGIC, true);
    v.setUint32(J_CONS, consBefore >>> 0, true);
    v.setUint32(J_N, chunk.length, true);
    v.setUint32(J_LOGBYTES, out.length, true);
    v.setFloat64(J_SIZE, this.size, true);
    v.setFloat64(J_OUT, this.counters.bytesOut, true);
    this.seq = (this.seq + 1) >>> 0; // entries differ even for equal batches, so a torn one cannot pass the check
    v.setUint32(J_SEQ, this.seq, true);
    v.setUint32(J_CHECK, entryCheck(v), true); // last: seals the entry
    if (CRASH_ARMED) crashPoint('journal');
    let off = 0;
    if (CRASH_ARMED && out.length >= 2) {
      const half = out.length >> 1;
      while (off < half) off += writeSync(this.fd, out, off, half - off);
      crashPoint('log-partial');
    }
    while (off < out.length) off += writeSync(this.fd, out, off, out.length - off);
    this.size += out.length;
    this.bytesWritten += out.length;
    if (CRASH_ARMED) crashPoint('log');
  }

  /** Append a line of the daemon's own (e.g. "domain crashed"), outside the ring accounting. */
  note(text: string): void {
    const prefix = this.atLineStart ? '' : '\n';
    const buf = Buffer.from(`${prefix}[vpl011: ${text}]\n`);
    let off = 0;
    while (off < buf.length) off += writeSync(this.fd, buf, off, buf.length - off);
    this.size += buf.length;
    this.atLineStart = true;
  }

  /** xenconsoled's --timestamp: "[YYYY-mm-dd HH:MM:SS] " at each line start; a '\r' right after '\n' is dropped. */
  private format(chunk: Uint8Array): Buffer {
    if (this.timestamps === 'none') {
      if (chunk.length > 0) this.atLineStart = chunk[chunk.length - 1] === 0x0a;
      return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    }
    const stamp = Buffer.from(`[${stampOf(this.now())}] `);
    const parts: Buffer[] = [];
    let start = 0;
    let i = 0;
    let prevNl = this.atLineStart;
    while (i < chunk.length) {
      const c = chunk[i]!;
      if (prevNl && c === 0x0d) {
        if (i > start) parts.push(Buffer.from(chunk.subarray(start, i)));
        start = i + 1;
        i++;
        continue;
      }
      if (prevNl) {
        if (i > start) parts.push(Buffer.from(chunk.subarray(start, i)));
        parts.push(stamp);
        start = i;
      }
      prevNl = c === 0x0a;
      i++;
    }
    if (start < chunk.length) parts.push(Buffer.from(chunk.subarray(start)));
    this.atLineStart = prevNl;
    return Buffer.concat(parts);
  }

  close(removeJournal = false): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
    this.counters.detach();
    this.journal?.close();
    this.journal = undefined;
    this.jv = undefined;
    if (removeJournal) {
      // Only once the domain is gone: its journal has nothing left to say.
      rmSync(this.journalPath, { force: true });
    }
  }
}

function pad(n: number): string {
  return n < 10 ? '0' + n : String(n);
}

export function stampOf(d: Date): string {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
