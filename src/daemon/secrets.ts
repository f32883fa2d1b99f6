// Per-domain console secrets. Loopback is not a boundary on a shared host: any local user can
// connect to a domain's TCP console, so the daemon only serves a TCP connection whose first line is one of the
// domain's secrets. Two per domain instance: read-write (types into the guest) and read-only (a watcher). 256 random
// bits each, created by the daemon, kept in <run>/secrets/<instance>.json (0600, in the private run dir, so only
// the owner reads them: `vpl011 list --secrets`), and kept across daemon restarts (the instance's file is reused).
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { currentUid } from './paths.js';
import { Vpl011Error, errnoOf, errorMessage } from '../util/errors.js';

export interface ConsoleSecrets {
  readWrite: string;
  readOnly: string;
}

export type Access = 'read-write' | 'read-only';

const SECRET_RE = /^[0-9a-f]{64}$/;

export class SecretsError extends Vpl011Error<'EINVAL' | 'EACCES' | 'EIO'> {
  /** For readPrivateFile: could not open it, or it is not private to us, or it is too large. */
  constructor(message: string, readonly reason?: 'open' | 'not-private' | 'too-large') {
    super(reason === 'open' ? 'EIO' : reason === 'not-private' ? 'EACCES' : 'EINVAL', message);
  }
}

export function newSecret(): string {
  return randomBytes(32).toString('hex');
}

function secretsPath(dir: string, instance: string): string {
  return join(dir, `${instance}.json`);
}

/**
 * The bytes of a small private file of ours (a secrets or token file in the run dir): opened without following a
 * link, checked on the descriptor (a regular file, our uid, no group/other bits, at most `max` bytes). Undefined if
 * there is none; a SecretsError naming the file for anything else.
 */
export function readPrivateFile(path: string, max = 4096): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (e) {
    if (errnoOf(e) === 'ENOENT') return undefined;
    throw new SecretsError(`${path}: ${errorMessage(e)}`, 'open');
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.uid !== currentUid() || (st.mode & 0o077) !== 0) {
      throw new SecretsError(`${path}: not a private file of ours (mode ${(st.mode & 0o777).toString(8)}, uid ${st.uid}); refusing to use it`, 'not-private');
    }
    if (st.size > max) throw new SecretsError(`${path}: too large`, 'too-large');
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Read a secrets file: ours, 0600 (no group/other bits), well-formed; undefined if there is none. */
function readSecrets(path: string): ConsoleSecrets | undefined {
  const bytes = readPrivateFile(path);
  if (bytes === undefined) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new SecretsError(`${path}: not valid JSON`);
  }
  const r = v as Record<string, unknown>;
  if (typeof v !== 'object' || v === null || typeof r.readWrite !== 'string' || typeof r.readOnly !== 'string' || !SECRET_RE.test(r.readWrite) || !SECRET_RE.test(r.readOnly) || r.readWrite === r.readOnly) {
    throw new SecretsError(`${path}: malformed`);
  }
  return { readWrite: r.readWrite, readOnly: r.readOnly };
}

/** The instance's secrets, created (atomically, 0600) if it has none yet. */
export function loadOrCreateSecrets(dir: string, instance: string): ConsoleSecrets {
  const path = secretsPath(dir, instance);
  const old = readSecrets(path);
  if (old) return old;
  const s: ConsoleSecrets = { readWrite: newSecret(), readOnly: newSecret() };
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(s) + '\n', { mode: 0o600, flag: 'wx' });
  renameSync(tmp, path);
  return s;
}

/** The instance's secrets if the daemon made some (for `list --secrets`). */
export function findSecrets(dir: string, instance: string): ConsoleSecrets | undefined {
  try {
    return readSecrets(secretsPath(dir, instance));
  } catch {
    return undefined;
  }
}

export function removeSecrets(dir: string, instance: string): void {
  rmSync(secretsPath(dir, instance), { force: true });
}

const digest = (b: Buffer | string) => createHash('sha256').update(b).digest();

/**
 * Checks a candidate line against both secrets in constant time: equal-length SHA-256 digests compared with
 * timingSafeEqual, both always compared, so neither the length nor the content of a guess shows in the timing.
 */
export class SecretMatcher {
  private readonly rw: Buffer;
  private readonly ro: Buffer;

  constructor(secrets: ConsoleSecrets) {
    this.rw = digest(secrets.readWrite);
    this.ro = digest(secrets.readOnly);
  }

  match(candidate: Buffer): Access | undefined {
    const d = digest(candidate);
    const rw = timingSafeEqual(d, this.rw);
    const ro = timingSafeEqual(d, this.ro);
    return rw ? 'read-write' : ro ? 'read-only' : undefined;
  }
}
