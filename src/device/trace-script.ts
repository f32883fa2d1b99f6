// An access trace (src/device/access-trace.ts) as a `vpl011 replay` script (src/cli/replay.ts), so a live bug can be
// replayed offline against a fresh device: reads become `expect` steps (the replay fails on the first read that
// differs), writes `write`, and what the backend did between two accesses becomes the backend steps that put the
// ring where the device saw it: `backend-in "..." quiet` / `backend-drain N quiet` (moved, not yet signalled) before
// the access at which the device first loaded the moved index, and `notify` where the backend's event reached it.
//
// The first record is the anchor: the state after it (ring levels, RIS/IMSC, the pl011 registers) is rebuilt by a
// prelude (register writes, the OUT bytes the backend had not taken, the IN bytes the guest had not read, then IMSC
// and an ICR that leaves exactly the latched bits), and the script replays from the record after it.
//
// IN bytes are taken from the guest's own DR reads in the trace and, for input it has not read yet, from the live ring
// page when the caller can see it (`inByte`); anything else (input overwritten since) is 0x00, which no traced read
// returned. Limit: a byte the backend took from OUT between the guest's publish and its reload inside one DR write (a
// nanosecond window) is replayed as taken just after that write; a read of FR before the next data event may then
// differ (docs/DAEMON.md, "trace").
import type { TraceAnchor, TraceRecord } from './access-trace.js';
import { TraceKind } from './access-trace.js';
import type { Vpl011Profile } from './vpl011.js';
import { INT_ALL, Reg } from './spec.js';

const hex3 = (n: number): string => '0x' + n.toString(16).padStart(3, '0');
const hexv = (n: number): string => '0x' + (n >>> 0).toString(16).padStart(8, '0');
const IN_SIZE = 1024;
const OUT_SIZE = 2048;

/** Bytes as a replay string literal (the escapes src/cli/replay.ts accepts). */
export function scriptString(bytes: ArrayLike<number>): string {
  let s = '"';
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b === 0x0a) s += '\\n';
    else if (b === 0x0d) s += '\\r';
    else if (b === 0x09) s += '\\t';
    else if (b === 0x5c) s += '\\\\';
    else if (b === 0x22) s += '\\"';
    else if (b >= 0x20 && b < 0x7f) s += String.fromCharCode(b);
    else s += '\\x' + b.toString(16).padStart(2, '0');
  }
  return s + '"';
}

export interface TraceScriptOptions {
  profile: Vpl011Profile;
  anchor?: TraceAnchor;
  /** The byte at IN position `pos` if the live ring page still holds it. */
  inByte?: (pos: number) => number | undefined;
}

/** Turns records into script lines; stateful, so `vpl011 trace --follow` can feed it batch by batch. */
export class TraceScript {
  private prev: TraceRecord | undefined;
  /** The replay ring's OUT level (bytes the backend steps have not drained). */
  private outLevel = 0;

  constructor(private readonly opts: TraceScriptOptions) {}

  /** Guest time of a record: the guest's CNTVCT in seconds (host ms when the anchor is unknown). */
  guestTime(r: TraceRecord): string {
    const a = this.opts.anchor;
    if (!a || !(a.freq > 0)) return `host ${r.monoMs.toFixed(3)} ms`;
    return `t=${((a.counter + ((r.monoMs - a.monoMs) * a.freq) / 1000) / a.freq).toFixed(6)} s`;
  }

  /** A gap: records the writer overwrote before they were read. The script cannot be exact across it. */
  gap(n: number): string[] {
    return n > 0 ? [`# ... ${n} accesses not recorded here (overwritten before they were read): the replay may differ from here on`] : [];
  }

  lines(records: readonly TraceRecord[]): string[] {
    const out: string[] = [];
    if (records.length === 0) return out;
    // IN bytes the guest read in this batch, by ring position.
    const read = new Map<number, number>();
    let p = this.prev ?? records[0]!;
    for (const r of this.prev ? records : records.slice(1)) {
      if (r.kind === TraceKind.Access && !r.write && !r.aborted && r.offset === Reg.DR && ((r.inCons - p.inCons) >>> 0) === 1) {
        read.set(p.inCons, r.value & 0xff);
      }
      p = r;
    }
    const inBytes = (from: number, n: number): number[] => {
      const b: number[] = [];
      for (let k = 0; k < n; k++) {
        const pos = (from + k) >>> 0;
        b.push(read.get(pos) ?? this.opts.inByte?.(pos) ?? 0);
      }
      return b;
    };
    let body = records;
    if (this.prev === undefined) {
      const a = records[0]!;
      out.push(...this.prelude(a, inBytes));
      this.prev = a;
      body = records.slice(1);
    }
    for (const r of body) {
      const prev = this.prev!;
      const dIn = (r.inProdSeen - prev.inProdSeen) >>> 0;
      if (dIn > 0 && dIn <= IN_SIZE) out.push(`backend-in ${scriptString(inBytes(prev.inProdSeen, dIn))} quiet`);
      else if (dIn !== 0) out.push(`# in_prod jumped by ${dIn}: a corrupt IN ring, not replayable`);
      let dOut = (r.outConsSeen - prev.outConsSeen) >>> 0;
      if (dOut > OUT_SIZE) {
        out.push(`# out_cons jumped by ${dOut}: a corrupt OUT ring, not replayable`);
        dOut = 0;
      }
      // What the replay's OUT holds now is what the device saw after the previous record; a drain of more than that
      // took a byte this very access wrote.
      const now = Math.min(dOut, this.outLevel);
      if (now > 0) out.push(`backend-drain ${now} quiet`);
      out.push(this.step(r));
      if (dOut > now) out.push(`backend-drain ${dOut - now} quiet # taken within the write above`);
      this.outLevel = (r.outProd - r.outConsSeen) >>> 0;
      this.prev = r;
    }
    return out;
  }

  private step(r: TraceRecord): string {
    const t = `# ${this.guestTime(r)}`;
    if (r.kind === TraceKind.Notify) return `notify ${t}`;
    if (r.write) return `write ${hex3(r.offset)} 0x${(r.value >>> 0).toString(16)} ${r.width} ${t}${r.aborted ? ' (aborted)' : ''}`;
    if (r.aborted) return `read ${hex3(r.offset)} ${r.width} ${t} (aborted)`;
    return `expect ${hex3(r.offset)} ${hexv(r.value)} ${r.width} ${t}`;
  }

  /** Steps that rebuild the state after record `a` on a fresh device. */
  private prelude(a: TraceRecord, inBytes: (from: number, n: number) => number[]): string[] {
    const out = [`profile ${this.opts.profile}`, `# the device's state after the first recorded access (${this.guestTime(a)}):`];
    if (this.opts.profile === 'pl011') {
      out.push(
        `write ${hex3(Reg.ILPR)} 0x${a.ilpr.toString(16)}`,
        `write ${hex3(Reg.IBRD)} 0x${a.ibrd.toString(16)}`,
        `write ${hex3(Reg.FBRD)} 0x${a.fbrd.toString(16)}`,
        `write ${hex3(Reg.LCR_H)} 0x${a.lcrh.toString(16)}`,
        `write ${hex3(Reg.IFLS)} 0x${a.ifls.toString(16)}`,
        `write ${hex3(Reg.CR)} 0x${a.cr.toString(16)}`,
      );
    }
    const outLevel = (a.outProd - a.outConsSeen) >>> 0;
    if (outLevel > 0 && outLevel <= OUT_SIZE) {
      out.push(`# OUT holds ${outLevel} bytes the backend had not taken`);
      for (let k = 0; k < outLevel; k++) out.push(`write ${hex3(Reg.DR)} 0x0`);
      this.outLevel = outLevel;
    }
    const inLevel = (a.inProdSeen - a.inCons) >>> 0;
    if (inLevel > 0 && inLevel <= IN_SIZE) out.push(`backend-in ${scriptString(inBytes(a.inCons, inLevel))}`);
    out.push(`write ${hex3(Reg.IMSC)} 0x${a.imsc.toString(16)}`, `write ${hex3(Reg.ICR)} 0x${(INT_ALL & ~a.ris).toString(16)}`);
    out.push('# the trace:');
    return out;
  }
}
