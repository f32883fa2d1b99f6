// Client sessions: the connections a served console writes to and reads from. Control-socket clients that sent
// `attach` (plain, or resumable: ./resume.ts), web viewers (./web-server.ts, with scrollback), and TCP console
// connections, which authenticate first (./tcp-auth.ts) on a listener `up` opened before the domain started (so a
// bad endpoint is `up`'s error) or, for a domain adopted after a restart, opened here.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { loadOrCreateSecrets } from './secrets.js';
import { TcpAuthGate } from './tcp-auth.js';
import { Resumer } from './resume.js';
import type { Request, Response } from './protocol.js';
import type { Client, ServedConsole, ServedConsoles } from './served-console.js';
import { errorMessage, invalid, valid, type Checked } from '../util/errors.js';

/** A viewer that attaches first gets this much of the domain's log, so it sees the boot. */
export const WEB_SCROLLBACK_BYTES = 256 * 1024;

export interface ClientSessionsOptions {
  served: ServedConsoles;
  resumer: Resumer;
  secretsDir: string;
  say: (line: string) => void;
}

type ResumableSink = { frame: (chunk: Buffer, kind: 'output' | 'marker') => Buffer; slot: number | undefined };

export class ClientSessions {
  /** TCP listeners `up` opened before starting the domain (so a bad endpoint fails `up`), by domid. */
  private readonly tcpHeld = new Map<number, Server>();

  constructor(private readonly opts: ClientSessionsOptions) {}

  /** A control connection's `attach` request: the connection becomes a console client (or is refused). */
  attach(sock: Socket, req: Extract<Request, { op: 'attach' }>, early: Buffer, reply: (r: Response) => void): void {
    const s = this.opts.served.find(req.domain);
    if (req.session !== undefined) {
      // A resumable client (`vpl011 console`): frames, a log-offset cursor, acknowledged input (./resume.ts).
      void this.opts.resumer.attach(s, sock, req, reply, (live) => {
        if (this.opts.served.get(s!.rec.domid) === s) this.addClient(s!, sock, req.readOnly, Buffer.alloc(0), live);
        else sock.end(Resumer.endFrame(s!.rec.name, s!.rec.domid, 'is gone'));
      });
      return;
    }
    if (!s) {
      reply({ ok: false, error: `domain: no running console for ${req.domain}` });
      sock.end();
      return;
    }
    reply({ ok: true, domid: s.rec.domid, name: s.rec.name });
    this.addClient(s, sock, req.readOnly, early);
  }

  /**
   * A stream client (a web viewer): the last WEB_SCROLLBACK_BYTES of the domain's log first, then live output. The
   * log is written synchronously before output reaches any client, so after flushing what clients have not been
   * given yet, the log's end is exactly where live output starts: no gap, no duplicate.
   */
  attachStream(ref: string, stream: Duplex, readOnly: boolean, label: string): string | undefined {
    const s = this.opts.served.find(ref);
    if (!s) return `no running console for ${ref}`;
    s.console.flushOutput();
    const tail = readTail(s.log.path, WEB_SCROLLBACK_BYTES);
    if (tail.length > 0) stream.write(tail);
    this.addClient(s, stream, readOnly, Buffer.alloc(0), undefined, label);
    return undefined;
  }

  private addClient(s: ServedConsole, sock: Duplex, readOnly: boolean, early: Buffer = Buffer.alloc(0), resumable?: ResumableSink, label?: string): void {
    // Only a read-write client may hold the guest back (`keep`); a watcher gets discard semantics (issue #8 item 15).
    const removeSink = s.console.addSink(sock, {
      label: label ?? (readOnly ? 'read-only client' : 'client'),
      throttles: !readOnly,
      ...(resumable ? { frame: resumable.frame } : {}),
    });
    const client: Client = { socket: sock, readOnly, framed: resumable !== undefined, removeSink };
    s.clients.add(client);
    const input = (chunk: Buffer) => {
      if (chunk.length === 0) return;
      if (client.readOnly) {
        // A watcher cannot type: its bytes are counted and dropped, never delivered.
        s.log.counters.discardedInput += chunk.length;
        return;
      }
      if (!s.console.queueInput(chunk, resumable?.slot)) {
        sock.pause();
        s.paused.add(sock);
      }
    };
    sock.on('data', input);
    sock.on('error', () => {});
    sock.on('close', () => {
      s.clients.delete(client);
      s.paused.delete(sock);
      removeSink();
    });
    input(early);
    if (!s.paused.has(sock)) sock.resume();
  }

  /**
   * Listen on a domain's TCP endpoint before the domain exists: a port in use or an address we cannot bind is
   * `up`'s error (one line), not a line in the daemon's log under a domain that runs without its endpoint.
   */
  async holdTcp(domid: number, ep: { host: string; port: number }): Promise<string | undefined> {
    const held = await listenTcpEndpoint(ep, (sock) => this.onTcpClient(domid, sock));
    if (!held.ok) return held.error;
    this.tcpHeld.set(domid, held.value);
    return undefined;
  }

  /** `up` is over: a held listener the domain did not take over is closed. */
  releaseTcp(domid: number): void {
    this.tcpHeld.get(domid)?.close();
    this.tcpHeld.delete(domid);
  }

  /** The TCP console: only connections that send one of the domain's secrets first (./tcp-auth.ts). */
  serveTcp(s: ServedConsole, ep: { host: string; port: number }): void {
    const domid = s.rec.domid;
    const { say } = this.opts;
    const held = this.tcpHeld.get(domid);
    this.tcpHeld.delete(domid);
    let secrets;
    try {
      secrets = loadOrCreateSecrets(this.opts.secretsDir, s.rec.instance);
    } catch (e) {
      held?.close();
      say(`d${domid}: tcp ${ep.host}:${ep.port}: not served: ${errorMessage(e)}`);
      return;
    }
    // Every TCP connection authenticates first (./tcp-auth.ts); onTcpClient hands it to this gate.
    s.tcpGate = new TcpAuthGate({
      secrets,
      log: (m) => say(`d${domid}: ${m}`),
      onAuthenticated: (sock, access, early) => this.addClient(s, sock, access === 'read-only', early),
    });
    if (held) {
      // `up` listened before the domain started, so that a port in use was its error.
      s.tcp = held;
      return;
    }
    // Adopting a running domain after a restart: nobody waits for an answer, the log says what failed.
    const server = createServer((sock) => this.onTcpClient(domid, sock));
    server.on('error', (e) => say(`d${domid}: tcp ${ep.host}:${ep.port}: ${e.message}`));
    server.listen(ep.port, ep.host);
    s.tcp = server;
  }

  private onTcpClient(domid: number, sock: Socket): void {
    const gate = this.opts.served.get(domid)?.tcpGate;
    if (gate) gate.handle(sock);
    else sock.end('[vpl011: console not ready]\r\n');
  }
}

/** A listening TCP server for a console endpoint, or why it cannot listen (one line). */
function listenTcpEndpoint(ep: { host: string; port: number }, onClient: (sock: Socket) => void): Promise<Checked<Server>> {
  return new Promise((resolve) => {
    const server = createServer(onClient);
    const where = ep.host.includes(':') ? `[${ep.host}]:${ep.port}` : `${ep.host}:${ep.port}`;
    server.once('error', (e: NodeJS.ErrnoException) => {
      server.close();
      const why = e.code === 'EADDRINUSE' ? 'the port is in use' : e.code === 'EADDRNOTAVAIL' ? 'no such local address' : e.code === 'EACCES' ? 'permission denied' : e.message;
      resolve(invalid(`tcp: cannot listen on ${where}: ${why}`));
    });
    server.listen(ep.port, ep.host, () => {
      server.removeAllListeners('error');
      server.on('error', () => {});
      resolve(valid(server));
    });
  });
}

/** The last `max` bytes of a file (empty if it cannot be read): bounded whatever the file's size. */
function readTail(path: string, max: number): Buffer {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const size = fstatSync(fd).size;
    const n = Math.min(size, max);
    const buf = Buffer.alloc(n);
    let off = 0;
    while (off < n) {
      const got = readSync(fd, buf, off, n - off, size - n + off);
      if (got === 0) break;
      off += got;
    }
    return buf.subarray(0, off);
  } catch {
    return Buffer.alloc(0); // no log yet: nothing to replay
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
