// The exception entry in one native call (fp_exc_enter in src/cpu/native/fastpath.c): SyncEntry.enter and
// readException (src/cpu/exception.ts, the specification) made ~10 koffi calls into unicorn, 200-500 ns each, so a
// guest exception cost ~2.7 us in JS (every system call of a Linux process: echo, paste, short writes). The C side
// makes the same uc_reg_* calls in the same order; test/native-exception.test.ts compares both on random states.
import koffi from 'koffi';
import { REG, type Uc } from './unicorn.js';
import type { NativeExceptionEntry, SyncRecord } from './exception.js';

interface ExcLib {
  bind(path: string, ids: Int32Array): number;
  enter(uc: unknown, env: bigint, kind: number, syndrome: number, hasFar: number, far: bigint, targetEl: number, out: BigUint64Array): number;
}

const libs = new Map<string, ExcLib | null>();

function excLib(nativePath: string, unicornPath: string): ExcLib | null {
  const key = `${nativePath}\0${unicornPath}`;
  if (libs.has(key)) return libs.get(key)!;
  let l: ExcLib | null = null;
  try {
    const k = koffi.load(nativePath);
    const fl: ExcLib = {
      bind: k.func('int fp_exc_bind(const char *libpath, const int32_t *ids)') as ExcLib['bind'],
      enter: k.func('int fp_exc_enter(void *uc, uintptr_t env, uint32_t kind, uint32_t syndrome, int has_far, uint64_t far, uint32_t target_el, _Inout_ uint64_t *out)') as ExcLib['enter'],
    };
    // The order of fastpath.c's R_* enum.
    const ids = Int32Array.of(REG.PC, REG.PSTATE, REG.SP, REG.SP_EL0, REG.SP_EL1, REG.ELR_EL1, REG.CP_REG);
    if (fl.bind(unicornPath, ids) === 0) l = fl;
  } catch {
    l = null; // an older library without these symbols: the JS entry stays
  }
  libs.set(key, l);
  return l;
}

/** VPL011_NATIVE_EXC=0 keeps the native fast path but enters exceptions in JS (for A/B measurements). */
export function nativeExceptionEntryEnabled(): boolean {
  return process.env.VPL011_NATIVE_EXC !== '0';
}

const KIND = { sync: 0, irq: 0x80, serror: 0x180 } as const;

/** One engine's native entry. `env`: CPUARMState's address (exact-fault.ts), or 0n when unknown. */
export class NativeEntry implements NativeExceptionEntry {
  private readonly out = new BigUint64Array(6);

  private constructor(private readonly l: ExcLib, private readonly u: Uc, readonly env: bigint) {}

  static attach(nativePath: string, u: Uc, env: bigint): NativeEntry | null {
    const l = excLib(nativePath, u.lib.path);
    return l ? new NativeEntry(l, u, env) : null;
  }

  private record(e: number): SyncRecord {
    if (e !== 0) throw new Error(`exception entry: unicorn register access failed (${e})`);
    const o = this.out;
    return { pc: o[0]!, fromEl: Number((o[1]! >> 2n) & 3n), syndrome: Number(o[3]!), vaddress: o[4]!, targetEl: Number(o[5]!), vector: o[2]! };
  }

  /** SyncEntry.enter. */
  enter(kind: 'sync' | 'irq' | 'serror', syndrome: number, far: bigint | undefined, targetEl = 1): SyncRecord {
    return this.record(this.l.enter(this.u.handle, 0n, KIND[kind], syndrome >>> 0, far === undefined ? 0 : 1, far ?? 0n, targetEl, this.out));
  }

  /** SyncEntry.takeFromHook, reading env->exception in place (only when the env's address is known). */
  takeFromHook(intno: number): SyncRecord {
    const hasFar = intno === 3 || intno === 4; // EXCP_PREFETCH_ABORT, EXCP_DATA_ABORT
    return this.record(this.l.enter(this.u.handle, this.env, 0, 0, hasFar ? 1 : 0, 0n, 0, this.out));
  }
}
