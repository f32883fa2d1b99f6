// The virtual arch timer (CNTV_*). Unicorn compiles out gt_ctl_write / gt_cval_write / gt_recalc_timer (#if 0, up to
// 2.1.4), so guest writes to CNTV_CTL/CVAL would be dropped and ISTATUS never set. The MSR hook (the only place guest
// writes reach us) keeps CTL and CVAL here and mirrors them, with ISTATUS (bit 2), into QEMU's fields through raw
// CP_REG writes, so an un-hooked MRS CNTV_CTL_EL0 reads the right value. CNTVCT runs from the host monotonic clock.
import { SYS, type Uc } from './unicorn.js';

export const CNTV_CTL_ENABLE = 1n;
export const CNTV_CTL_IMASK = 2n;
export const CNTV_CTL_ISTATUS = 4n;

export class VirtTimer {
  ctl = 0n;
  cval = 0n;
  private mirrored = -1n;
  readonly freq: bigint;

  constructor(private readonly u: Uc) {
    this.freq = u.sys(SYS.CNTFRQ_EL0);
  }

  /** From the MSR hook: returns true if the write was a CNTV register (the hook then skips the instruction's effect). */
  msr(op0: number, op1: number, crn: number, crm: number, op2: number, value: () => bigint): boolean {
    if (op0 !== 3 || op1 !== 3 || crn !== 14 || crm !== 3) return false;
    if (op2 === 1) this.ctl = value() & (CNTV_CTL_ENABLE | CNTV_CTL_IMASK);
    else if (op2 === 2) this.cval = value();
    else if (op2 === 0) this.cval = BigInt.asUintN(64, this.now() + BigInt.asIntN(32, value())); // TVAL: signed 32 bits
    else return false;
    if (op2 !== 1) this.u.setSys(SYS.CNTV_CVAL_EL0, this.cval);
    return true;
  }

  now(): bigint {
    return this.u.sys(SYS.CNTVCT_EL0);
  }

  /**
   * Recompute ISTATUS and the PPI 27 level. Returns the output level and the ticks until expiry (null when the timer
   * is off or already fired).
   */
  poll(): { level: boolean; ticksLeft: bigint | null } {
    const ctl = this.ctl;
    if (!(ctl & CNTV_CTL_ENABLE)) {
      this.mirror(ctl);
      return { level: false, ticksLeft: null };
    }
    const now = this.now();
    const fired = now >= this.cval;
    this.mirror(fired ? ctl | CNTV_CTL_ISTATUS : ctl);
    return { level: fired && !(ctl & CNTV_CTL_IMASK), ticksLeft: fired ? null : this.cval - now };
  }

  private mirror(v: bigint): void {
    if (v !== this.mirrored) {
      this.u.setSys(SYS.CNTV_CTL_EL0, v);
      this.mirrored = v;
    }
  }
}
