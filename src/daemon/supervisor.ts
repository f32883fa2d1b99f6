// Supervision of domains: the daemon discovers domains from their records in <run>/domains (the role xenstore
// watches play in Xen), serves each running one's console (./served-console.ts), and when a domain ends (its record
// says so, its host died, or its record went) drains and closes its console and cleans up after a host that could
// not. Scans run on every change of the directory (fs.watch), on a domain host's exit, and every SCAN_INTERVAL_MS
// (a host killed with -9 changes no file); whoever waits for a domain's state listens to the scans (onScan).
import { rmSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { unlinkShared } from '../host/shm.js';
import { printable } from '../util/quote.js';
import { removeSecrets } from './secrets.js';
import { SAVED_REASON, listRecords, pidAlive, readRecord, removeRecord, type DomainRecord } from './records.js';
import { retireHostStderr } from './host-stderr.js';
import { BACKEND_DOMID } from '../xen/domain.js';
import { ServedConsole, type ServeSettings, type ServedConsoles } from './served-console.js';
import type { RunPaths } from './paths.js';
import { insightShmName } from './device-stat.js';
import { errorMessage } from '../util/errors.js';

/** The periodic scan: the backstop for what no file change reveals (a host killed with -9). */
export const SCAN_INTERVAL_MS = 500;

export interface SupervisorOptions {
  paths: RunPaths;
  served: ServedConsoles;
  settings: ServeSettings;
  /** A console is now served (the daemon opens its TCP endpoint). */
  onServed: (s: ServedConsole) => void;
}

export class Supervisor {
  /** domids handed out by `up` whose host has not written a record yet. */
  private readonly reserved = new Set<number>();
  private readonly badRecords = new Set<string>();
  /** Domain instances the daemon cannot serve, with the reason last reported. */
  private readonly unservable = new Map<string, string>();
  private readonly scanListeners = new Set<() => void>();
  private readonly paths: RunPaths;
  private readonly served: ServedConsoles;
  private readonly set: ServeSettings;
  private readonly say: (line: string) => void;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private scanQueued = false;
  private stopped = false;

  constructor(private readonly opts: SupervisorOptions) {
    this.paths = opts.paths;
    this.served = opts.served;
    this.set = opts.settings;
    this.say = opts.settings.say;
  }

  /** Watch the domains directory and scan periodically (the first scan is the caller's: scan()). */
  watch(): void {
    try {
      this.watcher = watch(this.paths.domainsDir, () => this.scheduleScan());
      this.watcher.on('error', () => {}); // the periodic scan still runs
    } catch {
      // fs.watch unavailable: the periodic scan still finds everything.
    }
    this.timer = setInterval(() => this.scan(), SCAN_INTERVAL_MS);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.watcher?.close();
    this.scanListeners.clear();
  }

  /** Call `listener` after every scan until the returned function is called. */
  onScan(listener: () => void): () => void {
    this.scanListeners.add(listener);
    return () => this.scanListeners.delete(listener);
  }

  /** A domid `up` handed out: no other `up` takes it, and its host's files are `up`'s to retire until released. */
  reserve(domid: number): void {
    this.reserved.add(domid);
  }
  release(domid: number): void {
    this.reserved.delete(domid);
  }
  isReserved(domid: number): boolean {
    return this.reserved.has(domid);
  }

  /** Coalesce a burst of directory events into one scan. */
  scheduleScan(): void {
    if (this.scanQueued || this.stopped) return;
    this.scanQueued = true;
    setTimeout(() => {
      this.scanQueued = false;
      this.scan();
    }, 10);
  }

  scan(): void {
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
        s = this.serve(rec, alive);
        if (!s) continue;
      } else {
        s.rec = rec;
      }
      if (s.console.holdInput && !rec.inputHeld) s.console.releaseInput();
      if (rec.state === 'shutdown' || rec.state === 'crashed') {
        this.finish(s, rec.state === 'crashed' ? `crashed: ${rec.message ?? rec.reason ?? 'no reason'}` : rec.reason === SAVED_REASON ? (rec.message ?? 'saved') : `shut down (${rec.reason ?? 'poweroff'})`);
      } else if (!alive) {
        this.finish(s, `domain host (pid ${rec.pid}) died`);
      }
    }
    for (const instance of this.unservable.keys()) if (!records.some((r) => r.instance === instance)) this.unservable.delete(instance);
    for (const [domid, s] of this.served.entries()) {
      // Only trust an absence that a direct read confirms (a listing can race with the host's atomic rename).
      if (!seen.has(domid) && readRecord(this.paths.domainsDir, domid)?.instance !== s.rec.instance) this.finish(s, 'record removed');
    }
    for (const listener of [...this.scanListeners]) listener();
  }

  /** Start serving a recorded domain's console, or say (once per instance and reason) why it cannot be. */
  private serve(rec: DomainRecord, alive: boolean): ServedConsole | undefined {
    let s: ServedConsole;
    try {
      s = new ServedConsole(rec, this.set);
    } catch (e) {
      // Said once per instance and reason: the scan retries every SCAN_INTERVAL_MS.
      const why = errorMessage(e);
      if (this.unservable.get(rec.instance) !== why) this.say(`d${rec.domid} (${rec.name}): cannot serve its console: ${why}`);
      this.unservable.set(rec.instance, why);
      if (!alive) this.cleanupDead(rec);
      return undefined;
    }
    this.served.add(s);
    this.opts.onServed(s);
    this.say(`d${rec.domid} (${rec.name}): console connected (port ${s.localPort > 0 ? s.localPort : 'none'})`);
    return s;
  }

  /** Drain what is left, note it in the log, release everything; removing the record lets the host exit. */
  finish(s: ServedConsole, why: string): void {
    if (!this.served.remove(s)) return;
    this.say(`d${s.rec.domid} (${s.rec.name}): ${why}; draining and closing its console`);
    const rec = readRecord(this.paths.domainsDir, s.rec.domid) ?? s.rec;
    try {
      // A domain saved away: what is left in OUT is in the saved file, for its restored instance (docs/SAVE.md).
      if (rec.reason !== SAVED_REASON) s.console.flush();
    } catch (e) {
      this.say(`d${rec.domid}: final drain failed: ${errorMessage(e)}`);
    }
    s.stopServing();
    this.set.resumer.retire(s, why); // before the note: a resuming client gets the output up to here, then the end
    for (const c of s.clients) c.socket.end(c.framed ? this.set.resumer.endFrameFor(rec.instance, rec.name, rec.domid, why) : `\r\n[vpl011: domain ${printable(`${rec.name} ${why}`, 300)}]\r\n`);
    s.tcp?.close();
    s.tcpGate?.close();
    removeSecrets(this.paths.secretsDir, rec.instance);
    try {
      // Not for a domain saved away: its restored instance goes on in the same log, which stays the guest's output.
      if (rec.reason !== SAVED_REASON) s.log.note(`domain ${rec.name} (d${rec.domid}) ${why}`);
    } catch {
      // the log is best effort here
    }
    s.log.close(true);
    if (s.localPort > 0) this.set.evtchn.close(BACKEND_DOMID, s.localPort);
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
      if (rec.vuartPort > 0) this.set.evtchn.close(rec.domid, rec.vuartPort);
    } catch {
      // a bad port in a record: nothing to free
    }
    unlinkShared(rec.magicShm);
    unlinkShared(insightShmName(rec.magicShm));
    removeSecrets(this.paths.secretsDir, rec.instance);
    removeRecord(this.paths.domainsDir, rec.domid);
    rmSync(join(this.paths.domainsDir, `${rec.domid}.spec.json`), { force: true });
    // A domain `up` is still starting: up reads the file for its answer and retires it.
    if (!this.reserved.has(rec.domid)) retireHostStderr(this.paths.domainsDir, rec.domid, true, (l) => this.say(l));
  }

  /** Stop serving every console (the daemon stops; the domains keep running and a new daemon adopts them). */
  releaseAll(): void {
    for (const s of this.served.values()) {
      s.finished = true; // its journal page is about to be unmapped: pending acknowledgements must not read it
      for (const c of s.clients) c.socket.destroy();
      s.tcp?.close();
      s.tcpGate?.close();
      s.stopServing();
      s.log.close();
    }
    this.served.clear();
  }
}
