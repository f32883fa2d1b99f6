// Per-domain records (<run>/domains/<domid>.json): written atomically (temp file + rename) by the domain host,
// read by the daemon and `vpl011 list`. A record is input from another process: every field is validated and a
// bad record is skipped with a reason, never trusted.
import { readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DOMAIN_NAME_RE } from '../toolstack/domain-name.js';
import { errnoOf, errorMessage, invalid, valid, type Checked } from '../util/errors.js';

export type DomainState = 'starting' | 'running' | 'shutdown' | 'crashed';

export interface DomainRecord {
  domid: number;
  name: string;
  /** Random per boot: keys the journal and shm names so a reused domid never meets an old instance's state. */
  instance: string;
  pid: number;
  state: DomainState;
  magicShm: string;
  /** The guest-side event-channel port of the vuart (what XEN_DOMCTL_vuart_op returns). */
  vuartPort: number;
  /** e.g. "linux /path/Image" or "bare /path/stream.bin". */
  summary: string;
  /** Loopback TCP endpoint the daemon should expose this console on, if any. */
  tcp?: { host: string; port: number };
  /**
   * True while user input must wait: a Linux guest whose driver has not yet unmasked a receive interrupt (it drains
   * and discards up to 64 waiting bytes when it opens the port). The domain host clears it when the guest listens.
   */
  inputHeld?: boolean;
  /** The config's rx_overrun = "strict": the console loses input that finds IN full (counted, OE). Absent: backpressure. */
  rxOverrun?: 'strict';
  /** Why it stopped, once state is shutdown/crashed. */
  reason?: string;
  message?: string;
  startedAt: string;
}

/** A record's `reason` when its domain was saved away (docs/SAVE.md): its ring is not drained, it is in the file. */
export const SAVED_REASON = 'saved';

const STATES: readonly DomainState[] = ['starting', 'running', 'shutdown', 'crashed'];
export const NAME_RE = DOMAIN_NAME_RE;
export const INSTANCE_RE = /^[0-9a-f]{8,32}$/;

function isInt(v: unknown, lo: number, hi: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;
}

/** Validate a parsed record: the record, or why it is not one. */
export function validateRecord(v: unknown): Checked<DomainRecord> {
  const problem = recordProblem(v);
  return problem === undefined ? valid(v as DomainRecord) : invalid(problem);
}

/** What is wrong with a parsed record, or undefined. */
function recordProblem(v: unknown): string | undefined {
  if (typeof v !== 'object' || v === null) return 'not an object';
  const r = v as Record<string, unknown>;
  if (!isInt(r.domid, 1, 1023)) return 'domid: not an integer 1..1023';
  if (typeof r.name !== 'string' || !NAME_RE.test(r.name)) return 'name: invalid';
  if (typeof r.instance !== 'string' || !INSTANCE_RE.test(r.instance)) return 'instance: invalid';
  if (!isInt(r.pid, 1, 0x7fffffff)) return 'pid: invalid';
  if (typeof r.state !== 'string' || !STATES.includes(r.state as DomainState)) return 'state: invalid';
  if (typeof r.magicShm !== 'string' || !/^\/[A-Za-z0-9._-]{1,200}$/.test(r.magicShm)) return 'magicShm: invalid';
  if (!isInt(r.vuartPort, 0, 4095)) return 'vuartPort: invalid';
  if (typeof r.summary !== 'string' || r.summary.length > 1024) return 'summary: invalid';
  if (typeof r.startedAt !== 'string' || r.startedAt.length > 64) return 'startedAt: invalid';
  if (r.tcp !== undefined) {
    const t = r.tcp as Record<string, unknown>;
    if (typeof t !== 'object' || t === null || typeof t.host !== 'string' || !isInt(t.port, 0, 65535)) return 'tcp: invalid';
  }
  if (r.inputHeld !== undefined && typeof r.inputHeld !== 'boolean') return 'inputHeld: invalid';
  if (r.rxOverrun !== undefined && r.rxOverrun !== 'strict') return 'rxOverrun: invalid';
  for (const k of ['reason', 'message'] as const) {
    if (r[k] !== undefined && (typeof r[k] !== 'string' || (r[k] as string).length > 4096)) return `${k}: invalid`;
  }
  return undefined;
}

export function recordPath(domainsDir: string, domid: number): string {
  return join(domainsDir, `${domid}.json`);
}

export function writeRecord(domainsDir: string, rec: DomainRecord): void {
  const path = recordPath(domainsDir, rec.domid);
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(rec) + '\n', { mode: 0o600 });
  renameSync(tmp, path);
}

export function readRecord(domainsDir: string, domid: number): DomainRecord | undefined {
  try {
    const v = validateRecord(JSON.parse(readFileSync(recordPath(domainsDir, domid), 'utf8')));
    return v.ok ? v.value : undefined;
  } catch {
    return undefined; // absent, unreadable or not JSON: no record, as a malformed one
  }
}

export function removeRecord(domainsDir: string, domid: number): void {
  rmSync(recordPath(domainsDir, domid), { force: true });
}

/** All valid records; `bad` gets the file names of invalid ones with the reason. */
export function listRecords(domainsDir: string, bad?: (file: string, reason: string) => void): DomainRecord[] {
  let files: string[];
  try {
    files = readdirSync(domainsDir);
  } catch {
    return [];
  }
  const out: DomainRecord[] = [];
  for (const f of files) {
    const m = /^(\d+)\.json$/.exec(f);
    if (!m) continue;
    let v: Checked<DomainRecord>;
    try {
      v = validateRecord(JSON.parse(readFileSync(join(domainsDir, f), 'utf8')));
    } catch (e) {
      v = invalid(`unreadable: ${errorMessage(e)}`);
    }
    if (!v.ok) {
      bad?.(f, v.error);
      continue;
    }
    if (String(v.value.domid) !== m[1]) {
      bad?.(f, 'domid does not match the file name');
      continue;
    }
    out.push(v.value);
  }
  return out.sort((a, b) => a.domid - b.domid);
}

/** Whether a process exists (signal 0). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errnoOf(e) === 'EPERM';
  }
}
