// The vCPU's guest-observable register state, for save/restore (docs/SAVE.md): every register unicorn 2.1.1's
// arm64.h names that an EL0/EL1 guest can read (X0..X30, SP, PC, PSTATE with NZCV/DAIF/EL/SPSel, SP_EL0/SP_EL1,
// Q0..Q31, FPCR, FPSR) and the EL0/EL1 system registers through UC_ARM64_REG_CP_REG. The virtual timer's CTL/CVAL
// and the virtual counter are the timer's (timer.ts, VirtTimer.state()); HCR_EL2, SCR_EL3 and CNTVOFF_EL2 are the
// VMM's own (set at build, and the counter offset at restore), not the guest's.
//
// Values are kept as lowercase hex strings (a JSON-safe form that cannot lose bits); the register set is fixed, so
// a saved state with a missing or an unknown register is refused rather than half-applied.
//
// Left out, on purpose: registers that read through an unsupported path on 2.1.1 (OSDLR_EL1 aborts the process with
// an assertion when read: raw_read of a register without a field), the OS lock, AArch32-only banked state (the
// guests here are AArch64 at EL0 and EL1), the exclusive monitor (unicorn has no API for it; a lost monitor only
// makes one STXR fail, which the architecture allows at any time and every guest retries).
import { REG, SYS, xreg, type SysReg, type Uc } from './unicorn.js';

const sr = (op0: number, op1: number, crn: number, crm: number, op2: number): SysReg => ({ op0, op1, crn, crm, op2 });

/** UC_ARM64_REG_Q0 (arm64.h): Q0..Q31 are consecutive. */
const REG_Q0 = 104;
const REG_FPCR = 291;
const REG_FPSR = 292;

/** 64-bit core registers by unicorn id, in the order they are written back (PSTATE before the banked SPs). */
const CORE: ReadonlyArray<readonly [string, number]> = [
  ['pstate', REG.PSTATE],
  ['sp_el0', REG.SP_EL0],
  ['sp_el1', REG.SP_EL1],
  ['sp', REG.SP],
  ...Array.from({ length: 31 }, (_, n) => [`x${n}`, xreg(n)] as const),
  ['pc', REG.PC],
  ['fpcr', REG_FPCR],
  ['fpsr', REG_FPSR],
];

/** EL0/EL1 system registers (Arm ARM encodings), checked readable on 2.1.1's Cortex-A72 model by test/save-cpu. */
export const SAVED_SYSREGS: Readonly<Record<string, SysReg>> = {
  sctlr_el1: sr(3, 0, 1, 0, 0),
  actlr_el1: sr(3, 0, 1, 0, 1),
  cpacr_el1: sr(3, 0, 1, 0, 2),
  ttbr0_el1: sr(3, 0, 2, 0, 0),
  ttbr1_el1: sr(3, 0, 2, 0, 1),
  tcr_el1: sr(3, 0, 2, 0, 2),
  spsr_el1: SYS.SPSR_EL1,
  elr_el1: SYS.ELR_EL1,
  afsr0_el1: sr(3, 0, 5, 1, 0),
  afsr1_el1: sr(3, 0, 5, 1, 1),
  esr_el1: SYS.ESR_EL1,
  far_el1: SYS.FAR_EL1,
  par_el1: sr(3, 0, 7, 4, 0),
  mair_el1: sr(3, 0, 10, 2, 0),
  amair_el1: sr(3, 0, 10, 3, 0),
  vbar_el1: SYS.VBAR_EL1,
  contextidr_el1: sr(3, 0, 13, 0, 1),
  tpidr_el1: sr(3, 0, 13, 0, 4),
  cntkctl_el1: sr(3, 0, 14, 1, 0),
  csselr_el1: sr(3, 2, 0, 0, 0),
  tpidr_el0: sr(3, 3, 13, 0, 2),
  tpidrro_el0: sr(3, 3, 13, 0, 3),
  mdscr_el1: sr(2, 0, 0, 2, 2),
  pmcr_el0: sr(3, 3, 9, 12, 0),
  pmcntenset_el0: sr(3, 3, 9, 12, 1),
  pmselr_el0: sr(3, 3, 9, 12, 5),
  pmuserenr_el0: sr(3, 3, 9, 14, 0),
  pmintenset_el1: sr(3, 0, 9, 14, 1),
  pmovsset_el0: sr(3, 3, 9, 14, 3),
  pmccfiltr_el0: sr(3, 3, 14, 15, 7),
  cntp_ctl_el0: sr(3, 3, 14, 2, 1),
  cntp_cval_el0: sr(3, 3, 14, 2, 2),
  ...Object.fromEntries(
    [0, 1, 2, 3, 4, 5].flatMap((n) => [
      [`dbgbvr${n}_el1`, sr(2, 0, 0, n, 4)],
      [`dbgbcr${n}_el1`, sr(2, 0, 0, n, 5)],
    ]),
  ),
  ...Object.fromEntries(
    [0, 1, 2, 3].flatMap((n) => [
      [`dbgwvr${n}_el1`, sr(2, 0, 0, n, 6)],
      [`dbgwcr${n}_el1`, sr(2, 0, 0, n, 7)],
    ]),
  ),
};

/** Every register name a saved vCPU has, each a lowercase hex string (16 digits, Q registers 32). */
export type CpuRegisters = Record<string, string>;

const Q_NAMES = Array.from({ length: 32 }, (_, n) => `q${n}`);
export const CPU_REGISTER_NAMES: readonly string[] = [...CORE.map(([n]) => n), ...Q_NAMES, ...Object.keys(SAVED_SYSREGS)];

const hex64 = (v: bigint): string => BigInt.asUintN(64, v).toString(16).padStart(16, '0');
const bytesHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

export function captureCpu(u: Uc): CpuRegisters {
  const out: CpuRegisters = {};
  for (const [name, id] of CORE) out[name] = hex64(u.reg(id));
  Q_NAMES.forEach((name, n) => (out[name] = bytesHex(u.reg128(REG_Q0 + n))));
  for (const [name, s] of Object.entries(SAVED_SYSREGS)) out[name] = hex64(u.sys(s));
  return out;
}

/** Refuse anything but exactly the known register set with well-formed values. Returns a one-line reason or null. */
export function cpuRegistersProblem(v: unknown): string | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'registers are not an object';
  const r = v as Record<string, unknown>;
  for (const name of CPU_REGISTER_NAMES) {
    const x = r[name];
    const digits = name.startsWith('q') && /^q\d+$/.test(name) ? 32 : 16;
    if (typeof x !== 'string' || x.length !== digits || !/^[0-9a-f]+$/.test(x)) return `register ${name} is missing or not ${digits} hex digits`;
  }
  const extra = Object.keys(r).find((k) => !CPU_REGISTER_NAMES.includes(k));
  return extra === undefined ? null : `unknown register ${extra.slice(0, 40)}`;
}

/**
 * Write a validated register set into a fresh engine, in the order exception.ts's entry uses: PSTATE first
 * (pstate_write neither banks SP nor rebuilds hflags), the banked and current SPs, then the system registers (each
 * CP_REG write rebuilds hflags on 2.1.x, so the cached EL and MMU index follow the final PSTATE and SCTLR), then
 * the general, FP/SIMD registers and PC. A system register equal to the fresh engine's value is not written, so a
 * register the guest never touched costs no write function (breakpoint and PMU registers have side effects).
 */
export function applyCpu(u: Uc, r: CpuRegisters): void {
  const problem = cpuRegistersProblem(r);
  if (problem !== null) throw new Error(`vCPU state: ${problem}`);
  const v = (name: string) => BigInt(`0x${r[name]!}`);
  for (const [name, id] of CORE.slice(0, 4)) u.setReg(id, v(name));
  for (const [name, s] of Object.entries(SAVED_SYSREGS)) {
    const want = v(name);
    if (u.sys(s) !== want) u.setSys(s, want);
  }
  for (const [name, id] of CORE.slice(4)) u.setReg(id, v(name));
  Q_NAMES.forEach((name, n) => u.setReg128(REG_Q0 + n, Uint8Array.from(Buffer.from(r[name]!, 'hex'))));
}
