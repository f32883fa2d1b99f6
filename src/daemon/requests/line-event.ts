// {"op":"line-event"}: a BREAK (or a character with a framing / parity error) on a domain's console, queued after
// the input the console already has (`vpl011 send-break`; `vpl011 console`'s Ctrl-] b sends it once its typed bytes
// are acknowledged). Refused when the console already holds LINE_EVENTS_QUEUED_MAX (docs/DEVICE.md "Line events").
import type { Request, Response } from '../protocol.js';
import type { DaemonContext } from './context.js';

export function lineEvent(req: Extract<Request, { op: 'line-event' }>, ctx: DaemonContext): Response {
  const s = ctx.served.find(req.domain);
  if (!s || s.finished) return { ok: false, error: `domain: no running console ${req.domain}` };
  if (!s.console.queueLineEvent(req.event)) {
    return { ok: false, error: `${req.event}: too many line events waiting for ${s.rec.name} (it is not reading its console)` };
  }
  return { ok: true, domid: s.rec.domid, name: s.rec.name };
}
