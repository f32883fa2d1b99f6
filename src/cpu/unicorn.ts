// Typed koffi binding of the part of libunicorn 2.1.x (AArch64) that the VMM uses. Nothing else is bound.
// Values come from unicorn's public headers (unicorn.h, arm64.h) of tag 2.1.1; the start-up self-test
// (selftest.ts) checks every internal detail this project relies on against the loaded library.
import { existsSync } from 'node:fs';
import koffi from 'koffi';
import type { TypeObject } from 'koffi';

/** uc_arch / uc_mode / uc_prot / hook types (unicorn.h). */
export const UC_ARCH_ARM64 = 2;
export const UC_MODE_ARM = 0;
export const UC_PROT_READ = 1;
export const UC_PROT_EXEC = 4;
export const UC_PROT_ALL = 7;
export const UC_HOOK_INTR = 1 << 0;
export const UC_HOOK_INSN = 1 << 1;
export const UC_HOOK_MEM_INVALID = (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 9);
/** uc_arm64_insn for UC_HOOK_INSN. */
export const UC_ARM64_INS_MSR = 2;
/** uc_ctl numbers: UC_CTL_IO_WRITE = 1 << 30, arg count in bits 26..29 (uc_ctl_type / UC_CTL_* macros). */
const UC_CTL_CPU_MODEL = 7;
const UC_CTL_TLB_TYPE = 12;
const ctlWrite = (nr: number, nargs: number): number => (nr | (nargs << 26) | (1 << 30)) | 0;
/** UC_CPU_ARM64_A72: no PAN/BTI, so the hand-made exception entry has fewer PSTATE bits to track. */
export const UC_CPU_ARM64_A72 = 2;

/** QEMU exception numbers passed to UC_HOOK_INTR (target/arm/cpu.h EXCP_*). */
export const EXCP = {
  UDEF: 1,
  SWI: 2,
  PREFETCH_ABORT: 3,
  DATA_ABORT: 4,
  IRQ: 5,
  FIQ: 6,
  BKPT: 7,
  HLT: 10,
  HVC: 11,
  SMC: 13,
} as const;

/** uc_arm64_reg ids (arm64.h, identical between 2.0.1 and 2.1.1). */
export const REG = {
  X0: 199,
  X29: 1,
  X30: 2,
  NZCV: 3,
  SP: 4,
  PC: 260,
  CPACR_EL1: 261,
  PSTATE: 265,
  ELR_EL1: 267,
  SP_EL0: 270,
  SP_EL1: 271,
  ESR_EL1: 277,
  FAR_EL1: 281,
  VBAR_EL1: 287,
  CP_REG: 290,
} as const;
/** X0..X28 are consecutive ids; X29/X30 are not (arm64.h). */
export function xreg(n: number): number {
  if (n >= 0 && n <= 28) return REG.X0 + n;
  if (n === 29) return REG.X29;
  if (n === 30) return REG.X30;
  throw new RangeError(`xreg: no register x${n}`);
}

/** A system register as (op0, op1, CRn, CRm, op2): the MSR/MRS encoding (Arm ARM C5.3). */
export interface SysReg {
  readonly op0: number;
  readonly op1: number;
  readonly crn: number;
  readonly crm: number;
  readonly op2: number;
}
const sr = (op0: number, op1: number, crn: number, crm: number, op2: number): SysReg => ({ op0, op1, crn, crm, op2 });
export const SYS = {
  SCR_EL3: sr(3, 6, 1, 1, 0),
  HCR_EL2: sr(3, 4, 1, 1, 0),
  VBAR_EL1: sr(3, 0, 12, 0, 0),
  ESR_EL1: sr(3, 0, 5, 2, 0),
  FAR_EL1: sr(3, 0, 6, 0, 0),
  SPSR_EL1: sr(3, 0, 4, 0, 0),
  ELR_EL1: sr(3, 0, 4, 0, 1),
  CNTFRQ_EL0: sr(3, 3, 14, 0, 0),
  CNTVCT_EL0: sr(3, 3, 14, 0, 2),
  CNTV_TVAL_EL0: sr(3, 3, 14, 3, 0),
  CNTV_CTL_EL0: sr(3, 3, 14, 3, 1),
  CNTV_CVAL_EL0: sr(3, 3, 14, 3, 2),
} as const;

export type UcHandle = unknown;

interface UcApi {
  uc_open(arch: number, mode: number, out: unknown[]): number;
  uc_close(uc: UcHandle): number;
  uc_version(major: number[], minor: number[]): number;
  uc_strerror(code: number): string;
  uc_mem_map(uc: UcHandle, addr: bigint, size: number, perms: number): number;
  uc_mem_map_ptr(uc: UcHandle, addr: bigint, size: number, perms: number, ptr: ArrayBuffer | Uint8Array | SharedArrayBuffer): number;
  uc_mem_write(uc: UcHandle, addr: bigint, bytes: Uint8Array, size: number): number;
  uc_mem_read(uc: UcHandle, addr: bigint, bytes: Uint8Array, size: number): number;
  uc_emu_start(uc: UcHandle, begin: bigint, until: bigint, timeout: bigint, count: number): number;
  uc_emu_stop(uc: UcHandle): number;
  uc_reg_write(uc: UcHandle, regid: number, value: BigUint64Array | Uint8Array): number;
  uc_reg_read(uc: UcHandle, regid: number, value: BigUint64Array | Uint8Array): number;
  uc_ctl(uc: UcHandle, control: number, ...args: unknown[]): number;
  uc_hook_add(uc: UcHandle, out: unknown[], type: number, cb: unknown, user: null, begin: bigint, end: bigint, ...extra: unknown[]): number;
  uc_mmio_map(uc: UcHandle, addr: bigint, size: number, rcb: unknown, ur: null, wcb: unknown, uw: null): number;
  uc_mmio_map_raw(uc: UcHandle, addr: bigint, size: number, rcb: unknown, ur: unknown, wcb: unknown, uw: unknown): number;
  uc_context_alloc(uc: UcHandle, out: unknown[]): number;
  uc_context_save(uc: UcHandle, ctx: unknown): number;
  uc_context_free(ctx: unknown): number;
  uc_context_size(uc: UcHandle): number | bigint;
}

export interface UnicornLibrary {
  readonly path: string;
  /** uc_version() packed: major << 24 | minor << 16 | patch << 8 | extra. */
  readonly versionWord: number;
  readonly version: string;
  readonly api: UcApi;
}

const protos = {
  mmioRead: koffi.proto('uint64_t vpl011_uc_mmio_read_cb(void *uc, uint64_t offset, unsigned int size, void *user)'),
  mmioWrite: koffi.proto('void vpl011_uc_mmio_write_cb(void *uc, uint64_t offset, unsigned int size, uint64_t value, void *user)'),
  intr: koffi.proto('void vpl011_uc_intr_cb(void *uc, uint32_t intno, void *user)'),
  // cp_reg is declared as an integer (the same register in the C ABI): koffi then hands over its address as a plain
  // number, with no External object per call, and hookMsr reads the struct through a cached view (see there).
  sys: koffi.proto('uint32_t vpl011_uc_sys_cb(void *uc, int reg, uint64_t cp_reg, void *user)'),
  memInvalid: koffi.proto('bool vpl011_uc_meminv_cb(void *uc, int type, uint64_t address, int size, int64_t value, void *user)'),
};

/**
 * The JS side of an MMIO mapping's callbacks (also the fallback of the native fast path). koffi gives the value as a
 * number when it is a safe integer (always, with 4-byte callbacks): no BigInt per access.
 */
export function mmioTrampolines(read: MmioReadFn, write: MmioWriteFn): {
  read: (uc: unknown, off: number | bigint, sz: number) => number;
  write: (uc: unknown, off: number | bigint, sz: number, val: number | bigint) => void;
} {
  return {
    read: (_uc, off, sz) => read(Number(off), sz),
    write: (_uc, off, sz, val) => {
      if (typeof val === 'number') write(Number(off), sz, val % 4294967296, Math.floor(val / 4294967296));
      else write(Number(off), sz, Number(val & 0xffffffffn), Number((val >> 32n) & 0xffffffffn));
    },
  };
}

let loaded: UnicornLibrary | undefined;

/** Load libunicorn by path (once per thread). Throws a clear error if the file is missing. */
export function loadUnicorn(path: string): UnicornLibrary {
  if (loaded) {
    if (loaded.path !== path) throw new Error(`unicorn: already loaded from ${loaded.path}, not ${path}`);
    return loaded;
  }
  if (!existsSync(path)) {
    throw new Error(`unicorn: library not found at ${path}; run the setup to fetch libunicorn 2.1.x into the cache`);
  }
  const lib = koffi.load(path);
  const f = (s: string) => lib.func(s);
  const api: UcApi = {
    uc_open: f('int uc_open(int arch, int mode, _Out_ void **uc)'),
    uc_close: f('int uc_close(void *uc)'),
    uc_version: f('unsigned int uc_version(_Out_ unsigned int *major, _Out_ unsigned int *minor)'),
    uc_strerror: f('const char *uc_strerror(int code)'),
    uc_mem_map: f('int uc_mem_map(void *uc, uint64_t address, size_t size, uint32_t perms)'),
    uc_mem_map_ptr: f('int uc_mem_map_ptr(void *uc, uint64_t address, size_t size, uint32_t perms, void *ptr)'),
    uc_mem_write: f('int uc_mem_write(void *uc, uint64_t address, const void *bytes, size_t size)'),
    uc_mem_read: f('int uc_mem_read(void *uc, uint64_t address, _Out_ void *bytes, size_t size)'),
    uc_emu_start: f('int uc_emu_start(void *uc, uint64_t begin, uint64_t until, uint64_t timeout, size_t count)'),
    uc_emu_stop: f('int uc_emu_stop(void *uc)'),
    uc_reg_write: f('int uc_reg_write(void *uc, int regid, const void *value)'),
    uc_reg_read: f('int uc_reg_read(void *uc, int regid, void *value)'),
    uc_ctl: f('int uc_ctl(void *uc, int control, ...)'),
    uc_hook_add: f('int uc_hook_add(void *uc, _Out_ size_t *hh, int type, void *cb, void *user, uint64_t begin, uint64_t end, ...)'),
    uc_mmio_map: f(
      'int uc_mmio_map(void *uc, uint64_t address, size_t size, vpl011_uc_mmio_read_cb *rcb, void *ur, vpl011_uc_mmio_write_cb *wcb, void *uw)',
    ),
    uc_mmio_map_raw: lib.func('uc_mmio_map', 'int', ['void *', 'uint64_t', 'size_t', 'void *', 'void *', 'void *', 'void *']),
    uc_context_alloc: f('int uc_context_alloc(void *uc, _Out_ void **ctx)'),
    uc_context_save: f('int uc_context_save(void *uc, void *ctx)'),
    uc_context_free: f('int uc_context_free(void *ctx)'),
    uc_context_size: f('size_t uc_context_size(void *uc)'),
  } as unknown as UcApi;
  const maj = [0];
  const min = [0];
  const w = api.uc_version(maj, min) >>> 0;
  const version = `${w >>> 24}.${(w >>> 16) & 0xff}.${(w >>> 8) & 0xff}`;
  loaded = { path, versionWord: w, version, api };
  return loaded;
}

export type MmioReadFn = (offset: number, size: number) => number;
export type MmioWriteFn = (offset: number, size: number, value: number, valueHigh: number) => void;
/**
 * Return true to skip the MSR's own effect (unicorn: the hook's return value 1). The value being written is
 * Uc.msrValue(), valid only during the call.
 */
export type MsrFn = (op0: number, op1: number, crn: number, crm: number, op2: number) => boolean;

const U64_MASK = (1n << 64n) - 1n;

/** One unicorn instance (one vCPU). Not thread-safe: use it only from the thread that made it. */
export class Uc {
  readonly lib: UnicornLibrary;
  private h: UcHandle;
  private readonly keep: unknown[] = []; // mapped buffers and contexts: keep them alive as long as the engine
  private readonly callbacks: unknown[] = []; // koffi trampolines (a bounded pool): released in close()
  private readonly contexts: unknown[] = []; // uc_context_alloc'd blobs: uc_context_free'd in close()
  private readonly r64 = new BigUint64Array(1);
  private readonly cp = new Uint8Array(32);
  private readonly cpView = new DataView(this.cp.buffer);
  private closed = false;

  constructor(lib: UnicornLibrary, cpuModel = UC_CPU_ARM64_A72) {
    this.lib = lib;
    const out: unknown[] = [null];
    this.check(lib.api.uc_open(UC_ARCH_ARM64, UC_MODE_ARM, out), 'uc_open');
    this.h = out[0];
    this.check(lib.api.uc_ctl(this.h, ctlWrite(UC_CTL_CPU_MODEL, 1), 'int', cpuModel), 'uc_ctl(CPU_MODEL)');
    // 2.1.0 added UC_CTL_TLB_TYPE; UC_TLB_CPU (0: the guest MMU translates) is the default. Set it so that the
    // dependency is explicit: UC_TLB_VIRTUAL (VA == PA) would be wrong for an OS guest.
    if (lib.versionWord >= 0x02010000) this.check(lib.api.uc_ctl(this.h, ctlWrite(UC_CTL_TLB_TYPE, 1), 'int', 0), 'uc_ctl(TLB_TYPE)');
  }

  get handle(): UcHandle {
    return this.h;
  }

  strerror(e: number): string {
    return this.lib.api.uc_strerror(e);
  }

  check(e: number, what: string): void {
    if (e !== 0) throw new Error(`unicorn: ${what}: ${this.lib.api.uc_strerror(e)} (${e})`);
  }

  memMap(addr: number, size: number, perms = UC_PROT_ALL): void {
    this.check(this.lib.api.uc_mem_map(this.h, BigInt(addr), size, perms), `uc_mem_map 0x${addr.toString(16)}+0x${size.toString(16)}`);
  }

  /**
   * Map host memory into the guest. The buffer is kept referenced by this object until close(): unicorn keeps the raw
   * pointer, and a SharedArrayBuffer's backing store never moves, so the pointer stays valid while it is referenced.
   */
  memMapPtr(addr: number, buf: SharedArrayBuffer | ArrayBuffer, perms = UC_PROT_ALL): void {
    this.keep.push(buf);
    this.check(this.lib.api.uc_mem_map_ptr(this.h, BigInt(addr), buf.byteLength, perms, new Uint8Array(buf)), `uc_mem_map_ptr 0x${addr.toString(16)}`);
  }

  memWrite(addr: number, data: Uint8Array): void {
    if (data.length === 0) return;
    this.check(this.lib.api.uc_mem_write(this.h, BigInt(addr), data, data.length), `uc_mem_write 0x${addr.toString(16)}`);
  }

  memRead(addr: number, len: number): Uint8Array {
    const b = new Uint8Array(len);
    this.check(this.lib.api.uc_mem_read(this.h, BigInt(addr), b, len), `uc_mem_read 0x${addr.toString(16)}`);
    return b;
  }

  reg(id: number): bigint {
    this.r64[0] = 0n;
    this.lib.api.uc_reg_read(this.h, id, this.r64);
    return this.r64[0]!;
  }

  setReg(id: number, v: bigint | number): void {
    this.r64[0] = BigInt.asUintN(64, BigInt(v));
    this.check(this.lib.api.uc_reg_write(this.h, id, this.r64), `uc_reg_write ${id}`);
  }

  /** A 128-bit register (Q0..Q31): 16 bytes, little-endian, as unicorn reads it. */
  reg128(id: number): Uint8Array {
    const b = new Uint8Array(16);
    this.check(this.lib.api.uc_reg_read(this.h, id, b), `uc_reg_read ${id}`);
    return b;
  }

  setReg128(id: number, v: Uint8Array): void {
    if (v.length !== 16) throw new RangeError(`setReg128: ${v.length} bytes, not 16`);
    this.check(this.lib.api.uc_reg_write(this.h, id, v), `uc_reg_write ${id}`);
  }

  private cpSet(s: SysReg): void {
    // struct uc_arm64_cp_reg { uint32_t crn, crm, op0, op1, op2; uint64_t val; } (arm64.h), 32 bytes.
    const v = this.cpView;
    v.setUint32(0, s.crn, true);
    v.setUint32(4, s.crm, true);
    v.setUint32(8, s.op0, true);
    v.setUint32(12, s.op1, true);
    v.setUint32(16, s.op2, true);
  }

  sys(s: SysReg): bigint {
    this.cpSet(s);
    this.cpView.setBigUint64(24, 0n, true);
    this.check(this.lib.api.uc_reg_read(this.h, REG.CP_REG, this.cp), 'cp_reg read');
    return this.cpView.getBigUint64(24, true);
  }

  /** On 2.1.x every CP_REG write also runs arm_rebuild_hflags() (unicorn a24e53d7); exception.ts relies on it. */
  setSys(s: SysReg, v: bigint | number): void {
    this.cpSet(s);
    this.cpView.setBigUint64(24, BigInt.asUintN(64, BigInt(v)) & U64_MASK, true);
    this.check(this.lib.api.uc_reg_write(this.h, REG.CP_REG, this.cp), 'cp_reg write');
  }

  private register(fn: (...a: never[]) => unknown, proto: unknown): unknown {
    const cb = koffi.register(fn as (...a: unknown[]) => unknown, koffi.pointer(proto as TypeObject));
    this.callbacks.push(cb);
    return cb;
  }

  /**
   * uc_mmio_map. Unicorn gives an MMIO region at most 4 bytes per callback (its MemoryRegionOps leave
   * impl.max_access_size at 0, which QEMU treats as 4), so an 8-byte access arrives as two 4-byte calls,
   * low word first (unicorn issue #2074).
   */
  mmioMap(base: number, size: number, read: MmioReadFn, write: MmioWriteFn): void {
    const t = mmioTrampolines(read, write);
    const rcb = this.register(t.read as never, protos.mmioRead);
    const wcb = this.register(t.write as never, protos.mmioWrite);
    this.check(this.lib.api.uc_mmio_map(this.h, BigInt(base), size, rcb, null, wcb, null), `uc_mmio_map 0x${base.toString(16)}`);
  }

  /** A koffi trampoline for one of this file's callback prototypes, by name; released in close(). */
  registerNamed(fn: (...a: never[]) => unknown, protoName: string): unknown {
    return this.register(fn, protoName); // koffi.pointer takes a prototype's name as well as its object
  }

  /** uc_mmio_map with native callbacks (src/cpu/native.ts): function pointers and user data from a C library. */
  mmioMapRaw(base: number, size: number, rcb: unknown, ur: unknown, wcb: unknown, uw: unknown): void {
    this.check(this.lib.api.uc_mmio_map_raw(this.h, BigInt(base), size, rcb, ur, wcb, uw), `uc_mmio_map 0x${base.toString(16)}`);
  }

  /** The MSR hook with a native callback (the C filter of src/cpu/native.ts). */
  hookMsrRaw(cb: unknown, user: unknown): void {
    this.check(this.lib.api.uc_hook_add(this.h, [0], UC_HOOK_INSN, cb, user as null, 1n, 0n, 'int', UC_ARM64_INS_MSR), 'hook MSR');
  }

  hookIntr(fn: (intno: number) => void): void {
    const cb = this.register(((_uc: unknown, intno: number) => fn(intno)) as never, protos.intr);
    this.check(this.lib.api.uc_hook_add(this.h, [0], UC_HOOK_INTR, cb, null, 1n, 0n), 'hook INTR');
  }

  /**
   * UC_HOOK_INSN for MSR: fires on every MSR (about 120k per Linux boot, and on every `msr daif` of a spinlock), so
   * the trampoline must not allocate. unicorn's helper_uc_hooksys64 passes a pointer to its own stack local
   * `uc_arm64_cp_reg { u32 crn, crm, op0, op1, op2; u64 val; }`; the helper is always called from the same TB
   * frame, so the address repeats: the struct is read through a Uint32Array view made once per distinct address
   * (koffi.decode would build an array per call: ~0.7 us against ~0.13 us for the bare round trip, docs/UPSTREAM.md §5.3).
   */
  hookMsr(fn: MsrFn, native?: { hookMsr(js: (uc: unknown, reg: number, cp: number | bigint, user: unknown) => number): void }): void {
    const tramp = (_uc: unknown, _reg: number, cp: number | bigint): number => {
      let v = this.msrView;
      if (cp !== this.msrAddr) {
        v = this.msrView = new Uint32Array(koffi.view(cp, 32));
        this.msrAddr = cp;
        this.msrViews++;
      }
      return fn(v[2]!, v[3]!, v[0]!, v[1]!, v[4]!) ? 1 : 0;
    };
    // With the native filter, unicorn calls C, which calls this trampoline only for timer registers and safe points.
    if (native) return native.hookMsr(tramp);
    const cb = this.register(tramp as never, protos.sys);
    this.check(this.lib.api.uc_hook_add(this.h, [0], UC_HOOK_INSN, cb, null, 1n, 0n, 'int', UC_ARM64_INS_MSR), 'hook MSR');
  }

  private msrAddr: number | bigint = -1;
  private msrView = new Uint32Array(8);
  /** Distinct cp_reg addresses seen by the MSR hook (a view is made for each; expected: one or two). */
  msrViews = 0;

  /** The value the current MSR hook call is writing (uc_arm64_cp_reg.val at byte 24). Only valid inside the hook. */
  msrValue(): bigint {
    const v = this.msrView;
    return (BigInt(v[7]!) << 32n) | BigInt(v[6]!);
  }

  /** Accesses to unmapped/protected guest-physical memory (2.1.x passes physical addresses). Return true = handled. */
  hookMemInvalid(fn: (type: number, addr: bigint, size: number) => boolean): void {
    const cb = this.register(((_uc: unknown, type: number, addr: number | bigint, size: number) => fn(type, BigInt(addr), size)) as never, protos.memInvalid);
    this.check(this.lib.api.uc_hook_add(this.h, [0], UC_HOOK_MEM_INVALID, cb, null, 1n, 0n), 'hook MEM_INVALID');
  }

  /** Never pass a timeout or count: both are unsafe on 2.1.1 (docs/UPSTREAM.md §5.2, docs/CPU.md). Returns the uc_err. */
  start(pc: bigint): number {
    return this.lib.api.uc_emu_start(this.h, pc, U64_MASK, 0n, 0);
  }

  stop(): void {
    this.lib.api.uc_emu_stop(this.h);
  }

  /** uc_context for raw CPUARMState access (exception.ts). */
  contextAlloc(): { ctx: unknown; bytes: Uint8Array } {
    const out: unknown[] = [null];
    this.check(this.lib.api.uc_context_alloc(this.h, out), 'uc_context_alloc');
    const size = Number(this.lib.api.uc_context_size(this.h));
    const bytes = new Uint8Array(koffi.view(out[0], size));
    this.contexts.push(out[0]);
    return { ctx: out[0], bytes };
  }

  contextSave(ctx: unknown): void {
    this.check(this.lib.api.uc_context_save(this.h, ctx), 'uc_context_save');
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.lib.api.uc_close(this.h);
    this.h = null;
    // After uc_close nothing can call the trampolines any more; give them back to koffi's bounded pool.
    for (const cb of this.callbacks.splice(0)) koffi.unregister(cb as bigint);
    for (const c of this.contexts.splice(0)) this.lib.api.uc_context_free(c);
    this.keep.length = 0;
  }
}
