// Stopping a vCPU from another thread: the one call into unicorn this project makes from a thread other than the
// engine's own. A guest that never reaches a safe point (`b .`, a loop on a RAM flag, Linux's panic loop polling
// CNTVCT with interrupts off) stays inside the native uc_emu_start, where neither the stop flag nor
// Worker.terminate() can reach it.
//
// Why calling uc_emu_stop from the controlling thread is safe here, on 2.1.1 (uc.c, qemu/softmmu/cpus.c,
// qemu/accel/tcg/cpu-exec.c):
// - it only sets uc->stop_request and calls cpu_exit(), which stores cpu->exit_request and icount_decr.u16.high
//   (atomics in QEMU); every TB starts by testing icount_decr, so even a TB that chains to itself leaves the
//   execution loop at its next entry, and tcg_exec_all then ends uc_emu_start because stop_request is set;
// - the hazard of 2.1.1 (an asynchronous exit rewinds PC to the TB start with registers already updated, unicorn
//   #1565) only corrupts a run that is *resumed*; a stopped domain never runs again (the run loop returns 'stopped');
// - a stop can be lost (uc_emu_start clears stop_request on entry; a hook that writes PC clears it too), so the
//   controller repeats it until the worker reports its exit (src/vmm/domain-stop.ts);
// - the handle must be live: the engine is published only after it is built (UC_INIT would otherwise race the
//   worker's own lazy init) and retired before uc_close under a small lock in shared memory, so a stop never reaches
//   a freed engine.
import koffi from 'koffi';
import type { Uc } from './unicorn.js';

/** Bytes of the shared cell: state word (Int32 at 0), the engine's address (BigInt64 at 8). */
export const ENGINE_CELL_BYTES = 16;
const NONE = 0; // no engine published yet
const LIVE = 1; // the engine at the published address may be stopped
const CALLING = 2; // the controller is inside uc_emu_stop: the engine must not be closed
const RETIRED = 3; // closed or about to be: never call into it again

/** The engine's side (its own thread): publish the engine once built, retire it before closing it. */
export class EngineCell {
  private readonly state: Int32Array;
  private readonly address: BigUint64Array;

  constructor(buffer: SharedArrayBuffer, byteOffset = 0) {
    this.state = new Int32Array(buffer, byteOffset, 1);
    this.address = new BigUint64Array(buffer, byteOffset + 8, 1);
  }

  publish(uc: Uc): void {
    Atomics.store(this.address, 0, koffi.address(uc.handle));
    Atomics.compareExchange(this.state, 0, NONE, LIVE);
  }

  /** Blocks (briefly) while a stop call is in flight, so that uc_close never runs under it. */
  retire(): void {
    for (;;) {
      const s = Atomics.compareExchange(this.state, 0, LIVE, RETIRED);
      if (s === LIVE || s === RETIRED) return;
      if (s === NONE) {
        if (Atomics.compareExchange(this.state, 0, NONE, RETIRED) === NONE) return;
        continue;
      }
      Atomics.wait(this.state, 0, CALLING, 100);
    }
  }
}

type StopFn = (uc: bigint) => number;
const stopFns = new Map<string, StopFn>();

function stopFunction(libraryPath: string): StopFn {
  let f = stopFns.get(libraryPath);
  if (!f) {
    // dlopen of a path already loaded by the worker returns the same library: the same engine code and globals.
    f = koffi.load(libraryPath).func('int uc_emu_stop(uintptr_t uc)') as StopFn;
    stopFns.set(libraryPath, f);
  }
  return f;
}

/** The controller's side (another thread of the same process). */
export class EngineStopper {
  private readonly state: Int32Array;
  private readonly address: BigUint64Array;

  constructor(buffer: SharedArrayBuffer, private readonly libraryPath: string, byteOffset = 0) {
    this.state = new Int32Array(buffer, byteOffset, 1);
    this.address = new BigUint64Array(buffer, byteOffset + 8, 1);
  }

  /** Ask the engine to leave uc_emu_start now. False when there is no live engine (not built yet, or closed). */
  stop(): boolean {
    if (Atomics.compareExchange(this.state, 0, LIVE, CALLING) !== LIVE) return false;
    try {
      stopFunction(this.libraryPath)(Atomics.load(this.address, 0));
    } finally {
      Atomics.store(this.state, 0, LIVE);
      Atomics.notify(this.state, 0);
    }
    return true;
  }
}
