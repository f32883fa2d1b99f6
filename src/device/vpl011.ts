// The vpl011 device core: Xen's xen/arch/arm/vpl011.c (domain-backend mode) as a pure state machine.
// Inputs: guest register accesses (read/write, from the MMIO bus) and backend events (notification(), Xen's
// vpl011_notification). Outputs through ports only: the console port (bytes: the xencons ring of a console domain,
// or Xen's own buffers for dom0less, src/device/ports.ts), the interrupt line (level), and a notify callback
// (the event channel to the backend). No I/O, timers, threads or globals.
//
// Semantics are upstream Xen's (HEAD, see docs/DEVICE.md for the table and sources), not the seed patch's:
//   - FR resets to TXFE|RXFE = 0x90 (b4637ed6cd); TXFF and BUSY only when the OUT ring is full (393a541f7d);
//   - TXI while at least 16 bytes of OUT are free; RXI when IN holds >= size-16; RTI while IN is not empty
//     (bb2c1a1cc9, thresholds against the ring sizes as upstream);
//   - exact register offsets only; 8/16/32-bit accesses; a 64-bit access is refused (the domain's policy decides
//     what the guest sees, 0b6122a117); non-SBSA offsets are RAZ/WI with a rate-limited log (b8d5ea6de0);
//     an ICR read is refused, as Xen's handler returns IO_ABORT for it; FR/RIS/MIS writes are ignored before
//     the width check, as upstream;
//   - an empty DR read returns 0, is counted and logged (rate-limited).
//
// Interrupt: a true level (as Xen with CONFIG_NEW_VGIC, 31286f7a38): line = (RIS & IMSC) != 0, re-derived by
// update() at the end of every public method. RIS holds latched TXI/RXI/RTI: an ICR write clears them; a "data
// event" (DR read, DR write, backend notification, IMSC write) re-latches every condition that holds; a condition
// that stops holding clears its bit at once. So an ICR that clears a still-true condition cannot lose it: the next
// event re-asserts it. Deviation from upstream (which re-latches only on DR/notification events): an IMSC write is
// an event too, because Linux's open sequence drains at most 64 bytes, ICR-clears RX|RT and then unmasks them;
// with upstream's rule any bytes left in the 1024-byte IN ring sit there with no interrupt until the user types
// again (a guest can wedge); here the unmask raises RTI at once.
//
// Backend wakeups (coalesced, never lost; proved in test/interleave.test.ts and test/device-vpl011.test.ts), instead of upstream's notify on
// every DR access:
//   - a DR write that takes OUT from empty to non-empty, to half full (a streaming backend drains from there rather
//     than letting the guest meet TXFF), or to full, notifies (the level is computed with out_cons
//     loaded after out_prod is published, so a backend that drained concurrently is either seen as "empty" and
//     notified or will see our byte in its final re-check: ConsoleRingBackend's rule);
//   - a DR read that takes IN from full to not full notifies (a backend waits for IN space only when it left the
//     ring full; same Dekker argument with in_cons/in_prod);
//   - a corrupt ring notifies, so the backend resynchronises its half.
// The backend, in turn, notifies after each batch it drains from OUT or adds to IN (the event channel coalesces).
//
// Performance: DR write / DR read are allocation-free: a switch, one Atomics.store and one Atomics.load (see
// ConsoleRing); FR/RIS/MIS/IMSC reads return state kept current by every event, with no ring access.
//
// Profiles (docs/DEVICE.md): a profile is a register decode, reset values and what the FIFO levels mean; both share
// the FIFO/interrupt core below (readData / writeData / update). `sbsa` is Xen's. `pl011` is a full PL011 r1p5
// (the TRM, ARM DDI 0183G) for Linux's AMBA driver and U-Boot: PeriphID/PCellID, ILPR, IBRD/FBRD latched by LCR_H,
// LCR_H (FEN), CR, IFLS, DMACR RAZ/WI. The FIFOs are windows on the rings (32 bytes, 1 when LCR_H.FEN = 0): FR
// (frFromLevels) and the TXI/RXI thresholds (IFLS) are the TRM's over them. RTI after 32 idle bit periods in guest time once a clock and a divisor are given
// (receive-timeout.ts), else "data present" as upstream. Loopback (CR.LBE), line errors in DR[11:8]. CR.RXE = 0 holds
// input in the ring (never dropped); UARTEN/TXE = 0 do not stop TX (earlycon never sets UARTEN).

import {
  MMIO_ABORT,
  MMIO_DONE,
  RING_CORRUPT,
  RING_EMPTY,
  type AccessWidth,
  type ConsolePort,
  type IrqLine,
  type LineEventSource,
  type MmioHandler,
  type MmioWriteResult,
  type Notifier,
} from './ports.js';
import { RateLimitedLog, type LogSink } from '../util/ratelimit.js';
import { hex as hexDigits } from '../util/hex.js';
import { LoopbackFifo } from './loopback.js';
import { ReceiveTimeout, RtMode } from './receive-timeout.js';
import { HotF64, HotWord } from './hot-state.js';
import { type AccessTraceWriter, TraceKind } from './access-trace.js';
import { vregReg32Clearbits, vregReg32Extract, vregReg32Update } from '../util/vreg.js';
import {
  CR,
  CR_MASK,
  CR_RESET,
  DR_DATA_MASK,
  FBRD_MASK,
  FR,
  FR_RESET,
  IBRD_MASK,
  IFLS_MASK,
  IFLS_RESET,
  IFLS_RX_SHIFT,
  ILPR_MASK,
  INT,
  INT_DRIVEN,
  INT_ERRORS,
  DR_ERROR_SHIFT,
  RSR_TO_INT_SHIFT,
  LCRH,
  LCRH_MASK,
  PL011_FIFO_SIZE,
  PL011_PCELL_ID,
  PL011_PERIPH_ID,
  Reg,
  SBSA_UART_FIFO_LEVEL,
  iflsTriggerBytes,
} from './spec.js';

export type Vpl011Profile = 'sbsa' | 'pl011';

/** Effects the native fast path leaves to nativeTail() (mirrored by TAIL_* in src/cpu/native/fastpath.c). */
export const NativeTail = {
  Notify: 1,
  Line: 2,
  CorruptOut: 4,
  CorruptIn: 8,
} as const;
export type NativeTail = (typeof NativeTail)[keyof typeof NativeTail];
export const VPL011_PROFILES: readonly Vpl011Profile[] = ['sbsa', 'pl011'];

export interface Vpl011Ports {
  /** Byte I/O: the xencons ring (a console domain) or Xen's own buffers (dom0less), src/device/ports.ts. */
  ring: ConsolePort;
  irq: IrqLine;
  /** Signal the console backend (notify_via_xen_event_channel). Called at most once per public method. */
  notify: Notifier;
  /** Diagnostics (Xen's gprintk); rate-limited by the device. */
  log?: LogSink;
  /**
   * Line events from the backend (src/xen/line-events.ts: BREAK, framing/parity errors, overrun), host-only memory.
   * Absent: no byte ever carries an error (Xen's device).
   */
  lineEvents?: LineEventSource;
}

/** Construction: the ports plus the profile (default 'sbsa', Xen's). */
export interface Vpl011Options extends Vpl011Ports {
  profile?: Vpl011Profile;
}

/** The `pl011` profile's own registers, as the guest reads them back (masked to the TRM's widths). */
export interface Pl011Registers {
  ilpr: number;
  ibrd: number;
  fbrd: number;
  lcrh: number;
  cr: number;
  ifls: number;
  /** (IBRD << 6) | FBRD as latched by the last LCR_H write (TRM 3.3.6: the three form one 30-bit register). */
  divisor: number;
}

export interface Vpl011Counters {
  /** Bytes the guest wrote to DR that went into OUT. */
  bytesOut: number;
  /** Bytes the guest read from DR that came from IN. */
  bytesIn: number;
  /** DR writes dropped because OUT was full (or corrupt). */
  txDropped: number;
  /** DR reads of an empty IN ring (returned 0). */
  emptyDrReads: number;
  /** Corrupt ring-index detections (the ring's own counter). */
  corruptRingEvents: number;
  /** Accesses refused (64-bit width, ICR read): the domain's policy decides the guest's fate. */
  refusedAccesses: number;
  /** RAZ/WI accesses to offsets that are not SBSA registers. */
  unhandledAccesses: number;
  /** Backend notifications sent. */
  notifies: number;
  /** Backend events received (notification()). */
  backendEvents: number;
  /** pl011: DR writes with CR.UARTEN or CR.TXE clear (accepted anyway; see docs/DEVICE.md). */
  txWhileDisabled: number;
  /** pl011: DR reads with CR.RXE clear (returned 0; input stays in the ring). */
  rxWhileDisabled: number;
  /** Characters read from DR with error bits (DR[11:8] non-zero: a BREAK, framing/parity error or overrun). */
  rxErrors: number;
  /** Line events for an IN position the guest had already read past (a ring resynchronisation): dropped. */
  staleLineEvents: number;
  /** pl011 loopback (CR.LBE): bytes looped back, and bytes lost because the 32-byte receive FIFO was full (OE). */
  loopedBack: number;
  loopbackOverruns: number;
}

/** Vpl011.irqView(): the interrupt logic's inputs and results as the device last computed them. */
export interface Vpl011IrqView {
  profile: Vpl011Profile;
  ris: number;
  imsc: number;
  mis: number;
  /** The level the device drives (MIS != 0). */
  line: boolean;
  /** The INT bits (TX, RX, RT) whose condition holds at the levels below: RIS re-latches these on a data event. */
  holding: number;
  /** IN and OUT levels as of the device's last ring operation or refresh. */
  inLevel: number;
  outLevel: number;
  /** The receiver is on (pl011: CR.RXE); off, IN is invisible to RX/RT. */
  rxOn: boolean;
  /** TX holds while the OUT level is <= this; RX while the receiver's IN level is >= rxiMinIn. */
  txiMaxOut: number;
  rxiMinIn: number;
  /** The backend's buffer sizes (the xencons ring: 1024/2048; Xen's own for dom0less: 32/128). */
  inSize: number;
  outSize: number;
  /** The backend is Xen (dom0less): only a DR write latches TXI (1213ebfb9f). */
  txLatchesOnDrWriteOnly: boolean;
  /** pl011 timed receive timeout: data waits, but 32 idle bit periods have not passed yet (TRM 2.9.5 UARTRTINTR). */
  rtWaiting: boolean;
  /** pl011 CR.LBE: the receiver sees the loopback FIFO, the transmitter never waits on OUT. */
  loopback: boolean;
}

/** The device's own state; FR and the line are re-derived from it and the ring. */
export interface Vpl011State {
  version: 1;
  profile: Vpl011Profile;
  /** Latched RIS bits (only RXI/TXI/RTI are ever raised). */
  ris: number;
  /** IMSC as written (Xen stores reserved bits too). */
  imsc: number;
  counters: Vpl011Counters;
  /** Present exactly when profile is 'pl011'. */
  pl011?: Pl011Registers;
}

/**
 * UARTFR's FIFO bits (TRM 3.3.3) from the receive and transmit levels. sbsa (depth 0): Xen's, against the backend's
 * buffer sizes (RXFF when IN is full; TXFF|BUSY when OUT is full, 393a541f7d). pl011: the FIFOs are windows on the rings,
 * as the interrupt thresholds are (deriveLevels): the receive FIFO holds the first `depth` bytes of IN, the transmit
 * FIFO the bytes beyond the first size - depth of OUT (the ring before them is the line: the transmitter has sent
 * them). depth is 32 with LCR_H.FEN and 1 (the holding registers) without. BUSY while the transmit FIFO holds data.
 * Mirrored by update_levels() in src/cpu/native/fastpath.c.
 */
export function frFromLevels(rxL: number, txL: number, depth: number, inSize: number, outSize: number): number {
  let fr = 0;
  if (depth === 0) {
    if (rxL === 0) fr |= FR.RXFE;
    else if (rxL === inSize) fr |= FR.RXFF;
    if (txL === 0) fr |= FR.TXFE;
    else if (txL === outSize) fr |= FR.TXFF | FR.BUSY;
    return fr;
  }
  if (rxL === 0) fr |= FR.RXFE;
  else if (rxL >= depth) fr |= FR.RXFF;
  const txFifo = txL > outSize - depth ? txL - (outSize - depth) : 0;
  if (txFifo === 0) fr |= FR.TXFE;
  else fr |= FR.BUSY;
  if (txFifo >= depth) fr |= FR.TXFF;
  return fr;
}

/** Register offsets and values in logs: three digits unless told. */
const hex = (n: number, digits = 3): string => hexDigits(n, digits);

function zeroCounters(): Vpl011Counters {
  return {
    bytesOut: 0,
    bytesIn: 0,
    txDropped: 0,
    emptyDrReads: 0,
    corruptRingEvents: 0,
    refusedAccesses: 0,
    unhandledAccesses: 0,
    notifies: 0,
    backendEvents: 0,
    txWhileDisabled: 0,
    rxWhileDisabled: 0,
    rxErrors: 0,
    staleLineEvents: 0,
    loopedBack: 0,
    loopbackOverruns: 0,
  };
}

function pl011Reset(): Pl011Registers {
  return { ilpr: 0, ibrd: 0, fbrd: 0, lcrh: 0, cr: CR_RESET, ifls: IFLS_RESET, divisor: 0 };
}

export class Vpl011 implements MmioHandler {
  readonly profile: Vpl011Profile;
  /** profile === 'pl011': the extra registers decode. */
  private readonly full: boolean;
  private readonly ring: ConsolePort;
  private readonly irq: IrqLine;
  private readonly notifyPort: () => void;

  // FR, RIS, IMSC, the line, the levels and what they mean live in the ring's hot-state region (hot-state.ts),
  // shared with the native fast path (src/cpu/native/fastpath.c), which serves FR reads and DR accesses from them.
  private readonly hw: Int32Array;
  private readonly hf: Float64Array;
  private get uartfr(): number {
    return this.hw[HotWord.Fr]!;
  }
  private set uartfr(v: number) {
    this.hw[HotWord.Fr] = v;
  }
  private get uartris(): number {
    return this.hw[HotWord.Ris]! >>> 0;
  }
  private set uartris(v: number) {
    this.hw[HotWord.Ris] = v;
  }
  private get uartimsc(): number {
    return this.hw[HotWord.Imsc]! >>> 0;
  }
  private set uartimsc(v: number) {
    this.hw[HotWord.Imsc] = v;
  }
  private get line(): boolean {
    return this.hw[HotWord.Line] !== 0;
  }
  private set line(v: boolean) {
    this.hw[HotWord.Line] = v ? 1 : 0;
  }
  private get inLevel(): number {
    return this.hw[HotWord.DevInLevel]!;
  }
  private set inLevel(v: number) {
    this.hw[HotWord.DevInLevel] = v;
  }
  private get outLevel(): number {
    return this.hw[HotWord.DevOutLevel]!;
  }
  private set outLevel(v: number) {
    this.hw[HotWord.DevOutLevel] = v;
  }
  private pendingNotify = false;
  /** `vpl011 trace`: where accesses are recorded (null: not traced, one field test per access). */
  private trace: AccessTraceWriter | null = null;

  // What the levels mean (the profile's part of the shared core), derived by deriveLevels():
  /** TXI while the OUT level is <= this. sbsa: 2048 - 16 (bb2c1a1cc9). */
  private get txiMaxOut(): number {
    return this.hw[HotWord.TxiMaxOut]!;
  }
  private set txiMaxOut(v: number) {
    this.hw[HotWord.TxiMaxOut] = v;
  }
  /** RXI while the visible IN level is >= this (>= 1). sbsa: 1024 - 16. */
  private get rxiMinIn(): number {
    return this.hw[HotWord.RxiMinIn]!;
  }
  private set rxiMinIn(v: number) {
    this.hw[HotWord.RxiMinIn] = v;
  }
  /** The receiver is on: IN is visible to the guest (pl011: CR.RXE). */
  private get rxOn(): boolean {
    return this.hw[HotWord.RxOn] !== 0;
  }
  private set rxOn(v: boolean) {
    this.hw[HotWord.RxOn] = v ? 1 : 0;
  }
  /** pl011: CR.UARTEN or CR.TXE is clear (DR writes are still accepted, and counted). */
  private get txOff(): boolean {
    return this.hw[HotWord.TxOff] !== 0;
  }
  private set txOff(v: boolean) {
    this.hw[HotWord.TxOff] = v ? 1 : 0;
  }
  /** pl011 registers (unused by sbsa). */
  private readonly regs: Pl011Registers = pl011Reset();
  private get warnedTxOff(): boolean {
    return this.hw[HotWord.WarnedTxOff] !== 0;
  }
  private set warnedTxOff(v: boolean) {
    this.hw[HotWord.WarnedTxOff] = v ? 1 : 0;
  }
  /** pl011 CR.LBE: the receive FIFO fed by our own transmitter (the ring's input waits meanwhile). */
  private readonly loop = new LoopbackFifo();
  private get loopback(): boolean {
    return this.hw[HotWord.JsOnly] !== 0;
  }
  private set loopback(v: boolean) {
    this.hw[HotWord.JsOnly] = v ? 1 : 0;
  }
  /** pl011: FIFO depth FR reports through (32 or 1); 0 for sbsa, whose FR is Xen's (from the ring levels). */
  private get fifoDepth(): number {
    return this.hw[HotWord.FifoDepth]!;
  }
  private set fifoDepth(v: number) {
    this.hw[HotWord.FifoDepth] = v;
  }
  /** pl011: the receive timeout in guest time (src/device/receive-timeout.ts). */
  private readonly rto = new ReceiveTimeout();
  private get rtMode(): RtMode {
    return this.hw[HotWord.RtMode]! as RtMode;
  }
  private set rtMode(v: RtMode) {
    this.hw[HotWord.RtMode] = v;
  }
  /** in_prod as last seen by update(): a change is an arrival (the idle period starts again). */
  private rtProd = 0;
  private readonly lineEvents: LineEventSource | undefined;
  /** The line-event entry count (absolute) up to which the error interrupts have been raised ("received"). */
  private lineRaised = 0;
  /** UARTRSR: the error bits of the last character read from DR (TRM 3.3.2); ECR writes clear it. */
  private rsr = 0;

  private readonly counts: Vpl011Counters = zeroCounters();
  private readonly logUnhandled: RateLimitedLog;
  private readonly logWidth: RateLimitedLog;
  private readonly logEmpty: RateLimitedLog;
  private readonly logFull: RateLimitedLog;
  private readonly logCorrupt: RateLimitedLog;
  private readonly logDma: RateLimitedLog;
  private readonly logSink: LogSink | undefined;

  constructor(ports: Vpl011Options) {
    const profile = ports.profile ?? 'sbsa';
    if (profile !== 'sbsa' && profile !== 'pl011') throw new RangeError(`vpl011: unknown profile ${String(profile)}`);
    this.profile = profile;
    this.full = profile === 'pl011';
    this.ring = ports.ring;
    this.hw = this.ring.hot.w;
    this.hf = this.ring.hot.f;
    this.uartfr = FR_RESET;
    this.uartris = 0;
    this.uartimsc = 0;
    this.line = false;
    this.inLevel = 0;
    this.outLevel = 0;
    this.warnedTxOff = false;
    this.hf[HotF64.BytesOut] = 0;
    this.hf[HotF64.BytesIn] = 0;
    this.hf[HotF64.TxWhileDisabled] = 0;
    this.irq = ports.irq;
    this.notifyPort = ports.notify;
    this.lineEvents = ports.lineEvents;
    this.lineRaised = this.lineEvents?.tail() ?? 0;
    this.loopback = false;
    this.rtMode = RtMode.Untimed;
    this.logUnhandled = new RateLimitedLog(ports.log);
    this.logWidth = new RateLimitedLog(ports.log);
    this.logEmpty = new RateLimitedLog(ports.log);
    this.logFull = new RateLimitedLog(ports.log);
    this.logCorrupt = new RateLimitedLog(ports.log);
    this.logDma = new RateLimitedLog(ports.log);
    this.logSink = ports.log;
    const prev = this.ring.onCorrupt;
    this.ring.onCorrupt = (r) => {
      if (prev) prev(r);
      if (this.logCorrupt.wouldLog()) {
        this.logCorrupt.log(`vpl011: corrupt ${r.half} ring indices prod=${hex(r.prod, 8)} cons=${hex(r.cons, 8)}`);
      } else this.logCorrupt.skip();
    };
    this.deriveLevels();
    // Drive the line to a known level once; afterwards only changes are signalled.
    this.irq.set(false);
    this.ring.refresh();
    this.update(false);
  }

  // ---- MmioHandler ------------------------------------------------------------------------------------------

  read(offset: number, width: AccessWidth): number {
    const v = this.readRegister(offset, width);
    if (this.trace !== null) this.trace.record(TraceKind.Access, offset, width, false, v === MMIO_ABORT, v === MMIO_ABORT ? 0 : v);
    return v;
  }

  write(offset: number, width: AccessWidth, value: number): MmioWriteResult {
    const r = this.writeRegister(offset, width, value);
    if (this.trace !== null) {
      if (this.full && offset >= Reg.ILPR && offset <= Reg.IFLS) this.traceCold();
      this.trace.record(TraceKind.Access, offset, width, true, r === MMIO_ABORT, value);
    }
    return r;
  }

  /**
   * Record every access and backend event from now on into `t` (or stop, with null): `vpl011 trace`. The native fast
   * path writes its accesses into the same region (src/device/access-trace.ts).
   */
  attachTrace(t: AccessTraceWriter | null): void {
    this.trace = t;
    if (t !== null) this.traceCold();
  }

  private traceCold(): void {
    const r = this.regs;
    this.trace?.setCold(r.cr, r.lcrh, r.ifls, r.ilpr, r.fbrd, r.ibrd);
  }

  private readRegister(offset: number, width: AccessWidth): number {
    switch (offset) {
      case Reg.DR:
        if (width === 8) return this.refuse('read', offset, width);
        return this.readData() & (width === 1 ? 0xff : 0xffff); // bits 11:8: the character's errors (a byte read: data only)
      case Reg.FR:
        if (width === 8) return this.refuse('read', offset, width);
        return width === 1 ? this.uartfr & 0xff : this.uartfr; // FR is kept current by every event
      case Reg.RSR:
        if (width === 8) return this.refuse('read', offset, width);
        return this.rsr; // the errors of the last character read (TRM 3.3.2: read DR first, then RSR)
      case Reg.RIS:
        if (width === 8) return this.refuse('read', offset, width);
        return vregReg32Extract(this.uartris, 0, width);
      case Reg.MIS:
        if (width === 8) return this.refuse('read', offset, width);
        return vregReg32Extract(this.uartris & this.uartimsc, 0, width);
      case Reg.IMSC:
        if (width === 8) return this.refuse('read', offset, width);
        return vregReg32Extract(this.uartimsc, 0, width);
      case Reg.ICR:
        // Write-only: Xen's vpl011_mmio_read returns 0 (IO_ABORT) for it, at any width.
        return this.refuse('read', offset, width);
      default:
        if (this.full) return this.readPl011(offset, width);
        this.unhandled('read', offset, width);
        return 0;
    }
  }

  private writeRegister(offset: number, width: AccessWidth, value: number): MmioWriteResult {
    switch (offset) {
      case Reg.DR:
        if (width === 8) return this.refuse('write', offset, width);
        this.writeData(value & DR_DATA_MASK);
        return MMIO_DONE;
      case Reg.RSR:
        if (width === 8) return this.refuse('write', offset, width);
        this.rsr = 0; // ECR: any write clears the framing, parity, break and overrun errors (TRM 3.3.2)
        return MMIO_DONE;
      case Reg.FR:
      case Reg.RIS:
      case Reg.MIS:
        return MMIO_DONE; // read-only; upstream ignores the write before checking the width
      case Reg.IMSC:
        if (width === 8) return this.refuse('write', offset, width);
        this.uartimsc = vregReg32Update(this.uartimsc, value, 0, width);
        this.update(true);
        return MMIO_DONE;
      case Reg.ICR:
        if (width === 8) return this.refuse('write', offset, width);
        this.uartris = vregReg32Clearbits(this.uartris, value, 0, width);
        this.update(false);
        return MMIO_DONE;
      default:
        if (this.full) return this.writePl011(offset, width, value);
        this.unhandled('write', offset, width);
        return MMIO_DONE;
    }
  }

  // ---- the pl011 profile's decode (TRM 3.2); the shared registers above decode identically -------------------

  private readPl011(offset: number, width: AccessWidth): number {
    const r = this.regs;
    let v: number;
    switch (offset) {
      case Reg.ILPR:
        v = r.ilpr;
        break;
      case Reg.IBRD:
        v = r.ibrd;
        break;
      case Reg.FBRD:
        v = r.fbrd;
        break;
      case Reg.LCR_H:
        v = r.lcrh;
        break;
      case Reg.CR:
        v = r.cr;
        break;
      case Reg.IFLS:
        v = r.ifls;
        break;
      case Reg.DMACR:
        if (width === 8) return this.refuse('read', offset, width);
        this.dma('read', 0);
        return 0;
      case Reg.PERIPH_ID0:
      case Reg.PERIPH_ID1:
      case Reg.PERIPH_ID2:
      case Reg.PERIPH_ID3:
        v = PL011_PERIPH_ID[(offset - Reg.PERIPH_ID0) >> 2]!;
        break;
      case Reg.PCELL_ID0:
      case Reg.PCELL_ID1:
      case Reg.PCELL_ID2:
      case Reg.PCELL_ID3:
        v = PL011_PCELL_ID[(offset - Reg.PCELL_ID0) >> 2]!;
        break;
      default:
        this.unhandled('read', offset, width);
        return 0;
    }
    if (width === 8) return this.refuse('read', offset, width);
    return vregReg32Extract(v, 0, width);
  }

  private writePl011(offset: number, width: AccessWidth, value: number): MmioWriteResult {
    const r = this.regs;
    switch (offset) {
      case Reg.ILPR:
      case Reg.IBRD:
      case Reg.FBRD:
      case Reg.LCR_H:
      case Reg.CR:
      case Reg.IFLS:
      case Reg.DMACR:
        if (width === 8) return this.refuse('write', offset, width);
        break;
      default:
        // PeriphID/PCellID are read-only; anything else is not a PL011 register.
        this.unhandled('write', offset, width);
        return MMIO_DONE;
    }
    switch (offset) {
      case Reg.ILPR:
        r.ilpr = vregReg32Update(r.ilpr, value, 0, width) & ILPR_MASK;
        return MMIO_DONE;
      case Reg.IBRD:
        // TRM 3.3.6: takes effect only when LCR_H is written next (Linux writes IBRD, FBRD, then LCR_H).
        r.ibrd = vregReg32Update(r.ibrd, value, 0, width) & IBRD_MASK;
        return MMIO_DONE;
      case Reg.FBRD:
        r.fbrd = vregReg32Update(r.fbrd, value, 0, width) & FBRD_MASK;
        return MMIO_DONE;
      case Reg.LCR_H:
        r.lcrh = vregReg32Update(r.lcrh, value, 0, width) & LCRH_MASK;
        r.divisor = ((r.ibrd << 6) | r.fbrd) >>> 0; // the 30-bit IBRD:FBRD:LCR_H latch (TRM 3.3.6)
        this.rto.setDivisor(r.divisor); // the receive timeout follows the baud rate
        break;
      case Reg.CR:
        r.cr = vregReg32Update(r.cr, value, 0, width) & CR_MASK;
        break;
      case Reg.IFLS:
        r.ifls = vregReg32Update(r.ifls, value, 0, width) & IFLS_MASK;
        break;
      case Reg.DMACR:
        this.dma('write', value);
        return MMIO_DONE;
    }
    // LCR_H.FEN, CR and IFLS change what the levels mean: a data event, so a condition that now holds asserts at
    // once (as an IMSC write; enabling RXE with input waiting raises RTI rather than waiting for more input).
    this.deriveLevels();
    this.update(true);
    this.flushNotify();
    return MMIO_DONE;
  }

  /** The profile's part of the core: what ring levels mean for TXI/RXI and whether the receiver is on. */
  private deriveLevels(): void {
    if (!this.full) {
      // Against the backend's buffer sizes, as upstream (bb2c1a1cc9): ring 2048 - 16 / 1024 - 16; Xen's IN 32 - 16.
      this.txiMaxOut = this.ring.outSize - SBSA_UART_FIFO_LEVEL;
      this.rxiMinIn = this.ring.inSize - SBSA_UART_FIFO_LEVEL;
      this.rxOn = true;
      this.txOff = false;
      this.fifoDepth = 0;
      return;
    }
    const r = this.regs;
    if ((r.lcrh & LCRH.FEN) !== 0) {
      // A 32-byte virtual FIFO (TRM 2.1, r1p5) over the ring: TX sees the last 32 bytes of OUT space, so TXI means
      // "at least 32 - trigger bytes free" and a driver that writes that many blindly (Linux: fifosize/2 per TXI)
      // never overflows; RX sees the first 32 bytes of IN, so RXI means "at least trigger bytes to read".
      this.txiMaxOut = this.ring.outSize - PL011_FIFO_SIZE + iflsTriggerBytes(r.ifls);
      this.rxiMinIn = iflsTriggerBytes(r.ifls >> IFLS_RX_SHIFT);
      this.fifoDepth = PL011_FIFO_SIZE;
    } else {
      // Character mode (TRM 2.4.3): a 1-byte holding register. TXI while one more byte fits; RXI on one byte.
      this.txiMaxOut = this.ring.outSize - 1;
      this.rxiMinIn = 1;
      this.fifoDepth = 1;
    }
    this.rxOn = (r.cr & CR.RXE) !== 0;
    this.txOff = (r.cr & (CR.UARTEN | CR.TXE)) !== (CR.UARTEN | CR.TXE);
    const lbe = (r.cr & CR.LBE) !== 0;
    if (lbe !== this.loopback) {
      // Entering or leaving loopback: the internal path starts empty (what was looped and not read is gone with the
      // mode, as the wire changes under a real receiver). The ring's input waited meanwhile and is seen again.
      this.loop.clear();
      this.loopback = lbe;
    }
  }

  private dma(dir: 'read' | 'write', value: number): void {
    this.counts.unhandledAccesses++;
    if (this.logDma.wouldLog()) {
      this.logDma.log(
        dir === 'read' ? 'vpl011: DMACR read (no DMA: reads as 0)' : `vpl011: DMACR write ${hex(value, 2)} ignored (no DMA)`,
      );
    } else this.logDma.skip();
  }

  private say(message: string): void {
    if (!this.logSink) return;
    try {
      this.logSink(message);
    } catch {
      // A broken log sink must not turn a guest access into a host exception.
    }
  }

  // ---- backend ----------------------------------------------------------------------------------------------

  /** Xen's vpl011_notification: the backend moved data (drained OUT or filled IN). Re-latches conditions. */
  notification(): void {
    this.counts.backendEvents++;
    if (this.ring.refresh() > 0) this.pendingNotify = true; // corrupt: let the backend resynchronise its half
    this.raiseLineErrors();
    this.update(true);
    this.flushNotify();
    if (this.trace !== null) this.trace.record(TraceKind.Notify, 0, 4, false, false, 0);
  }

  /**
   * The end of an access the native fast path served (src/cpu/native/fastpath.c: a DR write or read it did against
   * the same hot state): the effects it leaves to this specification, in the order the TypeScript paths have them.
   * A corruption found after publishing an index is reported, a changed line is driven, the backend is notified.
   */
  nativeTail(flags: number, prod: number, cons: number): void {
    if ((flags & NativeTail.CorruptOut) !== 0) this.ring.reportNativeCorrupt('out', prod >>> 0, cons >>> 0);
    if ((flags & NativeTail.CorruptIn) !== 0) this.ring.reportNativeCorrupt('in', prod >>> 0, cons >>> 0);
    if ((flags & NativeTail.Line) !== 0) this.irq.set(this.line);
    if ((flags & NativeTail.Notify) !== 0) {
      this.counts.notifies++;
      this.notifyPort();
    }
  }

  /**
   * pl011: give the device the guest's clock (ms of the guest's virtual counter), so RT is the TRM's 32-bit-period
   * timeout once the guest programs a divisor (src/device/receive-timeout.ts). The sbsa profile ignores it.
   */
  setRxClock(clock: () => number): void {
    if (!this.full) return;
    this.rto.setClock(clock);
    this.update(false);
  }

  /**
   * The machine's safe point: a receive timeout that has elapsed with data waiting asserts RTRIS (an event for RT
   * alone). Costs one comparison unless a timeout is pending.
   */
  rxTimeoutTick(): void {
    if (this.rtMode !== RtMode.Waiting || this.inLevel === 0 || !this.rxOn || this.loopback) return;
    if (this.rto.msLeft() > 0) return;
    this.rtMode = RtMode.Due;
    this.uartris = this.uartris | INT.RT;
    this.update(false);
  }

  /** Ms until a pending receive timeout elapses (the machine's WFI sleeps no longer), or null when none is pending. */
  msUntilRxTimeout(): number | null {
    if (this.rtMode !== RtMode.Waiting || this.inLevel === 0 || !this.rxOn || this.loopback) return null;
    return this.rto.msLeft();
  }

  // ---- inspection -------------------------------------------------------------------------------------------

  /** The interrupt line level the device drives. */
  get irqLevel(): boolean {
    return this.line;
  }

  /**
   * Whether the guest has unmasked a receive interrupt (IMSC.RXIM or RTIM). Linux's driver does that at the end of
   * opening the port, after draining up to 2 x fifosize bytes it finds waiting (amba-pl011.c
   * pl011_enable_interrupts): a backend with scripted input holds it until then, so nothing is eaten by the drain.
   */
  get receiveInterruptsUnmasked(): boolean {
    return (this.uartimsc & (INT.RX | INT.RT)) !== 0;
  }

  /** Current register view (no side effects on the ring). */
  registers(): { fr: number; ris: number; imsc: number; mis: number; inLevel: number; outLevel: number } {
    return {
      fr: this.uartfr,
      ris: this.uartris,
      imsc: this.uartimsc,
      mis: (this.uartris & this.uartimsc) >>> 0,
      inLevel: this.inLevel,
      outLevel: this.outLevel,
    };
  }

  /**
   * Why the line is where it is, as update() computed it (for `vpl011 stat --why-irq`, src/device/why-irq.ts): the
   * latched and mask bits, the conditions that hold at the levels update() last saw, and the thresholds they were
   * compared with. Nothing here is re-derived by a second rule: `holding` is conditions(), the function update() uses.
   */
  irqView(): Vpl011IrqView {
    const rxLevel = !this.rxOn ? 0 : this.loopback ? this.loop.level : this.inLevel;
    const txLevel = this.loopback ? 0 : this.outLevel;
    return {
      profile: this.profile,
      ris: this.uartris,
      imsc: this.uartimsc,
      mis: (this.uartris & this.uartimsc) >>> 0,
      line: this.line,
      holding: this.conditions(rxLevel, txLevel),
      rtWaiting: this.rtMode === RtMode.Waiting && !this.loopback,
      loopback: this.loopback,
      inLevel: this.inLevel,
      outLevel: this.outLevel,
      rxOn: this.rxOn,
      txiMaxOut: this.txiMaxOut,
      rxiMinIn: this.rxiMinIn,
      inSize: this.ring.inSize,
      outSize: this.ring.outSize,
      txLatchesOnDrWriteOnly: this.ring.txAlwaysReady,
    };
  }

  /** The pl011 profile's registers (undefined for sbsa). */
  pl011Registers(): Pl011Registers | undefined {
    return this.full ? { ...this.regs } : undefined;
  }

  /** A copy of the counters. */
  get counters(): Readonly<Vpl011Counters> {
    const f = this.hf;
    return {
      ...this.counts,
      bytesOut: f[HotF64.BytesOut]!,
      bytesIn: f[HotF64.BytesIn]!,
      txWhileDisabled: f[HotF64.TxWhileDisabled]!,
      corruptRingEvents: this.ring.corruptEvents,
    };
  }

  snapshot(): Vpl011State {
    const s: Vpl011State = { version: 1, profile: this.profile, ris: this.uartris, imsc: this.uartimsc, counters: this.counters };
    if (this.full) s.pl011 = { ...this.regs };
    return s;
  }

  /**
   * Rebuild a device from a snapshot over (a copy of) its ring. Every field is validated; FR and the line are
   * re-derived from the state and the ring, never taken from the snapshot.
   */
  static restore(state: unknown, ports: Vpl011Ports): Vpl011 {
    const v = Vpl011.checkState(state);
    const dev = new Vpl011({ ring: ports.ring, irq: ports.irq, notify: ports.notify, ...(ports.log ? { log: ports.log } : {}), profile: v.profile });
    dev.apply(v);
    return dev;
  }

  /**
   * Load a snapshot into this device in place (a restored domain: the device is already wired to its ring, line,
   * event channel and MMIO window). Validated exactly as restore(); the profile must be this device's.
   */
  load(state: unknown): void {
    const v = Vpl011.checkState(state);
    if (v.profile !== this.profile) throw new RangeError(`vpl011 restore: a ${v.profile} snapshot for a ${this.profile} device`);
    this.apply(v);
  }

  private static checkState(state: unknown): { profile: Vpl011Profile; ris: number; imsc: number; counters: Vpl011Counters; regs: Pl011Registers | undefined } {
    const s = state as Partial<Vpl011State> | null;
    if (typeof s !== 'object' || s === null) throw new TypeError('vpl011 restore: state is not an object');
    if (s.version !== 1) throw new RangeError(`vpl011 restore: unsupported version ${String(s.version)}`);
    if (s.profile !== 'sbsa' && s.profile !== 'pl011') {
      throw new RangeError(`vpl011 restore: unsupported profile ${String(s.profile)}`);
    }
    const profile: Vpl011Profile = s.profile;
    const u32 = (v: unknown, name: string): number => {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) {
        throw new RangeError(`vpl011 restore: ${name} is not a u32`);
      }
      return v;
    };
    const ris = u32(s.ris, 'ris');
    if ((ris & ~INT_DRIVEN) !== 0) throw new RangeError(`vpl011 restore: ris ${hex(ris)} has bits vpl011 never raises`);
    const imsc = u32(s.imsc, 'imsc');
    const counters = zeroCounters();
    if (s.counters !== undefined) {
      if (typeof s.counters !== 'object' || s.counters === null) throw new TypeError('vpl011 restore: bad counters');
      const c = s.counters as unknown as Record<string, unknown>;
      for (const key of Object.keys(counters) as (keyof Vpl011Counters)[]) {
        const v = c[key];
        if (v === undefined) continue;
        if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
          throw new RangeError(`vpl011 restore: counter ${key} is not a non-negative integer`);
        }
        counters[key] = v;
      }
    }
    let regs: Pl011Registers | undefined;
    if (profile === 'pl011') {
      const p = s.pl011 as unknown as Record<string, unknown> | undefined;
      if (typeof p !== 'object' || p === null) throw new TypeError('vpl011 restore: pl011 state without its registers');
      const field = (name: keyof Pl011Registers, mask: number): number => {
        const v = u32(p[name], `pl011.${name}`);
        if ((v & ~mask) !== 0) throw new RangeError(`vpl011 restore: pl011.${name} ${hex(v)} has bits outside ${hex(mask)}`);
        return v;
      };
      regs = {
        ilpr: field('ilpr', ILPR_MASK),
        ibrd: field('ibrd', IBRD_MASK),
        fbrd: field('fbrd', FBRD_MASK),
        lcrh: field('lcrh', LCRH_MASK),
        cr: field('cr', CR_MASK),
        ifls: field('ifls', IFLS_MASK),
        divisor: field('divisor', (IBRD_MASK << 6) | FBRD_MASK),
      };
    } else if (s.pl011 !== undefined) {
      throw new RangeError('vpl011 restore: sbsa state carries pl011 registers');
    }
    return { profile, ris, imsc, counters, regs };
  }

  private apply(v: { ris: number; imsc: number; counters: Vpl011Counters; regs: Pl011Registers | undefined }): void {
    const { ris, imsc, counters, regs } = v;
    this.uartris = ris;
    this.uartimsc = imsc;
    Object.assign(this.counts, counters);
    this.hf[HotF64.BytesOut] = counters.bytesOut;
    this.hf[HotF64.BytesIn] = counters.bytesIn;
    this.hf[HotF64.TxWhileDisabled] = counters.txWhileDisabled;
    if (regs) {
      Object.assign(this.regs, regs);
      this.rto.setDivisor(regs.divisor);
    }
    this.deriveLevels();
    this.ring.refresh();
    this.update(false);
  }

  // ---- the FIFO core ----------------------------------------------------------------------------------------

  private readData(): number {
    if (!this.rxOn) return this.readDataRxOff();
    if (this.loopback) return this.readLoopback();
    const pos = this.hw[HotWord.InCons]! >>> 0; // the IN position of the byte getIn() pops
    const b = this.ring.getIn();
    let errors = 0;
    if (b >= 0) {
      this.hf[HotF64.BytesIn]++;
      if (this.lineEvents) errors = this.takeLineErrors(pos);
    } else if (b === RING_EMPTY) {
      this.counts.emptyDrReads++;
      if (this.logEmpty.wouldLog()) this.logEmpty.log('vpl011: Unexpected IN ring buffer empty');
      else this.logEmpty.skip();
    } else {
      this.pendingNotify = true; // RING_CORRUPT: resynchronised; tell the backend it has space again
    }
    this.update(true);
    // Full -> not full frees space a backend may be waiting for (inLevel uses in_prod loaded after our in_cons).
    if (b >= 0 && this.inLevel === this.ring.inSize - 1) this.pendingNotify = true;
    this.flushNotify();
    return b >= 0 ? b | (errors << DR_ERROR_SHIFT) : 0;
  }

  /**
   * The errors the backend attached to the byte at IN position `pos` (just popped), and RSR for it. Entries for
   * earlier positions (the guest's ring was resynchronised past them) are dropped and counted.
   */
  private takeLineErrors(pos: number): number {
    const q = this.lineEvents!;
    if (q.pending() === 0) {
      this.rsr = 0;
      return 0;
    }
    this.raiseLineErrors(); // received: the error interrupts assert (if the notification has not run yet)
    let bits = 0;
    for (let e = q.peek(); e !== undefined; e = q.peek()) {
      const ahead = (e.pos - pos) | 0;
      if (ahead > 0) break; // a later byte's
      q.take();
      if (ahead === 0) bits |= e.bits;
      else this.counts.staleLineEvents++;
    }
    this.rsr = bits;
    if (bits !== 0) this.counts.rxErrors++;
    return bits;
  }

  /**
   * The error interrupts (TRM 2.8.5, 3.3.12): asserted when a character with an error is received, i.e. when the
   * device first sees the backend's entry; held in RIS until ICR clears them (not re-derived from levels).
   */
  private raiseLineErrors(): void {
    const q = this.lineEvents;
    if (!q || q.pending() === 0) return;
    const head = q.head();
    const tail = q.tail();
    let n = ((this.lineRaised - tail) | 0) > 0 ? this.lineRaised : tail;
    let bits = 0;
    for (; n !== head; n = (n + 1) >>> 0) bits |= q.bitsOf(n);
    this.lineRaised = head;
    if (bits !== 0) this.uartris = this.uartris | (bits << RSR_TO_INT_SHIFT);
  }

  /** pl011 loopback (CR.LBE, TRM 3.3.8): the receiver reads what the transmitter sent, through the receive FIFO. */
  private readLoopback(): number {
    const v = this.loop.pop();
    this.rsr = v < 0 ? 0 : v >> DR_ERROR_SHIFT;
    if (v < 0) {
      this.counts.emptyDrReads++;
      if (this.logEmpty.wouldLog()) this.logEmpty.log('vpl011: DR read with the loopback FIFO empty');
      else this.logEmpty.skip();
    } else if (v >> DR_ERROR_SHIFT !== 0) this.counts.rxErrors++;
    this.update(true);
    return v < 0 ? 0 : v;
  }

  /**
   * pl011 with CR.RXE clear: the receiver is off, so nothing is received; input stays in the ring (the backend is
   * held back by the ring, as by a full FIFO) and appears when RXE is set again. The guest sees RXFE and reads 0.
   */
  private readDataRxOff(): number {
    this.counts.rxWhileDisabled++;
    if (this.logEmpty.wouldLog()) this.logEmpty.log('vpl011: DR read with the receiver disabled (CR.RXE = 0)');
    else this.logEmpty.skip();
    return 0;
  }

  private writeData(byte: number): void {
    if (this.txOff) this.noteTxOff();
    if (this.loopback) {
      // TRM 3.3.8 LBE: UARTTXD is fed through to UARTRXD; the console sees nothing. A full receive FIFO loses the
      // byte and flags an overrun on the next one (TRM 3.3.1 OE), as the hardware would.
      if (this.loop.push(byte, this.fifoDepth)) this.counts.loopedBack++;
      else {
        this.counts.loopbackOverruns++;
        this.uartris = this.uartris | INT.OE;
      }
      this.update(true);
      return;
    }
    const r = this.ring.putOut(byte);
    // r is the OUT level after the push, with out_cons loaded after publishing: 0 when the backend drained our
    // byte concurrently (stored and already consumed, not dropped). Found by test/interleave.test.ts.
    if (r >= 0) {
      this.hf[HotF64.BytesOut]++;
      // OUT reaching half full notifies too: a pacing backend (src/console/backend.ts) drains from there, not from full.
      if (r === 1 || r === this.ring.outSize >> 1 || r === this.ring.outSize) this.pendingNotify = true;
    } else {
      this.counts.txDropped++;
      if (r === RING_CORRUPT) this.pendingNotify = true;
      else if (this.logFull.wouldLog()) this.logFull.log('vpl011: Unexpected OUT ring buffer full');
      else this.logFull.skip();
    }
    this.update(true, true); // a DR write is the one event that sets TXI for every backend
    this.flushNotify();
  }

  /**
   * pl011 DR write with UARTEN or TXE clear. The TRM (3.3.8) says such data is not transmitted until enabled, but
   * Linux's earlycon writes with CR at its reset value (UARTEN = 0) and never enables, and holding bytes back would
   * need a second, unbounded buffer; so the byte goes to the ring as always (QEMU does the same, 68bf5e6909 logs it
   * once). Counted; logged once.
   */
  private noteTxOff(): void {
    this.hf[HotF64.TxWhileDisabled]++;
    if (!this.warnedTxOff) {
      this.warnedTxOff = true;
      this.say('vpl011: data written with CR.UARTEN or CR.TXE clear (sent anyway; logged once)');
    }
  }

  private flushNotify(): void {
    if (this.pendingNotify) {
      this.pendingNotify = false;
      this.counts.notifies++;
      this.notifyPort();
    }
  }

  /**
   * Re-derive FR, RIS and the line from the ring levels (as of the last ring operation or refresh) and the latched
   * state. `event` re-latches every RIS condition that holds (a data event); otherwise RIS bits can only clear
   * (a condition stopped holding). No ring access here: the levels are state, loaded by the data paths.
   */
  private update(event: boolean, txEvent = event && !this.ring.txAlwaysReady): void {
    const ring = this.ring;
    const inL = ring.inLevel;
    const outL = ring.outLevel;
    this.inLevel = inL;
    this.outLevel = outL;

    // The receiver's view of IN: empty while it is off (pl011 CR.RXE = 0); the loopback FIFO in loopback.
    const rxL = !this.rxOn ? 0 : this.loopback ? this.loop.level : inL;
    const txL = this.loopback ? 0 : outL;
    this.advanceReceiveTimeout();
    const cond = this.conditions(rxL, txL);
    // Backend in Xen: only a DR write latches TXI (txEvent), so an ICR-cleared TXI stays clear while input arrives.
    // The error interrupts are events, not levels: only ICR clears them.
    const ris = this.uartris;
    this.uartris = (ris & cond) | (event ? (txEvent ? cond : cond & ~INT.TX) : 0) | (ris & INT_ERRORS);

    this.uartfr = frFromLevels(rxL, txL, this.fifoDepth, this.ring.inSize, this.ring.outSize);

    const level = (this.uartris & this.uartimsc) !== 0;
    if (level !== this.line) {
      this.line = level;
      this.irq.set(level);
    }
  }

  /** The interrupt conditions that hold at these levels (INT bits): the rule update() latches RIS from. */
  /** The INT bits whose condition holds at the receiver's and transmitter's levels (no side effects). */
  private conditions(rxL: number, txL: number): number {
    let cond = 0;
    if (txL <= this.txiMaxOut) cond |= INT.TX;
    if (rxL >= this.rxiMinIn) cond |= INT.RX;
    // RT: sbsa (and pl011 without a clock or a divisor) "data present" as Xen (bb2c1a1cc9); pl011 timed: after 32
    // idle bit periods (rxTimeoutTick), not while waiting for them. Loopback: data present.
    if (rxL > 0 && (this.loopback || this.rtMode !== RtMode.Waiting)) cond |= INT.RT;
    return cond;
  }

  /** pl011 timed receive timeout: a new arrival restarts the 32-bit-period wait (src/device/receive-timeout.ts). */
  private advanceReceiveTimeout(): void {
    if (this.rto.timed) {
      const prod = this.hw[HotWord.InProdSeen]!;
      if (prod !== this.rtProd) {
        this.rtProd = prod;
        this.rto.arrived();
        this.rtMode = RtMode.Waiting;
      } else if (this.rtMode === RtMode.Untimed) {
        // Timing starts (a divisor or the clock arrived): what is waiting already has waited; later arrivals are
        // stamped here, so the native path leaves DR reads to us from now on (it does while the mode is not 0).
        this.rtMode = RtMode.Due;
      }
    } else if (this.rtMode !== RtMode.Untimed) this.rtMode = RtMode.Untimed;
  }

  // ---- refused and unhandled accesses -----------------------------------------------------------------------

  private refuse(dir: 'read' | 'write', offset: number, width: number): typeof MMIO_ABORT {
    this.counts.refusedAccesses++;
    if (this.logWidth.wouldLog()) {
      this.logWidth.log(
        offset === Reg.ICR && dir === 'read' && width !== 8
          ? `vpl011: ICR is write-only (read refused)`
          : `vpl011: bad ${dir} width ${width} offset ${hex(offset)}`,
      );
    } else this.logWidth.skip();
    return MMIO_ABORT;
  }

  private unhandled(dir: 'read' | 'write', offset: number, width: number): void {
    this.counts.unhandledAccesses++;
    if (this.logUnhandled.wouldLog()) this.logUnhandled.log(`vpl011: unhandled ${dir} w${width} offset ${hex(offset)}`);
    else this.logUnhandled.skip();
  }
}
