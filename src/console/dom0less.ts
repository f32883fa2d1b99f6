// Several domains on one terminal with the vpl011 backend in Xen (dom0less, docs/DOM0LESS.md): each guest's vCPU
// runs in its own worker thread with its own Xen-console region (src/xen/xen-console.ts); this thread is Xen's
// console (src/console/xen-console-mux.ts). Domain ids are 1, 2, ... in the order given; there is no dom0, so the
// mux's side of every vuart channel lives in domain slot 0 of one shared event-channel table (a host transport the
// guests never see).
import type { Writable } from 'node:stream';
import { inputWaitsForListener, type GuestConfig } from '../toolstack/config.js';
import { buildGuest } from '../toolstack/build.js';
import type { GuestImage } from '../toolstack/guest-image.js';
import { EventChannels } from '../xen/evtchn.js';
import { createXenConsoleRegion, XenConsoleHost } from '../xen/xen-console.js';
import { startDomainThread, type DomainExit, type DomainThread } from '../vmm/domain-thread.js';
import { XenConsoleMux } from './xen-console-mux.js';
import { Vpl011Error } from '../util/errors.js';

/** The mux's domain slot in the shared event-channel table. */
const MUX_DOMID = 0;
/** Event-channel table size: domids 1..MAX_DOM0LESS_DOMAINS. */
export const MAX_DOM0LESS_DOMAINS = 15;

export interface Dom0lessOptions {
  sink: Writable;
  /** Hold scripted input for a guest whose driver drains the FIFO when it opens (inputWaitsForListener). */
  holdInputUntilListening?: boolean;
}

export interface Dom0lessDomain {
  readonly domid: number;
  readonly name: string;
  readonly exited: Promise<DomainExit>;
}

export interface Dom0lessRun {
  readonly mux: XenConsoleMux;
  readonly domains: readonly Dom0lessDomain[];
  /** Resolves when every domain has ended and its last output is on the sink. */
  readonly exited: Promise<DomainExit[]>;
  /** Destroy every domain (idempotent). */
  stop(): Promise<void>;
}

/** A dom0less run that cannot start as asked (bad arguments or configs): one line for the user. */
export class Dom0lessError extends Vpl011Error<'EINVAL'> {
  constructor(message: string) {
    super('EINVAL', message);
  }
}

/**
 * Build every guest first (a bad second config is an error before anything runs), then start them in domid order
 * and give the terminal to the first, as Xen's console_endboot() does.
 */
export async function startDom0less(configs: GuestConfig[], opts: Dom0lessOptions): Promise<Dom0lessRun> {
  if (configs.length < 1 || configs.length > MAX_DOM0LESS_DOMAINS) {
    throw new Dom0lessError(`dom0less: between 1 and ${MAX_DOM0LESS_DOMAINS} guests (got ${configs.length})`);
  }
  const images: GuestImage[] = [];
  for (const c of configs) images.push(await buildGuest(c));

  const evtchn = EventChannels.create({ maxDomains: MAX_DOM0LESS_DOMAINS + 1 });
  const mux = new XenConsoleMux({ evtchn, backendDomid: MUX_DOMID, sink: opts.sink });
  const threads: { domid: number; name: string; thread: DomainThread; host: XenConsoleHost }[] = [];
  const stopAll = async () => {
    for (const t of threads) t.host.stop();
    await Promise.all(threads.map((t) => t.thread.stop()));
  };
  // Every domain is known to the console, and the focus given to the first, before any of them runs: Xen's
  // console_endboot() comes before the domains are unpaused, so DOM1's first byte is already "focused" output.
  const regions = configs.map(() => createXenConsoleRegion());
  configs.forEach((config, i) => mux.add({ domid: i + 1, name: config.name, host: new XenConsoleHost(regions[i]!), localPort: 0 }));
  mux.start();
  try {
    for (let i = 0; i < configs.length; i++) {
      const config = configs[i]!;
      const domid = i + 1;
      const thread = startDomainThread({
        domid, name: config.name, image: images[i]!, policy: config.mmioPolicy, vuart: config.vuart,
        evtchn: evtchn.buffer as SharedArrayBuffer, xenConsole: regions[i]!,
      });
      const host = new XenConsoleHost(regions[i]!);
      threads.push({ domid, name: config.name, thread, host });
      const guestPort = await thread.vuartPort;
      const hold = opts.holdInputUntilListening === true && inputWaitsForListener(config);
      if (hold) {
        mux.holdInput(domid);
        void thread.listening.then(() => mux.releaseInput(domid));
      }
      mux.bind(domid, evtchn.bindInterdomain(MUX_DOMID, domid, guestPort));
    }
  } catch (e) {
    await stopAll();
    for (const t of threads) mux.domainEnded(t.domid);
    await mux.stop();
    throw e;
  }

  const domains = threads.map(({ domid, name, thread }) => ({
    domid,
    name,
    exited: thread.exited.then((exit) => {
      mux.domainEnded(domid); // its last records and its held line, before anything else is said
      return exit;
    }),
  }));
  const exited = Promise.all(domains.map((d) => d.exited)).then(async (exits) => {
    await mux.stop();
    return exits;
  });
  return { mux, domains, exited, stop: stopAll };
}
