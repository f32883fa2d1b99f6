// The web console (`vpl011 daemon --web`, `vpl011 web-url`): an HTTP server in the daemon that serves one page, the
// domain list as JSON, xterm.js from the installed npm packages, and each domain's console over a WebSocket. Every
// request must carry a token (?t=) that WebAccess accepts: anything else gets 401 and nothing more. A browser is a
// console client like any other (the daemon's addClient): its socket's backpressure is the client's backpressure,
// a read-only token's keystrokes never reach the guest, and each request's work and buffering is bounded.
import { createReadStream } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';
import { WebSocketServer, createWebSocketStream } from 'ws';
import { RateLimitedLog } from '../util/ratelimit.js';
import type { DomainInfo } from './protocol.js';
import { formatStat, type DeviceStat } from './device-stat.js';
import { invalid, type Checked } from '../util/errors.js';
import type { WebAccess, WebListen, WebRole } from './web-access.js';
import { webPage } from './web-page.js';

/** What the web console needs from the daemon. */
export interface ConsoleHub {
  domains(): DomainInfo[];
  /** Attach a stream as a console client (scrollback first, then live output); an error message if it cannot. */
  attachStream(domain: string, stream: Duplex, readOnly: boolean, label: string): string | undefined;
  /** A domain's vpl011 (`vpl011 stat`, src/daemon/device-stat.ts), or why there is none. */
  deviceStat?(domain: string): Checked<DeviceStat>;
}

/** Keystrokes come in small messages; a paste is split by the browser long before this. */
const MAX_WS_MESSAGE = 64 * 1024;
/** Bounded: a browser tab per console is plenty, and each socket costs buffers. */
const MAX_CONNECTIONS = 256;

const require = createRequire(import.meta.url);
const ASSETS: Record<string, { file: string; type: string }> = {
  'xterm.js': { file: require.resolve('@xterm/xterm/lib/xterm.js'), type: 'text/javascript; charset=utf-8' },
  'xterm.css': { file: require.resolve('@xterm/xterm/css/xterm.css'), type: 'text/css; charset=utf-8' },
  'addon-fit.js': { file: require.resolve('@xterm/addon-fit/lib/addon-fit.js'), type: 'text/javascript; charset=utf-8' },
};

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** "[HOST:]PORT" -> a listen address; loopback unless the owner said --web-public. A string is the error. */
export function parseWebListen(v: string, allowPublic: boolean): WebListen | string {
  const m = /^(?:(?:\[([^\]]+)\]|([^:\[\]]+)):)?(\d{1,5})$/.exec(v);
  if (!m) return `web: expected [HOST:]PORT, got ${JSON.stringify(v.slice(0, 80))}`;
  const host = m[1] ?? m[2] ?? '127.0.0.1';
  const port = Number(m[3]);
  if (port > 65535) return `web: port ${port} out of range`;
  if (!isLoopback(host) && !allowPublic) return `web: ${host} is not a loopback address; add --web-public to serve it beyond this machine`;
  return { host: host === 'localhost' ? '127.0.0.1' : host, port, public: allowPublic && !isLoopback(host) };
}

const COMMON_HEADERS = {
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
};

export class WebConsole {
  /** Requests refused for a missing or wrong token. */
  authFailures = 0;
  private server: Server | undefined;
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_WS_MESSAGE });
  private readonly refusals: RateLimitedLog;
  private bound: { host: string; port: number } | undefined;

  constructor(
    private readonly hub: ConsoleHub,
    private readonly access: WebAccess,
    say: (line: string) => void,
  ) {
    this.refusals = new RateLimitedLog((m) => say(`web: ${m}`));
  }

  get address(): { host: string; port: number } | undefined {
    return this.bound;
  }

  /** Ready URLs for the owner: read-write and read-only. */
  urls(): { url: string; readOnlyUrl: string } {
    const b = this.bound;
    if (!b) throw new Error('the web console is not listening');
    const host = b.host.includes(':') ? `[${b.host}]` : b.host;
    const base = `http://${host}:${b.port}/`;
    const { rw, ro } = this.access.tokens;
    return { url: `${base}?t=${rw}`, readOnlyUrl: `${base}?t=${ro}` };
  }

  async listen(l: WebListen): Promise<void> {
    const server = createServer({ maxHeaderSize: 8192, requestTimeout: 10_000, headersTimeout: 10_000 }, (req, res) => this.onRequest(req, res));
    server.maxConnections = MAX_CONNECTIONS;
    server.on('upgrade', (req, sock, head) => this.onUpgrade(req, sock as Duplex, head));
    server.on('clientError', (_e, sock) => sock.destroy());
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) =>
        reject(new Error(`web: cannot listen on ${l.host}:${l.port}: ${e.code === 'EADDRINUSE' ? 'the port is in use' : e.message}`)),
      );
      server.listen(l.port, l.host, () => resolve());
    });
    server.on('error', (e) => this.refusals.log(`server error: ${e.message}`));
    const a = server.address();
    this.bound = { host: l.host, port: typeof a === 'object' && a ? a.port : l.port };
    this.server = server;
  }

  close(): void {
    for (const c of this.wss.clients) c.terminate();
    this.server?.close();
    this.server?.closeAllConnections();
    this.server = undefined;
    this.bound = undefined;
  }

  private role(req: IncomingMessage): { role: WebRole | undefined; url: URL } {
    const url = new URL(req.url ?? '/', 'http://web.invalid');
    return { role: this.access.check(url.searchParams.get('t')), url };
  }

  private refuse(why: string): void {
    this.authFailures++;
    this.refusals.log(`refused a request: ${why} (${this.authFailures} refused so far)`);
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const { role, url } = this.role(req);
    if (!role) {
      this.refuse('no valid token');
      res.writeHead(401, { ...COMMON_HEADERS, 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('401: a valid token is required (vpl011 web-url prints a URL with one)\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...COMMON_HEADERS, Allow: 'GET, HEAD' });
      res.end();
      return;
    }
    if (url.pathname === '/') {
      res.writeHead(200, {
        ...COMMON_HEADERS,
        'Content-Type': 'text/html; charset=utf-8',
        'Content-Security-Policy': "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'",
      });
      res.end(req.method === 'HEAD' ? undefined : webPage({ readOnly: role === 'read-only', title: 'vpl011 consoles', token: url.searchParams.get('t')! }));
      return;
    }
    if (url.pathname === '/api/domains') {
      res.writeHead(200, { ...COMMON_HEADERS, 'Content-Type': 'application/json' });
      res.end(req.method === 'HEAD' ? undefined : JSON.stringify(this.hub.domains()));
      return;
    }
    if (url.pathname === '/api/stat') {
      // The page's device panel: the stat, its human lines and the why-irq sentences (read-only data, either token).
      const st = this.hub.deviceStat?.((url.searchParams.get('domain') ?? '').slice(0, 64)) ?? invalid<DeviceStat>('no device state');
      res.writeHead(st.ok ? 200 : 404, { ...COMMON_HEADERS, 'Content-Type': 'application/json' });
      if (req.method === 'HEAD') res.end();
      else res.end(JSON.stringify(st.ok ? { stat: st.value, lines: formatStat(st.value), whyIrq: st.value.whyIrq } : { error: st.error }));
      return;
    }
    const asset = url.pathname.startsWith('/assets/') ? ASSETS[url.pathname.slice('/assets/'.length)] : undefined;
    if (asset) {
      res.writeHead(200, { ...COMMON_HEADERS, 'Content-Type': asset.type });
      if (req.method === 'HEAD') res.end();
      else createReadStream(asset.file).on('error', () => res.destroy()).pipe(res);
      return;
    }
    res.writeHead(404, { ...COMMON_HEADERS, 'Content-Type': 'text/plain; charset=utf-8' });
    res.end('404: not found\n');
  }

  private onUpgrade(req: IncomingMessage, sock: Duplex, head: Buffer): void {
    sock.on('error', () => {}); // a client's reset: its socket closes, which is all there is to do
    const { role, url } = this.role(req);
    const domain = url.searchParams.get('domain') ?? '';
    if (!role) {
      this.refuse('no valid token on a WebSocket');
      sock.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    if (url.pathname !== '/ws' || domain === '' || domain.length > 64) {
      sock.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    this.wss.handleUpgrade(req, sock, head, (ws) => {
      const stream = createWebSocketStream(ws);
      stream.on('error', () => stream.destroy());
      const readOnly = role === 'read-only';
      const err = this.hub.attachStream(domain, stream, readOnly, readOnly ? 'read-only web viewer' : 'web client');
      // A close reason is at most 123 bytes.
      if (err) ws.close(4404, err.slice(0, 120));
    });
  }
}
