// Xen's serial console for dom0less domains (xen/drivers/char/console.c), in the main thread: one terminal shared
// by every domain whose vpl011 has its backend in Xen (src/xen/xen-console.ts).
//
//   - Output: each domain's records are printed as Xen's printk prints them: "(XEN) " (CONSOLE_PREFIX) at the start
//     of every line, then "DOM%u: " for a line of a domain without the focus, nothing more for the focused
//     domain's bytes. Deviation: Xen continues whatever line is open (its printk `continued` state), so a DOM2 line
//     can land in the middle of DOM1's prompt; here a whole line never starts mid-line: the open line is ended first.
//   - Input (serial_rx / __serial_rx): Ctrl-a three times in a row rotates the focus over Xen and the live domains,
//     in domid order, with Xen's message "*** Serial input to DOM1 (type 'CTRL-a' three times to switch input)";
//     fewer than three Ctrl-a are passed on as input. Other bytes go to the focused domain's IN buffer (32 bytes);
//     what does not fit is held here (bounded, `inputLimit`) and moved in as the guest reads (the device notifies
//     when IN stops being full), where Xen answers -ENOSPC and loses the byte. Bytes typed while Xen has the focus
//     go to Xen's debug-key handler upstream; there is none here: they are counted (`keysToXen`) and dropped.
//   - At start the focus goes to the first domain, as console_endboot() does (there is no dom0).
//   - Backpressure: while the sink's backlog is over `outputLimit`, no records are taken; the queues fill and the
//     domains' DR writes wait (src/xen/xen-console.ts). Nothing is dropped.
// Lines end in '\n' (Xen's serial_puts adds the '\r' for the physical UART; a terminal in Node's raw mode keeps its
// own '\n' -> "\r\n" output processing, so nothing is translated here).

import type { Writable } from 'node:stream';
import type { EventChannels } from '../xen/evtchn.js';
import { RecordKind, XenConsoleHost, XEN_CONSOLE_IN_SIZE } from '../xen/xen-console.js';

/** Xen's console prefix (CONSOLE_PREFIX). */
export const CONSOLE_PREFIX = '(XEN) ';
/** CTRL-a: Xen's default conswitch character. */
export const SWITCH_CODE = 0x01;
const NL = 0x0a;

export interface MuxDomain {
  domid: number;
  name: string;
  /** The domain's Xen-console region, seen from this thread. */
  host: XenConsoleHost;
  /** Our port in `evtchn` (domain `backendDomid`) bound to the domain's vuart channel; 0 until bind(). */
  localPort: number;
}

export interface XenConsoleMuxOptions {
  evtchn: EventChannels;
  /** The domain the mux's ports live in (the host side of every vuart channel). */
  backendDomid: number;
  sink: Writable;
  /** Sink backlog above which no more output is taken (bytes). */
  outputLimit?: number;
  /** Held-back input above which input() reports full (bytes, over all domains). */
  inputLimit?: number;
}

interface Dom extends MuxDomain {
  alive: boolean;
  /** Input typed for this domain, not yet in its IN buffer. */
  pending: Buffer[];
  pendingBytes: number;
  /** Input is held until the guest's driver listens (scripted input to Linux: its open drains the FIFO). */
  hold: boolean;
}

export interface MuxCounters {
  /** Bytes typed while Xen had the focus (no debug keys here): dropped. */
  keysToXen: number;
  /** Bytes typed for a domain that ended before reading them (held here or unread in its IN buffer), or after: dropped. */
  keysToDeadDomain: number;
  /** Input bytes put into IN buffers. */
  bytesIn: number;
  /** Output bytes written to the sink (with prefixes). */
  bytesOut: number;
  /** Focus switches. */
  switches: number;
  /** Times an open line was ended so that a whole line would not start mid-line. */
  linesBroken: number;
}

export class XenConsoleMux {
  readonly counters: MuxCounters = { keysToXen: 0, keysToDeadDomain: 0, bytesIn: 0, bytesOut: 0, switches: 0, linesBroken: 0 };
  /** Called when held input drops below half the limit after input() said full. */
  onInputSpace: () => void = () => {};
  private readonly doms: Dom[] = [];
  private readonly evtchn: EventChannels;
  private readonly backendDomid: number;
  private readonly sink: Writable;
  private readonly outputLimit: number;
  private readonly inputLimit: number;
  /** Index into doms of the focused domain; -1: Xen. */
  private focus = -1;
  private switchCount = 0;
  private atLineStart = true;
  private out: string[] = [];
  private heldTotal = 0;
  private inputFull = false;
  private running = false;
  private loopDone: Promise<void> | undefined;
  private waitingForDrain = false;

  constructor(opts: XenConsoleMuxOptions) {
    this.evtchn = opts.evtchn;
    this.backendDomid = opts.backendDomid;
    this.sink = opts.sink;
    this.outputLimit = opts.outputLimit ?? 64 * 1024;
    this.inputLimit = opts.inputLimit ?? 64 * 1024;
  }

  /** Add a domain (in domid order); its channel's events service it. */
  add(d: MuxDomain, opts: { holdInput?: boolean } = {}): void {
    const dom: Dom = { ...d, alive: true, pending: [], pendingBytes: 0, hold: opts.holdInput ?? false };
    this.doms.push(dom);
    this.doms.sort((a, b) => a.domid - b.domid);
    if (d.localPort !== 0) this.bind(d.domid, d.localPort);
  }

  /**
   * The domain's vuart channel is bound (its vCPU thread is up): its events now service it. Domains are added, and
   * the focus given, before any of them runs (Xen's console_endboot() comes before the domains are unpaused).
   */
  bind(domid: number, localPort: number): void {
    const d = this.doms.find((x) => x.domid === domid);
    if (!d) throw new RangeError(`mux: no domain ${domid}`);
    d.localPort = localPort;
    this.evtchn.setHandler(this.backendDomid, localPort, () => this.service(d));
    this.service(d);
  }

  /** Hold input for a domain until releaseInput() (scripted input to Linux: its driver's open drains the FIFO). */
  holdInput(domid: number): void {
    const d = this.doms.find((x) => x.domid === domid);
    if (d) d.hold = true;
  }

  /** Let held input flow to a domain (its driver listens now). */
  releaseInput(domid: number): void {
    const d = this.doms.find((x) => x.domid === domid);
    if (d && d.hold) {
      d.hold = false;
      this.pump(d);
    }
  }

  /** The focused domain's id, or 0 for Xen. */
  get focusedDomid(): number {
    return this.focus < 0 ? 0 : this.doms[this.focus]!.domid;
  }

  /** console_endboot(): the first switch, away from Xen to the first domain, with its message. */
  start(): void {
    this.switchInput();
    this.running = true;
    this.loopDone = this.loop();
  }

  /** Stop servicing (after every domain has ended and been drained with domainEnded()). */
  async stop(): Promise<void> {
    this.running = false;
    this.evtchn.kick(this.backendDomid);
    await this.loopDone;
    this.flushOut();
  }

  /**
   * A domain's vCPU has ended: take what is left in its queue and what it held in its line buffer (printed as a
   * last line, so no byte is lost), and stop routing input to it.
   */
  domainEnded(domid: number): void {
    const d = this.doms.find((x) => x.domid === domid);
    if (!d || !d.alive) return;
    while (d.host.readRecords((k, b) => this.record(d, k, b)) > 0);
    const held = d.host.takeHeld();
    if (held.length > 0) {
      const line = held[held.length - 1] === NL ? held : Buffer.concat([held, Buffer.from('\n')]);
      this.record(d, d === this.doms[this.focus] ? RecordKind.Plain : RecordKind.Line, line);
    }
    d.alive = false;
    this.heldTotal -= d.pendingBytes;
    // Typed for it and never read: what was still held here and what sat unread in its IN buffer.
    this.counters.keysToDeadDomain += d.pendingBytes + (XEN_CONSOLE_IN_SIZE - d.host.inFree());
    d.pending = [];
    d.pendingBytes = 0;
    if (d.localPort !== 0) this.evtchn.setHandler(this.backendDomid, d.localPort, undefined);
    this.flushOut();
    this.checkInputSpace();
  }

  /**
   * Bytes from the terminal (serial_rx). Returns false when held input is over the limit: the caller pauses its
   * source until onInputSpace().
   */
  input(data: Uint8Array): boolean {
    for (const c of data) {
      if (c === SWITCH_CODE) {
        // Xen eats CTRL-a in groups of three to switch the input.
        if (++this.switchCount === 3) {
          this.switchCount = 0;
          this.switchInput();
        }
        continue;
      }
      for (; this.switchCount > 0; this.switchCount--) this.rx(SWITCH_CODE);
      this.rx(c);
    }
    this.flushPending();
    this.flushOut();
    if (this.heldTotal > this.inputLimit) this.inputFull = true;
    return !this.inputFull;
  }

  // ---- input ------------------------------------------------------------------------------------------------

  private rxBatch: number[] = [];
  private rxTarget: Dom | undefined;

  /** __serial_rx for one byte: to the focused domain (batched until the target changes or input() ends). */
  private rx(c: number): void {
    if (this.focus < 0) {
      this.counters.keysToXen++;
      return;
    }
    const d = this.doms[this.focus]!;
    if (!d.alive) {
      this.counters.keysToDeadDomain++;
      return;
    }
    if (this.rxTarget !== d) this.flushPending();
    this.rxTarget = d;
    this.rxBatch.push(c);
  }

  private flushPending(): void {
    const d = this.rxTarget;
    if (d === undefined || this.rxBatch.length === 0) return;
    const b = Buffer.from(this.rxBatch);
    this.rxBatch = [];
    d.pending.push(b);
    d.pendingBytes += b.length;
    this.heldTotal += b.length;
    this.pump(d);
  }

  /** Move held input into the domain's IN buffer as far as it has room; notify the vCPU if anything went in. */
  private pump(d: Dom): void {
    if (!d.alive || d.hold || d.localPort === 0) return;
    let moved = 0;
    while (d.pending.length > 0) {
      const head = d.pending[0]!;
      const n = d.host.writeIn(head);
      if (n === 0) break;
      moved += n;
      if (n === head.length) d.pending.shift();
      else d.pending[0] = head.subarray(n);
    }
    if (moved > 0) {
      d.pendingBytes -= moved;
      this.heldTotal -= moved;
      this.counters.bytesIn += moved;
      this.evtchn.notify(this.backendDomid, d.localPort);
      this.checkInputSpace();
    }
  }

  private checkInputSpace(): void {
    if (this.inputFull && this.heldTotal <= this.inputLimit / 2) {
      this.inputFull = false;
      this.onInputSpace();
    }
  }

  /** console_switch_input(): rotate over Xen and the live domains, then print where input goes now. */
  private switchInput(): void {
    this.counters.switches++;
    let next = this.focus;
    for (;;) {
      next++;
      if (next >= this.doms.length) {
        next = -1;
        break;
      }
      if (this.doms[next]!.alive) break;
    }
    this.flushPending(); // typed before the switch: still for the old target
    this.focus = next;
    const d = next < 0 ? undefined : this.doms[next]!;
    for (const x of this.doms) if (x.alive) x.host.focused = x === d;
    this.xenLine(`*** Serial input to ${d ? `DOM${d.domid}` : 'Xen'} (type 'CTRL-a' three times to switch input)\n`);
  }

  // ---- output -----------------------------------------------------------------------------------------------

  private async loop(): Promise<void> {
    const ev = this.evtchn;
    const me = this.backendDomid;
    while (this.running) {
      const seen = ev.doorbell(me);
      ev.dispatch(me);
      // The final check (the queues' wakeup rule): records queued without a notify we have not seen yet.
      for (const d of this.doms) if (d.host.hasRecords()) this.service(d);
      if (!this.running) break;
      await ev.waitAsync(me, seen, 1000);
    }
  }

  /** A domain's channel fired: take its records (unless the sink is backed up) and move held input. */
  private service(d: Dom): void {
    if (!d.alive || d.localPort === 0) return;
    this.pump(d);
    if (this.sinkFull()) return;
    d.host.readRecords((k, b) => this.record(d, k, b));
    this.flushOut();
  }

  private sinkFull(): boolean {
    // Only while the stream owes a 'drain' (a write returned false): then the event is sure to come.
    if (!this.sink.writableNeedDrain || this.sink.writableLength <= this.outputLimit) return false;
    if (!this.waitingForDrain) {
      this.waitingForDrain = true;
      this.sink.once('drain', () => {
        this.waitingForDrain = false;
        for (const d of this.doms) this.service(d);
      });
    }
    return true;
  }

  private record(d: Dom, kind: RecordKind, bytes: Uint8Array): void {
    const text = Buffer.from(bytes).toString('latin1');
    if (kind === RecordKind.Line) {
      this.breakLine();
      this.printk(`DOM${d.domid}: ${text}`);
    } else {
      this.printk(text);
    }
  }

  /** End the open line on the sink, if any (before something else writes to the same terminal). */
  endLine(): void {
    if (this.atLineStart) return;
    this.atLineStart = true;
    this.out.push('\n');
    this.flushOut();
  }

  /** A message of Xen's own: always on a line of its own. */
  private xenLine(text: string): void {
    this.breakLine();
    this.printk(text);
    this.flushOut();
  }

  private breakLine(): void {
    if (!this.atLineStart) {
      this.counters.linesBroken++;
      this.printk('\n');
    }
  }

  /** vprintk_common: CONSOLE_PREFIX at the start of each line (latin1 text: one char per byte). */
  private printk(text: string): void {
    let i = 0;
    while (i < text.length) {
      const nl = text.indexOf('\n', i);
      const end = nl < 0 ? text.length : nl + 1;
      if (this.atLineStart) this.out.push(CONSOLE_PREFIX);
      this.out.push(text.slice(i, end));
      this.atLineStart = nl >= 0;
      i = end;
    }
  }

  private flushOut(): void {
    if (this.out.length === 0) return;
    const b = Buffer.from(this.out.join(''), 'latin1');
    this.out = [];
    this.counters.bytesOut += b.length;
    this.sink.write(b);
  }
}
