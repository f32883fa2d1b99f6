// What the main thread and a domain's worker share at start-up: the worker's init data and the control words.
// Kept out of worker.ts, whose top level runs the machine: importing it from the main thread would start one there.
import type { GuestImage } from '../toolstack/guest-image.js';
import { ENGINE_CELL_BYTES } from '../cpu/remote-stop.js';
import type { SleepBounds } from './machine.js';
import type { RefusedAccessPolicy } from '../xen/domain.js';

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
  policy: RefusedAccessPolicy;
  /** The event-channel table: a SAB, or a shared mapping (woken across processes with futexes). */
  evtchn: SharedArrayBuffer | MappedMemory;
  magicPages: SharedArrayBuffer | MappedMemory;
  /** Word 0: set to 1 by the main thread to stop the vCPU; from byte CONTROL_ENGINE: the engine cell (remote-stop.ts). */
  control: SharedArrayBuffer;
  profile: 'sbsa' | 'pl011';
  libraryPath?: string;
  /** Tests only: MachineOptions.sleepBounds. */
  sleepBounds?: SleepBounds;
}

export const CONTROL_STOP = 0;
/** Byte offset of the engine cell through which the controlling thread stops a vCPU that reaches no safe point. */
export const CONTROL_ENGINE = 8;
export const CONTROL_BYTES = CONTROL_ENGINE + ENGINE_CELL_BYTES;
