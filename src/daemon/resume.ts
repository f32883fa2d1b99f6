// Resumable console clients (docs/DAEMON.md "Resuming"): a `vpl011 console` whose daemon dies
// reconnects to the next one and goes on exactly where it was.
//  - Output: the log is the record, and its offset is the cursor. Every output frame carries the log offset its bytes
//    end at (src/daemon/frames.ts); a client that comes back says the offset it has shown, and the daemon serves the
//    log from there up to the live point, then joins it to the live output in the same turn (nothing in between: no
//    gap, no duplicate). A domain that ended while the client was away leaves a tombstone (its log's end and the
//    reason) so the client still gets the tail and the end.
//  - Input: a client session (an id the client chose) has an acknowledged count, kept exact across kill -9 by the
//    input journal (src/daemon/console-state.ts); the daemon acknowledges bytes once they are in the IN ring, and a
//    client re-sends from the count the daemon reports on reattach.
import { closeSync, openSync, readSync } from 'node:fs';
import type { Socket } from 'node:net';
import type { Console } from '../console/console.js';
import type { DurableLog } from './durable-log.js';
import { MAX_SESSIONS, type InputJournal } from './console-state.js';
import { ackFrame, outputFrame, textFrame, FRAME_END, FRAME_FOLLOW, FRAME_MARKER } from './frames.js';
import type { Request, Response } from './protocol.js';

/** The parts of a served console resuming needs. */
export interface ResumableConsole {
  rec: { domid: number; name: string; instance: string };
  console: Console;
  log: DurableLog;
  input: InputJournal;
  /** The live connection of each input session slot (acknowledgements go there). */
  sessions: Map<number, Socket>;
  /** Set once the daemon stopped serving it (see Resumer.retire). */
  finished?: boolean;
}

interface Tombstone {
  name: string;
  domid: number;
  logPath: string;
  /** Where the domain's output ends in the log (before the daemon's closing note). */
  endOffset: number;
  why: string;
  expires: number;
}

/** How long an ended domain's tail stays available to a client that was away, and how many are kept. */
const TOMBSTONE_MS = 10 * 60_000;
const MAX_TOMBSTONES = 64;
/** Log bytes per replay read (and frame). */
const REPLAY_CHUNK = 64 * 1024;

export type JoinLive = (sink: { frame: (chunk: Buffer, kind: 'output' | 'marker') => Buffer; slot: number | undefined }) => void;

export class Resumer {
  private readonly tombs = new Map<string, Tombstone>();
  private readonly pendingAcks = new Map<ResumableConsole, Set<number>>();
  private ackTimer: NodeJS.Immediate | undefined;
  /** Instances being migrated (`vpl011 migrate`), and where each went: a client of the old one follows (same log). */
  private readonly migrating = new Set<string>();
  private readonly movedTo = new Map<string, string>();
  /** A migrated instance's input sessions and their acknowledged totals, for its clients' first attach to the new one. */
  private readonly carriedAcks = new Map<string, Map<string, number>>();

  /** A migration of `instance` starts: its clients get a follow frame instead of the end, and wait for the new one. */
  moving(instance: string): void {
    this.migrating.add(instance);
  }

  /** It ended: `to` is the new instance (same name, same log), or undefined when there is none (clients end). */
  moved(instance: string, to: string | undefined): void {
    this.migrating.delete(instance);
    if (to !== undefined) this.movedTo.set(instance, to);
  }

  /** What a resumable client of a console that stops being served gets: the end, or for a migration, follow. */
  endFrameFor(instance: string, name: string, domid: number, why: string): Buffer {
    return this.migrating.has(instance)
      ? textFrame(FRAME_FOLLOW, `\r\n[vpl011: domain ${name} (d${domid}) is migrating; following it]\r\n`)
      : Resumer.endFrame(name, domid, why);
  }

  /** The console stops being served (its output is drained, its note not yet written): keep its tail reachable. */
  retire(s: ResumableConsole, why: string): void {
    s.finished = true;
    // A client's last acknowledgement may not have reached it: the journal's count is the truth to carry over.
    if (this.migrating.has(s.rec.instance)) this.carriedAcks.set(s.rec.instance, s.input.sessionsAcked());
    const now = Date.now();
    for (const [k, t] of this.tombs) if (t.expires < now) this.tombs.delete(k);
    while (this.tombs.size >= MAX_TOMBSTONES) this.tombs.delete(this.tombs.keys().next().value!);
    this.tombs.set(s.rec.instance, { name: s.rec.name, domid: s.rec.domid, logPath: s.log.path, endOffset: s.log.offset, why, expires: now + TOMBSTONE_MS });
  }

  /** The end frame a resumable client gets when its domain is gone. */
  static endFrame(name: string, domid: number, why: string): Buffer {
    return textFrame(FRAME_END, `\r\n[vpl011: domain ${name} (d${domid}) ${why}]\r\n`);
  }

  /** n input bytes of `slot` went into the ring: acknowledge the session's new total (once per turn). */
  acked(s: ResumableConsole, slot: number): void {
    if (slot >= MAX_SESSIONS || !s.sessions.has(slot)) return;
    let set = this.pendingAcks.get(s);
    if (!set) this.pendingAcks.set(s, (set = new Set()));
    set.add(slot);
    this.ackTimer ??= setImmediate(() => {
      this.ackTimer = undefined;
      for (const [c, slots] of this.pendingAcks) {
        if (c.finished) continue; // its journal page may be unmapped
        for (const sl of slots) c.sessions.get(sl)?.write(ackFrame(c.input.acked(sl)));
      }
      this.pendingAcks.clear();
    });
  }

  /**
   * A resumable attach (`session` set). `s` is the served console of the domain, if any. Replies, replays the log
   * from the client's offset, then calls `join` to add the client to the live output, in the same turn as the last
   * replay check.
   */
  async attach(
    s: ResumableConsole | undefined,
    sock: Socket,
    req: Extract<Request, { op: 'attach' }>,
    reply: (r: Response) => void,
    join: JoinLive,
  ): Promise<void> {
    const fail = (error: string) => {
      reply({ ok: false, error });
      sock.end();
    };
    // A client of a migrated instance follows it: the new instance has the same name, so the same log, and its cursors
    // (log offset, acknowledged input) stay valid. While the migration runs, it is asked to come again.
    if (req.instance !== undefined && this.migrating.has(req.instance)) return fail(`domain: ${req.domain} is migrating; try again`);
    const follows = req.instance !== undefined && s !== undefined && this.movedTo.get(req.instance) === s.rec.instance;
    if (req.instance !== undefined && s && s.rec.instance !== req.instance && !follows) s = undefined; // a new guest, same name
    if (!s) {
      const t = req.instance !== undefined ? this.tombs.get(req.instance) : undefined;
      if (!t || t.expires < Date.now()) return fail(`domain: no running console for ${req.domain}`);
      return this.replayTombstone(t, sock, req, reply);
    }
    if (req.instance === undefined && req.offset !== undefined) return fail('offset: only with the instance it belongs to');
    let slot: number | undefined;
    if (!req.readOnly) {
      const carried = follows ? this.carriedAcks.get(req.instance!)?.get(req.session!) : undefined;
      slot = s.input.slotFor(Buffer.from(req.session!, 'hex'), carried ?? req.inputAcked ?? 0, (i) => s!.sessions.has(i));
      if (slot === undefined) return fail('session: too many console sessions on this domain');
      if (s.sessions.has(slot)) return fail('session: already attached');
    }
    s.console.flushOutput();
    const live = s.log.offset;
    let from = req.offset ?? live;
    let marker: string | undefined;
    if (from > live) {
      marker = `\r\n[vpl011: the log is shorter than offset ${from} (rotated?): resuming at the live point]\r\n`;
      from = live;
    }
    reply({ ok: true, domid: s.rec.domid, name: s.rec.name, instance: s.rec.instance, offset: from, inputAcked: slot !== undefined ? s.input.acked(slot) : 0 });
    if (marker) sock.write(textFrame(FRAME_MARKER, marker));
    if (slot !== undefined) {
      s.sessions.set(slot, sock);
      const taken = slot;
      sock.once('close', () => {
        if (s!.sessions.get(taken) === sock) s!.sessions.delete(taken);
      });
    }
    const con = s;
    let pos = from;
    for (;;) {
      const reached = await replay(sock, con.log.path, pos, () => {
        if (con.finished) return -1;
        con.console.flushOutput();
        return con.log.offset;
      });
      if (reached === undefined) return; // the client went away
      pos = reached;
      if (con.finished) {
        // The domain ended during the replay: finish from its tombstone.
        const t = this.tombs.get(con.rec.instance);
        const end = t ? await replay(sock, t.logPath, pos, () => t.endOffset) : pos;
        if (end !== undefined) sock.end(Resumer.endFrame(con.rec.name, con.rec.domid, t?.why ?? 'is gone'));
        return;
      }
      // The check that decides we caught up runs in the same synchronous block as join() below, so no output can
      // be taken from the ring in between (a backend turn is another task).
      con.console.flushOutput();
      if (con.log.offset <= pos) break;
    }
    // Caught up with the live point in this turn (replay's last check): every later byte reaches the sink.
    join({ frame: (chunk, kind) => (kind === 'output' ? outputFrame(con.log.offset, chunk) : textFrame(FRAME_MARKER, chunk)), slot });
  }

  private async replayTombstone(t: Tombstone, sock: Socket, req: Extract<Request, { op: 'attach' }>, reply: (r: Response) => void): Promise<void> {
    const from = Math.min(req.offset ?? t.endOffset, t.endOffset);
    reply({ ok: true, domid: t.domid, name: t.name, offset: from, inputAcked: req.inputAcked ?? 0 });
    const end = await replay(sock, t.logPath, from, () => t.endOffset);
    if (end !== undefined) sock.end(Resumer.endFrame(t.name, t.domid, t.why));
  }
}

/**
 * Send the log from `from` as output frames until `until()` (checked again after each read; -1: stop) is reached.
 * Follows the socket's backpressure. Resolves with the position reached, or undefined if the socket closed.
 */
async function replay(sock: Socket, path: string, from: number, until: () => number): Promise<number | undefined> {
  let pos = from;
  let end = until();
  if (pos >= end) return sock.destroyed ? undefined : pos;
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    sock.write(textFrame(FRAME_MARKER, `\r\n[vpl011: cannot read the log to resume from offset ${from}]\r\n`));
    return sock.destroyed ? undefined : end < 0 ? pos : end;
  }
  try {
    const buf = Buffer.allocUnsafe(REPLAY_CHUNK);
    while (pos < end) {
      if (sock.destroyed) return undefined;
      const n = readSync(fd, buf, 0, Math.min(REPLAY_CHUNK, end - pos), pos);
      if (n <= 0) break; // the log is shorter than it says (truncated by hand): nothing more to send
      pos += n;
      if (!sock.write(outputFrame(pos, buf.subarray(0, n)))) {
        const open = await new Promise<boolean>((resolve) => {
          const done = (ok: boolean) => {
            sock.off('drain', onDrain);
            sock.off('close', onClose);
            resolve(ok);
          };
          const onDrain = () => done(true);
          const onClose = () => done(false);
          sock.on('drain', onDrain);
          sock.on('close', onClose);
        });
        if (!open) return undefined;
      }
      const next = until();
      if (next < 0) return pos;
      end = next;
    }
    return sock.destroyed ? undefined : pos;
  } finally {
    closeSync(fd);
  }
}
