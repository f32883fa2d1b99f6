// Loading and binding the vCPU's native fast path (src/cpu/native/fastpath.c, built by scripts/build-native.sh into
// dist/native/). Optional: without the library (no C compiler at setup) or with VPL011_NATIVE=0, everything runs in
// TypeScript; a missing library is said once per process, in one line.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import koffi from 'koffi';
import { HotF64, HotWord, type HotState } from '../device/hot-state.js';
import { mmioTrampolines, type MmioReadFn, type MmioWriteFn } from './unicorn.js';
import { errorMessage } from '../util/errors.js';

/** What the vCPU needs to serve the vpl011 page natively (built by the machine, which owns the device). */
export interface NativeUartBinding {
  /** Guest-physical base of the vpl011 page. */
  readonly base: number;
  /** The device's and ring's hot state (ConsoleRing.hot). */
  readonly hot: HotState;
  /** The ring page (ConsoleRing.page): stays mapped while the machine lives. */
  readonly ringPage: Uint8Array;
  /** The domain's doorbell word (a 1-element view into the event-channel table). */
  readonly doorbell: Int32Array;
  /** The domain's line-event area (src/xen/line-events.ts): DR reads go to JS while an entry waits. */
  readonly lineEvents: Int32Array;
  /** Vpl011.nativeTail. */
  tail(flags: number, prod: number, cons: number): void;
  /** Whether the C path may serve accesses now (the device is the domain's vuart and the domain is alive). */
  live(): boolean;
  /** The access-trace region (src/device/access-trace.ts) the C path records its accesses into while it is enabled. */
  readonly trace?: Uint8Array;
}

interface FastLib {
  fp_new(hot: Uint8Array, page: Uint8Array, doorbell: Int32Array, lineEvents: Int32Array): unknown;
  fp_set_js(s: unknown, rd: unknown, wr: unknown, msr: unknown, tail: unknown): void;
  fp_free(s: unknown): void;
  fp_set_trace(s: unknown, region: Uint8Array | null): number;
  fp_mmio_read_ptr(): unknown;
  fp_mmio_write_ptr(): unknown;
  fp_msr_ptr(): unknown;
  fp_mono_ms(): number;
  /** CLOCK_MONOTONIC ms minus performance.now() (both are the host's monotonic clock). */
  monoOffsetMs: number;
}

export const NATIVE_LIB_NAME = 'libvpl011_fastpath.so';
/** NativeTail.Line of src/device/vpl011.ts (and TAIL_LINE of fastpath.c). */
const TAIL_LINE = 2;
const HINT = 'vpl011: native console fast path not built (needs a C compiler: run scripts/setup.sh); using the TypeScript path';

/** dist/native/ next to dist/src/ (this file is dist/src/cpu/native.js once built). */
export function nativeLibraryPath(): string {
  return process.env.VPL011_NATIVE_LIB || join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'native', NATIVE_LIB_NAME);
}

/** VPL011_NATIVE=0 forces the TypeScript path. */
export function nativeDisabledByEnv(): boolean {
  const v = process.env.VPL011_NATIVE;
  return v === '0' || v === 'false' || v === 'off';
}

/** VPL011_NATIVE_MSR=0 keeps the native MMIO path but sends every MSR to JS (for A/B measurements). */
export function nativeMsrFilterEnabled(): boolean {
  return process.env.VPL011_NATIVE_MSR !== '0';
}

let lib: FastLib | null | undefined;
let hinted = false;

/** The loaded library, or null (disabled, missing: one hint line per process, or failing to load). */
export function loadNative(): FastLib | null {
  if (lib !== undefined) return lib;
  if (nativeDisabledByEnv()) return (lib = null);
  const path = nativeLibraryPath();
  if (!existsSync(path)) {
    if (!hinted && process.env.VPL011_NATIVE !== 'quiet') {
      hinted = true;
      process.stderr.write(HINT + '\n');
    }
    return (lib = null);
  }
  try {
    const l = koffi.load(path);
    const f = (s: string) => l.func(s);
    koffi.proto('void vpl011_fp_tail_cb(int flags, uint32_t prod, uint32_t cons)');
    const fl = {
      fp_new: f('void *fp_new(void *hot, void *page, void *doorbell, void *line_events)'),
      fp_set_js: f('void fp_set_js(void *s, vpl011_uc_mmio_read_cb *rd, vpl011_uc_mmio_write_cb *wr, vpl011_uc_sys_cb *msr, vpl011_fp_tail_cb *tail)'),
      fp_free: f('void fp_free(void *s)'),
      fp_set_trace: f('int fp_set_trace(void *s, void *region)'),
      fp_mmio_read_ptr: f('void *fp_mmio_read_ptr(void)'),
      fp_mmio_write_ptr: f('void *fp_mmio_write_ptr(void)'),
      fp_msr_ptr: f('void *fp_msr_ptr(void)'),
      fp_mono_ms: f('double fp_mono_ms(void)'),
      monoOffsetMs: 0,
    } as unknown as FastLib;
    fl.monoOffsetMs = fl.fp_mono_ms() - performance.now();
    lib = fl;
  } catch (e) {
    process.stderr.write(`vpl011: native console fast path not loaded (${errorMessage(e)}); using the TypeScript path\n`);
    lib = null;
  }
  return lib;
}

/** Raw unicorn calls the fast path needs (provided by Uc, which owns the engine handle and trampoline pool). */
export interface RawUnicorn {
  registerNamed(fn: (...a: never[]) => unknown, protoName: string): unknown;
  mmioMapRaw(base: number, size: number, rcb: unknown, ur: unknown, wcb: unknown, uw: unknown): void;
  hookMsrRaw(cb: unknown, user: unknown): void;
}

/**
 * One vCPU's fast path: the C state (freed on close) and the JS callbacks the C side falls back to. JS callbacks
 * are the vCPU's ordinary ones; every trip into them may leave work for a safe point (an IRQ level the GIC
 * recorded, an abort to inject, a listener change), so each asks the MSR filter to pass the next MSR.
 */
export class NativeFastPath {
  private readonly s: unknown;
  private jsRead: unknown = null;
  private jsWrite: unknown = null;
  private jsMsr: unknown = null;
  private readonly jsTail: unknown;
  private closed = false;

  constructor(
    private readonly l: FastLib,
    private readonly uc: RawUnicorn,
    readonly uart: NativeUartBinding,
    private readonly timerCheckMs: () => number,
  ) {
    const s = l.fp_new(new Uint8Array(uart.hot.buffer), uart.ringPage, uart.doorbell, uart.lineEvents);
    if (s === null) throw new Error('native fast path: hot-state layout mismatch (rebuild: scripts/build-native.sh)');
    this.s = s;
    const w = uart.hot.w;
    this.jsTail = uc.registerNamed(((flags: number, prod: number, cons: number) => {
      uart.tail(flags, prod, cons);
      // Only a raised line needs a safe point (the vCPU raises its IRQ input there); lowering happens at once, and a
      // backend notification or a corruption report needs nothing from the vCPU.
      if ((flags & TAIL_LINE) !== 0 && w[HotWord.Line] !== 0) w[HotWord.WantSafePoint] = 1;
    }) as never, 'vpl011_fp_tail_cb');
    w[HotWord.Enabled] = uart.live() ? 1 : 0;
  }

  /**
   * A JS trip that may need a safe point (an MMIO access JS served, to any device); it may also have crashed the
   * domain, after which the C path must not serve the rest of the block.
   */
  wantSafePoint(): void {
    this.afterJsTrip(true);
  }

  /** After a JS trip: re-check live() and, if `safePoint`, ask the MSR filter to pass the next MSR to JS. */
  afterJsTrip(safePoint: boolean): void {
    const w = this.uart.hot.w;
    if (safePoint) w[HotWord.WantSafePoint] = 1;
    w[HotWord.Enabled] = this.uart.live() && !this.traceRefused ? 1 : 0;
  }

  /** The MSR hook through the C filter; `js` is the ordinary trampoline (proto vpl011_uc_sys_cb). */
  hookMsr(js: (uc: unknown, reg: number, cp: number | bigint, user: unknown) => number): void {
    const f = this.uart.hot.f;
    const l = this.l;
    this.jsMsr = this.uc.registerNamed(((uc: unknown, reg: number, cp: number | bigint, user: unknown) => {
      const r = js(uc, reg, cp, user);
      f[HotF64.TimerCheckMonoMs] = this.timerCheckMs() + l.monoOffsetMs;
      return r;
    }) as never, 'vpl011_uc_sys_cb');
    this.bind();
    f[HotF64.TimerCheckMonoMs] = this.timerCheckMs() + l.monoOffsetMs;
    this.uc.hookMsrRaw(l.fp_msr_ptr(), this.s);
  }

  /** The timer's deadline changed outside an MSR (a restored state): the filter's next check time follows it. */
  refreshTimerCheck(): void {
    this.uart.hot.f[HotF64.TimerCheckMonoMs] = this.timerCheckMs() + this.l.monoOffsetMs;
  }

  /** Map the vpl011 page with the C callbacks in front of the ordinary JS ones (offsets within the page). */
  mapUart(size: number, read: MmioReadFn, write: MmioWriteFn): void {
    // The vCPU's read/write ask for a safe point and re-check live() after each trip (wantSafePoint).
    const t = mmioTrampolines(read, write);
    this.jsRead = this.uc.registerNamed(t.read as never, 'vpl011_uc_mmio_read_cb');
    this.jsWrite = this.uc.registerNamed(t.write as never, 'vpl011_uc_mmio_write_cb');
    this.bind();
    this.uc.mmioMapRaw(this.uart.base, size, this.l.fp_mmio_read_ptr(), this.s, this.l.fp_mmio_write_ptr(), this.s);
  }

  private bind(): void {
    this.l.fp_set_js(this.s, this.jsRead, this.jsWrite, this.jsMsr, this.jsTail);
  }

  /**
   * Record the accesses the C path serves into the binding's trace region (on), or stop (off). Called by the vCPU
   * thread between accesses. A region whose layout the library does not know turns the C path off for good rather
   * than leave its accesses unrecorded.
   */
  setTrace(on: boolean): void {
    const region = on ? this.uart.trace : undefined;
    if (this.l.fp_set_trace(this.s, region ?? null) !== 1) {
      this.uart.hot.w[HotWord.Enabled] = 0;
      this.traceRefused = true;
    }
  }
  private traceRefused = false;

  /** Accesses served in C, MSRs seen and passed to JS. */
  counters(): { nativeMmio: number; msrTotal: number; msrPassed: number } {
    const f = this.uart.hot.f;
    return { nativeMmio: f[HotF64.NativeMmio]!, msrTotal: f[HotF64.MsrTotal]!, msrPassed: f[HotF64.MsrPassed]! };
  }

  /** After uc_close (nothing calls the C callbacks any more). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.uart.hot.w[HotWord.Enabled] = 0;
    this.l.fp_free(this.s);
  }
}
