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
    // Unused, it must not keep the process alive (a bad config ends the run before any domain exists).
    this.worker.unref();
    this.worker.on('error', (e) => { this.error ??= e; });
    this.ended = new Promise((resolve) => this.worker.once('exit', () => resolve()));
  }

  /** Take the worker for a domain (once): it now keeps the process alive like any running domain. */
  adopt(): Worker {
    if (this.adopted) throw new Error('spare worker: already in use');
    this.adopted = true;
    this.worker.ref();
    return this.worker;
  }

  /** End the worker if no domain took it. */
  discard(): void {
    if (this.adopted) return;
    this.adopted = true;
    void this.worker.terminate();
  }
}
