// The backend domain's event loop (xenconsoled's main loop): waits on the event channels of every console it
// serves, runs the consoles whose port fired (or that asked for another turn) and sleeps when nothing is left.
// Wakeups follow the evtchn rule: read the doorbell, dispatch (clears pending before each handler), then sleep
// only while the doorbell is unchanged, so no notification is lost between the dispatch and the sleep.
//
// Lingering (docs/PERF.md): a backend that sleeps as soon as the ring is empty is woken for nearly every byte of a
// stream (the vpl011 notifies on OUT empty -> non-empty), and each wake is an Atomics.notify in the vCPU thread plus
// an event-loop wake-up here. So after a turn that moved data the loop keeps polling, one event-loop turn at a time
// (setImmediate, so I/O and timers still run), for LINGER_MS before it sleeps. While it polls it is not counted as a
// waiter (src/xen/evtchn.ts), so the guest's notifies cost a few atomics and no wake; each turn takes whatever
// accumulated meanwhile. An idle console (no data) never lingers, so idle CPU is unchanged.
import type { EventChannels } from '../xen/evtchn.js';
import type { Console } from './console.js';

import { performance } from 'node:perf_hooks';

/** How long the loop keeps polling after the last turn that moved data (see above). */
export const LINGER_MS = 1;

interface Served {
  console: Console;
  evtchn: EventChannels;
  localPort: number;
}

export class ConsoleBackend {
  readonly domid: number;
  private readonly served = new Set<Served>();
  private readonly runnable = new Set<Console>();
  private running = false;
  private kick: (() => void) | undefined;
  private stopped: Promise<void> | undefined;

  constructor(domid = 0) {
    this.domid = domid;
  }

  /** Serve a console whose backend port is `localPort` in `evtchn` (bound by the caller). */
  add(console: Console, evtchn: EventChannels, localPort: number): () => void {
    const entry: Served = { console, evtchn, localPort };
    this.served.add(entry);
    evtchn.setHandler(this.domid, localPort, () => this.schedule(console));
    console.wake = () => this.schedule(console);
    this.schedule(console); // xenconsoled reads the ring once right after connecting
    return () => {
      this.served.delete(entry);
      this.runnable.delete(console);
      evtchn.setHandler(this.domid, localPort, undefined);
      console.wake = () => {};
    };
  }

  private schedule(console: Console): void {
    this.runnable.add(console);
    const k = this.kick;
    this.kick = undefined;
    k?.();
  }

  start(): Promise<void> {
    if (!this.stopped) {
      this.running = true;
      this.stopped = this.loop();
    }
    return this.stopped;
  }

  async stop(): Promise<void> {
    this.running = false;
    const k = this.kick;
    this.kick = undefined;
    k?.();
    await this.stopped;
  }

  private tables(): EventChannels[] {
    const seen = new Set<EventChannels>();
    for (const s of this.served) seen.add(s.evtchn);
    return [...seen];
  }

  private async loop(): Promise<void> {
    let lingerUntil = 0;
    while (this.running) {
      const tables = this.tables();
      const doorbells = tables.map((t) => t.doorbell(this.domid));
      for (const t of tables) t.dispatch(this.domid);
      if (this.runnable.size > 0) {
        const batch = [...this.runnable];
        this.runnable.clear();
        for (const c of batch) if (c.service()) this.runnable.add(c);
        lingerUntil = performance.now() + LINGER_MS;
        // Yield to I/O between turns (sinks drain, input arrives), then go round again.
        await new Promise<void>((r) => setImmediate(r));
        continue;
      }
      if (lingerUntil !== 0 && performance.now() < lingerUntil) {
        // Data moved a moment ago: more is likely on its way. Look again next turn instead of sleeping.
        await new Promise<void>((r) => setImmediate(r));
        continue;
      }
      lingerUntil = 0;
      // Sleep until any table's doorbell moves or someone kicks us (new console, input, a drained sink, stop).
      await new Promise<void>((resolve) => {
        let done = false;
        const finish = () => {
          if (!done) {
            done = true;
            resolve();
          }
        };
        this.kick = finish;
        for (let i = 0; i < tables.length; i++) {
          tables[i]!.waitAsync(this.domid, doorbells[i]!, Infinity).then(finish, finish);
        }
        if (tables.length === 0) {
          // Nothing to wait on but kicks.
        }
      });
      this.kick = undefined;
    }
  }
}
