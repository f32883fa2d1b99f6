// The vCPU as the VMM sees it, so another backend can replace unicorn, and the unicorn implementation of it.
import { hop } from '../util/hop-trace.js';
import { EXCP, REG, SYS, UC_PROT_EXEC, UC_PROT_READ, Uc, loadUnicorn, xreg, type UnicornLibrary } from './unicorn.js';
import { SyncEntry, dabtSyndrome, type SyncRecord } from './exception.js';
import { VirtTimer } from './timer.js';
import { psciCall, type PsciAction } from './psci.js';
import { ensureSelfTest } from './selftest.js';
import { HCR_EL2_BASE, HCR_EL2_VI, SCR_EL3_VALUE } from './el-registers.js';
import { ExactFaults, faultLayout } from './exact-fault.js';
import { describeSyndrome } from './exception-names.js';
import { loadNative, nativeLibraryPath, nativeMsrFilterEnabled, NativeFastPath, type NativeUartBinding } from './native.js';
import { NativeEntry, nativeExceptionEntryEnabled } from './native-exception.js';
import { widenMmio } from './mmio-width.js';
import type { AccessWidth } from '../xen/mmio.js';

/** Why a run() returned. */
export type RunExit =
  | { kind: 'wfi' }
  | { kind: 'psci'; action: Exclude<PsciAction, 'none'> }
  | { kind: 'stopped' }
  | { kind: 'error'; message: string };

export interface VcpuHooks {
  /** Called at every safe point (between TBs): the machine may raise the IRQ line here. */
  safePoint(): void;
  /**
   * After an MMIO access served in JS outside the vpl011 page: whether it left work that only a safe point does (an
   * IRQ line to raise, a listener to tell). Without it, every such access asks for one. A vpl011 access served in
   * JS always asks (the device's receive timeout and trace switches are looked at there); a queued abort is the
   * vCPU's own.
   */
  needsSafePoint?(): boolean;
  /** MMIO trap: returns the value, or null if the access is refused. Width 8 only from regions mapped `whole`. */
  mmioRead(addr: number, width: AccessWidth): number | null;
  mmioWrite(addr: number, width: AccessWidth, value: number): boolean;
  /** The vpl011 page for the native fast path (used when the library is available and VPL011_NATIVE is not 0). */
  nativeUart?: NativeUartBinding;
}

export interface Vcpu {
  loadMemory(addr: number, data: Uint8Array): void;
  mapRam(addr: number, size: number): void;
  /** Map memory the vCPU does not own, in place (a SharedArrayBuffer, or an external mapping's ArrayBuffer view). */
  mapShared(addr: number, buf: SharedArrayBuffer | ArrayBuffer): void;
  /**
   * Trap accesses to [base, base + size). `whole`: an 8-byte access is one width-8 access (refused or served whole,
   * as by Xen), not two 4-byte halves (unicorn's default, mmio-width.ts).
   */
  mapMmio(base: number, size: number, whole?: boolean): void;
  reset(pc: bigint, x0: bigint): void;
  /** Run until WFI, PSCI off/reset, stop or error. */
  run(): RunExit;
  /** Drive the CPU's IRQ input. Raising is only legal at safe points (inside hooks.safePoint or between runs). */
  setIrq(level: boolean): void;
  /** Inject a data abort for a refused access at the next safe point. */
  queueDataAbort(addr: number, write: boolean): void;
  /** Stop the current run from inside a callback (crash); the machine does not resume afterwards. */
  requestStop(): void;
  readonly timer: VirtTimer;
  readonly stats: { mmio: number; sync: number; hvc: number; irqRaises: number; aborts: number; msr: number };
  close(): void;
}

/** Identical back-to-back synchronous exceptions before the vCPU is declared looping. */
export const SYNC_LOOP_LIMIT = 1000;
/** Re-entries of an exception at its own vector before the vCPU is declared looping (2 already repeat exactly). */
export const VECTOR_LOOP_LIMIT = 3;
/** Exceptions UC_HOOK_INTR reports that are synchronous to an instruction. */
const SYNC_EXCEPTIONS: ReadonlySet<number> = new Set([
  EXCP.UDEF, EXCP.SWI, EXCP.PREFETCH_ABORT, EXCP.DATA_ABORT, EXCP.BKPT, EXCP.HVC,
]);

export class UnicornVcpu implements Vcpu {
  readonly uc: Uc;
  readonly sync: SyncEntry;
  readonly timer: VirtTimer;
  private readonly counts = { mmio: 0, sync: 0, hvc: 0, irqRaises: 0, aborts: 0, msr: 0 };
  /** The native fast path (src/cpu/native.ts), when the machine offered the vpl011 and the library is built. */
  readonly fast: NativeFastPath | null = null;
  private irq = false;
  private hcrVi = false;
  private exit: RunExit | null = null;
  private pendingAbort: { addr: number; write: boolean } | null = null;
  /** Finds the faulting instruction inside an MMIO callback (null: abort at the next safe point instead). */
  private readonly exact: ExactFaults | null;
  /** The access just aborted exactly: its second half (unicorn splits 8 bytes into 2 x 4) is dropped. */
  private abortedAccess: { hostPc: bigint; next: number; write: boolean; high: number } | null = null;
  private readonly sync1: (intno: number) => void;
  private lastSyncPc = -1n;
  private lastSyncEsr = -1;
  private lastSyncFar = -1n;
  private sameSync = 0;

  constructor(libOrPath: UnicornLibrary | string, private readonly hooks: VcpuHooks) {
    const lib = typeof libOrPath === 'string' ? loadUnicorn(libOrPath) : libOrPath;
    ensureSelfTest(lib); // once per thread: refuses an unknown library or a changed internal layout
    // Also on a scratch engine, and before this one exists: closing a second engine while one is alive in the same
    // thread crashed the first one's next MMIO access (measured; unicorn keeps per-thread state).
    faultLayout(lib);
    const u = (this.uc = new Uc(lib));
    u.setSys(SYS.SCR_EL3, SCR_EL3_VALUE);
    u.setSys(SYS.HCR_EL2, HCR_EL2_BASE);
    this.sync = new SyncEntry(u);
    this.exact = ExactFaults.attach(u);
    this.timer = new VirtTimer(u);
    this.sync1 = (intno) => this.onIntr(intno);
    u.hookIntr(this.sync1);
    const nl = loadNative();
    // Exception entry in one native call (~10 koffi calls into unicorn in JS); env->exception read in place.
    if (nl && nativeExceptionEntryEnabled()) this.sync.native = NativeEntry.attach(nativeLibraryPath(), u, this.exact?.envAddress() ?? 0n);
    if (nl && hooks.nativeUart) {
      const t = this.timer;
      this.fast = new NativeFastPath(nl, u, hooks.nativeUart, () => t.nextCheckMs);
    }
    u.hookMsr((op0, op1, crn, crm, op2) => {
      this.counts.msr++;
      const skip = this.timer.msr(op0, op1, crn, crm, op2);
      // A sysreg write ends the TB and no memory access follows before its end: a safe point (docs/UPSTREAM.md §5.2).
      this.safe();
      return skip;
    }, this.fast && nativeMsrFilterEnabled() ? this.fast : undefined);
  }

  private safe(): void {
    this.abortedAccess = null;
    if (this.pendingAbort) this.deliverAbort();
    this.hooks.safePoint();
  }

  private onIntr(intno: number): void {
    if (this.pendingAbort && SYNC_EXCEPTIONS.has(intno)) {
      // A refused access earlier in program order comes first: take its abort instead of this exception, which is
      // taken again when the guest returns (an SVC/HVC leaves PC after itself: rewind to re-execute it). So a user
      // process whose access was refused gets its abort from EL0, as with Xen, not inside the syscall it makes next.
      if (intno === EXCP.SWI || intno === EXCP.HVC) this.uc.setReg(REG.PC, this.uc.reg(REG.PC) - 4n);
      this.deliverAbort();
      this.hooks.safePoint();
      return;
    }
    if (intno === EXCP.HVC) {
      this.counts.hvc++;
      const fid = Number(this.uc.reg(REG.X0) & 0xffffffffn);
      const r = psciCall(fid, this.uc.reg(REG.X0 + 1));
      this.uc.setReg(REG.X0, r.x0);
      if (r.action !== 'none') {
        this.exit = { kind: 'psci', action: r.action };
        this.uc.stop(); // PC already points after the HVC and we never resume: the stop's PC does not matter
        return;
      }
      this.safe();
      return;
    }
    if (intno === EXCP.UDEF || intno === EXCP.SWI || intno === EXCP.PREFETCH_ABORT || intno === EXCP.DATA_ABORT || intno === EXCP.BKPT) {
      this.counts.sync++;
      const prevEntry = this.lastEntry;
      const rec = this.sync.takeFromHook(intno);
      this.noteEntry(rec);
      const isAbort = intno === EXCP.PREFETCH_ABORT || intno === EXCP.DATA_ABORT;
      if (this.looping(prevEntry, rec.syndrome, rec.vaddress, isAbort)) return;
      this.safe();
      return;
    }
    this.exit = { kind: 'error', message: `unhandled exception ${intno} at pc 0x${this.uc.reg(REG.PC).toString(16)}` };
    this.uc.stop();
  }

  /**
   * After an exception was entered (noteEntry done; `prevEntry` the one before): is the vCPU in an exception loop?
   * If so, the run is stopped with an error naming the exception that started it. Every class and every way in
   * (unicorn's INTR hook, an abort this VMM injects for a refused or unmapped access) goes through here.
   */
  private looping(prevEntry: typeof this.lastEntry, syndrome: number, far: bigint, isAbort: boolean): boolean {
    const cur = this.lastEntry!;
    // Any class: the exception is raised by the first instruction of the vector the same exception just went to
    // (an SVC's preferred return is after it), so the handler can never run: a loop, whatever the class. End the
    // domain naming the exception that started it.
    if (prevEntry !== null && cur.pc === prevEntry.vector && syndrome === prevEntry.syndrome) {
      this.loopStart ??= prevEntry;
      if (++this.vectorReentries >= VECTOR_LOOP_LIMIT) {
        const f = this.loopStart;
        return this.stopWith(`exception loop: ${describeSyndrome(f.syndrome)} at pc 0x${f.pc.toString(16)}; its vector at 0x${prevEntry.vector.toString(16)} raises it again`);
      }
    } else {
      this.loopStart = null;
      this.vectorReentries = 0;
    }
    // A vector that faults again at the same place, address and syndrome would loop forever: crash the domain.
    // Only aborts count: an SVC or a trapped instruction at one PC can legitimately repeat without end (a loop of
    // write() calls, an emulated MRS in a loop), because their handlers return past the instruction.
    if (isAbort && cur.pc === this.lastSyncPc && syndrome === this.lastSyncEsr && far === this.lastSyncFar) {
      if (++this.sameSync >= SYNC_LOOP_LIMIT) {
        return this.stopWith(`exception loop: ${SYNC_LOOP_LIMIT} identical aborts (ESR 0x${syndrome.toString(16)}, FAR 0x${far.toString(16)}) at pc 0x${cur.pc.toString(16)}`);
      }
    } else {
      this.lastSyncPc = isAbort ? cur.pc : -1n;
      this.lastSyncEsr = syndrome;
      this.lastSyncFar = far;
      this.sameSync = 0;
    }
    return false;
  }

  private stopWith(message: string): true {
    this.exit = { kind: 'error', message };
    this.uc.stop();
    return true;
  }

  private deliverAbort(): void {
    const a = this.pendingAbort!;
    this.pendingAbort = null;
    this.counts.aborts++;
    const fromEl = Number((this.uc.reg(REG.PSTATE) >> 2n) & 3n);
    const prevEntry = this.lastEntry;
    const entered = this.sync.enter('sync', dabtSyndrome(fromEl, a.write), BigInt(a.addr));
    this.noteEntry(entered);
    this.looping(prevEntry, entered.syndrome, BigInt(a.addr), true);
  }

  loadMemory(addr: number, data: Uint8Array): void {
    this.uc.memWrite(addr, data);
  }
  mapRam(addr: number, size: number): void {
    this.uc.memMap(addr, size);
  }
  /** Read-only, executable memory (firmware in flash); loadMemory still fills it. */
  mapRom(addr: number, size: number): void {
    this.uc.memMap(addr, size, UC_PROT_READ | UC_PROT_EXEC);
  }
  mapShared(addr: number, buf: SharedArrayBuffer | ArrayBuffer): void {
    this.uc.memMapPtr(addr, buf);
  }
  mapMmio(base: number, size: number, whole = false): void {
    const h = this.hooks;
    const st = this.counts;
    const fast = this.fast;
    const uartPage = fast !== null && base === fast.uart.base;
    const read = (off: number, sz: number): number | bigint => {
      st.mmio++;
      this.inMmio = true;
      let v: number | null;
      try {
        v = h.mmioRead(base + off, sz as AccessWidth);
      } finally {
        this.inMmio = false;
      }
      const r = v === null ? this.refusedAccess(base + off, false, sz) : v >>> 0;
      fast?.afterJsTrip(uartPage || this.safePointDue());
      return r;
    };
    const write = (off: number, sz: number, v: number): void => {
      st.mmio++;
      this.inMmio = true;
      let ok: boolean;
      try {
        ok = h.mmioWrite(base + off, sz as AccessWidth, v >>> 0);
      } finally {
        this.inMmio = false;
      }
      if (!ok) this.refusedAccess(base + off, true, sz);
      fast?.afterJsTrip(uartPage || this.safePointDue());
    };
    if (fast && base === fast.uart.base) fast.mapUart(size, read, write);
    else this.uc.mmioMap(base, size, read, write);
    if (whole) this.wholeMmio.push(base);
  }
  /** Regions mapped `whole`, widened (mmio-width.ts) together before the first run: one walk of unicorn's list. */
  private readonly wholeMmio: number[] = [];
  /**
   * Whether the native MSR filter must pass the next MSR to JS after a JS MMIO trip: an abort queued for the next
   * safe point, or the machine's own work (needsSafePoint). An idle Linux wake makes 3 GIC accesses (IAR, EOIR, IAR):
   * asking after each sent 2 more MSRs per wake through koffi into JS for nothing (the ack lowers the line at once).
   */
  private safePointDue(): boolean {
    return this.pendingAbort !== null || (this.hooks.needsSafePoint?.() ?? true);
  }

  /** Traps and MSR hooks, those the native fast path served included. */
  get stats(): { mmio: number; sync: number; hvc: number; irqRaises: number; aborts: number; msr: number; nativeMmio: number; msrPassed: number } {
    const c = this.counts;
    const n = this.fast?.counters();
    return { ...c, mmio: c.mmio + (n?.nativeMmio ?? 0), msr: n ? n.msrTotal : c.msr, nativeMmio: n?.nativeMmio ?? 0, msrPassed: c.msr };
  }
  reset(pc: bigint, x0: bigint): void {
    this.uc.setReg(REG.PC, pc);
    this.uc.setReg(REG.X0, x0);
    this.uc.setReg(REG.PSTATE, 0x3c5n);
  }
  setIrq(level: boolean): void {
    this.irq = level;
    if (level !== this.hcrVi) {
      this.hcrVi = level;
      if (level) this.counts.irqRaises++;
      hop(level ? 'irq1' : 'irq0');
      // Writing HCR_EL2.VI runs arm_cpu_update_virq -> cpu_interrupt(VIRQ); QEMU then takes the IRQ itself at the next
      // TB boundary when PSTATE.I = 0. Raising requests a TB exit, so only at safe points (docs/UPSTREAM.md §5.2).
      this.uc.setSys(SYS.HCR_EL2, HCR_EL2_BASE | (level ? HCR_EL2_VI : 0n));
    }
  }
  get irqLevel(): boolean {
    return this.irq;
  }
  /**
   * A refused access under 'abort', inside its MMIO callback: take the data abort at the accessing instruction, as
   * Xen does (ELR on it, ESR with the instruction's ISS where QEMU recorded one, FAR the address), by rewinding PC
   * with exact-fault.ts and entering the vector from here: writing PC in a callback makes the TB exit right after
   * this access, so nothing after it executes. A refused load gets its register's old value back (a W load still
   * zero-extends it), so the destination is left as it was, as when the instruction does not complete.
   * Without an exact site, the abort is queued for the next safe point (queueDataAbort).
   */
  private refusedAccess(addr: number, write: boolean, width: number): number | bigint {
    const prev = this.abortedAccess;
    if (prev && addr === prev.next && write === prev.write && this.exact?.hostPc() === prev.hostPc) {
      this.abortedAccess = null; // the second half of the access just aborted (a region not mapped `whole`)
      return prev.high;
    }
    const site = this.exact?.locate() ?? null;
    if (!site) {
      this.queueDataAbort(addr, write);
      return 0;
    }
    this.counts.aborts++;
    const fromEl = Number((this.uc.reg(REG.PSTATE) >> 2n) & 3n);
    // ISV, SAS, SSE, SRT, SF, AR (ISS bits 24..14) only when the instruction recorded a valid syndrome (ISV).
    const iss = (site.syndrome & (1 << 24)) !== 0 ? site.syndrome & 0x1ffc000 : 0;
    let old = 0n;
    if (!write && iss !== 0) {
      const srt = (iss >>> 16) & 31;
      old = srt === 31 ? 0n : this.uc.reg(xreg(srt));
    }
    const prevEntry = this.lastEntry;
    const entered = this.sync.enter('sync', (dabtSyndrome(fromEl, write) | iss) >>> 0, BigInt(addr));
    this.noteEntry(entered);
    this.looping(prevEntry, entered.syndrome, BigInt(addr), true);
    this.abortedAccess = { hostPc: site.hostPc, next: addr + 4, write, high: Number((old >> 32n) & 0xffffffffn) };
    // A whole 8-byte load gets all of its register back; a 4-byte half only the low word (the next half the rest).
    return width === 8 ? old : Number(old & 0xffffffffn);
  }

  /** Exceptions raised again by the first instruction of their own vector, in a row, and the one that began it. */
  private vectorReentries = 0;
  private loopStart: { pc: bigint; syndrome: number; vector: bigint } | null = null;
  /** The last exception entered by hand and the vector it went to (PC right after the entry). */
  private lastEntry: { pc: bigint; syndrome: number; vector: bigint } | null = null;
  private noteEntry(e: SyncRecord): void {
    // pc: the instruction's own address (an SVC/HVC/SMC's preferred return is the next one).
    const ec = e.syndrome >>> 26;
    const insn = ec === 0x15 || ec === 0x16 || ec === 0x17 ? e.pc - 4n : e.pc;
    this.lastEntry = { pc: insn, syndrome: e.syndrome, vector: e.vector };
  }

  /**
   * The timer or the IRQ state was loaded from outside a run (a restored domain): the native MSR filter takes the
   * new timer deadline and passes the next MSR to JS, so the first safe point comes at once.
   */
  stateLoaded(): void {
    this.fast?.refreshTimerCheck();
    this.fast?.wantSafePoint();
  }

  /** A refused access whose abort waits for the next safe point (save/restore: pending exception state). */
  get queuedAbort(): { addr: number; write: boolean } | null {
    return this.pendingAbort ? { ...this.pendingAbort } : null;
  }

  queueDataAbort(addr: number, write: boolean): void {
    // 2.1.1 cannot give the faulting PC inside an MMIO callback (see docs/CPU.md): the abort is taken at the next
    // safe point, with ELR there. Only the first refused access before that point is reported.
    if (!this.pendingAbort) this.pendingAbort = { addr, write };
  }
  /** True while a guest MMIO access is being served (inside its callback). */
  private inMmio = false;

  /**
   * Leave uc_emu_start so that the run can be resumed exactly (a save, docs/SAVE.md). At a safe point (a hook
   * between TBs, the MSR hook) a plain stop does it. Inside an MMIO callback a plain stop cannot: 2.1.1 rewinds PC
   * to the TB start with registers already updated (unicorn-notes §3), so a resumed run would repeat the access.
   * There, the accessing instruction is found (exact-fault.ts) and PC written past it before stopping: writing PC
   * in a callback makes the TB exit right after this access (docs/CPU.md), the access completes (a load gets its
   * value), and the run resumes at the next instruction. Only for an access the instruction makes in one callback
   * (a recorded syndrome of at most 4 bytes: unicorn splits 8 bytes in two). Returns false when it cannot stop
   * here; the caller asks again at the next chance.
   */
  requestPause(): boolean {
    if (!this.inMmio) {
      this.requestStop();
      return true;
    }
    const site = this.exact?.locate() ?? null;
    if (site === null) return false;
    const isv = (site.syndrome & (1 << 24)) !== 0;
    const sas = (site.syndrome >>> 22) & 3;
    if (!isv || sas === 3) return false;
    this.uc.setReg(REG.PC, site.pc + 4n);
    this.requestStop(); // after the PC write, which would otherwise clear the stop request
    return true;
  }

  requestStop(): void {
    if (!this.exit) this.exit = { kind: 'stopped' };
    this.uc.stop();
  }
  run(): RunExit {
    if (this.wholeMmio.length > 0) {
      // The self-test proved this on the same library (proveWholeMmio): failing here is an internal error.
      const why = widenMmio(this.uc, this.wholeMmio.splice(0));
      if (why) throw new Error(`whole 64-bit MMIO accesses: ${why}`);
    }
    this.exit = null;
    this.abortedAccess = null;
    if (this.pendingAbort) this.deliverAbort();
    const e = this.uc.start(this.uc.reg(REG.PC));
    if (this.exit) return this.exit;
    if (e !== 0) {
      const pc = this.uc.reg(REG.PC);
      const first = this.lastEntry;
      // Stopped at the vector the last exception went to: the guest could not take that exception (no vector table,
      // a vector in unmapped memory). Name the exception, not the vector fetch that followed it.
      if (first !== null && pc === first.vector) {
        return { kind: 'error', message: `${describeSyndrome(first.syndrome)} at pc 0x${first.pc.toString(16)} could not be taken: its vector at 0x${pc.toString(16)} failed (unicorn: ${this.uc.strerror(e)})` };
      }
      return { kind: 'error', message: `unicorn: ${this.uc.strerror(e)} at pc 0x${pc.toString(16)}` };
    }
    // uc_emu_start returns by itself only at WFI (EXCP_HLT), PC after the WFI.
    return { kind: 'wfi' };
  }
  close(): void {
    this.uc.close();
    this.fast?.close();
  }
}
