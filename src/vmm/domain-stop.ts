// Ending a domain's vCPU from the thread that started it, whatever the guest executes. One
// implementation for both hosts of a domain worker: `vpl011 run` (domain-thread.ts) and the daemon's domain host.
//
// Three steps, each for a different guest:
// 1. the stop flag: read by the vCPU at safe points (MMIO, MSR, exceptions, WFI);
// 2. an event-channel kick: wakes a vCPU asleep in WFI or in an FR stall at once;
// 3. uc_emu_stop on its engine from this thread (cpu/remote-stop.ts), repeated every STOP_RETRY_MS until the worker
//    reports its exit: a guest in a loop with no safe point (`b .`, a RAM flag, a panic loop) leaves the native run.
// A stopped vCPU is never resumed, so the 2.1.1 hazard of an asynchronous stop (PC rewound to the TB start) is moot.
import { EngineStopper } from '../cpu/remote-stop.js';
import { CONTROL_ENGINE, CONTROL_STOP } from './control.js';

/** How often an unanswered stop is repeated (a single uc_emu_stop can be lost: see remote-stop.ts). */
export const STOP_RETRY_MS = 10;

export interface DomainStopOptions {
  /** The worker's control block (control.ts). */
  control: SharedArrayBuffer;
  /** The libunicorn the worker loaded (same path: the same library in this process). */
  libraryPath: string;
  /** Wake the vCPU if it sleeps on its event channels. */
  kick: () => void;
  /** Resolves when the worker has exited. */
  exited: Promise<unknown>;
}

/** Request the stop and keep it requested until `exited` resolves. Idempotent. */
export function stopDomainWorker(o: DomainStopOptions): void {
  const flag = new Int32Array(o.control, 0, 1);
  if (Atomics.exchange(flag, CONTROL_STOP, 1) !== 0) return; // already stopping
  o.kick();
  const engine = new EngineStopper(o.control, o.libraryPath, CONTROL_ENGINE);
  engine.stop();
  const retry = setInterval(() => engine.stop(), STOP_RETRY_MS);
  void o.exited.finally(() => clearInterval(retry));
}
