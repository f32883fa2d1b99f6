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
// LCR_H (FEN), CR, IFLS, DMACR RAZ/WI. The ring is still the FIFO (FR from the ring levels, as sbsa); only the
// interrupt thresholds change: TXI/RXI compare the levels, seen through a 32-byte FIFO window, with IFLS
// (depth 1 when LCR_H.FEN = 0). RTI = "data present" as upstream (there is no time to time out). CR.RXE = 0 holds
// input in the ring (never dropped); UARTEN/TXE = 0 do not stop TX (earlycon never sets UARTEN).

import {
  MMIO_ABORT,
  MMIO_DONE,
  RING_CORRUPT,
  RING_EMPTY,
  type AccessWidth,
  type ConsolePort,
  type IrqLine,
  type MmioHandler,
  type MmioWriteResult,
  type Notifier,
} from './ports.js';
import { RateLimitedLog, type LogSink } from '../util/ratelimit.js';
import { hex as hexDigits } from '../util/hex.js';
import { HotF64, HotWord } from './hot-state.js';
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
  private warnedLoopback = false;

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
    switch (offset) {
      case Reg.DR:
        if (width === 8) return this.refuse('read', offset, width);
        return this.readData() & (width === 1 ? 0xff : 0xffff); // a byte; no error bits (Xen never sets OE/BE/PE/FE)
      case Reg.FR:
        if (width === 8) return this.refuse('read', offset, width);
        return width === 1 ? this.uartfr & 0xff : this.uartfr; // FR is kept current by every event
      case Reg.RSR:
        if (width === 8) return this.refuse('read', offset, width);
        return 0; // no physical errors
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

  write(offset: number, width: AccessWidth, value: number): MmioWriteResult {
    switch (offset) {
      case Reg.DR:
        if (width === 8) return this.refuse('write', offset, width);
        this.writeData(value & DR_DATA_MASK);
        return MMIO_DONE;
      case Reg.RSR:
        if (width === 8) return this.refuse('write', offset, width);
        return MMIO_DONE; // ECR: nothing to clear
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
      return;
    }
    const r = this.regs;
    if ((r.lcrh & LCRH.FEN) !== 0) {
      // A 32-byte virtual FIFO (TRM 2.1, r1p5) over the ring: TX sees the last 32 bytes of OUT space, so TXI means
      // "at least 32 - trigger bytes free" and a driver that writes that many blindly (Linux: fifosize/2 per TXI)
      // never overflows; RX sees the first 32 bytes of IN, so RXI means "at least trigger bytes to read".
      this.txiMaxOut = this.ring.outSize - PL011_FIFO_SIZE + iflsTriggerBytes(r.ifls);
      this.rxiMinIn = iflsTriggerBytes(r.ifls >> IFLS_RX_SHIFT);
    } else {
      // Character mode (TRM 2.4.3): a 1-byte holding register. TXI while one more byte fits; RXI on one byte.
      this.txiMaxOut = this.ring.outSize - 1;
      this.rxiMinIn = 1;
    }
    this.rxOn = (r.cr & CR.RXE) !== 0;
    this.txOff = (r.cr & (CR.UARTEN | CR.TXE)) !== (CR.UARTEN | CR.TXE);
    if ((r.cr & CR.LBE) !== 0 && !this.warnedLoopback) {
      this.warnedLoopback = true;
      this.say('vpl011: loopback (CR.LBE) is not emulated; data still goes to the console');
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
    this.update(true);
    this.flushNotify();
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
    if (regs) Object.assign(this.regs, regs);
    this.deriveLevels();
    this.ring.refresh();
    this.update(false);
  }

  // ---- the FIFO core ----------------------------------------------------------------------------------------

  private readData(): number {
    if (!this.rxOn) return this.readDataRxOff();
    const b = this.ring.getIn();
    if (b >= 0) {
      this.hf[HotF64.BytesIn]++;
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
    return b >= 0 ? b : 0;
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

    // The receiver's view of IN: empty while it is off (pl011 CR.RXE = 0).
    const rxL = this.rxOn ? inL : 0;
    let cond = 0;
    if (outL <= this.txiMaxOut) cond |= INT.TX;
    if (rxL >= this.rxiMinIn) cond |= INT.RX;
    if (rxL > 0) cond |= INT.RT; // "receive timeout" = data present (bb2c1a1cc9): no time to time out here
    // Backend in Xen: only a DR write latches TXI (txEvent), so an ICR-cleared TXI stays clear while input arrives.
    this.uartris = (this.uartris & cond) | (event ? (txEvent ? cond : cond & ~INT.TX) : 0);

    let fr = 0;
    if (rxL === 0) fr |= FR.RXFE;
    else if (rxL === this.ring.inSize) fr |= FR.RXFF;
    if (outL === 0) fr |= FR.TXFE;
    else if (outL === this.ring.outSize) fr |= FR.TXFF | FR.BUSY;
    this.uartfr = fr;

    const level = (this.uartris & this.uartimsc) !== 0;
    if (level !== this.line) {
      this.line = level;
      this.irq.set(level);
    }
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
