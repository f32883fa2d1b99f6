// A save between the daemon and a domain host (docs/SAVE.md): the daemon writes an order file
// (<domains>/<domid>.save.json) and sends SIGUSR2; the host pauses the guest, writes the saved file and answers in
// <domains>/<domid>.save-result.json (both written atomically, 0600; the daemon's directory watch sees the answer).
// The order is the daemon's, but the host still checks it: a file in the run directory is input like any other.
import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { withMagic } from '../vmm/machine-state.js';
import type { DomainWorker } from '../vmm/domain-thread.js';
import { encodeSaved, writeSavedFile } from '../vmm/saved-file.js';
import type { GuestConfig } from '../toolstack/config.js';
import { errorMessage } from '../util/errors.js';

export interface SaveOrder {
  nonce: string;
  file: string;
  keepRunning: boolean;
}

export interface SaveResult {
  nonce: string;
  ok: boolean;
  error?: string;
}

export const saveOrderPath = (domainsDir: string, domid: number): string => join(domainsDir, `${domid}.save.json`);
export const saveResultPath = (domainsDir: string, domid: number): string => join(domainsDir, `${domid}.save-result.json`);

function writeAtomically(path: string, v: unknown): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(v), { mode: 0o600 });
  renameSync(tmp, path);
}

function readJson(path: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(readFileSync(path, 'utf8').slice(0, 16384));
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The daemon's side: place the order (the caller then signals the host). Returns its nonce. */
export function placeSaveOrder(domainsDir: string, domid: number, file: string, keepRunning: boolean): string {
  const nonce = randomBytes(8).toString('hex');
  rmSync(saveResultPath(domainsDir, domid), { force: true });
  writeAtomically(saveOrderPath(domainsDir, domid), { nonce, file, keepRunning } satisfies SaveOrder);
  return nonce;
}

/** The daemon's side: the host's answer to order `nonce`, once there is one. */
export function takeSaveResult(domainsDir: string, domid: number, nonce: string): SaveResult | undefined {
  const r = readJson(saveResultPath(domainsDir, domid));
  if (!r || r.nonce !== nonce || typeof r.ok !== 'boolean') return undefined;
  rmSync(saveResultPath(domainsDir, domid), { force: true });
  return { nonce, ok: r.ok, ...(typeof r.error === 'string' ? { error: r.error.slice(0, 500) } : {}) };
}

/** The host's side: the order, checked; undefined when there is none or it is malformed. */
export function takeSaveOrder(domainsDir: string, domid: number): SaveOrder | undefined {
  const path = saveOrderPath(domainsDir, domid);
  const o = readJson(path);
  rmSync(path, { force: true });
  if (!o || typeof o.nonce !== 'string' || !/^[0-9a-f]{16}$/.test(o.nonce)) return undefined;
  if (typeof o.file !== 'string' || !isAbsolute(o.file) || o.file.length > 4096 || typeof o.keepRunning !== 'boolean') return undefined;
  return { nonce: o.nonce, file: o.file, keepRunning: o.keepRunning };
}

/**
 * The host's side: pause the guest, write the file, answer. Without keepRunning the daemon has stopped serving the
 * console before ordering, so the ring page copied here carries exactly what it did not take and what it gave; the
 * guest stays paused for the caller to end it (true returned). On a failure the guest runs on.
 */
export async function performSave(
  dom: DomainWorker,
  magic: Uint8Array,
  config: GuestConfig,
  name: string,
  order: SaveOrder,
  domainsDir: string,
  domid: number,
): Promise<boolean> {
  const answer = (r: Omit<SaveResult, 'nonce'>) => writeAtomically(saveResultPath(domainsDir, domid), { nonce: order.nonce, ...r });
  let paused;
  try {
    paused = await dom.pause();
  } catch (e) {
    answer({ ok: false, error: errorMessage(e) });
    return false;
  }
  if (order.keepRunning) dom.resume(); // the state is a copy: the guest need not wait for the file
  try {
    writeSavedFile(order.file, encodeSaved(order.keepRunning ? paused : withMagic(paused, magic), config, name));
  } catch (e) {
    if (!order.keepRunning) dom.resume();
    answer({ ok: false, error: errorMessage(e) });
    return false;
  }
  answer({ ok: true });
  return !order.keepRunning;
}
