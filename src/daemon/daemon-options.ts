// The options a daemon was started with, kept in <run>/daemon.options.json so that a daemon started again after a
// crash (by any client command, `vpl011 list` or a reconnecting `vpl011 console`) serves the same log directory,
// timestamps and overflow policy as the one that died. The file is in the private run dir; it is still validated
// field by field, and a bad one is ignored (the defaults apply).
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';

export interface DaemonStartOptions {
  logDir?: string;
  timestamp?: 'none' | 'guest';
  overflow?: 'keep' | 'discard';
}

export function daemonOptionsPath(runDir: string): string {
  return join(runDir, 'daemon.options.json');
}

export function saveDaemonOptions(runDir: string, opts: DaemonStartOptions): void {
  const path = daemonOptionsPath(runDir);
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(opts) + '\n', { mode: 0o600 });
  renameSync(tmp, path);
}

/** The options of the last daemon started on this run dir; {} if none (or unreadable). */
export function loadDaemonOptions(runDir: string): DaemonStartOptions {
  let v: unknown;
  try {
    const text = readFileSync(daemonOptionsPath(runDir), 'utf8');
    if (text.length > 8192) return {};
    v = JSON.parse(text);
  } catch {
    return {};
  }
  if (typeof v !== 'object' || v === null) return {};
  const r = v as Record<string, unknown>;
  const out: DaemonStartOptions = {};
  if (typeof r.logDir === 'string' && isAbsolute(r.logDir) && r.logDir.length <= 4096) out.logDir = r.logDir;
  if (r.timestamp === 'none' || r.timestamp === 'guest') out.timestamp = r.timestamp;
  if (r.overflow === 'keep' || r.overflow === 'discard') out.overflow = r.overflow;
  return out;
}
