// Where the daemon and its domains keep their state (docs/DAEMON.md "Runtime directory"): one private directory per
// user, and the names of the POSIX shm objects, which carry the uid so two users' daemons never meet, and a random
// part so that no one can plant an object under a name we are about to use.
import { randomBytes } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Vpl011Error, errorMessage } from '../util/errors.js';

export class RunDirError extends Vpl011Error<'EACCES'> {
  constructor(message: string) {
    super('EACCES', message);
  }
}

export function currentUid(): number {
  // Every host vpl011 runs on is POSIX (Linux), where Node always has process.getuid.
  if (typeof process.getuid !== 'function') throw new RunDirError('vpl011 needs a POSIX host (no process.getuid here)');
  return process.getuid();
}

/** $VPL011_RUN_DIR, else $XDG_RUNTIME_DIR/vpl011, else /run/vpl011 (root) or /tmp/vpl011-<uid>. */
export function defaultRunDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.VPL011_RUN_DIR) return env.VPL011_RUN_DIR;
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, 'vpl011');
  const uid = currentUid();
  return uid === 0 ? '/run/vpl011' : `/tmp/vpl011-${uid}`;
}

/** Default log directory: /var/log/vpl011 for root (xenconsoled's XEN_LOG_DIR/console), else <run>/log. */
export function defaultLogDir(runDir: string): string {
  return currentUid() === 0 && runDir === '/run/vpl011' ? '/var/log/vpl011' : join(runDir, 'log');
}

/**
 * Create the directory 0700 if missing; refuse one that is not a directory, not ours, or group/world accessible
 * (another user could otherwise plant sockets or records for our daemon to trust).
 */
export function ensurePrivateDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new RunDirError(`cannot create ${dir}: ${errorMessage(e)}`);
  }
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new RunDirError(`${dir} is not a directory`);
  if (st.uid !== currentUid()) throw new RunDirError(`${dir} belongs to uid ${st.uid}, not to us (${currentUid()})`);
  if ((st.mode & 0o077) !== 0) {
    throw new RunDirError(`${dir} is accessible to other users (mode ${(st.mode & 0o777).toString(8)}); refusing to use it`);
  }
}

/** Create a subdirectory of the run dir, 0700. */
export function ensureSubdir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

export interface RunPaths {
  runDir: string;
  controlSocket: string;
  domainsDir: string;
  journalDir: string;
  /** Console secrets of TCP consoles, one 0600 file per domain instance (./secrets.ts). */
  secretsDir: string;
  daemonLog: string;
  daemonPid: string;
  /**
   * Start of every shm object name of this run dir ("/vpl011-<uid>-<dirhash>"); each name adds a random part, so no
   * other user can predict (and plant) one.
   */
  shmPrefix: string;
  /** Holds the name of the event-channel table's shm object (./evtchn-table.ts), so a restart finds it. */
  evtchnNameFile: string;
}

/** A short stable tag for the run dir, so two daemons of one user (tests) use different shm objects. */
function dirTag(runDir: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < runDir.length; i++) h = Math.imul(h ^ runDir.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}

export function runPaths(runDir: string): RunPaths {
  const tag = `vpl011-${currentUid()}-${dirTag(runDir)}`;
  return {
    runDir,
    controlSocket: join(runDir, 'control.sock'),
    domainsDir: join(runDir, 'domains'),
    journalDir: join(runDir, 'journal'),
    secretsDir: join(runDir, 'secrets'),
    daemonLog: join(runDir, 'daemon.log'),
    daemonPid: join(runDir, 'daemon.pid'),
    shmPrefix: `/${tag}`,
    evtchnNameFile: join(runDir, 'evtchn.shm'),
  };
}

/** 128 random bits in hex: the part of an shm name no other user can guess. */
export function unguessable(): string {
  return randomBytes(16).toString('hex');
}

/** A new name for the shm object holding one domain instance's 4 magic pages (created O_EXCL by its host). */
export function magicShmName(paths: RunPaths, domid: number, instance: string): string {
  return `${paths.shmPrefix}-d${domid}-${instance}-${unguessable()}`;
}

/** Event-channel table geometry for the daemon (backend domain 0 needs one port per console). */
export const EVTCHN_GEOMETRY = { maxDomains: 64, portsPerDomain: 256 } as const;
