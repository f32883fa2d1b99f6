// {"op":"web"}: start the web console if it is not running (at `listen`, default WEB_DEFAULT_LISTEN) and return its
// URLs with their tokens (`vpl011 web-url`).
import { parseWebListen } from '../web-server.js';
import type { WebListen } from '../web-access.js';
import type { Request, Response } from '../protocol.js';
import type { DaemonContext } from './context.js';

/** `vpl011 web-url` starts the web console here when none is configured. */
export const WEB_DEFAULT_LISTEN = '127.0.0.1:8011';

export async function web(req: Extract<Request, { op: 'web' }>, ctx: DaemonContext): Promise<Response> {
  let listen: WebListen | undefined;
  if (req.listen !== undefined) {
    const l = parseWebListen(req.listen, req.public === true);
    if (typeof l === 'string') return { ok: false, error: l };
    listen = l;
  }
  const at = ctx.web.address;
  if (at && listen && (listen.host !== at.host || (listen.port !== 0 && listen.port !== at.port))) {
    return { ok: false, error: `web: the web console already listens on ${at.host}:${at.port}` };
  }
  const console = await ctx.web.start(listen ?? (parseWebListen(WEB_DEFAULT_LISTEN, false) as WebListen));
  return { ok: true, ...console.urls() };
}
