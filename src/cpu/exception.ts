// The hand-made synchronous exception entry (EL0/EL1 -> EL1h). Unicorn hands every synchronous exception to
// UC_HOOK_INTR and then drops it: do_interrupt never runs, so ESR/FAR/ELR/SPSR are never written and PC is not
// moved to the vector (docs/UPSTREAM.md §5.1). We do the architectural entry ourselves (Arm ARM D1.10.2).
import { REG, SYS, type Uc } from './unicorn.js';

/**
 * Offsets inside CPUARMState (qemu/target/arm/cpu.h, byte-identical in unicorn 2.0.1 and 2.1.1). The syndrome and
 * fault address have no public API in 2.1.1, so they are read from a uc_context copy of the env; selftest.ts proves
 * these offsets on the loaded library before any guest runs.
 */
export interface EnvLayout {
  XREGS: number; PC: number; PSTATE: number; AARCH64: number; EXC_SYNDROME: number; EXC_VADDRESS: number; EXC_TARGET_EL: number;
}
export const ENV: Readonly<EnvLayout> = { XREGS: 64, PC: 320, PSTATE: 328, AARCH64: 332, EXC_SYNDROME: 3024, EXC_VADDRESS: 3032, EXC_TARGET_EL: 3040 };

/** PSTATE after entry: EL1h with D, A, I, F masked (0x3c5). */
export const PSTATE_EL1H_MASKED = 0x3c5n;

export interface SyncRecord {
  syndrome: number;
  vaddress: bigint;
  targetEl: number;
  fromEl: number;
  pc: bigint;
}

/**
 * Find where CPUARMState starts inside the uc_context blob: uc_context's header grew a field in 2.1.0 (716c8f1c,
 * snapshot_level), moving the env from byte 16 to 20. Write sentinels to X0..X2, save, and search; the match must
 * be unique and the env's pc and aarch64 fields must agree with the API.
 */
export function findEnvOffset(u: Uc, ctx: unknown, bytes: Uint8Array): number {
  const ids = [REG.X0, REG.X0 + 1, REG.X0 + 2];
  const saved = ids.map((r) => u.reg(r));
  const sent = [0x5eed0123456789abn, 0xa5a5f00dcafe0001n, 0x1122334455667788n];
  sent.forEach((v, i) => u.setReg(ids[i]!, v));
  u.contextSave(ctx);
  const pat = new Uint8Array(24);
  const pv = new DataView(pat.buffer);
  sent.forEach((v, i) => pv.setBigUint64(8 * i, v, true));
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const pos = buf.indexOf(pat);
  const again = pos >= 0 ? buf.indexOf(pat, pos + 1) : -1;
  saved.forEach((v, i) => u.setReg(ids[i]!, v));
  if (pos < 0 || again >= 0) throw new Error('cpu self-test: cannot locate CPUARMState in uc_context (sentinel search)');
  const off = pos - ENV.XREGS;
  const dv = new DataView(bytes.buffer, bytes.byteOffset + off);
  if (dv.getBigUint64(ENV.PC, true) !== u.reg(REG.PC)) throw new Error('cpu self-test: env.pc does not match PC');
  if (dv.getUint32(ENV.AARCH64, true) !== 1) throw new Error('cpu self-test: env.aarch64 is not 1');
  return off;
}

/** Vector offsets from VBAR_EL1 (Arm ARM D1.10.2, table "Vector offsets"). */
export function vectorOffset(fromEl: number, spx: boolean, kind: 'sync' | 'irq' | 'serror'): bigint {
  const base = fromEl === 0 ? 0x400n : spx ? 0x200n : 0n;
  return base + (kind === 'sync' ? 0n : kind === 'irq' ? 0x80n : 0x180n);
}

export class SyncEntry {
  private readonly ctx: unknown;
  private readonly env: DataView;
  readonly envOffset: number;

  constructor(
    private readonly u: Uc,
    envOffset?: number,
    private readonly layout: Readonly<EnvLayout> = ENV,
  ) {
    const { ctx, bytes } = u.contextAlloc();
    this.ctx = ctx;
    this.envOffset = envOffset ?? findEnvOffset(u, ctx, bytes);
    this.env = new DataView(bytes.buffer, bytes.byteOffset + this.envOffset);
  }

  /**
   * Read env->exception. Only valid inside UC_HOOK_INTR: on its way out uc_emu_start re-walks a TB lookup that
   * overwrites env->exception (docs/UPSTREAM.md §5.1).
   */
  readException(): { syndrome: number; vaddress: bigint; targetEl: number } {
    this.u.contextSave(this.ctx);
    return {
      syndrome: this.env.getUint32(this.layout.EXC_SYNDROME, true),
      vaddress: this.env.getBigUint64(this.layout.EXC_VADDRESS, true),
      targetEl: this.env.getUint32(this.layout.EXC_TARGET_EL, true),
    };
  }

  /** Take the pending synchronous exception (from inside UC_HOOK_INTR) to EL1. */
  takeFromHook(intno: number): SyncRecord {
    const e = this.readException();
    const hasFar = intno === 3 || intno === 4; // EXCP_PREFETCH_ABORT, EXCP_DATA_ABORT
    return this.enter('sync', e.syndrome, hasFar ? e.vaddress : undefined, e.targetEl);
  }

  /**
   * The architectural entry to EL1h, in the order 2.1.x needs: PSTATE first (pstate_write only: it neither banks SP
   * nor rebuilds hflags), SP banking through the SP_EL0/SP_EL1 registers, then CP_REG writes (SPSR, ESR, FAR), each of
   * which runs arm_rebuild_hflags() on 2.1.x (a24e53d7) so that the cached EL/MMU index follow the new PSTATE.
   * PC on entry to the hook is already the preferred return address (after SVC/HVC, at the faulting instruction).
   */
  enter(kind: 'sync' | 'irq' | 'serror', syndrome: number, far: bigint | undefined, targetEl = 1): SyncRecord {
    const u = this.u;
    const pstate = u.reg(REG.PSTATE) & 0xffffffffn;
    const pc = u.reg(REG.PC);
    const fromEl = Number((pstate >> 2n) & 3n);
    const spx = (pstate & 1n) !== 0n;
    const vbar = u.sys(SYS.VBAR_EL1);
    if (!spx) {
      u.setReg(REG.SP_EL0, u.reg(REG.SP));
      u.setReg(REG.SP, u.reg(REG.SP_EL1));
    }
    u.setReg(REG.PSTATE, PSTATE_EL1H_MASKED);
    u.setReg(REG.ELR_EL1, pc);
    u.setSys(SYS.SPSR_EL1, pstate);
    u.setSys(SYS.ESR_EL1, syndrome >>> 0);
    if (far !== undefined) u.setSys(SYS.FAR_EL1, far);
    u.setReg(REG.PC, vbar + vectorOffset(fromEl, spx, kind));
    return { syndrome, vaddress: far ?? 0n, targetEl, fromEl, pc };
  }
}

/**
 * ESR for a data abort Xen injects on a refused MMIO access (inject_dabt_exception): EC 0x24 (lower EL) or 0x25
 * (same EL), IL = 1, ISV = 0 (we cannot give a syndrome for an access we did not decode), WnR, DFSC 0x10
 * (synchronous external abort, not on a translation table walk).
 */
export function dabtSyndrome(fromEl: number, write: boolean): number {
  const ec = fromEl === 0 ? 0x24 : 0x25;
  return ((ec << 26) | (1 << 25) | (write ? 1 << 6 : 0) | 0x10) >>> 0;
}
