// `vpl011 list --secrets`: the TCP consoles and their secrets, one line per secret, for the owner to hand on (a
// TCP client sends one as its first line; docs/DAEMON.md "TCP consoles").
import type { DomainInfo } from '../daemon/protocol.js';

export function formatSecrets(domains: DomainInfo[]): string {
  const rows: string[][] = [];
  for (const d of domains) {
    if (!d.tcp) continue;
    if (d.secret) rows.push([d.name, d.tcp, 'read-write', d.secret, String(d.authFailures)]);
    if (d.readOnlySecret) rows.push([d.name, d.tcp, 'read-only', d.readOnlySecret, String(d.authFailures)]);
  }
  if (rows.length === 0) return '\nno TCP consoles\n';
  rows.unshift(['NAME', 'TCP', 'ACCESS', 'SECRET (send as the first line)', 'AUTH-FAILURES']);
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return '\n' + rows.map((r) => r.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd() + '\n').join('');
}
