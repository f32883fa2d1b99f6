// {"op":"up"}: start a domain. The config is loaded and its images fetched (no config: `vpl011 run`'s default
// guest), its name claimed, a domid reserved and its TCP endpoint listened on before anything is spawned (so each of
// those failures is the request's answer), then its domain host is spawned (../domain-spawner.ts) and the answer
// waits until the daemon serves its console.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, defaultGuestConfig, loadConfig, type GuestConfig } from '../../toolstack/config.js';
import { ensureGuestImages, ensureUnicorn } from '../../toolstack/fetch.js';
import { magicShmName } from '../paths.js';
import { listRecords } from '../records.js';
import { startDomainHost } from '../domain-spawner.js';
import type { DomainSpec } from '../domain-host.js';
import type { Request, ResponseFor } from '../protocol.js';
import type { DaemonContext } from './context.js';
import { errorMessage } from '../../util/errors.js';

type UpRequest = Extract<Request, { op: 'up' }>;

/** `up`, with its domain name claimed from the check until the domain has a record or failed (item 3 of issue 8). */
export async function up(req: UpRequest, ctx: DaemonContext): Promise<ResponseFor<'up'>> {
  return withNameClaims(ctx, req.name, (claim) => upClaimed(req, ctx, claim));
}

/** Run `work` with a name-claiming function; a requested name is claimed first. Every claim is released after. */
export async function withNameClaims(ctx: DaemonContext, requested: string | undefined, work: (claim: (name: string) => string | undefined) => Promise<ResponseFor<'up'>>): Promise<ResponseFor<'up'>> {
  const releases: (() => void)[] = [];
  const claim = (name: string): string | undefined => {
    const r = ctx.names.claim(name, (n) => nameTaken(ctx, n));
    if (!r.ok) return r.error;
    releases.push(r.value);
    return undefined;
  };
  try {
    // A requested name is claimed before any async work, so a loser fails at once.
    const early = requested !== undefined ? claim(requested) : undefined;
    if (early) return { ok: false, error: early };
    return await work(claim);
  } finally {
    for (const release of releases) release();
  }
}

/** Whether a domain (recorded or served) has this name now. */
function nameTaken(ctx: DaemonContext, name: string): boolean {
  return listRecords(ctx.paths.domainsDir).some((r) => r.name === name) || [...ctx.served.values()].some((s) => s.rec.name === name);
}

/** Fetch progress is worth a line in the daemon's output; "already present" is not. */
function fetchLog(ctx: DaemonContext, m: string): void {
  if (!/nothing to fetch|library present/.test(m)) ctx.say(m.replace(/^vpl011: /, ''));
}

async function upClaimed(req: UpRequest, ctx: DaemonContext, claim: (name: string) => string | undefined): Promise<ResponseFor<'up'>> {
  let config: GuestConfig;
  try {
    // No config: `vpl011 run`'s default guest (Debian's kernel + our initramfs), fetched into the cache if missing.
    config = req.config ? loadConfig(req.config) : defaultGuestConfig(await ensureGuestImages({ log: (m) => fetchLog(ctx, m) }));
    await ensureUnicorn({ log: (m) => fetchLog(ctx, m) });
  } catch (e) {
    if (e instanceof ConfigError) return { ok: false, error: e.message };
    return { ok: false, error: `config: ${errorMessage(e)}` };
  }
  return launch(ctx, claim, { requestedName: req.name, config, ...(req.tcp ? { tcp: req.tcp } : {}) });
}

export interface LaunchOptions {
  requestedName: string | undefined;
  config: GuestConfig;
  /** When the requested name is not given: this one (default: the config's). */
  defaultName?: string;
  tcp?: { host: string; port: number };
  /** A saved domain file to start from (`restore`, docs/SAVE.md). */
  restore?: string;
}

/** Name, domid, TCP endpoint, then the domain host; answered once its console is served. Shared by up and restore. */
export async function launch(ctx: DaemonContext, claim: (name: string) => string | undefined, o: LaunchOptions): Promise<ResponseFor<'up'>> {
  const { paths, supervisor } = ctx;
  const { config } = o;
  const req = { name: o.requestedName, tcp: o.tcp };
  const name = req.name ?? o.defaultName ?? config.name;
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) return { ok: false, error: `name: ${JSON.stringify(name)} is not a valid domain name` };
  if (req.name === undefined) {
    const lost = claim(name);
    if (lost) return { ok: false, error: lost };
  }
  const records = listRecords(paths.domainsDir);
  let domid = 0;
  for (let d = 1; d < ctx.evtchn.maxDomains; d++) {
    if (supervisor.isReserved(d) || ctx.served.has(d) || records.some((r) => r.domid === d)) continue;
    if (existsSync(join(paths.domainsDir, `${d}.json`))) continue;
    // A host that has ended but not yet removed its files: its clean-up would remove the new host's spec and stderr
    // (they are named by domid). It removes its spec last (domain-host.ts).
    if (existsSync(join(paths.domainsDir, `${d}.spec.json`))) continue;
    domid = d;
    break;
  }
  if (domid === 0) return { ok: false, error: 'no free domain id' };
  const instance = randomBytes(8).toString('hex');
  const spec: DomainSpec = {
    domid,
    name,
    instance,
    runDir: paths.runDir,
    evtchnShm: ctx.evtchnMap.name,
    evtchnSize: ctx.evtchnMap.size,
    magicShm: magicShmName(paths, domid, instance),
    config,
    ...(req.tcp ? { tcp: req.tcp } : {}),
    ...(o.restore !== undefined ? { restore: o.restore } : {}),
  };
  // Reserved before anything is awaited: a concurrent `up` must not pick the same domid.
  supervisor.reserve(domid);
  try {
    if (req.tcp) {
      const refused = await ctx.sessions.holdTcp(domid, req.tcp);
      if (refused) return { ok: false, error: refused };
    }
    const failed = await startDomainHost(ctx, spec);
    return failed ? { ok: false, error: failed } : { ok: true, domid, name };
  } finally {
    supervisor.release(domid);
    // Not taken over by the console's TCP endpoint: the domain did not come up.
    ctx.sessions.releaseTcp(domid);
  }
}
