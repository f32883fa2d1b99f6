// {"op":"migrate"}: move a running domain into a new domain host on this machine, as the smallest real `xl migrate`
// (docs/SAVE.md): save it to a private file in the run directory, restore that file under the same name, remove the
// file. The saved file is exactly what a cross-host move would send. Attached `vpl011 console` clients follow the
// domain to its new instance (the resumer maps the old instance to the new one; ../resume.ts).
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Request, Response } from '../protocol.js';
import type { DaemonContext } from './context.js';
import { saveDomain } from './save.js';
import { restoreDomain } from './restore.js';

export async function migrate(req: Extract<Request, { op: 'migrate' }>, ctx: DaemonContext): Promise<Response> {
  const file = join(ctx.paths.runDir, `migrate-${randomBytes(6).toString('hex')}.save`);
  let keep = false;
  try {
    const from = ctx.served.find(req.domain);
    if (from) ctx.resumer.moving(from.rec.instance);
    const saved = await saveDomain(ctx, req.domain, file, false);
    if (!saved.ok) {
      if (from) ctx.resumer.moved(from.rec.instance, undefined);
      return { ok: false, error: saved.error };
    }
    const rec = saved.value;
    const r = await restoreDomain(ctx, file, rec.name, rec.tcp);
    const to = r.ok ? ctx.served.find(rec.name) : undefined;
    ctx.resumer.moved(rec.instance, to?.rec.instance);
    if (!r.ok) {
      keep = true; // the domain lives only in the file now: never delete it
      return { ok: false, error: `migrate: saved to ${file}, but the restore failed: ${r.error}; restore it with: vpl011 restore ${file}` };
    }
    return r;
  } finally {
    if (!keep) rmSync(file, { force: true });
  }
}
