// The console daemon (xenconsoled's job, tools/console/daemon/io.c), one long-lived process serving the vuart
// console of every domain started with `vpl011 up`. It is the backend domain (domid 0): it owns the hypervisor-wide
// event-channel table in shared memory, maps each domain's ring page from the domain host's shm object
// (xenforeignmemory_map), binds an event channel to the domain's vuart port, sets the ring's `connection` byte, and
// moves bytes between the ring, the domain's log and the attached clients. It discovers domains from their records
// in <run>/domains (the role xenstore watches play in Xen), and it can be killed at any instant and restarted: the
// log is exactly-once (./durable-log.ts) and the bindings are adopted from the shared table.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, fstatSync, openSync, closeSync, readFileSync, readSync, rmSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import { createServer, createConnection, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FutexWaker } from '../host/futex.js';
import { openSharedMapping, unlinkShared, type SharedMapping } from '../host/shm.js';
import { ECS_INTERDOMAIN, ECS_UNBOUND, EventChannels } from '../xen/evtchn.js';
import { ConsoleRingBackend, XENCONSOLE_CONNECTED } from '../xen/ring.js';
import { NR_MAGIC_PAGES, VUART_PFN_OFFSET, XEN_PAGE_SIZE } from '../xen/arch-arm.js';
import { Console, type OverflowPolicy } from '../console/console.js';
import { ConsoleBackend } from '../console/backend.js';
import { RateLimitedLog } from '../util/ratelimit.js';
import { ConfigError, defaultGuestConfig, loadConfig, type GuestConfig } from '../toolstack/config.js';
import { ensureGuestImages, ensureUnicorn } from '../toolstack/fetch.js';
import { DurableLog, type TimestampMode } from './durable-log.js';
import { openEvtchnTable } from './evtchn-table.js';
import { findSecrets, loadOrCreateSecrets, removeSecrets, type ConsoleSecrets } from './secrets.js';
import { TcpAuthGate } from './tcp-auth.js';
import { EVTCHN_GEOMETRY, defaultLogDir, ensurePrivateDir, ensureSubdir, magicShmName, runPaths, type RunPaths } from './paths.js';
import { LineReader, parseRequest, type DomainInfo, type Request, type Response } from './protocol.js';
import { NameClaims } from './name-claims.js';
import { listRecords, pidAlive, readRecord, removeRecord, type DomainRecord } from './records.js';
import { retireHostStderr } from './host-stderr.js';
import { saveDaemonOptions } from './daemon-options.js';
import { LockHeld, lockExclusive } from '../host/flock.js';
import { InputJournal, NO_SESSION } from './console-state.js';
import { Resumer } from './resume.js';
import type { DomainSpec } from './domain-host.js';
import { WebAccess, type WebListen } from './web-access.js';
import { WebConsole, parseWebListen } from './web-server.js';
import { printable, printableLine } from '../util/quote.js';

export const BACKEND_DOMID = 0;

export interface DaemonOptions {
  runDir: string;
  logDir?: string;
  timestamps?: TimestampMode;
  policy?: OverflowPolicy;
  /** Per-client backlog limit (bytes). */
  limit?: number;
  /** Where the daemon's own messages go (default: stderr). */
  log?: (line: string) => void;
  /** Serve the web console there (also remembered in <run>/web.json for the next start). */
  web?: WebListen;
}

/** `vpl011 web-url` starts the web console here when none is configured. */
export const WEB_DEFAULT_LISTEN = '127.0.0.1:8011';
/** A viewer that attaches first gets this much of the domain's log, so it sees the boot. */
export const WEB_SCROLLBACK_BYTES = 256 * 1024;

interface Client {
  socket: Duplex;
  readOnly: boolean;
  /** A resumable client (src/daemon/resume.ts): it gets frames, and an end frame when the domain goes. */
  framed: boolean;
  removeSink: () => void;
}

interface Served {
  rec: DomainRecord;
  magic: SharedMapping;
  ring: ConsoleRingBackend;
  console: Console;
  log: DurableLog;
  localPort: number;
  detach: () => void;
  clients: Set<Client>;
  paused: Set<Duplex>;
  /** Input sessions of resumable clients (src/daemon/console-state.ts, resume.ts). */
  input: InputJournal;
  sessions: Map<number, Socket>;
  finished?: boolean;
  tcp?: Server;
  tcpGate?: TcpAuthGate;
}

const MAGIC_SIZE = NR_MAGIC_PAGES * XEN_PAGE_SIZE;
/**
 * A control connection with no complete request for this long is closed (attached consoles are exempt).
 * $VPL011_CONTROL_IDLE_MS overrides (tests).
 */
const CONTROL_IDLE_MS = Number(process.env.VPL011_CONTROL_IDLE_MS) > 0 ? Number(process.env.VPL011_CONTROL_IDLE_MS) : 30_000;
/** Requests queued per control connection before the daemon stops reading from it. */
const MAX_PENDING_REQUESTS = 8;

/** Every request is answered within a bound, whatever it waits for (a fetch, a boot, a domain that will not die). */
function requestTimeoutMs(op: string): number {
  return op === 'up' ? 280_000 : op === 'destroy' ? 45_000 : 10_000;
}
const BIN = fileURLToPath(new URL('../../../bin/vpl011.js', import.meta.url));

export class DaemonError extends Error {}
/** Another daemon holds the run dir's lock (a concurrent start lost the race: not a failure for its caller). */
export class DaemonRunning extends DaemonError {}

export class Daemon {
  readonly paths: RunPaths;
  readonly logDir: string;
  private readonly opts: DaemonOptions;
  private readonly say: (line: string) => void;
  private evtchnMap: SharedMapping | undefined;
  private waker: FutexWaker | undefined;
  private evtchn!: EventChannels;
  private readonly backend = new ConsoleBackend(BACKEND_DOMID);
  private server: Server | undefined;
  private watcher: FSWatcher | undefined;
  private scanTimer: NodeJS.Timeout | undefined;
  private readonly served = new Map<number, Served>();
  /** domids handed out by `up` whose host has not written a record yet. */
  private readonly reserved = new Set<number>();
  /** TCP listeners `up` opened before starting the domain (so a bad endpoint fails `up`), by domid. */
  private readonly tcpHeld = new Map<number, Server>();
  private readonly badRecords = new Set<string>();
  /** Domain instances the daemon cannot serve, with the reason last reported. */
  private readonly unservable = new Map<string, string>();
  /** Names of domains being started (claimed atomically with the uniqueness check). */
  private readonly names = new NameClaims();
  private readonly resumer = new Resumer();
  private stopped = false;
  private releaseLock: (() => void) | undefined;
  private web: WebConsole | undefined;

  constructor(opts: DaemonOptions) {
    this.opts = opts;
    this.paths = runPaths(opts.runDir);
    this.logDir = opts.logDir ?? defaultLogDir(opts.runDir);
    // The daemon's lines quote records, configs and guests' crash reasons: escaped, as everything bound for a terminal.
    this.say = opts.log ?? ((l) => process.stderr.write(`vpl011 daemon: ${printableLine(l)}\n`));
  }

  async start(): Promise<void> {
    const p = this.paths;
    ensurePrivateDir(p.runDir);
    // One daemon per run dir, decided by the kernel (flock dies with its holder, even by kill -9): clients start a
    // daemon whenever none answers, so several may try at once.
    try {
      this.releaseLock = lockExclusive(join(p.runDir, 'daemon.lock'));
    } catch (e) {
      if (e instanceof LockHeld) throw new DaemonRunning(`a daemon is already running on ${p.runDir}`);
      throw e;
    }
    ensureSubdir(p.domainsDir);
    ensureSubdir(p.journalDir);
    ensureSubdir(p.secretsDir);
    ensureSubdir(this.logDir);
    if (await socketAnswers(p.controlSocket)) throw new DaemonError(`a daemon is already running on ${p.controlSocket}`);
    rmSync(p.controlSocket, { force: true });

    const size = EventChannels.byteLength(EVTCHN_GEOMETRY);
    try {
      this.evtchnMap = openEvtchnTable(p, size);
    } catch (e) {
      throw new DaemonError((e as Error).message);
    }
    this.waker = new FutexWaker(this.evtchnMap);
    this.evtchn = EventChannels.createIn(this.evtchnMap.buffer, EVTCHN_GEOMETRY, this.waker);
    void this.backend.start();

    // Adopt every running domain before accepting clients (a restart picks up where the killed daemon stopped).
    this.scan();

    const server = createServer((s) => this.onControl(s));
    const oldMask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(p.controlSocket, () => resolve());
      });
    } finally {
      process.umask(oldMask);
    }
    chmodSync(p.controlSocket, 0o600);
    server.on('error', (e) => this.say(`control socket: ${e.message}`));
    this.server = server;
    writeFileSync(p.daemonPid, `${process.pid}\n`, { mode: 0o600 });
    // A daemon started again after a crash (by any client) serves with the same options.
    saveDaemonOptions(p.runDir, {
      ...(this.opts.logDir ? { logDir: this.opts.logDir } : {}),
      ...(this.opts.timestamps ? { timestamp: this.opts.timestamps } : {}),
      ...(this.opts.policy ? { overflow: this.opts.policy } : {}),
    });

    try {
      this.watcher = watch(p.domainsDir, () => this.scheduleScan());
      this.watcher.on('error', () => {});
    } catch {
      // fs.watch unavailable: the periodic scan still finds everything.
    }
    this.scanTimer = setInterval(() => this.scan(), 500);
    this.say(`serving ${p.runDir} (pid ${process.pid}; logs in ${this.logDir})`);

    // The web console: asked for on the command line (an error there is the caller's), or remembered from an
    // earlier start (an error then is only reported: the consoles still work without it).
    const access = new WebAccess(p.runDir);
    if (this.opts.web) {
      await this.startWeb(this.opts.web);
    } else if (access.listen) {
      await this.startWeb(access.listen).catch((e: Error) => this.say(e.message));
    }
  }

  /** Start the web console (once); remembers where, so a restarted daemon serves it again. */
  private async startWeb(listen: WebListen): Promise<WebConsole> {
    if (this.web) return this.web;
    const access = new WebAccess(this.paths.runDir);
    const web = new WebConsole({ domains: () => this.list(false), attachStream: (d, st, ro, label) => this.attachStream(d, st, ro, label) }, access, this.say);
    await web.listen(listen);
    this.web = web;
    access.listen = { ...listen, port: listen.port === 0 ? web.address!.port : listen.port };
    this.say(`web console on http://${web.address!.host}:${web.address!.port}/ (vpl011 web-url prints a URL with its token)`);
    return web;
  }

  /** SIGHUP: reopen every log (logrotate). */
  reopenLogs(): void {
    for (const s of this.served.values()) {
      try {
        s.log.reopen();
      } catch (e) {
        this.say(`d${s.rec.domid}: cannot reopen ${s.log.path}: ${(e as Error).message}`);
      }
    }
  }

  /** Stop serving (domains keep running; a new daemon adopts them). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.scanTimer) clearInterval(this.scanTimer);
    this.watcher?.close();
    this.server?.close();
    this.web?.close();
    rmSync(this.paths.controlSocket, { force: true });
    rmSync(this.paths.daemonPid, { force: true });
    for (const s of this.served.values()) {
      s.finished = true; // its journal page is about to be unmapped: pending acknowledgements must not read it
      for (const c of s.clients) c.socket.destroy();
      s.tcp?.close();
      s.tcpGate?.close();
      s.detach();
      s.console.close();
      s.log.close();
    }
    this.served.clear();
    await this.backend.stop();
    await this.waker?.close();
    this.releaseLock?.();
  }

  // ---- discovery ---------------------------------------------------------------------------------------------

  private scanQueued = false;
  private scheduleScan(): void {
    if (this.scanQueued || this.stopped) return;
    this.scanQueued = true;
    setTimeout(() => {
      this.scanQueued = false;
      this.scan();
    }, 10);
  }

  private scan(): void {
    if (this.stopped) return;
    const records = listRecords(this.paths.domainsDir, (f, why) => {
      if (!this.badRecords.has(f)) this.say(`ignoring record ${f}: ${why}`);
      this.badRecords.add(f);
    });
    const seen = new Set<number>();
    for (const rec of records) {
      seen.add(rec.domid);
      let s = this.served.get(rec.domid);
      if (s && s.rec.instance !== rec.instance) {
        this.finish(s, 'replaced by a new instance');
        s = undefined;
      }
      const alive = pidAlive(rec.pid);
      if (!s) {
        if (rec.state === 'starting' && alive) continue;
        try {
          s = this.connect(rec);
        } catch (e) {
          // Said once per instance and reason: the scan retries every 500 ms.
          const why = (e as Error).message;
          if (this.unservable.get(rec.instance) !== why) this.say(`d${rec.domid} (${rec.name}): cannot serve its console: ${why}`);
          this.unservable.set(rec.instance, why);
          if (!alive) this.cleanupDead(rec);
          continue;
        }
        if (!s) continue;
      } else {
        s.rec = rec;
      }
      if (s.console.holdInput && !rec.inputHeld) s.console.releaseInput();
      if (rec.state === 'shutdown' || rec.state === 'crashed') {
        this.finish(s, rec.state === 'crashed' ? `crashed: ${rec.message ?? rec.reason ?? 'no reason'}` : `shut down (${rec.reason ?? 'poweroff'})`);
      } else if (!alive) {
        this.finish(s, `domain host (pid ${rec.pid}) died`);
      }
    }
    for (const instance of this.unservable.keys()) if (!records.some((r) => r.instance === instance)) this.unservable.delete(instance);
    for (const [domid, s] of this.served) {
      // Only trust an absence that a direct read confirms (a listing can race with the host's atomic rename).
      if (!seen.has(domid) && readRecord(this.paths.domainsDir, domid)?.instance !== s.rec.instance) this.finish(s, 'record removed');
    }
  }

  /** Map the ring, recover the log, bind or adopt the event channel, and start serving. */
  private connect(rec: DomainRecord): Served | undefined {
    const magic = openSharedMapping(rec.magicShm, { size: MAGIC_SIZE });
    let log: DurableLog | undefined;
    try {
      const ring = new ConsoleRingBackend(magic.buffer, VUART_PFN_OFFSET * XEN_PAGE_SIZE);
      log = new DurableLog(
        join(this.logDir, `guest-${rec.name}-vuart0.log`),
        join(this.paths.journalDir, `${rec.instance}.journal`),
        this.opts.timestamps ?? 'none',
      );
      const r = log.recover(ring);
      // Anything but 'none' means the previous daemon died mid-batch: say what was done about it.
      if (r.action !== 'none') this.say(`d${rec.domid}: log recovery: ${r.action}${r.detail ? ` (${r.detail})` : ''}`);
      // Input in flight when a daemon died: settled against in_prod, so IN and each session's acknowledged count
      // are exact (the counters themselves live in the journal page: `list` shows them across restarts).
      const input = new InputJournal(log.page, log.counters);
      if (input.recover(ring) === 'ignored') this.say(`d${rec.domid}: input journal does not match in_prod (ring scribbled?); counts kept`);
      const localPort = this.bindPort(rec);
      const served: Served = {
        rec,
        magic,
        ring,
        log,
        localPort,
        console: undefined as unknown as Console,
        detach: () => {},
        clients: new Set(),
        paused: new Set(),
        input,
        sessions: new Map(),
      };
      const lg = log;
      served.console = new Console({
        name: rec.name,
        domid: rec.domid,
        ring,
        evtchn: this.evtchn,
        backendDomid: BACKEND_DOMID,
        localPort,
        policy: this.opts.policy ?? 'keep',
        ...(this.opts.limit !== undefined ? { limit: this.opts.limit } : {}),
        report: guestReports((m) => this.say(`d${rec.domid}: ${m}`)),
        recorder: (chunk, cons) => lg.record(chunk, cons),
        counters: log.counters,
        inputRecorder: {
          before: (tag, n, prod) => input.before(typeof tag === 'number' ? tag : NO_SESSION, n, prod),
          after: (tag, n) => {
            if (typeof tag !== 'number') return input.after(NO_SESSION, n);
            input.after(tag, n);
            this.resumer.acked(served, tag);
          },
        },
      });
      // A Linux guest not yet listening on its vuart: input waits in the console (see DomainRecord.inputHeld).
      served.console.holdInput = rec.inputHeld === true;
      served.console.onInputSpace = () => {
        for (const sock of served.paused) sock.resume();
        served.paused.clear();
      };
      if (localPort > 0) served.detach = this.backend.add(served.console, this.evtchn, localPort);
      this.served.set(rec.domid, served);
      if (rec.tcp) this.listenTcp(served, rec.tcp);
      this.say(`d${rec.domid} (${rec.name}): console connected (port ${localPort > 0 ? localPort : 'none'})`);
      return served;
    } catch (e) {
      log?.close();
      magic.close();
      throw e;
    }
  }

  /**
   * Our port for the domain's vuart: adopt the one a previous daemon bound (state survives in the shared table,
   * as xenconsoled skips rebinding when the port is unchanged), else bind. 0 when the guest port is gone.
   */
  private bindPort(rec: DomainRecord): number {
    const ev = this.evtchn;
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

  /** Drain what is left, note it in the log, release everything; removing the record lets the host exit. */
  private finish(s: Served, why: string): void {
    if (this.served.get(s.rec.domid) !== s) return;
    this.say(`d${s.rec.domid} (${s.rec.name}): ${why}; draining and closing its console`);
    this.served.delete(s.rec.domid);
    const rec = readRecord(this.paths.domainsDir, s.rec.domid) ?? s.rec;
    try {
      s.console.flush();
    } catch (e) {
      this.say(`d${rec.domid}: final drain failed: ${(e as Error).message}`);
    }
    s.detach();
    s.console.close();
    this.resumer.retire(s, why); // before the note: a resuming client gets the output up to here, then the end
    for (const c of s.clients) c.socket.end(c.framed ? Resumer.endFrame(rec.name, rec.domid, why) : `\r\n[vpl011: domain ${printable(`${rec.name} ${why}`, 300)}]\r\n`);
    s.tcp?.close();
    s.tcpGate?.close();
    removeSecrets(this.paths.secretsDir, rec.instance);
    try {
      s.log.note(`domain ${rec.name} (d${rec.domid}) ${why}`);
    } catch {
      // the log is best effort here
    }
    s.log.close(true);
    if (s.localPort > 0) this.evtchn.close(BACKEND_DOMID, s.localPort);
    const alive = pidAlive(rec.pid);
    s.magic.close();
    if (!alive) this.cleanupDead(rec);
    else removeRecord(this.paths.domainsDir, rec.domid);
    // The domain is gone: its stderr file goes with it (what it said about a crash or a death stays in our log).
    if (!this.reserved.has(rec.domid)) retireHostStderr(this.paths.domainsDir, rec.domid, rec.state === 'crashed' || !alive, (l) => this.say(l));
    this.say(`d${rec.domid} (${rec.name}): ${why}; console closed`);
  }

  /** A domain host that died without tearing down: free its port and shared pages for it. */
  private cleanupDead(rec: DomainRecord): void {
    try {
      if (rec.vuartPort > 0) this.evtchn.close(rec.domid, rec.vuartPort);
    } catch {
      // a bad port in a record: nothing to free
    }
    unlinkShared(rec.magicShm);
    removeSecrets(this.paths.secretsDir, rec.instance);
    removeRecord(this.paths.domainsDir, rec.domid);
    rmSync(join(this.paths.domainsDir, `${rec.domid}.spec.json`), { force: true });
    // A domain `up` is still starting: up reads the file for its answer and retires it.
    if (!this.reserved.has(rec.domid)) retireHostStderr(this.paths.domainsDir, rec.domid, true, (l) => this.say(l));
  }

  // ---- control socket ----------------------------------------------------------------------------------------

  private onControl(sock: Socket): void {
    const reader = new LineReader();
    let attached = false;
    let pending = 0;
    // Requests on one connection are answered in order, one line each.
    let chain: Promise<void> = Promise.resolve();
    const reply = (r: Response) => {
      if (!sock.destroyed) sock.write(JSON.stringify(r) + '\n');
    };
    sock.on('error', () => {});
    // A connection that leaves a request half-sent (or sends nothing) holds a socket and a buffer: close it.
    sock.setTimeout(CONTROL_IDLE_MS, () => {
      if (!attached && pending === 0) sock.destroy();
    });
    const enqueue = (work: () => void | Promise<void>) => {
      pending++;
      chain = chain.then(work).finally(() => {
        pending--;
        pump();
      });
    };
    // Bounded per connection: at most MAX_PENDING_REQUESTS queued, and nothing more read while the client leaves
    // its answers unread (a pipelining client that never reads cannot grow the daemon).
    const pump = (): void => {
      while (!attached && !sock.destroyed && pending < MAX_PENDING_REQUESTS) {
        const line = reader.next();
        if (line === undefined) break;
        if (line === 'overflow') {
          sock.off('data', onData);
          enqueue(() => {
            reply({ ok: false, error: 'request line too long' });
            sock.end();
          });
          return;
        }
        if (line.trim() === '') continue;
        const req = parseRequest(line);
        if (typeof req === 'string') {
          enqueue(() => reply({ ok: false, error: req }));
          continue;
        }
        if (req.op === 'attach') {
          attached = true;
          sock.setTimeout(0); // a console may be quiet for days
          sock.off('data', onData);
          sock.pause(); // console bytes wait in the socket until the client is attached
          const early = reader.rest();
          enqueue(() => this.attach(sock, req, early, reply));
          return;
        }
        enqueue(() =>
          answerWithin(this.handle(req), requestTimeoutMs(req.op), req.op).then(reply, (e: unknown) => reply({ ok: false, error: (e as Error).message })),
        );
      }
      if (attached || sock.destroyed) return;
      if (pending >= MAX_PENDING_REQUESTS || sock.writableNeedDrain) sock.pause();
      else sock.resume();
    };
    const onData = (chunk: Buffer) => {
      if (attached) return;
      reader.push(chunk);
      pump();
    };
    sock.on('drain', pump);
    sock.on('data', onData);
  }

  private find(ref: string): Served | undefined {
    if (/^\d+$/.test(ref)) return this.served.get(Number(ref));
    for (const s of this.served.values()) if (s.rec.name === ref) return s;
    return undefined;
  }

  private async handle(req: Exclude<Request, { op: 'attach' }>): Promise<Response> {
    switch (req.op) {
      case 'ping':
        return { ok: true, pid: process.pid };
      case 'list':
        return { ok: true, domains: this.list(req.secrets === true) };
      case 'up':
        return this.up(req);
      case 'destroy':
        return this.destroy(req.domain);
      case 'line-event': {
        // After the input already queued for the console (a client waits for its typed bytes' ack first).
        const s = this.find(req.domain);
        if (!s || s.finished) return { ok: false, error: `domain: no running console ${req.domain}` };
        if (!s.console.queueLineEvent(req.event)) return { ok: false, error: `${req.event}: too many line events waiting for ${s.rec.name} (it is not reading its console)` };
        return { ok: true, domid: s.rec.domid, name: s.rec.name };
      }
      case 'web':
        return this.webUrls(req);
    }
  }

  private async webUrls(req: Extract<Request, { op: 'web' }>): Promise<Response> {
    let listen: WebListen | undefined;
    if (req.listen !== undefined) {
      const l = parseWebListen(req.listen, req.public === true);
      if (typeof l === 'string') return { ok: false, error: l };
      listen = l;
    }
    if (this.web && listen && (listen.host !== this.web.address?.host || (listen.port !== 0 && listen.port !== this.web.address?.port))) {
      return { ok: false, error: `web: the web console already listens on ${this.web.address?.host}:${this.web.address?.port}` };
    }
    const web = await this.startWeb(listen ?? (parseWebListen(WEB_DEFAULT_LISTEN, false) as WebListen));
    return { ok: true, ...web.urls() };
  }

  private list(withSecrets: boolean): DomainInfo[] {
    const out: DomainInfo[] = [];
    for (const rec of listRecords(this.paths.domainsDir)) {
      const s = this.served.get(rec.domid);
      const c = s?.console.counters;
      out.push({
        id: rec.domid,
        name: rec.name,
        state: pidAlive(rec.pid) ? rec.state : 'dead',
        bytesIn: c?.bytesIn ?? 0,
        bytesOut: c?.bytesOut ?? 0,
        clients: s?.clients.size ?? 0,
        dropped: c?.dropped ?? 0,
        corrupt: c?.corrupt ?? 0,
        discardedInput: s?.log.counters.discardedInput ?? 0,
        throttled: c?.throttled ?? 0,
        startedAt: rec.startedAt,
        authFailures: s?.tcpGate?.failures ?? 0,
        ...(rec.tcp ? { tcp: `${rec.tcp.host.includes(':') ? `[${rec.tcp.host}]` : rec.tcp.host}:${rec.tcp.port}` } : {}),
        ...(withSecrets && rec.tcp ? secretFields(findSecrets(this.paths.secretsDir, rec.instance)) : {}),
        ...(rec.reason ? { reason: rec.message ? `${rec.reason}: ${rec.message}` : rec.reason } : {}),
      });
    }
    return out;
  }

  /** Fetch progress is worth a line in the daemon's output; "already present" is not. */
  private fetchLog(m: string): void {
    if (!/nothing to fetch|library present/.test(m)) this.say(m.replace(/^vpl011: /, ''));
  }

  /** Whether a domain (recorded or served) has this name now. */
  private nameTaken(name: string): boolean {
    return listRecords(this.paths.domainsDir).some((r) => r.name === name) || [...this.served.values()].some((s) => s.rec.name === name);
  }

  /** `up`, with its domain name claimed from the check until the domain has a record or failed (item 3 of issue 8). */
  private async up(req: Extract<Request, { op: 'up' }>): Promise<Response> {
    const releases: (() => void)[] = [];
    const claim = (name: string): string | undefined => {
      const r = this.names.claim(name, (n) => this.nameTaken(n));
      if (typeof r === 'string') return r;
      releases.push(r);
      return undefined;
    };
    try {
      // A requested name is claimed before any async work, so a loser fails at once.
      const early = req.name !== undefined ? claim(req.name) : undefined;
      if (early) return { ok: false, error: early };
      return await this.upClaimed(req, claim);
    } finally {
      for (const release of releases) release();
    }
  }

  private async upClaimed(req: Extract<Request, { op: 'up' }>, claim: (name: string) => string | undefined): Promise<Response> {
    let config: GuestConfig;
    try {
      // No config: `vpl011 run`'s default guest (Debian's kernel + our initramfs), fetched into the cache if missing.
      config = req.config ? loadConfig(req.config) : defaultGuestConfig(await ensureGuestImages({ log: (m) => this.fetchLog(m) }));
      await ensureUnicorn({ log: (m) => this.fetchLog(m) });
    } catch (e) {
      if (e instanceof ConfigError) return { ok: false, error: e.message };
      return { ok: false, error: `config: ${(e as Error).message}` };
    }
    const name = req.name ?? config.name;
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) return { ok: false, error: `name: ${JSON.stringify(name)} is not a valid domain name` };
    if (req.name === undefined) {
      const lost = claim(name);
      if (lost) return { ok: false, error: lost };
    }
    const records = listRecords(this.paths.domainsDir);
    let domid = 0;
    for (let d = 1; d < this.evtchn.maxDomains; d++) {
      if (this.reserved.has(d) || this.served.has(d) || records.some((r) => r.domid === d)) continue;
      if (existsSync(join(this.paths.domainsDir, `${d}.json`))) continue;
      domid = d;
      break;
    }
    if (domid === 0) return { ok: false, error: 'no free domain id' };
    const instance = randomBytes(8).toString('hex');
    const spec: DomainSpec = {
      domid,
      name,
      instance,
      runDir: this.paths.runDir,
      evtchnShm: this.evtchnMap!.name,
      evtchnSize: this.evtchnMap!.size,
      magicShm: magicShmName(this.paths, domid, instance),
      config,
      ...(req.tcp ? { tcp: req.tcp } : {}),
    };
    // Reserved before anything is awaited: a concurrent `up` must not pick the same domid.
    this.reserved.add(domid);
    try {
      // Listen before the domain exists: a port in use or an address we cannot bind is `up`'s error, not a line in
      // the daemon's log under a domain that runs without its console endpoint.
      if (req.tcp) {
        const held = await listenTcpEndpoint(req.tcp, (sock) => this.onTcpClient(domid, sock));
        if (typeof held === 'string') return { ok: false, error: held };
        this.tcpHeld.set(domid, held);
      }
      const specPath = join(this.paths.domainsDir, `${domid}.spec.json`);
      writeFileSync(specPath, JSON.stringify(spec), { mode: 0o600 });
      const errFd = openSync(join(this.paths.domainsDir, `${domid}.stderr`), 'w', 0o600);
      const child = spawn(process.execPath, [BIN, 'domain-host', specPath], {
        detached: true,
        stdio: ['ignore', 'ignore', errFd],
      });
      closeSync(errFd);
      child.unref();
      const deadline = Date.now() + 30_000;
      for (;;) {
        await new Promise((r) => setTimeout(r, 20));
        this.scan();
        const s = this.served.get(domid);
        if (s && s.ring.connection === XENCONSOLE_CONNECTED) return { ok: true, domid, name };
        const rec = readRecord(this.paths.domainsDir, domid);
        if (rec && (rec.state === 'crashed' || rec.state === 'shutdown')) {
          retireHostStderr(this.paths.domainsDir, domid, true, (l) => this.say(l));
          return { ok: false, error: `domain ${name} ended while starting: ${rec.message ?? rec.reason ?? rec.state}` };
        }
        if (child.exitCode !== null || Date.now() > deadline) {
          const errPath = join(this.paths.domainsDir, `${domid}.stderr`);
          const why = lastLine(errPath);
          if (child.exitCode === null) return { ok: false, error: `domain ${name} did not start${why ? `: ${why}` : ''} (see ${errPath})` };
          // The host is gone: its files go too (its output is kept in the daemon's log).
          retireHostStderr(this.paths.domainsDir, domid, true, (l) => this.say(l));
          rmSync(specPath, { force: true });
          return { ok: false, error: `domain ${name} did not start${why ? `: ${why}` : ''} (the daemon's log has the details)` };
        }
      }
    } finally {
      this.reserved.delete(domid);
      // Not taken over by listenTcp: the domain did not come up.
      this.tcpHeld.get(domid)?.close();
      this.tcpHeld.delete(domid);
    }
  }

  private async destroy(ref: string): Promise<Response> {
    let rec: DomainRecord | undefined;
    for (const r of listRecords(this.paths.domainsDir)) if (String(r.domid) === ref || r.name === ref) rec = r;
    if (!rec) return { ok: false, error: `domain: no domain ${ref}` };
    try {
      process.kill(rec.pid, 'SIGTERM');
    } catch {
      // already gone: the scan cleans up
    }
    const deadline = Date.now() + 10_000;
    let killed = false;
    while (readRecord(this.paths.domainsDir, rec.domid)?.instance === rec.instance) {
      await new Promise((r) => setTimeout(r, 20));
      this.scan();
      if (Date.now() > deadline + 20_000) return { ok: false, error: `domain ${rec.name} (pid ${rec.pid}) did not go away after SIGKILL` };
      if (!killed && Date.now() > deadline) {
        killed = true;
        try {
          process.kill(rec.pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
    return { ok: true, domid: rec.domid, name: rec.name };
  }

  private attach(sock: Socket, req: Extract<Request, { op: 'attach' }>, early: Buffer, reply: (r: Response) => void): void {
    const s = this.find(req.domain);
    if (req.session !== undefined) {
      // A resumable client (`vpl011 console`): frames, a log-offset cursor, acknowledged input (./resume.ts).
      void this.resumer.attach(s, sock, req, reply, (live) => {
        if (this.served.get(s!.rec.domid) === s) this.addClient(s!, sock, req.readOnly, Buffer.alloc(0), live);
        else sock.end(Resumer.endFrame(s!.rec.name, s!.rec.domid, 'is gone'));
      });
      return;
    }
    if (!s) {
      reply({ ok: false, error: `domain: no running console for ${req.domain}` });
      sock.end();
      return;
    }
    reply({ ok: true, domid: s.rec.domid, name: s.rec.name });
    this.addClient(s, sock, req.readOnly, early);
  }

  /**
   * A stream client (a web viewer): the last WEB_SCROLLBACK_BYTES of the domain's log first, then live output. The
   * log is written synchronously before output reaches any client, so after flushing what clients have not been
   * given yet, the log's end is exactly where live output starts: no gap, no duplicate.
   */
  private attachStream(ref: string, stream: Duplex, readOnly: boolean, label: string): string | undefined {
    const s = this.find(ref);
    if (!s) return `no running console for ${ref}`;
    s.console.flushOutput();
    const tail = readTail(s.log.path, WEB_SCROLLBACK_BYTES);
    if (tail.length > 0) stream.write(tail);
    this.addClient(s, stream, readOnly, Buffer.alloc(0), undefined, label);
    return undefined;
  }

  private addClient(
    s: Served,
    sock: Duplex,
    readOnly: boolean,
    early: Buffer = Buffer.alloc(0),
    resumable?: { frame: (chunk: Buffer, kind: 'output' | 'marker') => Buffer; slot: number | undefined },
    label?: string,
  ): void {
    // Only a read-write client may hold the guest back (`keep`); a watcher gets discard semantics (issue #8 item 15).
    const removeSink = s.console.addSink(sock, {
      label: label ?? (readOnly ? 'read-only client' : 'client'),
      throttles: !readOnly,
      ...(resumable ? { frame: resumable.frame } : {}),
    });
    const client: Client = { socket: sock, readOnly, framed: resumable !== undefined, removeSink };
    s.clients.add(client);
    const input = (chunk: Buffer) => {
      if (chunk.length === 0) return;
      if (client.readOnly) {
        // A watcher cannot type: its bytes are counted and dropped, never delivered.
        s.log.counters.discardedInput += chunk.length;
        return;
      }
      if (!s.console.queueInput(chunk, resumable?.slot)) {
        sock.pause();
        s.paused.add(sock);
      }
    };
    sock.on('data', input);
    sock.on('error', () => {});
    sock.on('close', () => {
      s.clients.delete(client);
      s.paused.delete(sock);
      removeSink();
    });
    input(early);
    if (!s.paused.has(sock)) sock.resume();
  }

  /** The TCP console: only connections that send one of the domain's secrets first (./tcp-auth.ts). */
  private listenTcp(s: Served, ep: { host: string; port: number }): void {
    const domid = s.rec.domid;
    const held = this.tcpHeld.get(domid);
    this.tcpHeld.delete(domid);
    let secrets;
    try {
      secrets = loadOrCreateSecrets(this.paths.secretsDir, s.rec.instance);
    } catch (e) {
      held?.close();
      this.say(`d${domid}: tcp ${ep.host}:${ep.port}: not served: ${(e as Error).message}`);
      return;
    }
    // Every TCP connection authenticates first (./tcp-auth.ts); onTcpClient hands it to this gate.
    s.tcpGate = new TcpAuthGate({
      secrets,
      log: (m) => this.say(`d${domid}: ${m}`),
      onAuthenticated: (sock, access, early) => this.addClient(s, sock, access === 'read-only', early),
    });
    if (held) {
      // `up` listened before the domain started, so that a port in use was its error.
      s.tcp = held;
      return;
    }
    // Adopting a running domain after a restart: nobody waits for an answer, the log says what failed.
    const server = createServer((sock) => this.onTcpClient(domid, sock));
    server.on('error', (e) => this.say(`d${domid}: tcp ${ep.host}:${ep.port}: ${e.message}`));
    server.listen(ep.port, ep.host);
    s.tcp = server;
  }

  private onTcpClient(domid: number, sock: Socket): void {
    const gate = this.served.get(domid)?.tcpGate;
    if (gate) gate.handle(sock);
    else sock.end('[vpl011: console not ready]\r\n');
  }
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

function secretFields(s: ConsoleSecrets | undefined): { secret?: string; readOnlySecret?: string } {
  return s ? { secret: s.readWrite, readOnlySecret: s.readOnly } : {};
}

/** The last line a domain host wrote to its stderr file, without its prefix, bounded; '' if none. */
function lastLine(path: string): string {
  try {
    const text = readFileSync(path, 'utf8').slice(-4096);
    const line = text.trimEnd().split('\n').at(-1) ?? '';
    return line.replace(/^vpl011 domain-host d\d+ \([^)]*\): /, '').slice(0, 300);
  } catch {
    return '';
  }
}

/** The last `max` bytes of a file (empty if it cannot be read): bounded whatever the file's size. */
function readTail(path: string, max: number): Buffer {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const size = fstatSync(fd).size;
    const n = Math.min(size, max);
    const buf = Buffer.alloc(n);
    let off = 0;
    while (off < n) {
      const got = readSync(fd, buf, off, n - off, size - n + off);
      if (got === 0) break;
      off += got;
    }
    return buf.subarray(0, off);
  } catch {
    return Buffer.alloc(0); // no log yet: nothing to replay
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** `work`'s result, or an error answer when it takes longer than `ms` (the work itself is bounded separately). */
function answerWithin(work: Promise<Response>, ms: number, op: string): Promise<Response> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<Response>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, error: `${op}: no result within ${ms / 1000} s` }), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

/** A listening TCP server for a console endpoint, or why it cannot listen (one line). */
function listenTcpEndpoint(ep: { host: string; port: number }, onClient: (sock: Socket) => void): Promise<Server | string> {
  return new Promise((resolve) => {
    const server = createServer(onClient);
    const where = ep.host.includes(':') ? `[${ep.host}]:${ep.port}` : `${ep.host}:${ep.port}`;
    server.once('error', (e: NodeJS.ErrnoException) => {
      server.close();
      const why = e.code === 'EADDRINUSE' ? 'the port is in use' : e.code === 'EADDRNOTAVAIL' ? 'no such local address' : e.code === 'EACCES' ? 'permission denied' : e.message;
      resolve(`tcp: cannot listen on ${where}: ${why}`);
    });
    server.listen(ep.port, ep.host, () => {
      server.removeAllListeners('error');
      server.on('error', () => {});
      resolve(server);
    });
  });
}

/** Whether something accepts connections on a unix socket path. */
export function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    if (!existsSync(path)) return resolve(false);
    const c = createConnection(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}
