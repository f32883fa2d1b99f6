// `vpl011 console --tcp HOST:PORT`: a domain's TCP console from any local user who was given its secret
// (docs/DAEMON.md "TCP consoles"). The secret comes from a file or $VPL011_SECRET, never the command line (which
// every user can read in /proc); it is sent as the first line, then the connection is a console like the daemon's
// attach. The daemon answers a failed attempt with one line and closes: AuthFailureFilter takes that line out of
// the console output so the command can say it on stderr and exit non-zero.
import { readFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { Vpl011Error, errnoOf, errorMessage } from '../util/errors.js';

export class TcpConsoleError extends Vpl011Error<'EINVAL' | 'EIO'> {
  constructor(message: string, code: 'EINVAL' | 'EIO' = 'EINVAL') {
    super(code, message);
  }
}

const SECRET_RE = /^[0-9a-f]{64}$/;
const FAILURE_PREFIX = Buffer.from('vpl011: authentication ');

/** The secret from `file` (its first line) or $VPL011_SECRET. */
export function readSecret(file: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  let secret: string;
  if (file !== undefined) {
    try {
      secret = readFileSync(file, 'utf8').slice(0, 1024).split('\n')[0]!.trim();
    } catch (e) {
      const code = errnoOf(e);
      const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : errorMessage(e);
      throw new TcpConsoleError(`secret file ${file}: ${why}`);
    }
  } else if (env.VPL011_SECRET !== undefined) {
    secret = env.VPL011_SECRET.trim();
  } else {
    throw new TcpConsoleError('a TCP console needs its secret: --secret-file FILE or $VPL011_SECRET (the owner sees it in `vpl011 list --secrets`)');
  }
  if (!SECRET_RE.test(secret)) throw new TcpConsoleError(`${file !== undefined ? `secret file ${file}` : 'VPL011_SECRET'}: not a console secret (64 hex digits)`);
  return secret;
}

/** Connect and send the secret line; the socket is paused, ready for attachConsole. */
export function connectTcpConsole(host: string, port: number, secret: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection(port, host);
    s.once('connect', () => {
      s.off('error', reject);
      s.pause();
      s.write(`${secret}\n`);
      resolve(s);
    });
    s.once('error', (e) => reject(new TcpConsoleError(`cannot reach the console at ${host}:${port}: ${e.message}`)));
  });
}

/**
 * Passes console output to `out`, except a leading "vpl011: authentication ..." line (the daemon's answer to a bad
 * secret), which it keeps as `failure`. Bytes that could still be the start of that line are held back until they
 * decide; flush() releases them at the end.
 */
export class AuthFailureFilter extends Writable {
  failure: string | undefined;
  private held: Buffer = Buffer.alloc(0);
  private decided: 'console' | 'failure' | undefined;

  constructor(private readonly out: NodeJS.WritableStream) {
    super();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (e?: Error | null) => void): void {
    if (this.decided === 'console') return void this.pass(chunk, done);
    this.held = Buffer.concat([this.held, chunk]);
    if (this.decided === undefined) {
      const n = Math.min(this.held.length, FAILURE_PREFIX.length);
      if (!this.held.subarray(0, n).equals(FAILURE_PREFIX.subarray(0, n))) {
        this.decided = 'console';
        const b = this.held;
        this.held = Buffer.alloc(0);
        return void this.pass(b, done);
      }
      if (this.held.length >= FAILURE_PREFIX.length) this.decided = 'failure';
    }
    if (this.decided === 'failure') {
      const nl = this.held.indexOf(0x0a);
      if (nl >= 0 || this.held.length > 1024) this.failure = this.held.subarray(0, nl >= 0 ? nl : 1024).toString('utf8').trimEnd();
    }
    done();
  }

  private pass(b: Buffer, done: (e?: Error | null) => void): void {
    if (this.out.write(b)) done();
    else this.out.once('drain', () => done());
  }

  /** Release bytes held back at the end (a short output that merely began like the failure line). */
  flushHeld(): void {
    if (this.failure === undefined && this.held.length > 0) this.out.write(this.held);
    this.held = Buffer.alloc(0);
  }
}
