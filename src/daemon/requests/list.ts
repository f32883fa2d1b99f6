// {"op":"list"}: every recorded domain with its console's counters (`vpl011 list`, the web page's list).
import { findSecrets, type ConsoleSecrets } from '../secrets.js';
import { listRecords, pidAlive } from '../records.js';
import type { DomainInfo, Request, Response } from '../protocol.js';
import type { RunPaths } from '../paths.js';
import type { ServedConsoles } from '../served-console.js';
import type { DaemonContext } from './context.js';

export function list(req: Extract<Request, { op: 'list' }>, ctx: DaemonContext): Response {
  return { ok: true, domains: listDomains(ctx.paths, ctx.served, req.secrets === true) };
}

export function listDomains(paths: RunPaths, served: ServedConsoles, withSecrets: boolean): DomainInfo[] {
  const out: DomainInfo[] = [];
  for (const rec of listRecords(paths.domainsDir)) {
    const s = served.get(rec.domid);
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
      lineEvents: s?.console.lineCounters.sent ?? 0,
      rxOverrun: s?.console.lineCounters.overrun ?? 0,
      throttled: c?.throttled ?? 0,
      startedAt: rec.startedAt,
      authFailures: s?.tcpGate?.failures ?? 0,
      ...(rec.tcp ? { tcp: `${rec.tcp.host.includes(':') ? `[${rec.tcp.host}]` : rec.tcp.host}:${rec.tcp.port}` } : {}),
      ...(withSecrets && rec.tcp ? secretFields(findSecrets(paths.secretsDir, rec.instance)) : {}),
      ...(rec.reason ? { reason: rec.message ? `${rec.reason}: ${rec.message}` : rec.reason } : {}),
    });
  }
  return out;
}

function secretFields(s: ConsoleSecrets | undefined): { secret?: string; readOnlySecret?: string } {
  return s ? { secret: s.readWrite, readOnlySecret: s.readOnly } : {};
}
