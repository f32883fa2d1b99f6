// The exact faulting instruction of an MMIO access, from inside its callback, on unicorn 2.1.1.
//
// Inside an MMIO callback PC is stale (the last value synced to env, often the TB start: docs/CPU.md), so a refused
// access used to be aborted at the next safe point. But QEMU knows the instruction: io_readx/io_writex store the
// host return address into the generated code in CPUState.mem_io_pc, and cpu_restore_state(cpu, host_pc) (exported
// by libunicorn as cpu_restore_state_aarch64) rewinds env->pc to that instruction and sets env->exception.syndrome to
// the instruction's recorded data-abort ISS (ISV, SAS, SSE, SRT, SF, AR: QEMU's disas_set_insn_syndrome). A lookup
//
// Two private offsets are needed: where uc_struct keeps its CPUState pointer (searched: the CPUState must contain the
// env, found by sentinel registers, and its env_ptr) and where CPUState keeps mem_io_pc (2.1.1's offset, never
// searched: cpu_restore_state on an arbitrary code-buffer address can crash). Both are proved on a scratch engine
// (discoverFaultLayout) before use: restoring from mem_io_pc must give the exact PCs of two known loads. Memory is read through /proc/self/mem, where a wrong pointer is an EIO/EFAULT, never a crash.
// Without a layout (another library, /proc unavailable) the VMM keeps the imprecise delivery at the next safe point.
import koffi from 'koffi';
import { REG, type Uc, type UnicornLibrary } from './unicorn.js';
import { ENV } from './exception.js';
import { closeHostMemory, peek } from './host-memory.js';
import { SCRATCH_RAM, scratchEngine } from './scratch-engine.js';

export interface FaultLayout {
  /** Byte offset of `CPUState *cpu` in uc_struct. */
  ucCpu: number;
  /** Byte offset of CPUARMState in the CPU object (ARMCPU.env). */
  envInCpu: number;
  /** Byte offset of CPUState.mem_io_pc. */
  memIoPc: number;
}

type RestoreFn = (cpu: bigint, hostPc: bigint, willExit: boolean) => boolean;
const restoreFns = new Map<string, RestoreFn>();
function restoreFn(lib: UnicornLibrary): RestoreFn {
  let f = restoreFns.get(lib.path);
  if (!f) {
    f = koffi.load(lib.path).func('bool cpu_restore_state_aarch64(uintptr_t cpu, uintptr_t host_pc, bool will_exit)') as RestoreFn;
    restoreFns.set(lib.path, f);
  }
  return f;
}

const SENTINELS = [0x5eed0123456789abn, 0xa5a5f00dcafe0001n, 0x1122334455667788n];
const SCRATCH_MMIO = 0x09000000;
// nop; nop; ldr w1, [x2]; nop; ldr w3, [x2, #4]; hvc #0
const SCRATCH_CODE = [0xd503201f, 0xd503201f, 0xb9400041, 0xd503201f, 0xb9400443, 0xd4000002];
const LOAD_PCS = [BigInt(SCRATCH_RAM + 8), BigInt(SCRATCH_RAM + 16)];
/** CPUState and ARMCPU up to env are ~41 KiB in 2.1.1; search generously. */
const CPU_SEARCH = 0x10000;
const UC_STRUCT_SEARCH = 4096;
/** CPUState.mem_io_pc in unicorn 2.1.1 (QEMU 5.0's include/hw/core/cpu.h as built there), proved before use. */
const MEM_IO_PC_2_1_1 = 33144;

/** Find and prove the layout on a scratch engine. Returns null (with the reason) when anything does not hold. */
export function discoverFaultLayout(lib: UnicornLibrary): { layout: FaultLayout | null; why?: string } {
  const u = scratchEngine(lib, SCRATCH_CODE);
  try {
    const uc = koffi.address(u.handle);
    const pat = Buffer.alloc(24);
    SENTINELS.forEach((v, i) => pat.writeBigUInt64LE(v, 8 * i));
    // Every object reachable from uc_struct that holds the env (sentinel registers) and a pointer to it (env_ptr):
    // the CPUState is one of them; the mem_io_pc check below tells which.
    const cands: { ucCpu: number; cpu: bigint; envInCpu: number; snaps: Buffer[] }[] = [];
    let searched = false;
    u.mmioMap(SCRATCH_MMIO, 0x1000, () => {
      if (!searched) {
        searched = true;
        const s = peek(uc, UC_STRUCT_SEARCH);
        for (let o = 0; s && o + 8 <= s.length && cands.length < 8; o += 8) {
          const p = s.readBigUInt64LE(o);
          if ((p & 7n) !== 0n || cands.some((c) => c.cpu === p)) continue;
          const blk = peek(p, CPU_SEARCH);
          const at = blk ? blk.indexOf(pat) : -1;
          if (!blk || at < 0) continue;
          const env = at - ENV.XREGS - 8 * 10; // the sentinels are x10..x12
          for (let e = 0; e + 8 <= env; e += 8) {
            if (blk.readBigUInt64LE(e) === p + BigInt(env)) {
              cands.push({ ucCpu: o, cpu: p, envInCpu: env, snaps: [] });
              break;
            }
          }
        }
      }
      for (const c of cands) {
        const snap = peek(c.cpu + BigInt(MEM_IO_PC_2_1_1), 8);
        if (snap) c.snaps.push(snap);
      }
      return 0;
    }, () => {});
    u.setReg(REG.X0 + 2, SCRATCH_MMIO);
    SENTINELS.forEach((v, i) => u.setReg(REG.X0 + 10 + i, v));
    u.hookIntr(() => u.stop());
    const e = u.start(BigInt(SCRATCH_RAM));
    if (e !== 0) return { layout: null, why: `scratch run: ${u.strerror(e)}` };
    if (cands.length === 0) return { layout: null, why: 'CPUState not found from uc_struct' };
    const restore = restoreFn(lib);
    // Only the offset known for 2.1.1 is tried: cpu_restore_state given an arbitrary value inside the code buffer
    // can crash (measured while probing every slot), so there is no blind search. Its two values must be host code
    // addresses a few instructions apart (two loads of one TB), and restoring from each must give each load's PC.
    for (const c of cands) {
      if (c.snaps.length !== 2 || MEM_IO_PC_2_1_1 + 8 > c.envInCpu) continue;
      const va = c.snaps[0]!.readBigUInt64LE(0);
      const vb = c.snaps[1]!.readBigUInt64LE(0);
      if (!(vb > va && vb - va < 4096n)) continue;
      if (restore(c.cpu, va, false) && u.reg(REG.PC) === LOAD_PCS[0] && restore(c.cpu, vb, false) && u.reg(REG.PC) === LOAD_PCS[1]) {
        return { layout: { ucCpu: c.ucCpu, envInCpu: c.envInCpu, memIoPc: MEM_IO_PC_2_1_1 } };
      }
    }
    return { layout: null, why: `mem_io_pc not proved (${cands.length} CPUState candidates)` };
  } finally {
    u.close();
  }
}

let threadLayout: { layout: FaultLayout | null; why?: string; stored?: boolean } | undefined;

/** A layout proved earlier for this very library (kept with the self-test's verdict, selftest-cache.ts). */
export function acceptFaultLayout(layout: FaultLayout): void {
  threadLayout = { layout, stored: true };
}

/** Where this thread's layout came from: proved on a scratch engine here, or stored with the verdict. */
export function faultLayoutSource(): 'proved' | 'stored' | undefined {
  return threadLayout === undefined ? undefined : threadLayout.stored ? 'stored' : 'proved';
}

/** A stored layout's shape (offsets only; the values were proved when stored). */
export function isFaultLayout(v: unknown): v is FaultLayout {
  const l = v as Partial<FaultLayout> | null;
  return typeof l === 'object' && l !== null && [l.ucCpu, l.envInCpu, l.memIoPc].every((n) => Number.isInteger(n) && n! >= 0 && n! < 1 << 20);
}
/** Once per thread (like the self-test). */
export function faultLayout(lib: UnicornLibrary): FaultLayout | null {
  threadLayout ??= discoverFaultLayout(lib);
  return threadLayout.layout;
}

/** What the faulting instruction was: its PC (env->pc is set to it) and its recorded ISS. */
export interface FaultSite {
  pc: bigint;
  /** env->exception.syndrome after the restore: IL and the data-abort ISS of the instruction (0 if not recorded). */
  syndrome: number;
  /** The host return address: equal for the two halves of one access split by unicorn (8 bytes -> 2 x 4). */
  hostPc: bigint;
}

/** Per engine: find the faulting instruction from inside an MMIO callback. */
export class ExactFaults {
  private constructor(
    private readonly u: Uc,
    private readonly layout: FaultLayout,
    private readonly cpu: bigint,
    private readonly restore: RestoreFn,
  ) {}

  static attach(u: Uc): ExactFaults | null {
    const layout = faultLayout(u.lib);
    if (!layout) return null;
    const s = peek(koffi.address(u.handle) + BigInt(layout.ucCpu), 8);
    if (!s) return null;
    return new ExactFaults(u, layout, s.readBigUInt64LE(0), restoreFn(u.lib));
  }

  /** The address of this engine's CPUARMState (its registers, env->exception). */
  envAddress(): bigint {
    return this.cpu + BigInt(this.layout.envInCpu);
  }

  /** Only inside an MMIO callback: the host return address of the current access (no state changes). */
  hostPc(): bigint | null {
    const io = peek(this.cpu + BigInt(this.layout.memIoPc), 8);
    return io ? io.readBigUInt64LE(0) : null;
  }

  /** Only inside an MMIO callback. Sets env->pc to the accessing instruction. Null if QEMU does not know it. */
  locate(): FaultSite | null {
    const hostPc = this.hostPc();
    if (hostPc === null || !this.restore(this.cpu, hostPc, true)) return null;
    const syn = peek(this.cpu + BigInt(this.layout.envInCpu + ENV.EXC_SYNDROME), 4);
    return { pc: this.u.reg(REG.PC), syndrome: syn ? syn.readUInt32LE(0) : 0, hostPc };
  }
}

/** For tests: forget the thread's layout. */
export function closeFaultProbe(): void {
  closeHostMemory();
}
