// The vCPU thread's side of a save (docs/SAVE.md, control.ts CONTROL_SAVE): at a pause between runs, take the
// request, capture the machine, hand the state to the main thread, and wait (the guest frozen) until it says resume
// or stop. Kept out of worker.ts so the protocol is one small module.
import { CONTROL_SAVE, CONTROL_STOP, SAVE_CAPTURING, SAVE_IDLE, SAVE_PAUSED, SAVE_REQUESTED } from './control.js';
import type { Machine } from './machine.js';
import type { MachineState } from './machine-state.js';

/** How often a paused vCPU looks at the stop flag (stop does not wake the save word). */
const PAUSED_POLL_MS = 50;

export function saveRequested(control: Int32Array): boolean {
  return Atomics.load(control, CONTROL_SAVE) === SAVE_REQUESTED;
}

/** Machine's onPause: returns false when the main thread ended the domain while it was paused. */
export function pauseForSave(control: Int32Array, machine: Machine, post: (state: MachineState, transfer: ArrayBuffer[]) => void): boolean {
  // Cancelled (the main thread gave up waiting) between the request being seen and now: nothing to do.
  if (Atomics.compareExchange(control, CONTROL_SAVE, SAVE_REQUESTED, SAVE_CAPTURING) !== SAVE_REQUESTED) return true;
  const state = machine.captureState();
  post(state, [state.ram.data.buffer as ArrayBuffer]);
  Atomics.store(control, CONTROL_SAVE, SAVE_PAUSED);
  while (Atomics.load(control, CONTROL_SAVE) === SAVE_PAUSED && Atomics.load(control, CONTROL_STOP) === 0) {
    Atomics.wait(control, CONTROL_SAVE, SAVE_PAUSED, PAUSED_POLL_MS);
  }
  return Atomics.load(control, CONTROL_STOP) === 0;
}

/** The main thread's side: ask for a save; false if one is already under way. */
export function requestSave(control: Int32Array): boolean {
  return Atomics.compareExchange(control, CONTROL_SAVE, SAVE_IDLE, SAVE_REQUESTED) === SAVE_IDLE;
}

/** Withdraw a request the vCPU has not taken yet; false if it has (its state is on the way). */
export function cancelSave(control: Int32Array): boolean {
  return Atomics.compareExchange(control, CONTROL_SAVE, SAVE_REQUESTED, SAVE_IDLE) === SAVE_REQUESTED;
}

/** Let a paused vCPU run on. */
export function resumeAfterSave(control: Int32Array): void {
  Atomics.store(control, CONTROL_SAVE, SAVE_IDLE);
  Atomics.notify(control, CONTROL_SAVE);
}
