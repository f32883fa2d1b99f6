// The backend domain's event loop (xenconsoled's main loop): waits on the event channels of every console it
// serves, runs the consoles whose port fired (or that asked for another turn) and sleeps when nothing is left.
// Wakeups follow the evtchn rule: read the doorbell, dispatch (clears pending before each handler), then sleep
// only while the doorbell is unchanged, so no notification is lost between the dispatch and the sleep.
//
// Pacing streams (docs/PERF.md): a backend that sleeps as soon as the ring is empty is woken for nearly every few
// bytes of a stream (the vpl011 notifies on OUT empty -> non-empty): each wake is an Atomics.notify in the vCPU
// thread, an event-loop wake-up here and a small write to every sink. Spinning instead (polling every event-loop
// turn) takes a whole core, which on a 2-core host is the one the console's reader needs. So the loop measures the
// output rate: once more than STREAM_BYTES moved within STREAM_WINDOW_MS it takes at most one batch per PACE_MS.
// Between batches it sleeps on the doorbell with that timeout; the ring is not empty then, so the vpl011's next
// notify is the one for "full" (or input arrives): that ends the wait at once, and a guest that filled the ring
// waits on FR.TXFF only until this batch, while the 2 KiB ring holds what arrives meanwhile. Below that rate
// (typing, echo, a prompt, a short command's output) every batch is taken as soon as it is notified, so
// interactive latency is unchanged. Each turn's output is written to the sinks at the end of the turn, once.
import type { EventChannels } from '../xen/evtchn.js';
import type { Console } from './console.js';

import { performance } from 'node:perf_hooks';

/** Output rate that switches the loop to paced batches: more than STREAM_BYTES within STREAM_WINDOW_MS. */
export const STREAM_BYTES = 512;
export const STREAM_WINDOW_MS = 2;
/** A streaming loop takes one batch per PACE_MS (Node timers have 1 ms resolution). */
export const PACE_MS = 1;

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
    let paced = false;
    let nextTurnAt = 0;
    let winStart = 0;
    let winBytes = 0;
    let lastData = 0;
    while (this.running) {
      const tables = this.tables();
      const doorbells = tables.map((t) => t.doorbell(this.domid));
      for (const t of tables) t.dispatch(this.domid);
      if (this.runnable.size > 0) {
        let now = performance.now();
        if (paced && now < nextTurnAt) {
          // Streaming: let the ring fill a little more before the next batch (see above). A notify meanwhile can
          // only mean the ring is full (the empty -> non-empty one was just dispatched) or input: take it at once.
          await this.sleep(tables, doorbells, Math.max(1, Math.ceil(nextTurnAt - now)));
          for (let i = 0; i < tables.length; i++) if (tables[i]!.doorbell(this.domid) !== doorbells[i]) nextTurnAt = 0;
          continue;
        }
        const batch = [...this.runnable];
        this.runnable.clear();
        let moved = 0;
        for (const c of batch) {
          const before = c.counters.bytesOut;
          if (c.service()) this.runnable.add(c);
          c.flushOutput();
          moved += c.counters.bytesOut - before;
        }
        now = performance.now();
        if (moved > 0) {
          if (now - winStart > STREAM_WINDOW_MS) {
            paced = winBytes > STREAM_BYTES && now - lastData <= STREAM_WINDOW_MS; // the last window's verdict
            winStart = now;
            winBytes = 0;
          }
          winBytes += moved;
          lastData = now;
          if (winBytes > STREAM_BYTES) paced = true;
        }
        nextTurnAt = now + PACE_MS;
        // Yield to I/O between turns (sinks drain, input arrives), then go round again.
        await new Promise<void>((r) => setImmediate(r));
        continue;
      }
      // Nothing to do: a stream that stopped for a whole window is over.
      if (paced && performance.now() - lastData > STREAM_WINDOW_MS) paced = false;
      // Sleep until any table's doorbell moves or someone kicks us (new console, input, a drained sink, stop).
      await this.sleep(tables, doorbells, Infinity);
    }
  }

  /** Wait until a doorbell moves from `seen`, a kick, or `timeoutMs`: the evtchn rule's sleep (a counted waiter). */
  private async sleep(tables: EventChannels[], seen: number[], timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      let done = false;
      const finish = () => {
        if (!done) {
          done = true;
          resolve();
        }
      };
      this.kick = finish;
      // waitAsync holds no reference on the event loop; a finite wait also gets a timer, which does.
      if (Number.isFinite(timeoutMs)) timer = setTimeout(finish, timeoutMs);
      for (let i = 0; i < tables.length; i++) {
        tables[i]!.waitAsync(this.domid, seen[i]!, timeoutMs).then(finish, finish);
      }
    });
    if (timer) clearTimeout(timer);
    this.kick = undefined;
  }
}
