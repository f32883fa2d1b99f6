// A running guest with its console attached: the toolstack builds the image, the VMM starts the vCPU in a worker
// thread, and this thread becomes the vuart's backend domain (dom0's xenconsoled for that console): it binds an
// event channel to the guest's vuart port, maps the ring page (magic page + 3), and serves it.
import type { GuestConfig } from '../toolstack/config.js';
import { buildGuest } from '../toolstack/build.js';
import { EventChannels } from '../xen/evtchn.js';
import { ConsoleRingBackend } from '../xen/ring.js';
import { VUART_PFN_OFFSET, XEN_PAGE_SIZE } from '../xen/arch-arm.js';
import { startDomainThread, type DomainExit } from '../vmm/domain-thread.js';
import type { MachineStats } from '../vmm/machine.js';
import { Console, type OverflowPolicy } from './console.js';
import { restoreImage, withMagic, type MachineState } from '../vmm/machine-state.js';
import { encodeSaved, writeSavedFile } from '../vmm/saved-file.js';
import { ConsoleBackend, TURN_BUDGET_MS } from './backend.js';
import { BACKEND_DOMID } from '../xen/domain.js';


export interface GuestSessionOptions {
  domid?: number;
  policy?: OverflowPolicy;
  report?: (message: string) => void;
  /**
   * Hold user input until the guest's driver listens (has unmasked a receive interrupt). For scripted input to a
   * Linux guest: amba-pl011.c drains and discards up to 64 waiting bytes when the port opens.
   */
  holdInputUntilListening?: boolean;
  /** Start from a saved domain (docs/SAVE.md: `run --restore`) instead of building the image. */
  restore?: MachineState;
}


export interface RunningGuest {
  readonly name: string;
  readonly domid: number;
  readonly console: Console;
  readonly exited: Promise<DomainExit>;
  /** Destroy the domain (idempotent); `exited` resolves with reason 'stopped' unless it had already ended. */
  stop(): Promise<void>;
  /** The running machine's counters (a request the vCPU answers at its next safe point). */
  stats(): Promise<MachineStats>;
  /**
   * Save the domain to `file` (docs/SAVE.md). Without keepRunning the domain then ends ('stopped'): output the
   * console had not taken from OUT is in the file, not printed here, so a restore prints it exactly once. On a
   * failure the domain runs on and this rejects with a one-line reason.
   */
  save(file: string, opts?: { keepRunning?: boolean }): Promise<void>;
}

export async function startGuest(config: GuestConfig, opts: GuestSessionOptions = {}): Promise<RunningGuest> {
  const domid = opts.domid ?? 1;
  const report = opts.report ?? (() => {});
  const image = opts.restore ? restoreImage(opts.restore) : await buildGuest(config);
  const dom = startDomainThread({
    domid,
    name: config.name,
    image,
    policy: config.mmioPolicy,
    vuart: config.vuart,
    ...(opts.restore ? { restore: opts.restore } : {}),
    createPaused: true,
  });
  let guestPort: number;
  try {
    guestPort = await dom.vuartPort;
  } catch (e) {
    await dom.stop();
    throw e;
  }
  const evtchn = EventChannels.attach(dom.evtchn);
  const localPort = evtchn.bindInterdomain(BACKEND_DOMID, domid, guestPort);
  const ring = new ConsoleRingBackend(dom.magicPages, VUART_PFN_OFFSET * XEN_PAGE_SIZE);
  const console = new Console({
    name: config.name,
    domid,
    ring,
    evtchn,
    backendDomid: BACKEND_DOMID,
    localPort,
    policy: opts.policy ?? 'keep',
    report,
    ...(config.rxOverrun ? { overrun: config.rxOverrun } : {}),
  });
  if (opts.holdInputUntilListening) {
    console.holdInput = true;
    void dom.listening.then(() => console.releaseInput());
  }
  // One console: between a stream's batches the backend may block this thread for up to a stream turn (backend.ts).
  const backend = new ConsoleBackend(BACKEND_DOMID, { syncStreamMs: TURN_BUDGET_MS });
  let detach = backend.add(console, evtchn, localPort);
  void backend.start();
  dom.unpause(); // the console is connected: the guest may run (and end) now
  /** Saved away: what is left in OUT belongs to the saved file, not to this console. */
  let savedAway = false;

  const exited = dom.exited.then(async (exit) => {
    // The guest's last words: whatever is still in the ring when the vCPU stopped.
    if (!savedAway) console.flush();
    detach();
    await backend.stop();
    console.close();
    return exit;
  });
  return {
    name: config.name,
    domid,
    console,
    exited,
    stop: () => dom.stop(),
    stats: () => dom.request('stats', {}),
    async save(file, o = {}) {
      const paused = await dom.pause();
      if (o.keepRunning) {
        dom.resume(); // the state is a copy: the guest need not wait for the file
        writeSavedFile(file, encodeSaved(paused, config, config.name));
        return;
      }
      // Stop serving the console first: its indices in the ring are then final, and the file carries exactly what
      // this console did not take (output) and what it gave (input) for the restored domain.
      detach();
      detach = () => {};
      console.flushOutput();
      try {
        writeSavedFile(file, encodeSaved(withMagic(paused, new Uint8Array(dom.magicPages)), config, config.name));
      } catch (e) {
        detach = backend.add(console, evtchn, localPort);
        dom.resume();
        throw e;
      }
      savedAway = true;
      await dom.stop();
    },
  };
}
