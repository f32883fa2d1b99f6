// {"op":"ping"}: the daemon answers, with its pid (clients use it to know a daemon serves the run dir).
import type { Response } from '../protocol.js';

export function ping(): Response {
  return { ok: true, pid: process.pid };
}
