// Start-up self-test: checks the library version and every unicorn internal the VMM relies on, by running real guest
// code (guests/bare/selftest.S, encoded below) in a scratch instance set up exactly like the VM's vCPU:
//  - where CPUARMState sits inside uc_context (sentinel search) and that env->exception's syndrome, vaddress and
//    target_el are at the offsets exception.ts reads;
//  - HVC trapping to UC_HOOK_INTR with PC after the HVC (SCR_EL3.HCE);
//  - the hand-made EL0 -> EL1 and EL1 -> EL1 synchronous entries: the EL1 vector's MRS (which UNDEF at EL0) read the
//    right ESR/FAR/ELR/SPSR/SP_EL0/CurrentEL, and SP is the EL1 stack;
//  - uc_emu_start returning at WFI with PC after it;
//  - CNTV writes reaching the MSR hook, and MRS CNTV_CTL_EL0 reading the mirrored ISTATUS.
import { EXCP, REG, SYS, Uc, xreg, type UnicornLibrary } from './unicorn.js';
import { ENV, SyncEntry, type EnvLayout } from './exception.js';
import { VirtTimer } from './timer.js';
import { SCR_EL3_VALUE, HCR_EL2_BASE } from './el-registers.js';
import { errorMessage } from '../util/errors.js';

/** Libraries this code was checked against. 2.0.1 needs an env hflags patch this build does not carry. */
export const KNOWN_VERSIONS = ['2.1.1'] as const;

/** guests/bare/selftest.S assembled with binutils 2.40 (test/cpu-selftest.test.ts re-assembles and compares). */
export const SELFTEST_CODE: ReadonlyArray<readonly [number, number]> = [
  [0x000, 0xd4000002], // hvc #0x0
  [0x004, 0xd5184108], // msr sp_el0, x8
  [0x008, 0xd5184027], // msr elr_el1, x7
  [0x00c, 0xd518401f], // msr spsr_el1, xzr
  [0x010, 0xd69f03e0], // eret
  [0x100, 0xd4024681], // svc #0x1234
  [0x104, 0x14000000], // b 40000104 <el0_svc+0x4>
  [0x200, 0xc85f7ca0], // ldxr x0, [x5]
  [0x204, 0x14000000], // b 40000204 <el0_ldxr+0x4>
  [0x300, 0xd4000ee1], // svc #0x77
  [0x304, 0x14000000], // b 40000304 <el1_svc+0x4>
  [0x380, 0xd503207f], // wfi
  [0x384, 0x14000000], // b 40000384 <el1_wfi+0x4>
  [0x400, 0xd51be35f], // msr cntv_cval_el0, xzr
  [0x404, 0xd2800021], // mov x1, #0x1 // #1
  [0x408, 0xd51be321], // msr cntv_ctl_el0, x1
  [0x40c, 0xd5033fdf], // isb
  [0x410, 0xd53be322], // mrs x2, cntv_ctl_el0
  [0x414, 0xd2888880], // mov x0, #0x4444 // #17476
  [0x418, 0xd4000002], // hvc #0x0
  [0x41c, 0x14000000], // b 4000041c <el1_timer+0x1c>
  [0xa00, 0xd5385201], // mrs x1, esr_el1
  [0xa04, 0xd5386002], // mrs x2, far_el1
  [0xa08, 0xd5384243], // mrs x3, currentel
  [0xa0c, 0x910003e4], // mov x4, sp
  [0xa10, 0xd5384026], // mrs x6, elr_el1
  [0xa14, 0xd538410a], // mrs x10, sp_el0
  [0xa18, 0xd538400b], // mrs x11, spsr_el1
  [0xa1c, 0xa9bf0be1], // stp x1, x2, [sp, #-16]!
  [0xa20, 0xd2844440], // mov x0, #0x2222 // #8738
  [0xa24, 0xd4000002], // hvc #0x0
  [0xa28, 0x14000000], // b 40000a28 <el1_timer+0x628>
  [0xc00, 0xd5385201], // mrs x1, esr_el1
  [0xc04, 0xd5386002], // mrs x2, far_el1
  [0xc08, 0xd5384243], // mrs x3, currentel
  [0xc0c, 0x910003e4], // mov x4, sp
  [0xc10, 0xd5384026], // mrs x6, elr_el1
  [0xc14, 0xd538410a], // mrs x10, sp_el0
  [0xc18, 0xd538400b], // mrs x11, spsr_el1
  [0xc1c, 0xa9bf0be1], // stp x1, x2, [sp, #-16]!
  [0xc20, 0xd2844440], // mov x0, #0x2222 // #8738
  [0xc24, 0xd4000002], // hvc #0x0
  [0xc28, 0x14000000], // b 40000c28 <el1_timer+0x828>
];

const BASE = 0x40000000n;
const SP1 = 0x40100000n;
const SP0 = 0x40080000n;
const UNALIGNED = 0x40010003n;

export interface SelfTestResult {
  ok: boolean;
  failures: string[];
  version: string;
  envOffset: number;
  ms: number;
}

interface CaseResult {
  intr: number[];
  exc?: { syndrome: number; vaddress: bigint; targetEl: number };
  vec?: Record<string, bigint>;
  stack?: bigint;
  probePc?: bigint;
  x2?: bigint;
  msrSeen: number;
  err: number;
  pc: bigint;
  envOffset: number;
}

function runCase(lib: UnicornLibrary, entry: number, el0Entry: number, layout: Readonly<EnvLayout>): CaseResult {
  const u = new Uc(lib);
  try {
    u.memMap(Number(BASE), 0x200000);
    const img = new Uint8Array(0x1000);
    const dv = new DataView(img.buffer);
    for (const [o, w] of SELFTEST_CODE) dv.setUint32(o, w, true);
    u.memWrite(Number(BASE), img);
    u.setSys(SYS.SCR_EL3, SCR_EL3_VALUE);
    u.setSys(SYS.HCR_EL2, HCR_EL2_BASE);
    u.setSys(SYS.VBAR_EL1, BASE + 0x800n);
    u.setReg(REG.X0, 0x1111);
    u.setReg(xreg(5), UNALIGNED);
    u.setReg(xreg(7), BASE + BigInt(el0Entry));
    u.setReg(xreg(8), SP0);
    u.setReg(REG.SP, SP1);
    u.setReg(REG.PSTATE, 0x3c5n);
    u.setReg(REG.PC, BASE + BigInt(entry));
    const se = new SyncEntry(u, undefined, layout);
    const timer = new VirtTimer(u);
    const res: CaseResult = { intr: [], msrSeen: 0, err: 0, pc: 0n, envOffset: se.envOffset };
    u.hookMsr((op0, op1, crn, crm, op2) => {
      const hit = timer.msr(op0, op1, crn, crm, op2);
      if (hit) res.msrSeen++;
      timer.poll();
      return hit;
    });
    u.hookIntr((intno) => {
      res.intr.push(intno);
      if (intno === EXCP.HVC) {
        const x0 = u.reg(REG.X0);
        if (x0 === 0x1111n) {
          res.probePc = u.reg(REG.PC);
          return;
        }
        if (x0 === 0x4444n) res.x2 = u.reg(xreg(2));
        if (x0 === 0x2222n) {
          const vec: Record<string, bigint> = {};
          for (const r of [1, 2, 3, 4, 6, 10, 11]) vec[`x${r}`] = u.reg(xreg(r));
          res.vec = vec;
          res.stack = new DataView(u.memRead(Number(vec['x4']! - 16n), 8).buffer).getBigUint64(0, true);
        }
        u.stop();
        return;
      }
      if ((intno === EXCP.SWI || intno === EXCP.DATA_ABORT) && !res.exc) {
        res.exc = se.readException();
        se.takeFromHook(intno);
        return;
      }
      u.stop();
    });
    res.err = u.start(u.reg(REG.PC));
    res.pc = u.reg(REG.PC);
    return res;
  } finally {
    u.close();
  }
}

const hx = (v: bigint | number | undefined): string => (v === undefined ? 'none' : '0x' + v.toString(16));

/** Run every check. `layout` can be overridden to prove the test fails on wrong offsets. */
export function runSelfTest(lib: UnicornLibrary, layout: Readonly<EnvLayout> = ENV): SelfTestResult {
  const t0 = Date.now();
  const f: string[] = [];
  const chk = (c: boolean, m: string): void => void (c || f.push(m));
  if (!(KNOWN_VERSIONS as readonly string[]).includes(lib.version)) {
    f.push(`unicorn ${lib.version} at ${lib.path} is not a known version (known: ${KNOWN_VERSIONS.join(', ')})`);
    return { ok: false, failures: f, version: lib.version, envOffset: -1, ms: Date.now() - t0 };
  }
  let envOffset = -1;
  try {
    // A: EL1 HVC probe, eret to EL0, SVC #0x1234.
    const a = runCase(lib, 0, 0x100, layout);
    envOffset = a.envOffset;
    chk(a.probePc === BASE + 4n, `HVC: PC in the hook ${hx(a.probePc)}, want ${hx(BASE + 4n)} (SCR_EL3.HCE trapping)`);
    chk(a.exc?.syndrome === 0x56001234, `SVC syndrome at env+${layout.EXC_SYNDROME}: ${hx(a.exc?.syndrome)}, want 0x56001234`);
    chk(a.exc?.targetEl === 1, `target_el at env+${layout.EXC_TARGET_EL}: ${a.exc?.targetEl}, want 1`);
    if (a.vec) {
      chk(a.vec['x1'] === 0x56001234n, `EL0->EL1: ESR_EL1 in the vector ${hx(a.vec['x1'])}`);
      chk(a.vec['x3'] === 4n, `EL0->EL1: CurrentEL ${hx(a.vec['x3'])}, want 0x4 (EL1)`);
      chk(a.vec['x4'] === SP1, `EL0->EL1: SP ${hx(a.vec['x4'])}, want SP_EL1 ${hx(SP1)}`);
      chk(a.vec['x10'] === SP0, `EL0->EL1: SP_EL0 ${hx(a.vec['x10'])}, want ${hx(SP0)}`);
      chk(a.vec['x6'] === BASE + 0x104n, `EL0->EL1: ELR_EL1 ${hx(a.vec['x6'])}, want after the SVC`);
      chk((a.vec['x11']! & 0xfn) === 0n, `EL0->EL1: SPSR_EL1 ${hx(a.vec['x11'])}, want EL0t`);
      chk(a.stack === 0x56001234n, 'EL0->EL1: the vector could not push on the EL1 stack');
    } else chk(false, `EL0->EL1: the lower-EL vector did not report (exceptions ${a.intr.join(',')}) - EL switch broken`);
    // B: unaligned LDXR at EL0: data abort, lower EL, alignment fault, FAR = address.
    const b = runCase(lib, 0, 0x200, layout);
    chk(b.exc !== undefined && b.exc.syndrome >>> 26 === 0x24 && (b.exc.syndrome & 0x3f) === 0x21,
      `abort syndrome ${hx(b.exc?.syndrome)}, want EC 0x24 DFSC 0x21`);
    chk(b.exc?.vaddress === UNALIGNED, `abort vaddress at env+${layout.EXC_VADDRESS}: ${hx(b.exc?.vaddress)}, want ${hx(UNALIGNED)}`);
    chk(b.vec?.['x2'] === UNALIGNED && b.vec?.['x6'] === BASE + 0x200n, `abort: FAR/ELR in the vector ${hx(b.vec?.['x2'])}/${hx(b.vec?.['x6'])}`);
    // C: SVC at EL1h -> current-EL SPx vector (+0x200).
    const c = runCase(lib, 0x300, 0, layout);
    chk(c.vec?.['x1'] === 0x56000077n, `EL1->EL1: ESR ${hx(c.vec?.['x1'])}, want 0x56000077 (vector +0x200 reached?)`);
    chk(c.vec?.['x6'] === BASE + 0x304n && (c.vec?.['x11']! & 0xfn) === 5n, `EL1->EL1: ELR ${hx(c.vec?.['x6'])} SPSR ${hx(c.vec?.['x11'])}`);
    chk(c.vec?.['x4'] === SP1 - 0n, `EL1->EL1: SP ${hx(c.vec?.['x4'])}, want ${hx(SP1)}`);
    // D: WFI returns from uc_emu_start, PC after it, no hook.
    const d = runCase(lib, 0x380, 0, layout);
    chk(d.err === 0 && d.pc === BASE + 0x384n && d.intr.length === 0, `WFI: uc_emu_start returned ${d.err}, PC ${hx(d.pc)}, exceptions ${d.intr.join(',')}`);
    // E: the timer glue.
    const e = runCase(lib, 0x400, 0, layout);
    chk(e.msrSeen === 2, `timer: the MSR hook saw ${e.msrSeen} CNTV writes, want 2`);
    chk(e.x2 === 5n, `timer: MRS CNTV_CTL_EL0 read ${hx(e.x2)}, want 0x5 (ENABLE|ISTATUS mirrored)`);
  } catch (err) {
    f.push(`self-test could not run: ${errorMessage(err)}`);
  }
  return { ok: f.length === 0, failures: f, version: lib.version, envOffset, ms: Date.now() - t0 };
}

let passed: SelfTestResult | undefined;

/** A passing verdict established earlier for this very library (selftest-cache.ts): ensureSelfTest returns it. */
export function acceptSelfTestVerdict(lib: UnicornLibrary, r: SelfTestResult): void {
  if (r.ok && r.version === lib.version) passed = r;
}

/** Run the self-test once per thread; throw a clear error if the library is unknown or any check fails. */
export function ensureSelfTest(lib: UnicornLibrary): SelfTestResult {
  if (passed) return passed;
  const r = runSelfTest(lib);
  if (!r.ok) {
    throw new Error(`unicorn self-test failed for ${lib.path} (version ${lib.version}):\n  - ${r.failures.join('\n  - ')}`);
  }
  passed = r;
  return r;
}
