// The control requests' dispatch: one handler per request type (./<op>.ts). Adding a request is its variant in
// ../protocol.ts (parsed and validated there), its module here, and one entry in `handlers` (the compiler checks
// that every request type has one).
import type { Response } from '../protocol.js';
import type { ControlRequest } from '../control-server.js';
import type { DaemonContext } from './context.js';
import { ping } from './ping.js';
import { list } from './list.js';
import { up } from './up.js';
import { destroy } from './destroy.js';
import { web } from './web.js';
import { lineEvent } from './line-event.js';
import { save } from './save.js';
import { restore } from './restore.js';
import { migrate } from './migrate.js';

type Op = ControlRequest['op'];
export type RequestHandler<K extends Op> = (req: Extract<ControlRequest, { op: K }>, ctx: DaemonContext) => Response | Promise<Response>;

const handlers: { [K in Op]: RequestHandler<K> } = { ping, list, up, destroy, web, 'line-event': lineEvent, save, restore, migrate };

export async function answer(req: ControlRequest, ctx: DaemonContext): Promise<Response> {
  return (handlers[req.op] as RequestHandler<Op>)(req, ctx);
}
