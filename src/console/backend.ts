// The backend domain's event loop (xenconsoled's main loop): waits on the event channels of every console it
// serves, runs the consoles whose port fired (or that asked for another turn) and sleeps when nothing is left.
// Wakeups follow the evtchn rule: read the doorbell, dispatch (clears pending before each handler), then sleep
// only while the doorbell is unchanged, so no notification is lost between the dispatch and the sleep.
//
// Pacing streams (docs/PERF.md): a backend that sleeps as soon as the ring is empty is woken for nearly every few
// bytes of a stream (the vpl011 notifies on OUT empty -> non-empty): each wake is an Atomics.notify in the vCPU
// thread, an event-loop wake-up here and a small write to every sink. Spinning instead (polling every event-loop
// turn) takes a whole core, which on a 2-core host is the one the console's reader needs. So the loop measures the
// output rate: once more than STREAM_BYTES moved within STREAM_WINDOW_MS it takes one batch per PACE_MS, or at once
// when the ring is half full (the vpl011 notifies then).
// Between batches it sleeps on the doorbell with that timeout; the ring is not empty then, so the vpl011's next
// notify is the one for "full" (or input arrives): that ends the wait at once, and a guest that filled the ring
// waits on FR.TXFF only until this batch, while the 2 KiB ring holds what arrives meanwhile. Below that rate
// (typing, echo, a prompt, a short command's output) every batch is taken as soon as it is notified, so
// interactive latency is unchanged. Each turn's output is written to the sinks at the end of the turn, once (a
// stream's half-full drains between its turns at its next turn). Between a paced stream's batches the ring keeps
// one byte (STREAM_KEEP), and `vpl011 run` waits for the next notify synchronously (BackendOptions.syncStreamMs).
// The rate is kept per console: interactive consoles are serviced first in every turn and never paced; streaming
// consoles get at most TURN_BUDGET_MS per turn (the rest keep their place), so with a thousand streams a keystroke
// still waits at most about one budget, not a turn over every console.
import { hop, hopFlush } from '../util/hop-trace.js';
import type { EventChannels } from '../xen/evtchn.js';
import type { Console } from './console.js';
import { XENCONS_OUT_SIZE } from '../xen/ring.js';

import { performance } from 'node:perf_hooks';

/** Output rate that switches the loop to paced batches: more than STREAM_BYTES within STREAM_WINDOW_MS. */
export const STREAM_BYTES = 512;
export const STREAM_WINDOW_MS = 2;
/** A streaming loop takes one batch per PACE_MS (Node timers have 1 ms resolution). */
export const PACE_MS = 1;
/** A paced stream whose OUT ring holds at least this much is drained at once (half the ring). */
export const DRAIN_FROM = XENCONS_OUT_SIZE / 2;
/** Streams serviced per turn stop after this long, so interactive consoles are seen again soon (1,000 consoles). */
export const TURN_BUDGET_MS = 1;
/**
 * Bytes a paced stream's batch leaves in OUT (Console.service keepOut). A batch that emptied the ring made the
 * guest's next byte an "OUT 0 -> 1" notify, which woke this loop (and, on a busy host, preempted the vCPU that
 * sent it) for a byte it would only take at the next pace: one wasted wake per batch, half of all the wakes of a
 * bare-metal flood (docs/PERF.md "Bare-metal flood"). The byte is taken at the next turn; a stream's last bytes when
 * it ends at the turn after its rate drops (a few ms), or by Console.flush() when the domain ends.
 */
export const STREAM_KEEP = 1;

export interface BackendOptions {
  /**
   * Between a paced stream's batches, wait for the next notify synchronously (Atomics.wait on the doorbell, this
   * thread blocked) for up to this many ms in a row, then give the event loop one turn. Each batch then costs a
   * futex wake and the batch itself, not an event-loop wake (the notify posted as a task, a promise, timers): in the
   * bare-metal flood that was ~40 us of the main thread per 1 KiB batch (docs/PERF.md "Bare-metal flood"). Only
   * when every runnable console is a stream and one event-channel table is served; input, signals and timers wait
   * at most this long, as they wait for a stream turn's TURN_BUDGET_MS anyway. 0 (the default): never; `vpl011
   * run` (one console) sets it, the daemon (many consoles, clients on the same loop) does not.
   */
  syncStreamMs?: number;
}

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

  private readonly syncStreamMs: number;
  /** When the current run of synchronous waits began (performance.now()), or -1 after an event-loop turn. */
  private burstStart = -1;
  /** Synchronous waits made (BackendOptions.syncStreamMs), for tests and diagnostics. */
  syncWaits = 0;

  constructor(domid = 0, opts: BackendOptions = {}) {
    this.domid = domid;
    this.syncStreamMs = opts.syncStreamMs ?? 0;
  }

  /** Serve a console whose backend port is `localPort` in `evtchn` (bound by the caller). */
  add(console: Console, evtchn: EventChannels, localPort: number): () => void {
    const entry: Served = { console, evtchn, localPort };
    this.served.add(entry);
    this.tableList = undefined;
    evtchn.setHandler(this.domid, localPort, () => this.schedule(console));
    console.wake = () => this.schedule(console);
    this.schedule(console); // xenconsoled reads the ring once right after connecting
    return () => {
      this.served.delete(entry);
      this.tableList = undefined;
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

  private tableList: EventChannels[] | undefined;

  /** The distinct event-channel tables of the served consoles (cached: recomputed only when consoles come and go). */
  private tables(): EventChannels[] {
    if (!this.tableList) {
      const seen = new Set<EventChannels>();
      for (const s of this.served) seen.add(s.evtchn);
      this.tableList = [...seen];
    }
    return this.tableList;
  }

  /** A console streams while it moved more than STREAM_BYTES within a STREAM_WINDOW_MS window. */
  private readonly rates = new WeakMap<Console, { winStart: number; winBytes: number; streaming: boolean }>();

  private streaming(c: Console): boolean {
    return this.rates.get(c)?.streaming ?? false;
  }

  private onlyStreamsRunnable(): boolean {
    for (const c of this.runnable) if (!this.streaming(c)) return false;
    return true;
  }

  /**
   * One service() turn for a console, its output written once, its rate window updated. Returns bytes moved.
   * `early`: a paced stream drained between its turns (half full): its output is written at its next turn (within
   * PACE_MS, or at once once SINK_FLUSH_BYTES are gathered) if it has one, instead of one write per half ring (in
   * the bare flood ~4,000 writes of 1 KiB, a syscall and a pass through the sink's stream each; docs/PERF.md).
   */
  private serviceOne(c: Console, now: number, early = false): number {
    const before = c.counters.bytesOut;
    if (c.service(this.streaming(c) ? STREAM_KEEP : 0)) this.runnable.add(c);
    if (!early || !this.runnable.has(c)) {
      if (c.counters.bytesOut !== before) hop('out', c.counters.bytesOut - before); // just before the write
      c.flushOutput();
    }
    const moved = c.counters.bytesOut - before;
    let r = this.rates.get(c);
    if (!r) this.rates.set(c, (r = { winStart: now, winBytes: 0, streaming: false }));
    if (now - r.winStart > STREAM_WINDOW_MS) {
      r.streaming = r.winBytes > STREAM_BYTES && moved > 0; // the last window's verdict, if it is still going
      r.winStart = now;
      r.winBytes = 0;
    }
    r.winBytes += moved;
    if (r.winBytes > STREAM_BYTES) r.streaming = true;
    return moved;
  }

  private async loop(): Promise<void> {
    let nextStreamTurnAt = 0;
    while (this.running) {
      const tables = this.tables();
      const doorbells = tables.map((t) => t.doorbell(this.domid));
      for (const t of tables) t.dispatch(this.domid);
      if (this.runnable.size === 0) {
        // Sleep until any table's doorbell moves or someone kicks us (new console, input, a drained sink, stop).
        hopFlush();
        await this.sleep(tables, doorbells, Infinity);
        hop('bwake');
        continue;
      }
      const batch = [...this.runnable];
      this.runnable.clear();
      let now = performance.now();
      // Interactive consoles (typing, echo, a prompt, a short command's output) first and at once, whatever the
      // others are doing: a keystroke never waits behind a turn of a thousand streams.
      const streams: Console[] = [];
      for (const c of batch) {
        if (this.streaming(c)) streams.push(c);
        else this.serviceOne(c, now);
      }
      if (streams.length > 0) {
        if (now < nextStreamTurnAt) {
          // Paced (see above): streams wait for their next turn; the ring holds what arrives meanwhile, except
          // that a ring at least half full is drained now (the vpl011 notifies at half full), so a fast guest
          // never waits on TXFF for the pace: one batch per ms would cap a stream near 2 MB/s. Within the budget.
          const end = now + TURN_BUDGET_MS;
          for (const c of streams) {
            if (c.outputQueued() >= DRAIN_FROM && performance.now() <= end) this.serviceOne(c, performance.now(), true);
            else this.runnable.add(c);
          }
        } else {
          // At most TURN_BUDGET_MS of streams per turn; the rest keep their place for the next turn, so that
          // interactive consoles are looked at again within that time.
          const end = now + TURN_BUDGET_MS;
          let deferred = false;
          for (const c of streams) {
            if (performance.now() > end) {
              this.runnable.add(c);
              deferred = true;
            } else this.serviceOne(c, performance.now());
          }
          now = performance.now();
          // Pace only a turn that got round every stream: with more streams than one budget covers, the next turn
          // goes on at once (after looking at I/O and interactive consoles).
          nextStreamTurnAt = deferred ? 0 : now + PACE_MS;
        }
      }
      if (this.runnable.size > 0 && performance.now() < nextStreamTurnAt && this.onlyStreamsRunnable()) {
        // Nothing interactive to do: sleep until the streams' next turn, or a notify / kick (input) before it.
        // The doorbells read before this turn's dispatch: a notify since then ends the sleep at once (evtchn rule).
        if (this.waitInBurst(tables, doorbells, nextStreamTurnAt)) continue;
        if (this.burstStart < 0) {
          await this.sleep(tables, doorbells, Math.max(1, Math.ceil(nextStreamTurnAt - performance.now())));
          continue;
        }
      }
      // Yield to I/O between turns (sinks drain, input arrives), then go round again.
      await new Promise<void>((r) => setImmediate(r));
      this.burstStart = -1;
    }
  }

  /**
   * BackendOptions.syncStreamMs: wait for the streams' next notify (or their next turn) synchronously, while the
   * current burst of such waits is shorter than syncStreamMs. False when not enabled or the burst is over (the
   * loop then gives the event loop a turn, which ends the burst).
   */
  private waitInBurst(tables: EventChannels[], seen: number[], until: number): boolean {
    if (this.syncStreamMs <= 0 || tables.length !== 1) return false;
    const now = performance.now();
    if (this.burstStart < 0) this.burstStart = now;
    const left = Math.min(until, this.burstStart + this.syncStreamMs) - now;
    if (left <= 0) return false;
    this.syncWaits++;
    tables[0]!.waitSync(this.domid, seen[0]!, left);
    return true;
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
