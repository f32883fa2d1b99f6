// The console daemon (xenconsoled's job, tools/console/daemon/io.c), one long-lived process serving the vuart
// console of every domain started with `vpl011 up`. It is the backend domain (domid 0): it owns the hypervisor-wide
// event-channel table in shared memory, maps each domain's ring page from the domain host's shm object
// (xenforeignmemory_map), binds an event channel to the domain's vuart port, sets the ring's `connection` byte, and
// moves bytes between the ring, the domain's log and the attached clients. It can be killed at any instant and
// restarted: the log is exactly-once (./durable-log.ts) and the bindings are adopted from the shared table.
//
// This module only composes the parts, each with one job (docs/DAEMON.md "Modules"):
//   supervisor.ts       discovers domains from their records and serves or retires their consoles (served-console.ts)
//   control-server.ts   the control socket: bounded, ordered request handling; requests/*.ts answer each request
//   domain-spawner.ts   spawns a domain host for `up` and waits (on events) until its console is served
//   client-sessions.ts  attached clients, web viewers and TCP consoles
//   web-service.ts      the web console
import { rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:net';
import { join } from 'node:path';
import { FutexWaker } from '../host/futex.js';
import type { SharedMapping } from '../host/shm.js';
import { EventChannels } from '../xen/evtchn.js';
import type { OverflowPolicy } from '../console/console.js';
import { ConsoleBackend } from '../console/backend.js';
import type { TimestampMode } from './durable-log.js';
import { openEvtchnTable } from './evtchn-table.js';
import { EVTCHN_GEOMETRY, defaultLogDir, ensurePrivateDir, ensureSubdir, runPaths, type RunPaths } from './paths.js';
import { NameClaims } from './name-claims.js';
import { saveDaemonOptions } from './daemon-options.js';
import { LockHeld, lockExclusive } from '../host/flock.js';
import { Resumer } from './resume.js';
import type { WebListen } from './web-access.js';
import { printableLine } from '../util/quote.js';
import { ServedConsoles } from './served-console.js';
import { BACKEND_DOMID } from '../xen/domain.js';
import { socketAnswers } from './socket-probe.js';
import { Vpl011Error, errorMessage } from '../util/errors.js';
import { Supervisor } from './supervisor.js';
import { ClientSessions } from './client-sessions.js';
import { WebService } from './web-service.js';
import { listenControlSocket } from './control-server.js';
import { answer } from './requests/index.js';
import { listDomains } from './requests/list.js';
import type { DaemonContext } from './requests/context.js';
import { deviceStatByName } from './device-stat.js';

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

/** The daemon cannot start (its shared table cannot be opened, or another daemon answers on the socket). */
export class DaemonError extends Vpl011Error<'EBUSY' | 'EIO'> {
  constructor(message: string, code: 'EBUSY' | 'EIO' = 'EIO') {
    super(code, message);
  }
}
/** Another daemon holds the run dir's lock (a concurrent start lost the race: not a failure for its caller). */
export class DaemonRunning extends DaemonError {}

/** What a started daemon runs: built in one step by start(), undone by stop(). */
interface Running extends DaemonContext {
  readonly waker: FutexWaker;
  readonly backend: ConsoleBackend;
  readonly control: Server;
}

export class Daemon {
  readonly paths: RunPaths;
  readonly logDir: string;
  private readonly opts: DaemonOptions;
  private readonly say: (line: string) => void;
  private running: Running | undefined;
  private stopped = false;
  private releaseLock: (() => void) | undefined;

  constructor(opts: DaemonOptions) {
    this.opts = opts;
    this.paths = runPaths(opts.runDir);
    this.logDir = opts.logDir ?? defaultLogDir(opts.runDir);
    // The daemon's lines quote records, configs and guests' crash reasons: escaped, as everything bound for a terminal.
    this.say = opts.log ?? ((l) => process.stderr.write(`vpl011 daemon: ${printableLine(l)}\n`));
  }

  async start(): Promise<void> {
    const p = this.paths;
    const say = this.say;
    ensurePrivateDir(p.runDir);
    // One daemon per run dir, decided by the kernel (flock dies with its holder, even by kill -9): clients start a
    // daemon whenever none answers, so several may try at once.
    try {
      this.releaseLock = lockExclusive(join(p.runDir, 'daemon.lock'));
    } catch (e) {
      if (e instanceof LockHeld) throw new DaemonRunning(`a daemon is already running on ${p.runDir}`, 'EBUSY');
      throw e;
    }
    ensureSubdir(p.domainsDir);
    ensureSubdir(p.journalDir);
    ensureSubdir(p.secretsDir);
    ensureSubdir(this.logDir);
    if (await socketAnswers(p.controlSocket)) throw new DaemonError(`a daemon is already running on ${p.controlSocket}`, 'EBUSY');
    rmSync(p.controlSocket, { force: true });

    let evtchnMap: SharedMapping;
    try {
      evtchnMap = openEvtchnTable(p, EventChannels.byteLength(EVTCHN_GEOMETRY));
    } catch (e) {
      throw new DaemonError(errorMessage(e));
    }
    const waker = new FutexWaker(evtchnMap);
    const evtchn = EventChannels.createIn(evtchnMap.buffer, EVTCHN_GEOMETRY, waker);
    const backend = new ConsoleBackend(BACKEND_DOMID);
    void backend.start();

    const resumer = new Resumer();
    const served = new ServedConsoles();
    const sessions = new ClientSessions({ served, resumer, secretsDir: p.secretsDir, say });
    const supervisor = new Supervisor({
      paths: p,
      served,
      settings: {
        logDir: this.logDir,
        journalDir: p.journalDir,
        timestamps: this.opts.timestamps ?? 'none',
        policy: this.opts.policy ?? 'keep',
        ...(this.opts.limit !== undefined ? { limit: this.opts.limit } : {}),
        evtchn,
        backend,
        resumer,
        say,
      },
      onServed: (s) => {
        if (s.rec.tcp) sessions.serveTcp(s, s.rec.tcp);
      },
    });
    const web = new WebService(
      p.runDir,
      {
        domains: () => listDomains(p, served, false),
        attachStream: (d, st, ro, label) => sessions.attachStream(d, st, ro, label),
        deviceStat: (d) => deviceStatByName(p.runDir, d),
      },
      say,
    );
    const ctx: DaemonContext = { paths: p, evtchn, evtchnMap, served, supervisor, sessions, resumer, names: new NameClaims(), web, say };

    // Adopt every running domain before accepting clients (a restart picks up where the killed daemon stopped).
    supervisor.scan();

    let control: Server;
    try {
      control = await listenControlSocket(p.controlSocket, { answer: (req) => answer(req, ctx), attach: (...a) => sessions.attach(...a) }, say);
    } catch (e) {
      supervisor.releaseAll();
      await backend.stop();
      await waker.close();
      throw e;
    }
    this.running = { ...ctx, waker, backend, control };
    writeFileSync(p.daemonPid, `${process.pid}\n`, { mode: 0o600 });
    // A daemon started again after a crash (by any client) serves with the same options.
    saveDaemonOptions(p.runDir, {
      ...(this.opts.logDir ? { logDir: this.opts.logDir } : {}),
      ...(this.opts.timestamps ? { timestamp: this.opts.timestamps } : {}),
      ...(this.opts.policy ? { overflow: this.opts.policy } : {}),
    });
    supervisor.watch();
    say(`serving ${p.runDir} (pid ${process.pid}; logs in ${this.logDir})`);

    // The web console: asked for on the command line (an error there is the caller's), or remembered from an
    // earlier start (an error then is only reported: the consoles still work without it).
    const remembered = web.remembered();
    if (this.opts.web) {
      await web.start(this.opts.web);
    } else if (remembered) {
      await web.start(remembered).catch((e: Error) => say(e.message));
    }
  }

  /** SIGHUP: reopen every log (logrotate). */
  reopenLogs(): void {
    for (const s of this.running?.served.values() ?? []) {
      try {
        s.log.reopen();
      } catch (e) {
        this.say(`d${s.rec.domid}: cannot reopen ${s.log.path}: ${errorMessage(e)}`);
      }
    }
  }

  /** Stop serving (domains keep running; a new daemon adopts them). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const r = this.running;
    if (r) {
      r.supervisor.stop();
      r.control.close();
      r.web.close();
    }
    rmSync(this.paths.controlSocket, { force: true });
    rmSync(this.paths.daemonPid, { force: true });
    if (r) {
      r.supervisor.releaseAll();
      await r.backend.stop();
      await r.waker.close();
    }
    this.releaseLock?.();
  }
}
