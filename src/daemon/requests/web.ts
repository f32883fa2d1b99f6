// {"op":"web"}: start the web console if it is not running (at `listen`, default WEB_DEFAULT_LISTEN) and return its
// URLs with their tokens (`vpl011 web-url`).
import { parseWebListen } from '../web-server.js';
import type { WebListen } from '../web-access.js';
import type { Request, ResponseFor } from '../protocol.js';
import type { DaemonContext } from './context.js';

/** `vpl011 web-url` starts the web console here when none is configured. */
export const WEB_DEFAULT_LISTEN = '127.0.0.1:8011';

export async function web(req: Extract<Request, { op: 'web' }>, ctx: DaemonContext): Promise<ResponseFor<'web'>> {
  let listen: WebListen | undefined;
  if (req.listen !== undefined) {
    const l = parseWebListen(req.listen, req.public === true);
    if (!l.ok) return { ok: false, error: l.error };
    listen = l.value;
  }
  const at = ctx.web.address;
  if (at && listen && (listen.host !== at.host || (listen.port !== 0 && listen.port !== at.port))) {
    return { ok: false, error: `web: the web console already listens on ${at.host}:${at.port}` };
  }
  if (listen === undefined) {
    const fallback = parseWebListen(WEB_DEFAULT_LISTEN, false);
    if (!fallback.ok) return { ok: false, error: fallback.error }; // a constant that parses; the compiler cannot know
    listen = fallback.value;
  }
  const console = await ctx.web.start(listen);
  return { ok: true, ...console.urls() };
}
