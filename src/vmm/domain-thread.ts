// Start one domain in a worker thread; the main thread gets the shared pages and event channels for its console
// backend, the vuart port, and the exit.
import { Worker } from 'node:worker_threads';
import { EventChannels } from '../xen/evtchn.js';
import type { GuestImage } from '../toolstack/guest-image.js';
import { NR_MAGIC_PAGES, XEN_PAGE_SIZE } from '../xen/arch-arm.js';
import type { MachineStats, SleepBounds } from './machine.js';
import { CONTROL_BYTES, type WorkerInit } from './control.js';
import { stopDomainWorker } from './domain-stop.js';
import { unicornLibraryPath } from '../toolstack/cache.js';

export interface DomainExit {
  reason: 'poweroff' | 'reset' | 'crashed' | 'stopped';
  message?: string;
  stats?: MachineStats;
}

export interface DomainThreadOptions {
  domid: number;
  name: string;
  image: GuestImage;
  policy?: 'abort' | 'crash-domain';
  /** The toolstack's vuart type: "sbsa_uart" (default) or "pl011" (the full PL011 profile). */
  vuart?: 'sbsa_uart' | 'pl011';
  /** An existing event-channel table to share (default: a new one). */
  evtchn?: SharedArrayBuffer;
  libraryPath?: string;
  /** Tests of wake paths only: the vCPU's doorbell sleep bounds (MachineOptions.sleepBounds). */
  sleepBounds?: SleepBounds;
}

export interface DomainThread {
  readonly magicPages: SharedArrayBuffer;
  readonly evtchn: SharedArrayBuffer;
  readonly vuartPort: Promise<number>;
  readonly exited: Promise<DomainExit>;
  /** Resolves when the guest first unmasks a vuart receive interrupt (its driver listens; Vpl011.receiveInterruptsUnmasked). */
  readonly listening: Promise<void>;
  stop(): Promise<void>;
}

/** Segments this small are copied (they may live in Node's shared Buffer pool, which cannot be transferred). */
const TRANSFER_MIN = 1024 * 1024;

/**
 * The large segment buffers of an image, given away to the vCPU's thread with its workerData instead of copied
 * (kernel and initrd: ~34 MB copied twice by the structured clone, ~130 ms of a start). The image's big segments
 * are unusable in this thread afterwards; nothing here reads them again.
 */
export function imageTransferList(image: GuestImage): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  for (const s of image.segments) {
    const b = s.data.buffer;
    if (b instanceof ArrayBuffer && b.byteLength >= TRANSFER_MIN) out.add(b);
  }
  return [...out];
}

export function startDomainThread(opts: DomainThreadOptions): DomainThread {
  const evtchn: SharedArrayBuffer = opts.evtchn ?? (EventChannels.create().buffer as SharedArrayBuffer);
  const magicPages = new SharedArrayBuffer(NR_MAGIC_PAGES * XEN_PAGE_SIZE);
  const control = new SharedArrayBuffer(CONTROL_BYTES);
  const libraryPath = opts.libraryPath ?? unicornLibraryPath();
  const init: WorkerInit = {
    domid: opts.domid, name: opts.name, image: opts.image, policy: opts.policy ?? 'abort', evtchn, magicPages, control,
    profile: opts.vuart === 'pl011' ? 'pl011' : 'sbsa', libraryPath,
    ...(opts.sleepBounds ? { sleepBounds: opts.sleepBounds } : {}),
  };
  const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: init, transferList: imageTransferList(opts.image) });
  let resolvePort!: (p: number) => void;
  let rejectPort!: (e: Error) => void;
  const vuartPort = new Promise<number>((res, rej) => { resolvePort = res; rejectPort = rej; });
  vuartPort.catch(() => {}); // a caller that only awaits `exited` must not see an unhandled rejection
  let resolveListening!: () => void;
  const listening = new Promise<void>((res) => (resolveListening = res));
  let done: DomainExit | undefined;
  const exited = new Promise<DomainExit>((resolve) => {
    worker.on('message', (m: { type: string; port?: number; on?: boolean; exit?: DomainExit; stats?: MachineStats }) => {
      if (m.type === 'vuart') resolvePort(m.port!);
      else if (m.type === 'listening' && m.on) resolveListening();
      else if (m.type === 'exit') {
        done = { ...m.exit!, ...(m.stats ? { stats: m.stats } : {}) };
        rejectPort(new Error(`d${opts.domid} exited before its vuart was ready: ${done.message ?? done.reason}`));
      }
    });
    worker.on('error', (e) => { done ??= { reason: 'crashed', message: `d${opts.domid} worker: ${e.message}` }; });
    worker.on('exit', () => {
      const d = done ?? { reason: 'crashed' as const, message: `d${opts.domid}: worker ended without an exit report` };
      rejectPort(new Error(d.message ?? d.reason));
      resolve(d);
    });
  });
  // Keep the main thread's event loop alive while the domain runs: a caller awaiting only Atomics.waitAsync promises
  // (which hold no reference on the loop) would otherwise see Node exit with 13 "unsettled top-level await".
  const keepAlive = setInterval(() => {}, 1 << 30);
  void exited.finally(() => clearInterval(keepAlive));
  return {
    magicPages, evtchn, vuartPort, exited, listening,
    async stop() {
      stopDomainWorker({ control, libraryPath, exited, kick: () => EventChannels.attach(evtchn).kick(opts.domid) });
      await exited;
    },
  };
}
