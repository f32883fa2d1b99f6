// What the main thread and a domain's worker share at start-up: the worker's init data and the control words.
// Kept out of worker.ts, whose top level runs the machine: importing it from the main thread would start one there.
import type { GuestImage } from '../toolstack/guest-image.js';
import { ENGINE_CELL_BYTES } from '../cpu/remote-stop.js';
import type { SleepBounds } from './machine.js';
import type { MachineState } from './machine-state.js';

/**
 * Memory mapped in this process from a cross-process shm object (src/host/shm.ts SharedMapping), passed to the
 * worker by address: a worker shares the process's address space, and views it with koffi.
 */
export interface MappedMemory {
  address: bigint;
  size: number;
}

export interface WorkerInit {
  domid: number;
  name: string;
  image: GuestImage;
  policy: 'abort' | 'crash-domain';
  /** The event-channel table: a SAB, or a shared mapping (woken across processes with futexes). */
  evtchn: SharedArrayBuffer | MappedMemory;
  magicPages: SharedArrayBuffer | MappedMemory;
  /** Word 0: set to 1 by the main thread to stop the vCPU; from byte CONTROL_ENGINE: the engine cell (remote-stop.ts). */
  control: SharedArrayBuffer;
  profile: 'sbsa' | 'pl011';
  libraryPath?: string;
  /** Tests only: MachineOptions.sleepBounds. */
  sleepBounds?: SleepBounds;
  /** Build the machine from a saved state (docs/SAVE.md) instead of booting the image. */
  restore?: MachineState;
}

export const CONTROL_STOP = 0;
/**
 * Int32 index of the save word (docs/SAVE.md): the main thread sets SAVE_REQUESTED; the vCPU, at its next safe point,
 * moves it to SAVE_CAPTURING, posts {type: 'saved', state}, sets SAVE_PAUSED and waits; the main thread then sets
 * SAVE_IDLE (resume) or the stop flag (end). A request not yet taken is cancelled by moving it back to SAVE_IDLE.
 */
export const CONTROL_SAVE = 6;
export const SAVE_IDLE = 0;
export const SAVE_REQUESTED = 1;
export const SAVE_CAPTURING = 2;
export const SAVE_PAUSED = 3;
/** Byte offset of the engine cell through which the controlling thread stops a vCPU that reaches no safe point. */
export const CONTROL_ENGINE = 8;
/** The save word (CONTROL_SAVE) sits after the engine cell. */
export const CONTROL_BYTES = CONTROL_ENGINE + ENGINE_CELL_BYTES + 8;
