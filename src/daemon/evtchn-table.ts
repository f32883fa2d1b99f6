// The hypervisor-wide event-channel table's shm object, for the daemon. It must survive a daemon restart (bindings,
// pending bits and doorbells live in it, and running domain hosts have it mapped), so a restarted daemon adopts the
// existing object. Its name is random (not derivable from the run dir, so no other user can plant an object under it
// before the first start) and recorded in <run>/evtchn.shm (0600, in the private run dir: trusted). Adoption goes
// through openSharedMapping, which refuses an object that is not ours or that others can open; creating is always
// O_CREAT|O_EXCL under a fresh name.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { openSharedMapping, ShmError, validShmName, type SharedMapping } from '../host/shm.js';
import { unguessable, type RunPaths } from './paths.js';
import { Vpl011Error } from '../util/errors.js';

export class EvtchnTableError extends Vpl011Error<'EINVAL'> {
  constructor(message: string) {
    super('EINVAL', message);
  }
}

/** The recorded table name, or undefined when there is none (or it is not a valid name). */
export function recordedEvtchnName(paths: RunPaths): string | undefined {
  let name: string;
  try {
    name = readFileSync(paths.evtchnNameFile, 'utf8').trim();
  } catch {
    return undefined;
  }
  return validShmName(name) && name.startsWith(`${paths.shmPrefix}-evtchn-`) ? name : undefined;
}

function recordName(paths: RunPaths, name: string): void {
  const tmp = `${paths.evtchnNameFile}.${process.pid}.tmp`;
  writeFileSync(tmp, `${name}\n`, { mode: 0o600 });
  renameSync(tmp, paths.evtchnNameFile);
}

/** Adopt the recorded table (verified: ours, private, right size) or create a new one. */
export function openEvtchnTable(paths: RunPaths, size: number): SharedMapping {
  const old = recordedEvtchnName(paths);
  if (old) {
    try {
      return openSharedMapping(old, { size });
    } catch (e) {
      if (!(e instanceof ShmError) || e.code !== 'ENOENT') {
        throw new EvtchnTableError(
          `event-channel table: ${e instanceof Error ? e.message : String(e)}. If no domain is running, remove ${paths.evtchnNameFile} to start with a new table`,
        );
      }
      // Gone (a reboot): start a new table. Domains of the old one cannot be running.
    }
  }
  // Record the name first: a crash between the two steps leaves a name with no object (ENOENT above), never an
  // object no one knows about.
  const name = `${paths.shmPrefix}-evtchn-${unguessable()}`;
  recordName(paths, name);
  return openSharedMapping(name, { create: true, size });
}
