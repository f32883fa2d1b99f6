// One console of the backend domain: xenconsoled's `struct console` for a vuart (tools/console/daemon/io.c), with
// Node streams as its sinks. It moves guest output from the OUT ring to every attached sink and user input from an
// input queue to the IN ring, and it never loses a byte unless a `discard` policy says so (then it counts and marks).
//
// Backpressure (policy `keep`, the default): output is taken from the ring only while every sink's backlog
// (writableLength) is below `limit`. Past it, the ring fills, the vpl011 shows TXFF and the guest waits: exactly
// xenconsoled's `-o keep`, where it stops reading the event channel once the buffer reaches the limit.
// Policy `discard`: a sink whose backlog passes the limit misses output until it has drained below half the limit;
// the bytes it missed are counted and a visible marker is written to it when it resumes. Other sinks are unaffected
// (xenconsoled drops the middle of one shared buffer; per-sink dropping keeps the log whole while a client lags).
// Only a sink added with `throttles: true` (a read-write client, stdout of `vpl011 run`) may hold the guest back
// under `keep`: a read-only watcher always gets `discard` semantics, so watching can never slow a guest.
//
// Input waits for ring space: queueInput() keeps at most `inputLimit` bytes and says when it is full, so the source
// pauses (backpressure) instead of anything being dropped.
//
// Fairness and latency (instead of xenconsoled's 30 events / 200 ms rate limit, which quantises latency to 200 ms):
// one service() call moves at most `quantum` bytes out of the ring and then yields; the backend loop calls it again
// on the next turn if the ring still has data. Data waiting in the ring is never lost, and an interactive console
// waits at most one turn of the loop behind a busy one.
import { hop } from '../util/hop-trace.js';
import type { Writable } from 'node:stream';
import { ConsoleRingBackend, XENCONS_OUT_SIZE, XENCONSOLE_CONNECTED, type RingCorruptionReport } from '../xen/ring.js';
import type { EventChannels } from '../xen/evtchn.js';
import { RateLimitedLog } from '../util/ratelimit.js';
import { LineError, LineEventQueue } from '../xen/line-events.js';
import { CRASH_ARMED, crashPoint } from '../util/crash-point.js';
import { errorMessage } from '../util/errors.js';

export type OverflowPolicy = 'keep' | 'discard';
/**
 * What input meets when the guest's IN ring is full. `backpressure` (default): it waits, nothing is lost. `strict`:
 * as a real UART whose receive FIFO is full, the input that finds no room is lost (counted in lineCounters.overrun)
 * and the next character that goes in carries OE (DR[11], RSR.OE, OEIS).
 */
export type RxOverrunMode = 'backpressure' | 'strict';
/** A line event a user or script can send (docs/DEVICE.md "Line events"). */
export type LineEventKind = 'break' | 'framing' | 'parity';
/** Line events queued in a console (not yet in the guest's queue) beyond which queueLineEvent refuses. */
export const LINE_EVENTS_QUEUED_MAX = 16;
/** How often a console retries a line event that found the guest's line-event queue full (the guest reads on). */
const LINE_EVENT_RETRY_MS = 10;

/** Gathered sink output written at once when it reaches this size, even while the stream continues. */
export const SINK_FLUSH_BYTES = 16 * 1024;

export interface ConsoleOptions {
  name: string;
  domid: number;
  ring: ConsoleRingBackend;
  evtchn: EventChannels;
  /**
   * The backend domain's id and its local port bound to the guest's vuart port; 0: no event channel (the guest's
   * port is gone), so this console notifies no one and owns no handler.
   */
  backendDomid: number;
  localPort: number;
  /** Per-sink backlog limit in bytes (LIBXL_XENCONSOLE_LIMIT = 1 MiB). */
  limit?: number;
  policy?: OverflowPolicy;
  /** Bytes moved from the OUT ring per service() call before yielding to other consoles. */
  quantum?: number;
  /** Queued user input allowed before queueInput() reports full. */
  inputLimit?: number;
  /** Called for corrupt ring indices and other things a user should see; must not throw. */
  report?: (message: string) => void;
  /**
   * Make each batch durable before it leaves the ring (the daemon's exactly-once log, src/daemon/durable-log.ts):
   * called with the bytes and the out_cons they started at, after peekOut and before commitOut. If it throws, the
   * batch stays in the ring (nothing published, nothing delivered) and is retried later.
   */
  recorder?: (chunk: Uint8Array, consBefore: number) => void;
  /** Where the counters live (the daemon keeps them in a file mapping so they survive it); default: in memory. */
  counters?: ConsoleCounters;
  /**
   * Called around each write into the IN ring with the tag the input was queued with: before(tag, n, inProdBefore)
   * just before n bytes go in, after(tag, n) once they are in (the daemon's input journal and acknowledgements).
   */
  inputRecorder?: InputRecorder;
  /** What input meets when IN is full (default `backpressure`). */
  overrun?: RxOverrunMode;
}

export interface LineCounters {
  /** Line events that went into the guest's queue with their byte. */
  sent: number;
  /** queueLineEvent() calls refused (too many already queued, or the console closed). */
  refused: number;
  /** strict mode: input bytes lost because IN was full (each loss marks the next byte with OE). */
  overrun: number;
}

export interface InputRecorder {
  before(tag: unknown, n: number, inProdBefore: number): void;
  after(tag: unknown, n: number): void;
}

export interface SinkOptions {
  /** A read-only watcher or a log: it only receives output. (Input comes from sources, not sinks.) */
  label: string;
  /**
   * Whether this sink's backlog may hold output back under `keep` (default true). False for read-only watchers:
   * they get `discard` semantics whatever the policy.
   */
  throttles?: boolean;
  /** Wraps what this sink is given (a resumable client's frames): output chunks, and the dropped-output marker. */
  frame?: (chunk: Buffer, kind: 'output' | 'marker') => Buffer;
}

interface Sink {
  stream: Writable;
  label: string;
  throttles: boolean;
  frame: ((chunk: Buffer, kind: 'output' | 'marker') => Buffer) | undefined;
  /** Bytes this sink missed under `discard` since it last caught up. */
  missed: number;
  dropping: boolean;
  onDrain: () => void;
}

export interface ConsoleCounters {
  /** Bytes taken from the OUT ring (guest output). */
  bytesOut: number;
  /** Bytes put into the IN ring (user input). */
  bytesIn: number;
  /** Bytes some sink missed under `discard` (summed over sinks). */
  dropped: number;
  /** Corrupt ring indices seen and ignored. */
  corrupt: number;
  /** Times output stopped because a sink was full (`keep`). */
  throttled: number;
}

export class Console {
  readonly name: string;
  readonly domid: number;
  readonly counters: ConsoleCounters;
  private readonly ring: ConsoleRingBackend;
  private readonly evtchn: EventChannels;
  private readonly backendDomid: number;
  private readonly localPort: number;
  private readonly limit: number;
  private readonly policy: OverflowPolicy;
  private readonly quantum: number;
  private readonly inputLimit: number;
  private readonly report: (message: string) => void;
  private readonly recorder: ((chunk: Uint8Array, consBefore: number) => void) | undefined;
  private recordRetry: NodeJS.Timeout | undefined;
  private readonly sinks: Sink[] = [];
  private readonly scratch = new Uint8Array(XENCONS_OUT_SIZE);
  /** Output taken from the ring, not yet written to the sinks (see deliver). */
  private readonly pend = new Uint8Array(SINK_FLUSH_BYTES + XENCONS_OUT_SIZE);
  private pendLen = 0;
  /** Queued input; an entry with `lineError` is one character carrying those LineError bits (a BREAK is 0x00 + BE). */
  private readonly inputQueue: { data: Uint8Array; tag: unknown; lineError?: number }[] = [];
  private readonly lineEvents: LineEventQueue;
  private lineEventsQueued = 0;
  private lineRetry: NodeJS.Timeout | undefined;
  private readonly overrun: RxOverrunMode;
  /** strict mode: input was lost since the last character went in; the next one carries OE. */
  private overrunPending = false;
  readonly lineCounters: LineCounters = { sent: 0, refused: 0, overrun: 0 };
  private readonly inputRecorder: InputRecorder | undefined;
  private inputQueued = 0;
  private throttled = false;
  private closed = false;
  /** Set by the backend loop: called when this console wants another service() turn (sink drained, input queued). */
  wake: () => void = () => {};
  private outputObserver: ((chunk: Uint8Array) => void) | undefined;
  /** Called with every chunk of output, before the sinks (for prompt detection, statistics, tests). */
  get onOutput(): ((chunk: Uint8Array) => void) | undefined {
    return this.outputObserver;
  }
  /** An observer is a taker (see service): output held for want of one can flow now, as after addSink(). */
  set onOutput(fn: ((chunk: Uint8Array) => void) | undefined) {
    this.outputObserver = fn;
    if (fn) this.wake();
  }
  /** Called when queued input has all gone into the ring (so a paused source may resume). */
  onInputSpace: (() => void) | undefined;
  /**
   * While true, queued input stays queued (nothing goes into the IN ring). Used for scripted input to a guest whose
   * driver would discard what it finds waiting when it opens the port (see Vpl011.receiveInterruptsUnmasked).
   */
  holdInput = false;

  constructor(opts: ConsoleOptions) {
    this.name = opts.name;
    this.domid = opts.domid;
    this.ring = opts.ring;
    this.evtchn = opts.evtchn;
    this.backendDomid = opts.backendDomid;
    this.localPort = opts.localPort;
    this.limit = opts.limit ?? 1 << 20;
    this.policy = opts.policy ?? 'keep';
    this.quantum = opts.quantum ?? 64 * 1024;
    this.inputLimit = opts.inputLimit ?? 64 * 1024;
    this.report = opts.report ?? (() => {});
    this.recorder = opts.recorder;
    this.counters = opts.counters ?? { bytesOut: 0, bytesIn: 0, dropped: 0, corrupt: 0, throttled: 0 };
    this.inputRecorder = opts.inputRecorder;
    this.overrun = opts.overrun ?? 'backpressure';
    this.lineEvents = new LineEventQueue(opts.evtchn.lineEventWords(opts.domid));
    // A guest scribbling on its ring page in a loop must not flood the daemon's log: first 10, then every 2^k-th.
    const corruptLog = new RateLimitedLog(this.report);
    this.ring.onCorrupt = (r: RingCorruptionReport) => {
      this.counters.corrupt++;
      if (!corruptLog.wouldLog()) {
        corruptLog.skip();
        return;
      }
      corruptLog.log(
        `console ${this.name}: corrupt ${r.half.toUpperCase()} ring indices (prod ${r.prod}, cons ${r.cons}); ignored and resynchronised`,
      );
    };
    // xenconsoled sets `connection` once the ring is mapped and the event channel bound.
    this.ring.setConnection(XENCONSOLE_CONNECTED);
  }

  addSink(stream: Writable, opts: SinkOptions): () => void {
    this.flushOutput(); // a new sink gets output from now on, as before gathering
    const sink: Sink = {
      stream,
      label: opts.label,
      throttles: opts.throttles ?? true,
      frame: opts.frame,
      missed: 0,
      dropping: false,
      onDrain: () => {
        if (sink.dropping) this.resumeIfCaughtUp(sink);
        this.wake();
      },
    };
    stream.on('drain', sink.onDrain);
    this.sinks.push(sink);
    this.wake(); // output held for want of a sink (see service) can flow now
    return () => this.removeSink(sink);
  }

  private removeSink(sink: Sink): void {
    const i = this.sinks.indexOf(sink);
    if (i < 0) return;
    this.flushOutput(); // a leaving sink still gets what was taken while it was attached
    this.sinks.splice(i, 1);
    sink.stream.off('drain', sink.onDrain);
    this.wake(); // a slow sink leaving may unblock output
  }

  get sinkCount(): number {
    return this.sinks.length;
  }

  /**
   * Queue user input for the guest. Returns false when the queue is at its limit: the caller should pause its
   * source until onInputSpace fires. Input is never dropped here; the bytes passed are always queued.
   */
  queueInput(bytes: Uint8Array, tag?: unknown): boolean {
    if (this.closed || bytes.length === 0) return this.inputQueued < this.inputLimit;
    this.inputQueue.push({ data: bytes.slice(), tag });
    this.inputQueued += bytes.length;
    this.wake();
    return this.inputQueued < this.inputLimit;
  }

  /**
   * Queue a line event after the input queued so far: a BREAK (a 0x00 character with BE, which Linux turns into the
   * magic SysRq prefix on a console), or a character with a framing or parity error. False (counted) when
   * LINE_EVENTS_QUEUED_MAX are already waiting or the console is closed: the caller says so; nothing is half-sent.
   */
  queueLineEvent(kind: LineEventKind): boolean {
    if (this.closed || this.lineEventsQueued >= LINE_EVENTS_QUEUED_MAX) {
      this.lineCounters.refused++;
      return false;
    }
    const bits = kind === 'break' ? LineError.BE : kind === 'framing' ? LineError.FE : LineError.PE;
    this.inputQueue.push({ data: Uint8Array.of(0), tag: undefined, lineError: bits });
    this.inputQueued += 1;
    this.lineEventsQueued++;
    this.wake();
    return true;
  }

  get pendingInput(): number {
    return this.inputQueued;
  }

  private sinksReady(): boolean {
    if (this.policy !== 'keep') return true;
    for (const s of this.sinks) if (s.throttles && s.stream.writableLength >= this.limit) return false;
    return true;
  }

  /**
   * Move data both ways once. Returns true if it should be called again soon (data left in the ring that it did
   * not take this turn); false when it is waiting for an event (ring empty) or for a sink to drain.
   * `keepOut` bytes are left in OUT (the backend's paced streams, backend.ts STREAM_KEEP): a ring that never
   * empties during a stream never goes from empty to non-empty, so the vpl011 does not wake the backend after
   * every batch for a byte it will not take before its next turn anyway; the next turn (or flush()) takes them.
   */
  service(keepOut = 0): boolean {
    if (this.closed) return false;
    let notifyGuest = false;

    // Input first: a keystroke should not wait behind a quantum of output.
    while (this.inputQueued > 0 && !this.holdInput) {
      const head = this.inputQueue[0]!;
      if (this.overrun === 'strict' && this.ring.inFree() === 0 && this.ring.inQueued() >= 0) {
        this.loseInput(head);
        continue;
      }
      // The first character after a line event or a loss carries its bits: posted before the byte is published.
      const bits = (head.lineError ?? 0) | (this.overrunPending ? LineError.OE : 0);
      if (bits !== 0 && !this.postLineEvent(bits)) break;
      const n = this.putIn(head);
      if (n === 0) break;
      if (bits !== 0) this.lineCounters.sent++;
      this.overrunPending = false;
      if (head.lineError !== undefined) this.lineEventsQueued--;
      notifyGuest = true;
      this.counters.bytesIn += n;
      this.inputQueued -= n;
      if (n === head.data.length) this.inputQueue.shift();
      else head.data = head.data.subarray(n);
    }
    if (notifyGuest && this.inputQueued < this.inputLimit) this.onInputSpace?.();

    let moved = 0;
    let again = false;
    // Nobody to take output yet (no sink, no onOutput, no recorder: `vpl011 run` attaches stdout just after the
    // console starts): leave it in the ring, where the guest sees TXFF, instead of draining it to no one. The first
    // bytes of a fast guest were lost that way. addSink() wakes the console.
    const held = this.sinks.length === 0 && this.onOutput === undefined && this.recorder === undefined;
    while (!held && moved < this.quantum) {
      if (!this.sinksReady()) {
        if (!this.throttled) this.counters.throttled++;
        this.throttled = true;
        break;
      }
      this.throttled = false;
      const corrupt = this.ring.corruptEvents;
      this.makeRoomForBatch();
      const n = this.takeOut(keepOut);
      // A corrupt OUT half was just resynchronised: the device treats it as full until told (DEVICE.md).
      if (this.ring.corruptEvents !== corrupt) notifyGuest = true;
      if (n < 0) break; // the recorder failed: retry later
      if (n === 0) break;
      // Tell the device only when the batch took OUT down from at least half full (docs/PERF.md): below that,
      // TXFF, BUSY and TXI (every profile's threshold is above half) cannot change for it, and a notification per
      // small batch of a stream costs the vCPU more than the bytes. The first batch of a turn takes the whole level
      // (but what it keeps).
      if (n + keepOut >= XENCONS_OUT_SIZE / 2) notifyGuest = true;
      moved += n;
      this.counters.bytesOut += n;
      this.deliver(this.scratch.subarray(0, n));
    }
    if (moved >= this.quantum) again = true;

    // At most one notification per turn, and only when it can matter to the guest: input added, OUT drained from at
    // least half full, or a corrupt half resynchronised. The vpl011 re-reads both rings' levels on it (TXFF clears,
    // TXI and RX state update). FR.TXFE may then lag behind a small drain until the guest's next UART event; a vCPU
    // whose guest spins on FR re-derives it before waiting (src/vmm/machine.ts). The evtchn pending bit coalesces.
    if (notifyGuest && this.localPort > 0) {
      hop('notify-guest');
      this.evtchn.notify(this.backendDomid, this.localPort);
    }
    // Final check (ring.h RING_FINAL_CHECK_FOR_*): data that arrived after our last read, before we go to sleep,
    // gets another turn rather than waiting for a notification the frontend may have skipped.
    if (!again && !this.throttled && !held && this.ring.outQueued() > 0) again = true;
    if (!again && this.inputQueued > 0 && !this.holdInput && this.ring.inFree() > 0 && !this.lineRetry) again = true;
    return again;
  }

  /**
   * Post the bits for the byte about to go in at in_prod. False when IN is full or corrupt (nothing posted) or the
   * guest's line-event queue is full: then look again in LINE_EVENT_RETRY_MS (the device sends no notification
   * when it takes an entry; a guest that reads on frees them).
   */
  private postLineEvent(bits: number): boolean {
    if (this.ring.inFree() === 0) return false;
    if (this.lineEvents.post(this.ring.inProd, bits)) return true;
    if (!this.lineRetry && !this.closed) {
      this.lineRetry = setTimeout(() => {
        this.lineRetry = undefined;
        this.wake();
      }, LINE_EVENT_RETRY_MS);
    }
    return false;
  }

  /** strict mode, IN full: the head entry is lost as on a UART whose FIFO is full; the next character carries OE. */
  private loseInput(head: { data: Uint8Array; tag: unknown; lineError?: number }): void {
    this.inputQueue.shift();
    this.inputQueued -= head.data.length;
    if (head.lineError !== undefined) this.lineEventsQueued--;
    this.lineCounters.overrun += head.data.length;
    this.overrunPending = true;
    // A client's input counts as handled (acknowledged, so it is not re-sent) though it was lost: the loss is the
    // policy's, and counted. No journal entry: nothing went into the ring.
    if (this.inputRecorder && head.tag !== undefined) this.inputRecorder.after(head.tag, head.data.length);
    this.onInputSpace?.();
  }

  /** Input into the IN ring, journalled around the write when there is an input recorder. */
  private putIn(head: { data: Uint8Array; tag: unknown }): number {
    const rec = this.inputRecorder;
    if (!rec) return this.ring.writeIn(head.data);
    const n = Math.min(head.data.length, this.ring.inFree());
    if (n === 0) return this.ring.writeIn(head.data.subarray(0, 0)); // full, or corrupt (reported there)
    rec.before(head.tag, n, this.ring.inProd);
    // We alone publish in_prod; the guest only moves in_cons, which frees space: all n bytes go in.
    const written = this.ring.writeIn(head.data.subarray(0, n));
    rec.after(head.tag, written);
    return written;
  }

  /** One batch out of the ring into scratch: readOut, or peek/record/commit with a recorder. -1: record failed. */
  private takeOut(keep = 0): number {
    let dst = this.scratch;
    const level = keep > 0 ? this.ring.outQueued() : -1;
    if (level >= 0) {
      // (A corrupt half, RING_CORRUPT, is read as ever: the read below resynchronises it.)
      const take = level - keep;
      if (take <= 0) return 0;
      if (take < dst.length) dst = dst.subarray(0, take);
    }
    const rec = this.recorder;
    if (!rec) return this.ring.readOut(dst);
    if (this.recordRetry) return -1;
    const n = this.ring.peekOut(dst);
    if (n === 0) return 0;
    try {
      rec(this.scratch.subarray(0, n), this.ring.peekedCons);
    } catch (e) {
      this.report(`console ${this.name}: cannot record output (${errorMessage(e)}); kept in the ring, retrying`);
      this.recordRetry = setTimeout(() => {
        this.recordRetry = undefined;
        this.wake();
      }, 200);
      return -1;
    }
    if (!this.ring.commitOut(n)) {
      // out_cons moved under us: only a guest scribbling on its ring page does that. The bytes are recorded once.
      this.counters.corrupt++;
      this.report(`console ${this.name}: out_cons changed during a read (guest scribbled on the ring); ignored`);
    }
    if (CRASH_ARMED) crashPoint('publish');
    return n;
  }

  /**
   * Output for the sinks is gathered and written once per backend turn (docs/PERF.md): a stream write is a syscall
   * and a wake-up of whoever reads the pipe, so it should carry a turn's worth of bytes, not one ring batch. The
   * backend loop calls flushOutput() at the end of each turn (its pacing makes a streaming turn ~1 ms of output);
   * a full buffer (SINK_FLUSH_BYTES) is written at once; flush(), addSink() and removeSink() flush too.
   */
  private deliver(chunk: Uint8Array): void {
    this.onOutput?.(chunk);
    if (this.sinks.length === 0) return;
    if (this.pendLen + chunk.length > this.pend.length) this.flushOutput();
    this.pend.set(chunk, this.pendLen);
    this.pendLen += chunk.length;
    if (this.pendLen >= SINK_FLUSH_BYTES) this.flushOutput();
  }

  /**
   * Flush before taking a batch that might not fit in `pend`, not after (in deliver): then every flush happens right
   * after a batch was recorded and gathered, so what a sink is given ends exactly where the log ends (a resumable
   * client's cursor, src/daemon/resume.ts).
   */
  private makeRoomForBatch(): void {
    if (this.pendLen + XENCONS_OUT_SIZE > this.pend.length) this.flushOutput();
  }

  /** Bytes waiting in the OUT ring now (0 if its indices are corrupt: the next service() resynchronises). */
  outputQueued(): number {
    return Math.max(0, this.ring.outQueued());
  }

  /** Write the output gathered since the last flush to every sink (one write each). */
  flushOutput(): void {
    if (this.pendLen === 0) return;
    // Node streams copy nothing: the sinks get a fresh buffer, since `pend` is reused.
    const chunk = Buffer.from(this.pend.subarray(0, this.pendLen));
    this.pendLen = 0;
    for (const s of this.sinks) {
      if (this.policy === 'discard' || !s.throttles) {
        if (s.dropping && !this.resumeIfCaughtUp(s)) {
          s.missed += chunk.length;
          this.counters.dropped += chunk.length;
          continue;
        } else if (s.stream.writableLength >= this.limit) {
          s.dropping = true;
          s.missed += chunk.length;
          this.counters.dropped += chunk.length;
          continue;
        }
      }
      s.stream.write(s.frame ? s.frame(chunk, 'output') : chunk);
    }
  }

  /**
   * `discard`: a sink that was missing output gets it again once its backlog is down to half the limit, after a
   * visible marker saying how much it missed. Checked with new output and when the sink drains (a stream that
   * ended while the client was stalled still gets its marker).
   */
  private resumeIfCaughtUp(s: Sink): boolean {
    if (s.stream.writableLength > this.limit / 2) return false;
    this.markDropped(s);
    return true;
  }

  private markDropped(s: Sink): void {
    s.dropping = false;
    const marker = `\r\n[vpl011: ${s.missed} bytes of output dropped for ${s.label}: it was too slow]\r\n`;
    s.stream.write(s.frame ? s.frame(Buffer.from(marker), 'marker') : marker);
    s.missed = 0;
  }

  releaseInput(): void {
    this.holdInput = false;
    this.wake();
  }

  /** Take whatever output is still in the ring (used at shutdown so the last words of a guest are not lost). */
  flush(): void {
    for (let i = 0; i < 64 && this.ring.outQueued() > 0; i++) {
      this.makeRoomForBatch();
      const n = this.takeOut();
      if (n <= 0) break;
      this.counters.bytesOut += n;
      this.deliver(this.scratch.subarray(0, n));
    }
    this.flushOutput();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // A client still missing output when the console goes away is told so, whatever its backlog: it is the last word.
    for (const s of this.sinks) if (s.dropping) this.markDropped(s);
    if (this.recordRetry) clearTimeout(this.recordRetry);
    if (this.lineRetry) clearTimeout(this.lineRetry);
    // Only our own port: another console's handler must survive us (port 0 is nobody's).
    if (this.localPort > 0) this.evtchn.setHandler(this.backendDomid, this.localPort, undefined);
    for (const s of [...this.sinks]) this.removeSink(s);
  }
}
