// The virtual arch timer (CNTV_*). Unicorn compiles out gt_ctl_write / gt_cval_write / gt_recalc_timer (#if 0, up to
// 2.1.4), so guest writes to CNTV_CTL/CVAL would be dropped and ISTATUS never set. The MSR hook (the only place guest
// writes reach us) keeps CTL and CVAL here and mirrors them, with ISTATUS (bit 2), into QEMU's fields through raw
// CP_REG writes, so an un-hooked MRS CNTV_CTL_EL0 reads the right value. CNTVCT runs from the host monotonic clock.
//
// Cost (docs/PERF.md): poll() runs at every safe point (every MSR: ~120k per boot, and every `msr daif` of a guest
// spinlock). Reading CNTVCT is a CP_REG uc_reg_read through koffi (~1 us), so poll() first predicts the counter from
// performance.now() (the same CLOCK_MONOTONIC, ~30 ns) with the offset learnt at the last real read, and reads the
// real counter only when the prediction is within MARGIN_MS of the deadline. The decision to fire is always taken
// on unicorn's own counter (what the guest reads), never on the prediction, so the interrupt is never early; and a
// fired timer stays fired until CTL or CVAL change (the counter only goes up), so that case reads nothing.
import { performance } from 'node:perf_hooks';
import { SYS, type SysReg, type Uc } from './unicorn.js';

export const CNTV_CTL_ENABLE = 1n;
export const CNTV_CTL_IMASK = 2n;
export const CNTV_CTL_ISTATUS = 4n;

/** How close to the predicted deadline poll() reads the real counter: far above any prediction error (~1 us). */
const MARGIN_MS = 0.05;

/** CNTVOFF_EL2: the VMM's offset between the physical and the guest's virtual counter (restore sets it). */
const CNTVOFF_EL2: SysReg = { op0: 3, op1: 4, crn: 14, crm: 0, op2: 3 };

export class VirtTimer {
  ctl = 0n;
  cval = 0n;
  private mirrored = -1n;
  readonly freq: bigint;
  private readonly ticksPerMs: number;
  /** The last real counter read and when (performance.now()) it was taken: the prediction's base. */
  private baseCount = 0n;
  private baseMs = 0;
  /** performance.now() at which the counter is predicted to reach cval (Infinity: timer off or fired). */
  private deadlineMs = Infinity;
  /** CVAL has been reached (and CTL/CVAL not written since): the level needs no counter read. */
  private fired = false;
  /** Real counter reads (CP_REG) done by poll(), for the profile. */
  counterReads = 0;

  constructor(private readonly u: Uc) {
    this.freq = u.sys(SYS.CNTFRQ_EL0);
    this.ticksPerMs = Number(this.freq) / 1000;
    if (!(this.ticksPerMs > 0)) throw new Error(`timer: CNTFRQ_EL0 is ${this.freq}`);
    this.readCounter();
  }

  /**
   * From the MSR hook: returns true if the write was a CNTV register (the hook then skips the instruction's effect).
   * The value is read from the hook's cp_reg (Uc.msrValue) only for those registers.
   */
  msr(op0: number, op1: number, crn: number, crm: number, op2: number): boolean {
    if (op0 !== 3 || op1 !== 3 || crn !== 14 || crm !== 3) return false;
    if (op2 === 1) this.ctl = this.u.msrValue() & (CNTV_CTL_ENABLE | CNTV_CTL_IMASK);
    else if (op2 === 2) this.cval = this.u.msrValue();
    else if (op2 === 0) this.cval = BigInt.asUintN(64, this.now() + BigInt.asIntN(32, this.u.msrValue())); // TVAL: signed 32 bits
    else return false;
    if (op2 !== 1) this.u.setSys(SYS.CNTV_CVAL_EL0, this.cval);
    this.fired = false;
    this.predict();
    return true;
  }

  /** What a saved domain keeps of the timer (docs/SAVE.md): CTL (without ISTATUS), CVAL, and the counter now. */
  state(): { ctl: bigint; cval: bigint; counter: bigint } {
    return { ctl: this.ctl, cval: this.cval, counter: this.now() };
  }

  /**
   * Restore a saved timer into a fresh engine: the guest's virtual counter continues from `counter` (CNTVOFF_EL2 =
   * the physical count now minus it, modulo 2^64), so the time the domain spent saved is not seen by the guest, and
   * CTL/CVAL are as they were (ISTATUS is re-derived by the next poll()).
   */
  load(s: { ctl: bigint; cval: bigint; counter: bigint }): void {
    this.u.setSys(CNTVOFF_EL2, 0n);
    const physical = this.u.sys(SYS.CNTVCT_EL0);
    this.u.setSys(CNTVOFF_EL2, BigInt.asUintN(64, physical - s.counter));
    this.ctl = s.ctl & (CNTV_CTL_ENABLE | CNTV_CTL_IMASK);
    this.cval = BigInt.asUintN(64, s.cval);
    this.u.setSys(SYS.CNTV_CVAL_EL0, this.cval);
    this.fired = false;
    this.mirrored = -1n;
    this.readCounter();
    this.predict();
  }

  /** The real counter (unicorn's CNTVCT_EL0, what the guest reads). */
  now(): bigint {
    return this.readCounter();
  }

  private readCounter(): bigint {
    const t = performance.now();
    const c = this.u.sys(SYS.CNTVCT_EL0);
    this.baseMs = t;
    this.baseCount = c;
    return c;
  }

  private predict(): void {
    this.deadlineMs = this.fired || !(this.ctl & CNTV_CTL_ENABLE) ? Infinity : this.baseMs + Number(this.cval - this.baseCount) / this.ticksPerMs;
  }

  /** Recompute ISTATUS and returns the PPI 27 level (enabled, CVAL reached, not masked). */
  poll(): boolean {
    const ctl = this.ctl;
    if (!(ctl & CNTV_CTL_ENABLE)) {
      this.mirror(ctl);
      return false;
    }
    if (!this.fired) {
      if (performance.now() < this.deadlineMs - MARGIN_MS) {
        this.mirror(ctl);
        return false;
      }
      this.counterReads++;
      if (this.readCounter() >= this.cval) this.fired = true;
      this.predict(); // re-based on the read just made
      if (!this.fired) {
        this.mirror(ctl);
        return false;
      }
    }
    this.mirror(ctl | CNTV_CTL_ISTATUS);
    return !(ctl & CNTV_CTL_IMASK);
  }

  /** performance.now() from which poll() must run (the native MSR filter passes MSRs to JS from then); Infinity: none. */
  get nextCheckMs(): number {
    return this.deadlineMs - MARGIN_MS;
  }

  /** For a vCPU idle in WFI: milliseconds (fractional) until the timer fires, or null if it is off or has fired. */
  msUntilDeadline(): number | null {
    if (this.fired || !(this.ctl & CNTV_CTL_ENABLE)) return null;
    return Math.max(0, this.deadlineMs - performance.now());
  }

  private mirror(v: bigint): void {
    if (v !== this.mirrored) {
      this.u.setSys(SYS.CNTV_CTL_EL0, v);
      this.mirrored = v;
    }
  }
}
