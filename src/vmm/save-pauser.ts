// The controlling thread's side of a save (save-pause.ts is the vCPU's): request the pause, wait for the state the
// vCPU posts, give up (cancelling the request) if no safe point comes, and resume. One per domain worker.
import { cancelSave, requestSave, resumeAfterSave } from './save-pause.js';
import type { MachineState } from './machine-state.js';

/** A guest reaches a safe point every few microseconds unless it spins with no MMIO, MSR or exception at all. */
export const PAUSE_TIMEOUT_MS = 10_000;

export class SavePauser {
  private readonly control: Int32Array;
  private waiting: { resolve: (s: MachineState) => void; reject: (e: Error) => void } | null = null;
  private gone: string | null = null;

  constructor(control: SharedArrayBuffer, private readonly kick: () => void, private readonly tag: string) {
    this.control = new Int32Array(control);
  }

  pause(timeoutMs = PAUSE_TIMEOUT_MS): Promise<MachineState> {
    if (this.gone !== null) return Promise.reject(new Error(`${this.tag} has ended (${this.gone})`));
    if (this.waiting || !requestSave(this.control)) return Promise.reject(new Error(`${this.tag}: a save is already under way`));
    return new Promise<MachineState>((resolve, reject) => {
      const timer = setTimeout(() => {
        // Taken meanwhile: the state is on its way and settles this promise.
        if (!cancelSave(this.control)) return;
        this.waiting = null;
        reject(new Error(`${this.tag}: the guest reached no safe point within ${timeoutMs} ms; not saved (it runs on)`));
      }, timeoutMs);
      this.waiting = {
        resolve: (s) => { clearTimeout(timer); resolve(s); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      };
      this.kick(); // a vCPU asleep in WFI or an FR stall looks at once
    });
  }

  /** The vCPU's posted state: the guest is now frozen. */
  saved(state: MachineState): void {
    const w = this.waiting;
    this.waiting = null;
    w?.resolve(state);
  }

  resume(): void {
    resumeAfterSave(this.control);
  }

  ended(why: string): void {
    this.gone = why;
    const w = this.waiting;
    this.waiting = null;
    w?.reject(new Error(`${this.tag} ended before it could be saved (${why})`));
  }
}
