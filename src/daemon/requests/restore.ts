// {"op":"restore"}: start a domain from a saved file, as `xl restore` (docs/SAVE.md). The file is read and checked
// whole here (a corrupt, truncated, foreign or newer file is the request's answer, before any name, domid or host),
// then the domain starts as `up` does, its host building the machine from the file.
import { SavedFileError, readSavedFile } from '../../vmm/saved-file.js';
import { ensureUnicorn } from '../../toolstack/fetch.js';
import type { Request, Response } from '../protocol.js';
import type { DaemonContext } from './context.js';
import { launch, withNameClaims } from './up.js';
import { errorMessage } from '../../util/errors.js';

export async function restore(req: Extract<Request, { op: 'restore' }>, ctx: DaemonContext): Promise<Response> {
  return restoreDomain(ctx, req.file, req.name, req.tcp);
}

export async function restoreDomain(ctx: DaemonContext, file: string, name: string | undefined, tcp?: { host: string; port: number }): Promise<Response> {
  let loaded;
  try {
    loaded = readSavedFile(file);
    await ensureUnicorn({ log: () => {} });
  } catch (e) {
    if (e instanceof SavedFileError) return { ok: false, error: e.message };
    return { ok: false, error: `restore: ${errorMessage(e)}` };
  }
  const { config, saved } = loaded;
  return withNameClaims(ctx, name, (claim) =>
    launch(ctx, claim, { requestedName: name, config, defaultName: saved.header.name || config.name, restore: file, ...(tcp ? { tcp } : {}) }),
  );
}
