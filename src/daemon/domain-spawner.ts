// Spawning a domain host (`vpl011 domain-host <spec>`, src/daemon/domain-host.ts) for `up`, and waiting, on events,
// until its console is served or it failed: the supervisor's scans (run on every change of the domains directory),
// the child's 'exit', and a deadline. Nothing polls.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { VPL011_BIN } from '../util/self.js';
import { XENCONSOLE_CONNECTED } from '../xen/ring.js';
import { readRecord } from './records.js';
import { retireHostStderr } from './host-stderr.js';
import type { DomainSpec } from './domain-host.js';
import type { ServedConsoles } from './served-console.js';
import type { Supervisor } from './supervisor.js';
import type { RunPaths } from './paths.js';

/** A domain host that has not had its console served by then did not start. */
export const HOST_START_TIMEOUT_MS = 30_000;

export interface SpawnContext {
  paths: RunPaths;
  served: ServedConsoles;
  supervisor: Supervisor;
  say: (line: string) => void;
}

/** Start the domain's host and wait until its console is served: undefined, or why it did not start (one line). */
export function startDomainHost(ctx: SpawnContext, spec: DomainSpec): Promise<string | undefined> {
  const { paths, supervisor } = ctx;
  const { domid, name } = spec;
  const specPath = join(paths.domainsDir, `${domid}.spec.json`);
  const errPath = join(paths.domainsDir, `${domid}.stderr`);
  writeFileSync(specPath, JSON.stringify(spec), { mode: 0o600 });
  const errFd = openSync(errPath, 'w', 0o600);
  const child = spawn(process.execPath, [VPL011_BIN, 'domain-host', specPath], { detached: true, stdio: ['ignore', 'ignore', errFd] });
  closeSync(errFd);
  child.unref();
  let exited = false;
  // Whenever it ends (now or in a week), look at once: its record says why, or it died without one.
  child.once('exit', () => {
    exited = true;
    supervisor.scheduleScan();
  });

  return new Promise((resolve) => {
    let settled = false;
    const settle = (why: string | undefined) => {
      if (settled) return;
      settled = true;
      stopListening();
      clearTimeout(timer);
      child.off('exit', onExit);
      resolve(why);
    };
    const check = (timedOut: boolean) => {
      if (settled) return;
      // The console constructor sets the ring's `connection`: served means connected.
      const s = ctx.served.get(domid);
      if (s && s.ring.connection === XENCONSOLE_CONNECTED) return settle(undefined);
      const rec = readRecord(paths.domainsDir, domid);
      if (rec && (rec.state === 'crashed' || rec.state === 'shutdown')) {
        retireHostStderr(paths.domainsDir, domid, true, ctx.say);
        return settle(`domain ${name} ended while starting: ${rec.message ?? rec.reason ?? rec.state}`);
      }
      if (!exited && !timedOut) return;
      const why = lastLine(errPath);
      if (!exited) return settle(`domain ${name} did not start${why ? `: ${why}` : ''} (see ${errPath})`);
      // The host is gone: its files go too (its output is kept in the daemon's log).
      retireHostStderr(paths.domainsDir, domid, true, ctx.say);
      rmSync(specPath, { force: true });
      settle(`domain ${name} did not start${why ? `: ${why}` : ''} (the daemon's log has the details)`);
    };
    const stopListening = supervisor.onScan(() => check(false));
    // The scan decides first (a record with the final state, a console served), then whether the host is gone.
    const onExit = () => {
      supervisor.scan();
      check(false);
    };
    child.once('exit', onExit);
    const timer = setTimeout(() => {
      supervisor.scan();
      check(true);
    }, HOST_START_TIMEOUT_MS);
  });
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
