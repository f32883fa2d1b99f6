// `vpl011 replay --qemu-trace FILE`: what QEMU's PL011 did, replayed against ours. QEMU users record
// `-trace 'pl011_*' -D FILE` (the log trace backend; hw/char/trace-events of QEMU 7.2). Each guest access and each
// received character becomes a replay step, in the trace's order:
//   pl011_read  addr A value V   -> expect A V      (our read must give what QEMU's gave)
//   pl011_write addr A value V   -> write A V       (and after a DR write, expect-out of that byte: QEMU transmits
//                                                    at once, so the backend drains our OUT ring there)
//   pl011_put_fifo new char C    -> backend-in C    (QEMU's chardev delivered C; xenconsoled puts it in IN)
//   pl011_irq_state irq state L  -> irq L           (only with --irq: the models raise lines at different moments)
// Other events (can_receive, read_fifo, put_fifo_full, baudrate_change) are QEMU's internals and are skipped.
// Differences are explained by the TRM clause that decides them when the rule is known (explainRead), so a reader
// sees whether QEMU, we, or neither is wrong.
import { quoteBytes } from './replay.js';
import { Vpl011Error } from '../util/errors.js';

export class TraceError extends Vpl011Error<'EINVAL'> {
  constructor(message: string) {
    super('EINVAL', message);
  }
}

/** The PL011 offsets QEMU's trace names, with the TRM (DDI 0183, r1p5) section of each register. */
const REGISTERS: Record<number, { name: string; trm: string }> = {
  0x000: { name: 'DR', trm: '3.3.1' },
  0x004: { name: 'RSR/ECR', trm: '3.3.2' },
  0x018: { name: 'FR', trm: '3.3.3' },
  0x020: { name: 'ILPR', trm: '3.3.4' },
  0x024: { name: 'IBRD', trm: '3.3.5' },
  0x028: { name: 'FBRD', trm: '3.3.6' },
  0x02c: { name: 'LCR_H', trm: '3.3.7' },
  0x030: { name: 'CR', trm: '3.3.8' },
  0x034: { name: 'IFLS', trm: '3.3.9' },
  0x038: { name: 'IMSC', trm: '3.3.10' },
  0x03c: { name: 'RIS', trm: '3.3.11' },
  0x040: { name: 'MIS', trm: '3.3.12' },
  0x044: { name: 'ICR', trm: '3.3.13' },
  0x048: { name: 'DMACR', trm: '3.3.14' },
  0xfe0: { name: 'PeriphID0', trm: '3.3.15' },
  0xfe4: { name: 'PeriphID1', trm: '3.3.16' },
  0xfe8: { name: 'PeriphID2', trm: '3.3.17' },
  0xfec: { name: 'PeriphID3', trm: '3.3.18' },
  0xff0: { name: 'PCellID0', trm: '3.3.19' },
  0xff4: { name: 'PCellID1', trm: '3.3.20' },
  0xff8: { name: 'PCellID2', trm: '3.3.21' },
  0xffc: { name: 'PCellID3', trm: '3.3.22' },
};

export function registerName(off: number): string {
  return REGISTERS[off]?.name ?? `0x${off.toString(16).padStart(3, '0')}`;
}

/** What the guest had configured when a read happened: the rules below depend on it. */
interface ReadContext {
  /** LCR_H.FEN as last written (TRM 3.3.7): FIFOs on or off. */
  fen: boolean;
  /** Characters delivered and not yet read from DR, by QEMU's account. */
  rxPending: number;
  traceLine: number;
}

export interface ImportedTrace {
  /** A replay script (see replay.ts) equivalent to the trace. */
  script: string;
  /** Reads compared, accesses, received characters, transmitted characters, skipped events. */
  counts: { reads: number; writes: number; received: number; transmitted: number; irqs: number; skipped: number };
  /** Script line -> where it came from and the guest's configuration then. */
  context: Map<number, ReadContext>;
}

/** A trace line is bounded (QEMU's are < 100 bytes); a longer one is not from QEMU's pl011 trace points. */
const MAX_LINE = 512;
/** At most this many trace lines are imported (a 10-minute Linux session is well under it). */
export const MAX_TRACE_LINES = 2_000_000;

const EVENT = /^(?:\d+@\d+\.\d+:)?(pl011_[a-z_]+)(?: (.*))?$/;
const ADDR_VALUE = /^addr 0x([0-9a-fA-F]{1,8}) value 0x([0-9a-fA-F]{1,8})$/;
const PUT_FIFO = /^new char 0x([0-9a-fA-F]{1,2}) read_count now \d+$/;
const IRQ_STATE = /^irq state ([01])$/;
const KNOWN_SKIPPED = new Set(['pl011_can_receive', 'pl011_read_fifo', 'pl011_put_fifo_full', 'pl011_baudrate_change']);

/** Turn a QEMU pl011 trace into a replay script; every malformed line is reported (by number) at once. */
export function importQemuTrace(text: string, opts: { irq?: boolean; profile?: 'sbsa' | 'pl011' } = {}): ImportedTrace {
  const lines = text.split('\n');
  if (lines.length > MAX_TRACE_LINES) throw new TraceError(`the trace has more than ${MAX_TRACE_LINES} lines`);
  const out: string[] = [`profile ${opts.profile ?? 'pl011'}`];
  const context = new Map<number, ReadContext>();
  const counts = { reads: 0, writes: 0, received: 0, transmitted: 0, irqs: 0, skipped: 0 };
  const errors: string[] = [];
  let fen = false;
  let rxPending = 0;
  lines.forEach((raw, i) => {
    const n = i + 1;
    const line = raw.trimEnd();
    if (line === '') return;
    if (line.length > MAX_LINE) {
      errors.push(`line ${n}: longer than ${MAX_LINE} characters: not a QEMU pl011 trace line`);
      return;
    }
    const m = EVENT.exec(line);
    if (!m) {
      errors.push(`line ${n}: not a QEMU pl011 trace event: ${quoteBytes(new TextEncoder().encode(line.slice(0, 60)))}`);
      return;
    }
    const [, event, args = ''] = m;
    const here = (): void => {
      context.set(out.length + 1, { fen, rxPending, traceLine: n });
    };
    switch (event) {
      case 'pl011_read':
      case 'pl011_write': {
        const a = ADDR_VALUE.exec(args);
        const off = a ? parseInt(a[1]!, 16) : NaN;
        if (!a || off > 0xfff) {
          errors.push(`line ${n}: ${event}: expected "addr 0x... value 0x..." with an offset below 0x1000`);
          return;
        }
        const value = parseInt(a[2]!, 16) >>> 0;
        const hexOff = `0x${off.toString(16).padStart(3, '0')}`;
        if (event === 'pl011_read') {
          counts.reads++;
          here();
          out.push(`expect ${hexOff} 0x${value.toString(16)}`);
          if (off === 0x000 && rxPending > 0) rxPending--;
        } else {
          counts.writes++;
          here();
          out.push(`write ${hexOff} 0x${value.toString(16)}`);
          if (off === 0x02c) fen = (value & 0x10) !== 0;
          if (off === 0x000) {
            counts.transmitted++;
            here();
            out.push(`expect-out ${quoteBytes(Uint8Array.of(value & 0xff))}`);
          }
        }
        return;
      }
      case 'pl011_put_fifo': {
        const p = PUT_FIFO.exec(args);
        if (!p) {
          errors.push(`line ${n}: pl011_put_fifo: expected "new char 0x.. read_count now N"`);
          return;
        }
        counts.received++;
        rxPending++;
        here();
        out.push(`backend-in ${quoteBytes(Uint8Array.of(parseInt(p[1]!, 16)))}`);
        return;
      }
      case 'pl011_irq_state': {
        const q = IRQ_STATE.exec(args);
        if (!q) {
          errors.push(`line ${n}: pl011_irq_state: expected "irq state 0|1"`);
          return;
        }
        if (opts.irq) {
          counts.irqs++;
          here();
          out.push(`irq ${q[1]}`);
        } else counts.skipped++;
        return;
      }
      default:
        if (KNOWN_SKIPPED.has(event!)) counts.skipped++;
        else errors.push(`line ${n}: unknown pl011 trace event ${event}`);
    }
  });
  if (errors.length > 0) {
    const shown = errors.slice(0, 20);
    if (errors.length > shown.length) shown.push(`... and ${errors.length - shown.length} more`);
    throw new TraceError(shown.join('\n'));
  }
  if (counts.reads + counts.writes === 0) throw new TraceError('the trace has no pl011_read or pl011_write event (was it recorded with -trace "pl011_*"?)');
  return { script: out.join('\n') + '\n', counts, context };
}

const FR_RXFE = 1 << 4;
const FR_RXFF = 1 << 6;
const INT_RT = 1 << 6;
const INT_RX = 1 << 4;

/**
 * Why a read differs, when a TRM rule decides it: which register and bits, the clause, and who is right. Unknown
 * differences still name the register and its TRM section.
 */
export function explainRead(off: number, ours: number, qemu: number, ctx: ReadContext | undefined): string {
  const reg = REGISTERS[off];
  const where = `${reg?.name ?? `offset 0x${off.toString(16)}`}${ctx ? ` (trace line ${ctx.traceLine})` : ''}`;
  const diff = (ours ^ qemu) >>> 0;
  if (off === 0xfe8 && ours === 0x34 && qemu === 0x14) {
    return `${where}: revision field, ours r1p5 (0x34, TRM 3.3.17 of r1p5), QEMU an earlier revision (0x14): both valid, not a bug`;
  }
  if (off === 0x018 && ctx && (diff & FR_RXFF) !== 0) {
    // TRM 3.3.3: with the FIFO disabled RXFF is set when the one-character holding register is full; with it
    // enabled, when the FIFO is full: 16 entries in QEMU's revision (PeriphID2 0x14), 32 in r1p5 (ours, 0x34).
    if (ctx.fen && ctx.rxPending >= 16 && ctx.rxPending < 32) {
      return `${where}: FR.RXFF with FEN=1 and ${ctx.rxPending} received characters waiting: TRM 3.3.3 "the receive FIFO is full": QEMU's 16-entry FIFO (its revision) is, r1p5's 32-entry one (ours) is not: both valid, not a bug`;
    }
    const full = ctx.fen ? ctx.rxPending >= 32 : ctx.rxPending >= 1;
    const rightIsQemu = ((qemu & FR_RXFF) !== 0) === full;
    return `${where}: FR.RXFF with FEN=${ctx.fen ? 1 : 0} and ${ctx.rxPending} received character(s) waiting: TRM 3.3.3 says ${full ? 'set' : 'clear'} ` +
      `(${ctx.fen ? 'the receive FIFO is full' : 'the receive holding register is full'}): ${rightIsQemu ? 'QEMU is right, ours is wrong' : 'ours is right, QEMU is wrong'}`;
  }
  if (off === 0x018 && ctx && (diff & FR_RXFE) !== 0) {
    const empty = ctx.rxPending === 0;
    const rightIsQemu = ((qemu & FR_RXFE) !== 0) === empty;
    return `${where}: FR.RXFE with ${ctx.rxPending} received character(s) waiting: TRM 3.3.3 says ${empty ? 'set' : 'clear'}: ${rightIsQemu ? 'QEMU is right, ours is wrong' : 'ours is right, QEMU is wrong'}`;
  }
  if ((off === 0x03c || off === 0x040) && (diff & ~(INT_RT | INT_RX)) === 0 && (diff & INT_RX) !== 0) {
    // QEMU 7.2 raises RXIS at one received character whatever IFLS says (its read_trigger is fixed at 1); the TRM
    // raises it at the IFLS trigger level (3.3.9, 3.3.12), as ours does; RTIS (bit 6) as below.
    const rt = (diff & INT_RT) !== 0 ? '; RTIS (bit 6): see TRM 2.8.4 (a replay has no guest time: ours untimed, QEMU never)' : '';
    return `${where}: RXIS (bit 4, TRM 3.3.12): TRM 3.3.9 raises it at the IFLS trigger level, as ours; QEMU 7.2 at one character whatever IFLS says: ours is right, QEMU is wrong${rt}`;
  }
  if ((off === 0x03c || off === 0x040) && diff === INT_RT) {
    // TRM 2.8.4: RTINTR after 32 bit periods of an idle line with data in the FIFO. QEMU 7.2 never raises it; a
    // replay has no guest clock, so ours is untimed there: raised while data is present (docs/DEVICE.md "RTI").
    return `${where}: RTIS (bit 6, TRM 3.3.12): TRM 2.8.4 asserts it after 32 idle bit periods with data waiting; a replay has no guest time, so ours is untimed (while data waits, as Xen; a running guest's is timed), QEMU 7.2 never: a documented approximation on both sides`;
  }
  const bits: number[] = [];
  for (let b = 0; b < 32; b++) if (diff & (1 << b)) bits.push(b);
  return `${where}: bit${bits.length > 1 ? 's' : ''} ${bits.join(',')} differ; see TRM ${reg?.trm ?? '3.3'} (no rule here decides which side is right)`;
}
