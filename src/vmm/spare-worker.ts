// A domain's worker thread started before the domain is built. Starting a Node worker and loading the VMM's modules
// into it (unicorn's binding, koffi, the machine: ~60 ms) needs nothing from the domain, so `vpl011 run` starts it
// first and builds the guest (config, images, FDT) in its own thread meanwhile; startDomainWorker then sends the
// worker its domain (worker.ts waits for that message). Only node:worker_threads here: the starter imports this
// module before anything else it needs.
import { Worker } from 'node:worker_threads';

export class SpareWorker {
  readonly worker = new Worker(new URL('./worker.js', import.meta.url));
  /** The first 'error' the worker raised (a module that failed to load), kept for whoever adopts it. */
  error: Error | undefined;
  /** Resolves when the thread has ended (listened to from the start: an early end is not missed). */
  readonly ended: Promise<void>;
  private adopted = false;

  constructor() {
    this.worker.on('error', (e) => { this.error ??= e; });
    this.ended = new Promise((resolve) => this.worker.once('exit', () => resolve()));
  }

  /** Take the worker for a domain (once). */
  adopt(): Worker {
    if (this.adopted) throw new Error('spare worker: already in use');
    this.adopted = true;
    return this.worker;
  }

  /**
   * If no domain took the worker, tell it there is none: it ends once its modules are loaded (worker.ts). Never
   * terminate() it: koffi aborts the whole process when its thread is terminated inside a call (loading unicorn's
   * binding is a series of them), so a run refused at once (exit 2) would end with SIGABRT instead. The process
   * waits for that end (up to the ~60 ms of loading), so nothing may process.exit() while a spare loads.
   */
  discard(): void {
    if (this.adopted) return;
    this.adopted = true;
    this.worker.postMessage(null);
  }
}
