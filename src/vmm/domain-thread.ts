// Run one domain in a worker thread: the one implementation of starting the VMM's worker (src/vmm/worker.ts),
// reading its messages (control.ts DomainMessage), sending it requests, and stopping it (domain-stop.ts). Two hosts
// use it: `vpl011 run` and the library (startDomainThread: the guest's memory and event channels are
// SharedArrayBuffers in this process) and the daemon's domain host (startDomainWorker over cross-process mappings).
import { MessageChannel } from 'node:worker_threads';
import { EventChannels } from '../xen/evtchn.js';
import type { GuestImage } from '../toolstack/guest-image.js';
import type { RefusedAccessPolicy } from '../xen/domain.js';
import { NR_MAGIC_PAGES, XEN_PAGE_SIZE } from '../xen/arch-arm.js';
import type { MachineExit, MachineStats, SleepBounds } from './machine.js';
import {
  CONTROL_BYTES, CONTROL_REQUESTS, CONTROL_UNPAUSED,
  type DomainEvent, type DomainRequest, type DomainRequests, type DomainRequestType, type MappedMemory, type WorkerInit,
} from './control.js';
import { stopDomainWorker } from './domain-stop.js';
import type { MachineState } from './machine-state.js';
import { SavePauser } from './save-pauser.js';
import { unicornLibraryPath } from '../toolstack/cache.js';
import { SpareWorker } from './spare-worker.js';

export type DomainExit = MachineExit & { stats?: MachineStats };

/** How long request() waits for the vCPU's next safe point before giving up (a guest may reach none). */
export const REQUEST_TIMEOUT_MS = 5_000;

export interface DomainWorkerOptions {
  domid: number;
  name: string;
  image: GuestImage;
  policy?: RefusedAccessPolicy;
  /** The toolstack's vuart type: "sbsa_uart" (default) or "pl011" (the full PL011 profile). */
  vuart?: 'sbsa_uart' | 'pl011';
  /** The event-channel table: a SAB, or a cross-process mapping (woken with futexes). */
  evtchn: SharedArrayBuffer | MappedMemory;
  /** The domain's 4 magic pages (the vuart ring is one of them). */
  magicPages: SharedArrayBuffer | MappedMemory;
  /** Ring the domain's doorbell (EventChannels.kick) so a vCPU asleep in WFI or an FR stall looks at once. */
  kick: () => void;
  /** Xen's create-paused: the vCPU starts only at unpause() (control.ts CONTROL_UNPAUSED). */
  createPaused?: boolean;
  libraryPath?: string;
  /** Tests of wake paths only: the vCPU's doorbell sleep bounds (MachineOptions.sleepBounds). */
  sleepBounds?: SleepBounds;
  /** Where the vCPU publishes the vpl011's state and records its access trace (src/vmm/insight.ts), if anywhere. */
  insight?: SharedArrayBuffer | MappedMemory;
  trace?: boolean;
  /** Start from a saved state (docs/SAVE.md); `image` then only gives the RAM range (machine-state.ts restoreImage). */
  restore?: MachineState;
  /** A worker started ahead (spare-worker.ts) to run this domain; default: a new one. */
  spare?: SpareWorker;
  /** The vuart's backend is Xen (dom0less): its buffers (createXenConsoleRegion), served by the console mux. */
  xenConsole?: SharedArrayBuffer;
}

/** A running domain's worker, as its starter sees it. */
export interface DomainWorker {
  /** The guest's vuart port once the machine is built; rejects if the domain ends first. */
  readonly vuartPort: Promise<number>;
  readonly exited: Promise<DomainExit>;
  /** Resolves when the guest first unmasks a vuart receive interrupt (its driver listens; Vpl011.receiveInterruptsUnmasked). */
  readonly listening: Promise<void>;
  /** Ask the running domain something (control.ts DomainRequests); answered at the vCPU's next safe point. */
  request<K extends DomainRequestType>(type: K, args: DomainRequests[K]['args'], timeoutMs?: number): Promise<DomainRequests[K]['reply']>;
  /** Stop the vCPU whatever it runs (domain-stop.ts) and wait for the worker to end. Idempotent. */
  stop(): Promise<void>;
  /**
   * Pause the guest where its run can be resumed exactly and return its state (docs/SAVE.md); the guest stays
   * frozen until resume() or stop(). Rejects, the guest running on, if it reaches no such point within `timeoutMs`.
   */
  pause(timeoutMs?: number): Promise<MachineState>;
  resume(): void;
  /** Let a domain started with `createPaused` run (its console is connected). Idempotent. */
  unpause(): void;
}

/** Segments this small are copied (they may live in Node's shared Buffer pool, which cannot be transferred). */
const TRANSFER_MIN = 1024 * 1024;

/**
 * The large segment buffers of an image, given away to the vCPU's thread with its first message instead of copied
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

export function startDomainWorker(opts: DomainWorkerOptions): DomainWorker {
  const control = new SharedArrayBuffer(CONTROL_BYTES);
  const controlWords = new Int32Array(control);
  const libraryPath = opts.libraryPath ?? unicornLibraryPath();
  const requests = new MessageChannel();
  const init: WorkerInit = {
    domid: opts.domid, name: opts.name, image: opts.image, policy: opts.policy ?? 'abort',
    evtchn: opts.evtchn, magicPages: opts.magicPages, control, requests: requests.port2,
    profile: opts.vuart === 'pl011' ? 'pl011' : 'sbsa', libraryPath,
    ...(opts.sleepBounds ? { sleepBounds: opts.sleepBounds } : {}),
    ...(opts.insight ? { insight: opts.insight, trace: opts.trace === true } : {}),
    ...(opts.restore ? { restore: opts.restore } : {}),
    ...(opts.xenConsole ? { xenConsole: opts.xenConsole } : {}),
    ...(opts.createPaused ? { createPaused: true } : {}),
  };
  const spare = opts.spare ?? new SpareWorker();
  const worker = spare.adopt();
  worker.postMessage(init, [requests.port2, ...imageTransferList(opts.image)]);
  const tag = `d${opts.domid}`;

  let resolvePort!: (p: number) => void;
  let rejectPort!: (e: Error) => void;
  const vuartPort = new Promise<number>((res, rej) => { resolvePort = res; rejectPort = rej; });
  vuartPort.catch(() => {}); // a caller that only awaits `exited` must not see an unhandled rejection
  let resolveListening!: () => void;
  const listening = new Promise<void>((res) => (resolveListening = res));

  const pending = new Map<number, { resolve: (v: never) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  let stopping = false;
  let ended = false;
  let done: DomainExit | undefined;
  const pauser = new SavePauser(control, opts.kick, tag);

  const onMessage: { [T in DomainEvent['type']]: (m: Extract<DomainEvent, { type: T }>) => void } = {
    vuart: (m) => resolvePort(m.port),
    listening: (m) => { if (m.on) resolveListening(); },
    reply: (m) => {
      const p = pending.get(m.id);
      if (!p) return; // timed out already
      pending.delete(m.id);
      if (m.ok) p.resolve(m.reply as never);
      else p.reject(new Error(`${tag}: ${m.error}`));
    },
    saved: (m) => pauser.saved(m.state),
    exit: (m) => {
      done = { ...m.exit, ...(m.stats ? { stats: m.stats } : {}) };
      rejectPort(new Error(`${tag} exited before its vuart was ready: ${done.message ?? done.reason}`));
    },
  };
  const exited = new Promise<DomainExit>((resolve) => {
    worker.on('message', (m: DomainEvent) => (onMessage[m.type] as (m: DomainEvent) => void)(m));
    // The spare keeps the worker's first error and its end, including those from before it was adopted here.
    void spare.ended.then(() => {
      ended = true;
      if (spare.error) done ??= { reason: 'crashed', message: `${tag} worker: ${spare.error.message}` };
      const d: DomainExit = done ?? (stopping ? { reason: 'stopped' } : { reason: 'crashed', message: `${tag}: worker ended without an exit report` });
      rejectPort(new Error(d.message ?? d.reason));
      pauser.ended(d.message ?? d.reason);
      for (const p of pending.values()) p.reject(new Error(`${tag} has exited (${d.reason})`));
      pending.clear();
      requests.port1.close();
      resolve(d);
    });
  });
  // Keep the event loop alive while the domain runs: a caller awaiting only Atomics.waitAsync promises (which hold
  // no reference on the loop) would otherwise see Node exit with 13 "unsettled top-level await".
  const keepAlive = setInterval(() => {}, 1 << 30);
  void exited.finally(() => clearInterval(keepAlive));

  return {
    vuartPort, exited, listening,
    request<K extends DomainRequestType>(type: K, args: DomainRequests[K]['args'], timeoutMs = REQUEST_TIMEOUT_MS) {
      if (ended) return Promise.reject(new Error(`${tag} has exited`));
      const id = nextId++;
      return new Promise<DomainRequests[K]['reply']>((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`${tag}: no answer to ${type} within ${timeoutMs} ms (the vCPU reached no safe point)`));
        }, timeoutMs);
        const settle = <A extends unknown[]>(f: (...a: A) => void) => (...a: A) => { clearTimeout(timer); f(...a); };
        pending.set(id, { resolve: settle(resolve) as (v: never) => void, reject: settle(reject) });
        requests.port1.postMessage({ type, id, args } as DomainRequest);
        // Counted after posting: the vCPU reads the port only when the count moved, and then finds the message.
        Atomics.add(controlWords, CONTROL_REQUESTS, 1);
        opts.kick();
      });
    },
    pause: (timeoutMs) => pauser.pause(timeoutMs),
    resume: () => pauser.resume(),
    unpause() {
      Atomics.store(controlWords, CONTROL_UNPAUSED, 1);
      Atomics.notify(controlWords, CONTROL_UNPAUSED);
    },
    async stop() {
      stopping = true;
      stopDomainWorker({ control, libraryPath, exited, kick: opts.kick });
      await exited;
    },
  };
}

export interface DomainThreadOptions extends Omit<DomainWorkerOptions, 'evtchn' | 'magicPages' | 'kick'> {
  /** An existing event-channel table to share (default: a new one). */
  evtchn?: SharedArrayBuffer;
}

/** A domain whose memory and event channels are SharedArrayBuffers of this process (`vpl011 run`, the library). */
export interface DomainThread extends DomainWorker {
  readonly magicPages: SharedArrayBuffer;
  readonly evtchn: SharedArrayBuffer;
}

export function startDomainThread(opts: DomainThreadOptions): DomainThread {
  const evtchn: SharedArrayBuffer = opts.evtchn ?? (EventChannels.create().buffer as SharedArrayBuffer);
  const magicPages = new SharedArrayBuffer(NR_MAGIC_PAGES * XEN_PAGE_SIZE);
  const table = EventChannels.attach(evtchn);
  const dom = startDomainWorker({ ...opts, evtchn, magicPages, kick: () => table.kick(opts.domid) });
  return { ...dom, magicPages, evtchn };
}
