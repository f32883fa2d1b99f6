// Authentication of a domain's TCP console connections (docs/DAEMON.md "TCP consoles"). The first line a client
// sends must be one of the domain's secrets (./secrets.ts); until then it gets no output and nothing it sends reaches
// the guest. Everything here is bounded, because any local user can connect: the secret line (MAX_SECRET_LINE bytes),
// the time to send it (a timeout), the connections waiting to authenticate (a cap per domain: past it, a connection
// is refused at once), and so the rate of guesses: each connection gets one, and a failure is answered (and the
// connection closed) only after a delay, so at most maxPending guesses per delay. No lockout: the owner's right
// secret is never refused for others' failures beyond the pending cap. Failures are counted for `vpl011 list` and
// reported (rate-limited) in the daemon's log.
import type { Socket } from 'node:net';
import { RateLimitedLog } from '../util/ratelimit.js';
import { SecretMatcher, type Access, type ConsoleSecrets } from './secrets.js';

/** A secret is 64 hex digits; a first line longer than this is not one (and is not buffered further). */
export const MAX_SECRET_LINE = 256;

export interface TcpAuthOptions {
  secrets: ConsoleSecrets;
  /** An authenticated connection; `early`: bytes after the secret line (console input for a read-write client). */
  onAuthenticated: (sock: Socket, access: Access, early: Buffer) => void;
  /** The daemon's log (rate-limited here). */
  log: (line: string) => void;
  /** Time to send the secret line (default 10 s). */
  firstLineTimeoutMs?: number;
  /** Delay before a failed attempt is answered and closed (default 1 s). */
  failureDelayMs?: number;
  /** Connections allowed to be authenticating (or waiting out a failure delay) at once (default 16). */
  maxPending?: number;
}

export class TcpAuthGate {
  /** Failed or refused attempts since the daemon started serving this console. */
  failures = 0;
  private pending = 0;
  private readonly matcher: SecretMatcher;
  private readonly logLimit: RateLimitedLog;
  private readonly timeoutMs: number;
  private readonly delayMs: number;
  private readonly maxPending: number;
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Connections not (yet) authenticated: dropped by close(). */
  private readonly unauthenticated = new Set<Socket>();
  private closed = false;

  constructor(private readonly opts: TcpAuthOptions) {
    this.matcher = new SecretMatcher(opts.secrets);
    this.logLimit = new RateLimitedLog(opts.log);
    this.timeoutMs = opts.firstLineTimeoutMs ?? 10_000;
    this.delayMs = opts.failureDelayMs ?? 1000;
    this.maxPending = opts.maxPending ?? 16;
  }

  /** Take a new TCP connection through authentication. */
  handle(sock: Socket): void {
    sock.on('error', () => {}); // a client's reset: 'close' follows and ends the attempt
    const peer = `${sock.remoteAddress ?? '?'}:${sock.remotePort ?? '?'}`;
    if (this.closed) return void sock.destroy();
    if (this.pending >= this.maxPending) return this.refuse(sock, peer, 'too many connections waiting to authenticate; try again later');

    this.pending++;
    this.unauthenticated.add(sock);
    sock.once('close', () => this.unauthenticated.delete(sock));
    let settled = false;
    let buf: Buffer = Buffer.alloc(0);
    const release = () => {
      if (settled) return false;
      settled = true;
      clearTimeout(timer);
      this.timers.delete(timer);
      sock.off('data', onData);
      sock.off('end', onEnd);
      sock.off('close', onClose);
      return true;
    };
    const fail = (why: string) => {
      if (!release()) return;
      sock.pause(); // nothing more is read from a failed connection
      this.fail(sock, peer, why, () => this.pending--);
    };
    const onData = (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const nl = buf.indexOf(0x0a);
      if (nl < 0) {
        if (buf.length > MAX_SECRET_LINE) fail('secret line too long');
        return;
      }
      if (nl > MAX_SECRET_LINE) return fail('secret line too long');
      const end = nl > 0 && buf[nl - 1] === 0x0d ? nl - 1 : nl;
      const access = this.matcher.match(buf.subarray(0, end));
      if (!access) return fail('wrong secret');
      release();
      this.pending--;
      this.unauthenticated.delete(sock);
      sock.pause();
      this.opts.onAuthenticated(sock, access, buf.subarray(nl + 1));
    };
    const onEnd = () => fail('no secret line');
    const onClose = () => {
      if (release()) this.pending--;
    };
    const timer = setTimeout(() => fail(`no secret line within ${Math.round(this.timeoutMs / 1000)} s`), this.timeoutMs);
    this.timers.add(timer);
    sock.on('data', onData);
    sock.on('end', onEnd);
    sock.on('close', onClose);
  }

  /** Stop: pending connections are dropped (the console is going away). */
  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const sock of this.unauthenticated) sock.destroy();
    this.unauthenticated.clear();
  }

  private count(peer: string, why: string): void {
    this.failures++;
    if (this.logLimit.wouldLog()) this.logLimit.log(`tcp console: authentication failed from ${peer} (${why}); ${this.failures} so far`);
    else this.logLimit.skip();
  }

  /** Refused before reading anything: answered at once (the connection costs nothing more). */
  private refuse(sock: Socket, peer: string, why: string): void {
    this.count(peer, why);
    endWith(sock, `vpl011: authentication refused: ${why}\r\n`);
  }

  /** A failed attempt: answered after the delay, then closed. */
  private fail(sock: Socket, peer: string, why: string, done: () => void): void {
    this.count(peer, why);
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      done();
      endWith(sock, `vpl011: authentication failed: ${why} (the first line must be the console's secret; see \`vpl011 list --secrets\`)\r\n`);
    }, this.delayMs);
    this.timers.add(timer);
    sock.once('close', () => {
      if (this.timers.delete(timer)) {
        clearTimeout(timer);
        done();
      }
    });
  }
}

/** Send a last line and close; a peer that does not close its side is cut off after a second. */
function endWith(sock: Socket, line: string): void {
  if (sock.destroyed) return;
  sock.end(line);
  setTimeout(() => sock.destroy(), 1000).unref();
}
