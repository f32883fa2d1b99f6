// What the main thread and a domain's worker share: the worker's init data, the control words, and the one message
// type both directions use (DomainMessage). Kept out of worker.ts, whose top level runs the machine: importing it
// from the main thread would start one there.
import type { MessagePort } from 'node:worker_threads';
import type { GuestImage } from '../toolstack/guest-image.js';
import { ENGINE_CELL_BYTES } from '../cpu/remote-stop.js';
import type { MachineExit, MachineStats, SleepBounds } from './machine.js';
import type { MachineState } from './machine-state.js';
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
  /**
   * Word CONTROL_STOP: set to 1 by the main thread to stop the vCPU; word CONTROL_REQUESTS: requests posted on
   * `requests` so far; from byte CONTROL_ENGINE: the engine cell (remote-stop.ts).
   */
  control: SharedArrayBuffer;
  /** Where the main thread posts DomainRequests; the worker reads them synchronously at the vCPU's safe points. */
  requests: MessagePort;
  profile: 'sbsa' | 'pl011';
  libraryPath?: string;
  /** Tests only: MachineOptions.sleepBounds. */
  sleepBounds?: SleepBounds;
  /** The domain's insight region (src/vmm/insight.ts; `vpl011 stat`, `vpl011 trace`) and whether the trace starts on. */
  insight?: SharedArrayBuffer | MappedMemory;
  trace?: boolean;
  /** Build the machine from a saved state (docs/SAVE.md) instead of booting the image. */
  restore?: MachineState;
  /** MachineOptions.xenConsole: the vuart's backend is Xen (dom0less). */
  xenConsole?: SharedArrayBuffer;
  /** Wait at CONTROL_UNPAUSED after reporting the vuart port, until DomainWorker.unpause() (or a stop). */
  createPaused?: boolean;
}

export const CONTROL_STOP = 0;
/** Int32 index of the count of requests posted: the vCPU reads its port only when this moved (a load per poll). */
export const CONTROL_REQUESTS = 1;
/** Byte offset of the engine cell through which the controlling thread stops a vCPU that reaches no safe point. */
export const CONTROL_ENGINE = 8;
/**
 * Int32 index of the save word (docs/SAVE.md), after the engine cell. A save is not a DomainRequest: those are
 * answered inside the vCPU's callbacks, where the registers cannot be captured (PC is stale inside an MMIO
 * callback); a save needs the run loop between two runs. The main thread sets SAVE_REQUESTED and kicks; the vCPU
 * stops at its next resumable point (UnicornVcpu.requestPause), moves the word to SAVE_CAPTURING, posts
 * {type: 'saved'}, sets SAVE_PAUSED and waits, the guest frozen, until the main thread sets SAVE_IDLE (resume) or
 * the stop flag (end). A request not yet taken is withdrawn by moving it back to SAVE_IDLE (save-pause.ts).
 */
export const CONTROL_SAVE = (CONTROL_ENGINE + ENGINE_CELL_BYTES) / 4;
export const SAVE_IDLE = 0;
export const SAVE_REQUESTED = 1;
export const SAVE_CAPTURING = 2;
export const SAVE_PAUSED = 3;
/**
 * Int32 index of the unpause word. Xen creates a domain paused and the toolstack unpauses it once its console is
 * connected (xl create: the console backend binds first). A worker started with `createPaused` builds the machine,
 * reports the vuart port and waits here (non-zero: run) or for the stop word, so a guest that writes and ends at
 * once cannot close its event channel before the backend has bound it (its last words would have no reader).
 */
export const CONTROL_UNPAUSED = CONTROL_SAVE + 1;
export const CONTROL_BYTES = CONTROL_ENGINE + ENGINE_CELL_BYTES + 8;

// ---- the messages between a domain's worker and the thread that started it (src/vmm/domain-thread.ts) -------------
//
// The vCPU runs synchronously in its worker, so the worker's event loop never turns while the guest runs: requests go
// on a MessagePort of their own, the main thread bumps CONTROL_REQUESTS and kicks the doorbell, and the vCPU reads
// the port (receiveMessageOnPort) at its next safe point and answers at once. A guest that reaches no safe point
// (a `b .` loop with interrupts masked) answers nothing: DomainThread.request() bounds the wait.

/**
 * The requests a running domain answers, each with what its answer carries. Adding one is one entry here and one
 * handler in worker.ts's `handlers` table (the compiler checks that every request has its handler).
 */
export interface DomainRequests {
  /** The machine's counters now (the same figures as an exit's `stats`). */
  stats: { args: Record<string, never>; reply: MachineStats };
}
export type DomainRequestType = keyof DomainRequests;

/** Main thread -> worker: one request (`id` pairs it with its reply). */
export type DomainRequest = { [K in DomainRequestType]: { type: K; id: number; args: DomainRequests[K]['args'] } }[DomainRequestType];

/** Worker -> main thread. */
export type DomainEvent =
  /** The machine is built: the guest's vuart event-channel port (what the console backend binds to). */
  | { type: 'vuart'; port: number }
  /** Posted at a safe point when the guest starts (or stops) listening for vuart input (receive interrupts unmasked). */
  | { type: 'listening'; on: boolean }
  /** The answer to request `id`: its reply, or why there is none. */
  | { type: 'reply'; id: number; ok: true; reply: DomainRequests[DomainRequestType]['reply'] }
  | { type: 'reply'; id: number; ok: false; error: string }
  /** The vCPU paused for a save (CONTROL_SAVE): the machine's state; the guest waits for resume or stop. */
  | { type: 'saved'; state: MachineState }
  /** The vCPU's run ended (the worker ends right after, its machine closed). */
  | { type: 'exit'; exit: MachineExit; stats?: MachineStats };

/** Every message between a domain's worker and its starter, both directions. */
export type DomainMessage = DomainRequest | DomainEvent;
