// One domain's console as the daemon serves it: its ring page mapped from the domain host's shm object
// (xenforeignmemory_map), its exactly-once log recovered, its input journal settled, our event channel bound or
// adopted, and the Console moving bytes between them and the clients. Built in one step (the constructor), undone
// by close(); ServedConsoles is the daemon's table of them.
import type { Socket, Server } from 'node:net';
import type { Duplex } from 'node:stream';
import { join } from 'node:path';
import { openSharedMapping, type SharedMapping } from '../host/shm.js';
import { ECS_INTERDOMAIN, ECS_UNBOUND, type EventChannels } from '../xen/evtchn.js';
import { ConsoleRingBackend } from '../xen/ring.js';
import { NR_MAGIC_PAGES, VUART_PFN_OFFSET, XEN_PAGE_SIZE } from '../xen/arch-arm.js';
import { Console, type OverflowPolicy } from '../console/console.js';
import type { ConsoleBackend } from '../console/backend.js';
import { RateLimitedLog } from '../util/ratelimit.js';
import { DurableLog, type TimestampMode } from './durable-log.js';
import { InputJournal, NO_SESSION } from './console-state.js';
import type { Resumer, ResumableConsole } from './resume.js';
import type { TcpAuthGate } from './tcp-auth.js';
import type { DomainRecord } from './records.js';

import { BACKEND_DOMID } from '../xen/domain.js';

const MAGIC_SIZE = NR_MAGIC_PAGES * XEN_PAGE_SIZE;

/** How every served console is set up (the daemon's options). */
export interface ServeSettings {
  logDir: string;
  journalDir: string;
  timestamps: TimestampMode;
  policy: OverflowPolicy;
  /** Per-client backlog limit (bytes). */
  limit?: number;
  evtchn: EventChannels;
  backend: ConsoleBackend;
  resumer: Resumer;
  say: (line: string) => void;
}

export interface Client {
  socket: Duplex;
  readOnly: boolean;
  /** A resumable client (src/daemon/resume.ts): it gets frames, and an end frame when the domain goes. */
  framed: boolean;
  removeSink: () => void;
}

export class ServedConsole implements ResumableConsole {
  rec: DomainRecord;
  readonly magic: SharedMapping;
  readonly ring: ConsoleRingBackend;
  readonly log: DurableLog;
  readonly console: Console;
  /** Input sessions of resumable clients (src/daemon/console-state.ts, resume.ts). */
  readonly input: InputJournal;
  /** Our end of the domain's vuart event channel; 0 when the guest port is gone. */
  readonly localPort: number;
  readonly clients = new Set<Client>();
  /** Clients whose input waits for room in the IN ring. */
  readonly paused = new Set<Duplex>();
  readonly sessions = new Map<number, Socket>();
  finished?: boolean;
  tcp?: Server;
  tcpGate?: TcpAuthGate;
  private detach: () => void;
  private readonly attachBackend: () => () => void;

  /** Map the ring, recover the log, bind or adopt the event channel, and start serving. Throws (nothing left open). */
  constructor(rec: DomainRecord, set: ServeSettings) {
    this.rec = rec;
    const say = (m: string) => set.say(`d${rec.domid}: ${m}`);
    this.magic = openSharedMapping(rec.magicShm, { size: MAGIC_SIZE });
    let log: DurableLog | undefined;
    try {
      const ring = (this.ring = new ConsoleRingBackend(this.magic.buffer, VUART_PFN_OFFSET * XEN_PAGE_SIZE));
      log = this.log = new DurableLog(join(set.logDir, `guest-${rec.name}-vuart0.log`), join(set.journalDir, `${rec.instance}.journal`), set.timestamps);
      const r = log.recover(ring);
      // Anything but 'none' means the previous daemon died mid-batch: say what was done about it.
      if (r.action !== 'none') say(`log recovery: ${r.action}${r.detail ? ` (${r.detail})` : ''}`);
      // Input in flight when a daemon died: settled against in_prod, so IN and each session's acknowledged count
      // are exact (the counters themselves live in the journal page: `list` shows them across restarts).
      const input = (this.input = new InputJournal(log.page, log.counters));
      if (input.recover(ring) === 'ignored') say('input journal does not match in_prod (ring scribbled?); counts kept');
      this.localPort = vuartBackendPort(set.evtchn, rec);
      const lg = log;
      this.console = new Console({
        name: rec.name,
        domid: rec.domid,
        ring,
        evtchn: set.evtchn,
        backendDomid: BACKEND_DOMID,
        localPort: this.localPort,
        policy: set.policy,
        ...(rec.rxOverrun ? { overrun: rec.rxOverrun } : {}),
        ...(set.limit !== undefined ? { limit: set.limit } : {}),
        report: guestReports(say),
        recorder: (chunk, cons) => lg.record(chunk, cons),
        counters: log.counters,
        inputRecorder: {
          before: (tag, n, prod) => input.before(typeof tag === 'number' ? tag : NO_SESSION, n, prod),
          after: (tag, n) => {
            if (typeof tag !== 'number') return input.after(NO_SESSION, n);
            input.after(tag, n);
            set.resumer.acked(this, tag);
          },
        },
      });
      // A Linux guest not yet listening on its vuart: input waits in the console (see DomainRecord.inputHeld).
      this.console.holdInput = rec.inputHeld === true;
      this.console.onInputSpace = () => {
        for (const sock of this.paused) sock.resume();
        this.paused.clear();
      };
      const port = this.localPort;
      this.attachBackend = () => (port > 0 ? set.backend.add(this.console, set.evtchn, port) : () => {});
      this.detach = this.attachBackend();
    } catch (e) {
      log?.close();
      this.magic.close();
      throw e;
    }
  }

  /**
   * Stop taking output and giving input for a save (docs/SAVE.md): from here the ring's backend indices are final, so
   * the saved page carries exactly what this console did not take. Clients keep their connections.
   */
  holdForSave(): void {
    this.detach();
    this.detach = () => {};
    this.console.flushOutput();
  }

  /** The save failed: serve the ring again (the backend reads it once at once). */
  releaseAfterSave(): void {
    this.detach();
    this.detach = this.attachBackend();
  }

  /** Stop moving bytes (the console and our binding to the backend loop); the log and the mapping stay open. */
  stopServing(): void {
    this.detach();
    this.console.close();
  }
}

/** The consoles being served, by domid. */
export class ServedConsoles {
  private readonly byDomid = new Map<number, ServedConsole>();

  get(domid: number): ServedConsole | undefined {
    return this.byDomid.get(domid);
  }
  has(domid: number): boolean {
    return this.byDomid.has(domid);
  }
  add(s: ServedConsole): void {
    this.byDomid.set(s.rec.domid, s);
  }
  /** Remove `s` if it is still the one served for its domid; false if it was not. */
  remove(s: ServedConsole): boolean {
    if (this.byDomid.get(s.rec.domid) !== s) return false;
    this.byDomid.delete(s.rec.domid);
    return true;
  }
  /** By domid ("3") or name. */
  find(ref: string): ServedConsole | undefined {
    if (/^\d+$/.test(ref)) return this.byDomid.get(Number(ref));
    for (const s of this.byDomid.values()) if (s.rec.name === ref) return s;
    return undefined;
  }
  values(): IterableIterator<ServedConsole> {
    return this.byDomid.values();
  }
  entries(): IterableIterator<[number, ServedConsole]> {
    return this.byDomid.entries();
  }
  clear(): void {
    this.byDomid.clear();
  }
}

/**
 * Our port for the domain's vuart: adopt the one a previous daemon bound (state survives in the shared table,
 * as xenconsoled skips rebinding when the port is unchanged), else bind. 0 when the guest port is gone.
 */
function vuartBackendPort(ev: EventChannels, rec: DomainRecord): number {
  const gp = rec.vuartPort;
  if (gp <= 0 || gp >= ev.portsPerDomain) return 0;
  const st = ev.state(rec.domid, gp);
  if (st === ECS_INTERDOMAIN) {
    const peer = ev.peer(rec.domid, gp);
    if (peer && peer.domid === BACKEND_DOMID) {
      const back = ev.peer(BACKEND_DOMID, peer.port);
      if (back && back.domid === rec.domid && back.port === gp) return peer.port;
    }
    return 0;
  }
  if (st === ECS_UNBOUND && ev.remoteDomain(rec.domid, gp) === BACKEND_DOMID) {
    return ev.bindInterdomain(BACKEND_DOMID, rec.domid, gp);
  }
  return 0;
}

/**
 * A console's reports are caused by its guest (a ring scribbler triggers one per batch): rate-limit each kind of
 * message (its text without numbers) like Xen's guest-level gprintk, so no guest can flood the daemon's output.
 * Messages the console already limits (they say "suppressed") pass as they are. At most 16 kinds are tracked; the
 * rest share one limit.
 */
export function guestReports(sink: (m: string) => void): (m: string) => void {
  const limits = new Map<string, RateLimitedLog>();
  const shared = new RateLimitedLog(sink);
  return (m) => {
    if (/similar messages suppressed/.test(m) || /corrupt (OUT|IN) ring indices/.test(m)) return sink(m);
    const kind = m.replace(/\d+/g, '#');
    let l = limits.get(kind);
    if (!l) {
      l = limits.size < 16 ? new RateLimitedLog(sink) : shared;
      if (l !== shared) limits.set(kind, l);
    }
    l.log(m);
  };
}
