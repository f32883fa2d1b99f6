// {"op":"ping"}: the daemon answers, with its pid (clients use it to know a daemon serves the run dir).
import type { ResponseFor } from '../protocol.js';

export function ping(): ResponseFor<'ping'> {
  return { ok: true, pid: process.pid };
}
