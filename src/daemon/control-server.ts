// The control socket (<run>/control.sock, 0600): newline-delimited JSON requests (./protocol.ts), answered in order,
// one line each, each within a bound. Bounded per connection: a request line's length (LineReader), the requests
// queued, and nothing more is read while the client leaves its answers unread. An `attach` hands the connection to
// the console sessions. What each request does is ./requests/*.ts.
import { chmodSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { LineReader, parseRequest, type Request, type Response } from './protocol.js';
import { errorMessage } from '../util/errors.js';

/**
 * A control connection with no complete request for this long is closed (attached consoles are exempt).
 * $VPL011_CONTROL_IDLE_MS overrides (tests).
 */
const CONTROL_IDLE_MS = Number(process.env.VPL011_CONTROL_IDLE_MS) > 0 ? Number(process.env.VPL011_CONTROL_IDLE_MS) : 30_000;
/** Requests queued per control connection before the daemon stops reading from it. */
const MAX_PENDING_REQUESTS = 8;

/** Every request is answered within a bound, whatever it waits for (a fetch, a boot, a domain that will not die). */
function requestTimeoutMs(op: string): number {
  // save, restore and migrate write or read a guest's whole RAM and start a domain host, as up does.
  return op === 'up' || op === 'save' || op === 'restore' || op === 'migrate' ? 280_000 : op === 'destroy' ? 45_000 : 10_000;
}

export type AttachRequest = Extract<Request, { op: 'attach' }>;
export type ControlRequest = Exclude<Request, AttachRequest>;

export interface ControlHandlers {
  /** Answer one request (./requests/index.ts). */
  answer(req: ControlRequest): Promise<Response>;
  /** The connection becomes a console client: it is the sessions' from here on. */
  attach(sock: Socket, req: AttachRequest, early: Buffer, reply: (r: Response) => void): void;
}

/** Listen on the control socket, private to the owner from its creation (umask) on. */
export async function listenControlSocket(path: string, handlers: ControlHandlers, say: (line: string) => void): Promise<Server> {
  const server = createServer((s) => serveControlConnection(s, handlers));
  const oldMask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
  } finally {
    process.umask(oldMask);
  }
  chmodSync(path, 0o600);
  server.on('error', (e) => say(`control socket: ${e.message}`));
  return server;
}

function serveControlConnection(sock: Socket, handlers: ControlHandlers): void {
  const reader = new LineReader();
  let attached = false;
  let pending = 0;
  // Requests on one connection are answered in order, one line each.
  let chain: Promise<void> = Promise.resolve();
  const reply = (r: Response) => {
    if (!sock.destroyed) sock.write(JSON.stringify(r) + '\n');
  };
  sock.on('error', () => {});
  // A connection that leaves a request half-sent (or sends nothing) holds a socket and a buffer: close it.
  sock.setTimeout(CONTROL_IDLE_MS, () => {
    if (!attached && pending === 0) sock.destroy();
  });
  const enqueue = (work: () => void | Promise<void>) => {
    pending++;
    chain = chain.then(work).finally(() => {
      pending--;
      pump();
    });
  };
  // Bounded per connection: at most MAX_PENDING_REQUESTS queued, and nothing more read while the client leaves
  // its answers unread (a pipelining client that never reads cannot grow the daemon).
  const pump = (): void => {
    while (!attached && !sock.destroyed && pending < MAX_PENDING_REQUESTS) {
      const line = reader.next();
      if (line === undefined) break;
      if (line === 'overflow') {
        sock.off('data', onData);
        enqueue(() => {
          reply({ ok: false, error: 'request line too long' });
          sock.end();
        });
        return;
      }
      if (line.trim() === '') continue;
      const req = parseRequest(line);
      if (typeof req === 'string') {
        enqueue(() => reply({ ok: false, error: req }));
        continue;
      }
      if (req.op === 'attach') {
        attached = true;
        sock.setTimeout(0); // a console may be quiet for days
        sock.off('data', onData);
        sock.pause(); // console bytes wait in the socket until the client is attached
        const early = reader.rest();
        enqueue(() => handlers.attach(sock, req, early, reply));
        return;
      }
      enqueue(() =>
        answerWithin(handlers.answer(req), requestTimeoutMs(req.op), req.op).then(reply, (e: unknown) => reply({ ok: false, error: errorMessage(e) })),
      );
    }
    if (attached || sock.destroyed) return;
    if (pending >= MAX_PENDING_REQUESTS || sock.writableNeedDrain) sock.pause();
    else sock.resume();
  };
  const onData = (chunk: Buffer) => {
    if (attached) return;
    reader.push(chunk);
    pump();
  };
  sock.on('drain', pump);
  sock.on('data', onData);
}

/** `work`'s result, or an error answer when it takes longer than `ms` (the work itself is bounded separately). */
function answerWithin(work: Promise<Response>, ms: number, op: string): Promise<Response> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<Response>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, error: `${op}: no result within ${ms / 1000} s` }), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}
