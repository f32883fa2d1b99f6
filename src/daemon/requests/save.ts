// {"op":"save"}: save a running domain to a file, as `xl save` (docs/SAVE.md). Without keepRunning the daemon first
// stops serving its console (so the ring's backend indices are final and the file carries exactly the output it did
// not take and the input it gave), orders the host to save (./../host-save.ts), and answers once the domain has
// gone (its console closed without draining: that output belongs to the file). A failed save serves it again.
import { readRecord, listRecords, type DomainRecord } from '../records.js';
import { placeSaveOrder, takeSaveResult } from '../host-save.js';
import type { Request, Response } from '../protocol.js';
import type { DaemonContext } from './context.js';
import { invalid, valid, type Checked } from '../../util/errors.js';

/** Writing a large guest's RAM compressed takes a while; a guest with no safe point is refused well before. */
export const SAVE_ANSWER_MS = 120_000;

export async function save(req: Extract<Request, { op: 'save' }>, ctx: DaemonContext): Promise<Response> {
  const r = await saveDomain(ctx, req.domain, req.file, req.keepRunning === true);
  return r.ok ? { ok: true, domid: r.value.domid, name: r.value.name } : { ok: false, error: r.error };
}

/** Save (and unless keepRunning, end) a domain: its record, or why not (one line). Shared with migrate. */
export async function saveDomain(ctx: DaemonContext, ref: string, file: string, keepRunning: boolean): Promise<Checked<DomainRecord>> {
  let rec: DomainRecord | undefined;
  for (const r of listRecords(ctx.paths.domainsDir)) if (String(r.domid) === ref || r.name === ref) rec = r;
  if (!rec) return invalid(`domain: no domain ${ref}`);
  const target = rec;
  const served = ctx.served.get(target.domid);
  if (target.state !== 'running' || !served || served.rec.instance !== target.instance) return invalid(`domain ${target.name} is not running (${target.state})`);
  if (!keepRunning) served.holdForSave();
  const nonce = placeSaveOrder(ctx.paths.domainsDir, target.domid, file, keepRunning);
  try {
    process.kill(target.pid, 'SIGUSR2');
  } catch {
    if (!keepRunning) served.releaseAfterSave();
    return invalid(`domain ${target.name}: its host (pid ${target.pid}) is gone`);
  }
  const gone = () => readRecord(ctx.paths.domainsDir, target.domid)?.instance !== target.instance;
  return new Promise<Checked<DomainRecord>>((resolve) => {
    let result: { ok: boolean; error?: string } | undefined;
    const settle = (v: Checked<DomainRecord>) => {
      stopListening();
      clearTimeout(timer);
      resolve(v);
    };
    const check = () => {
      result ??= takeSaveResult(ctx.paths.domainsDir, target.domid, nonce);
      if (!result) {
        if (gone()) settle(invalid(`domain ${target.name} ended before it was saved`));
        return;
      }
      if (!result.ok) {
        if (!keepRunning && ctx.served.get(target.domid) === served) served.releaseAfterSave();
        return settle(invalid(`save: ${result.error ?? 'failed'}`));
      }
      // Saved; without keepRunning, answered once the domain is gone (its record removed by the supervisor).
      if (keepRunning || gone()) settle(valid(target));
    };
    const stopListening = ctx.supervisor.onScan(check);
    const timer = setTimeout(() => settle(invalid(`save: no answer from domain ${target.name} within ${SAVE_ANSWER_MS / 1000} s`)), SAVE_ANSWER_MS);
    ctx.supervisor.scan();
    check();
  });
}
