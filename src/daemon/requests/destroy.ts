// {"op":"destroy"}: end a domain as `xl destroy` does: SIGTERM to its host (which stops the vCPU and tears the
// domain down), SIGKILL if it is still there after DESTROY_GRACE_MS; answered once the daemon has drained and
// closed its console (its record is gone), waiting on the supervisor's scans, not polling.
import { listRecords, readRecord, type DomainRecord } from '../records.js';
import type { Request, ResponseFor } from '../protocol.js';
import type { DaemonContext } from './context.js';

/** How long a domain host has to unwind after SIGTERM before it gets SIGKILL. */
const DESTROY_GRACE_MS = 10_000;
/** After SIGKILL: a host still recorded this much later is reported (the answer must not wait for ever). */
const AFTER_KILL_MS = 20_000;

export async function destroy(req: Extract<Request, { op: 'destroy' }>, ctx: DaemonContext): Promise<ResponseFor<'destroy'>> {
  const ref = req.domain;
  let rec: DomainRecord | undefined;
  for (const r of listRecords(ctx.paths.domainsDir)) if (String(r.domid) === ref || r.name === ref) rec = r;
  if (!rec) return { ok: false, error: `domain: no domain ${ref}` };
  const target = rec;
  signal(target.pid, 'SIGTERM');
  const gone = () => readRecord(ctx.paths.domainsDir, target.domid)?.instance !== target.instance;
  const ok: ResponseFor<'destroy'> = { ok: true, domid: target.domid, name: target.name };
  return new Promise<ResponseFor<'destroy'>>((resolve) => {
    const timers: NodeJS.Timeout[] = [];
    const settle = (r: ResponseFor<'destroy'>) => {
      stopListening();
      for (const t of timers) clearTimeout(t);
      resolve(r);
    };
    const stopListening = ctx.supervisor.onScan(() => {
      if (gone()) settle(ok);
    });
    timers.push(
      setTimeout(() => {
        signal(target.pid, 'SIGKILL');
        ctx.supervisor.scheduleScan();
      }, DESTROY_GRACE_MS),
      setTimeout(() => {
        if (gone()) settle(ok);
        else settle({ ok: false, error: `domain ${target.name} (pid ${target.pid}) did not go away after SIGKILL` });
      }, DESTROY_GRACE_MS + AFTER_KILL_MS),
    );
    // Already gone (or the host had died before): the next scan settles it; run it now.
    ctx.supervisor.scan();
    if (gone()) settle(ok);
  });
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone: the supervisor's scan cleans up
  }
}
