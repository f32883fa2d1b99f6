// A domain host's stderr goes to <run>/domains/<domid>.stderr while it runs (the daemon spawns it detached, so there
// is no terminal to write to). The file belongs to the domain: when the domain is gone, whatever the host said that
// a user may need (why it crashed, why it did not start) is copied into the daemon's own log, bounded and with
// control characters escaped (a guest's or a config's bytes may end up in a host's message), and the file is removed.
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/** How much of the file's end is kept: the last words matter, and a chatty host cannot flood the daemon's log. */
const TAIL_BYTES = 4096;
const MAX_LINES = 20;
const MAX_LINE_CHARS = 300;

export function hostStderrPath(domainsDir: string, domid: number): string {
  return join(domainsDir, `${domid}.stderr`);
}

/** Escape what a terminal would act on (ESC, BEL, CR, ...) and cap the length. */
export function printable(line: string, max = MAX_LINE_CHARS): string {
  // eslint-disable-next-line no-control-regex
  const s = line.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return s.length > max ? `${s.slice(0, max)}...` : s;
}

/** The last lines of the host's stderr file (at most MAX_LINES, each escaped and capped); [] if none. */
export function hostStderrTail(domainsDir: string, domid: number): string[] {
  let text: string;
  try {
    const buf = readFileSync(hostStderrPath(domainsDir, domid));
    text = buf.subarray(Math.max(0, buf.length - TAIL_BYTES)).toString('utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l !== '')
    .slice(-MAX_LINES)
    .map((l) => printable(l));
}

/**
 * The domain is gone: keep its host's diagnostics in the daemon's log (when `keep`, i.e. it did not simply shut
 * down) and remove the file.
 */
export function retireHostStderr(domainsDir: string, domid: number, keep: boolean, say: (line: string) => void): void {
  if (keep) for (const line of hostStderrTail(domainsDir, domid)) say(`d${domid} host said: ${line}`);
  rmSync(hostStderrPath(domainsDir, domid), { force: true });
}
