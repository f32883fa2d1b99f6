// Who may use the web console: holders of one of two random tokens the daemon keeps in <run>/web.json (0600, in the
// private run dir). The read-write token lets its holder type into a guest; the read-only token only watches, and
// that is enforced by the daemon, not by the page. The file also remembers where the web console listens, so a
// restarted daemon serves it again at the same address with the same tokens (URLs the owner holds stay valid).
import { randomBytes } from 'node:crypto';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SecretMatcher, SecretsError, readPrivateFile, type Access } from './secrets.js';
import { Vpl011Error } from '../util/errors.js';

/** 256 bits each: far beyond guessing, and short enough for a URL. */
const TOKEN_BYTES = 32;
const TOKEN_RE = /^[A-Za-z0-9_-]{43}$/;
/** web.json is a few hundred bytes; anything larger is not ours. */
const MAX_FILE = 4096;

export type WebRole = Access;

export interface WebListen {
  host: string;
  port: number;
  /** The owner allowed a non-loopback address (`--web-public`). */
  public: boolean;
}

export interface WebState {
  rw: string;
  ro: string;
  listen?: WebListen;
}

export class WebAccessError extends Vpl011Error<'EACCES'> {
  constructor(message: string) {
    super('EACCES', message);
  }
}

function newToken(): string {
  return randomBytes(TOKEN_BYTES).toString('base64url');
}

function validListen(v: unknown): WebListen | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const l = v as Record<string, unknown>;
  if (typeof l.host !== 'string' || l.host.length > 255) return undefined;
  if (!Number.isInteger(l.port) || (l.port as number) < 0 || (l.port as number) > 65535) return undefined;
  return { host: l.host, port: l.port as number, public: l.public === true };
}

/** The tokens (and the listen address) of one run dir; created on first use. */
export class WebAccess {
  readonly file: string;
  private state: WebState;
  private readonly matcher: SecretMatcher;

  constructor(runDir: string) {
    this.file = join(runDir, 'web.json');
    this.state = this.load() ?? { rw: newToken(), ro: newToken() };
    this.matcher = new SecretMatcher({ readWrite: this.state.rw, readOnly: this.state.ro });
    this.save();
  }

  get tokens(): { rw: string; ro: string } {
    return { rw: this.state.rw, ro: this.state.ro };
  }

  get listen(): WebListen | undefined {
    return this.state.listen;
  }

  set listen(l: WebListen | undefined) {
    if (l) this.state.listen = l;
    else delete this.state.listen;
    this.save();
  }

  /** The role a presented token grants, or undefined: the TCP consoles' constant-time check (./secrets.ts). */
  check(token: string | null | undefined): WebRole | undefined {
    if (typeof token !== 'string' || token.length > 256) return undefined;
    return this.matcher.match(Buffer.from(token, 'utf8'));
  }

  /**
   * The existing file if it is well formed (else undefined: new tokens). One that is not ours and private, or too
   * large to be ours, is refused (readPrivateFile): its tokens could be known to someone else.
   */
  private load(): WebState | undefined {
    let bytes: Buffer | undefined;
    try {
      bytes = readPrivateFile(this.file, MAX_FILE);
    } catch (e) {
      if (!(e instanceof SecretsError)) throw e;
      if (e.reason === 'open') return undefined; // unreadable: new tokens
      throw new WebAccessError(`${e.message.replace(/; refusing to use it$/, '')}; refusing to use its tokens`);
    }
    if (bytes === undefined) return undefined;
    try {
      const v = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
      if (typeof v.rw !== 'string' || typeof v.ro !== 'string' || !TOKEN_RE.test(v.rw) || !TOKEN_RE.test(v.ro)) return undefined;
      const listen = validListen(v.listen);
      return { rw: v.rw, ro: v.ro, ...(listen ? { listen } : {}) };
    } catch {
      return undefined; // malformed: new tokens
    }
  }

  /** Written through a temporary name in the private run dir, 0600, so a reader never sees half a file. */
  private save(): void {
    const tmp = `${this.file}.tmp-${process.pid}`;
    rmSync(tmp, { force: true });
    writeFileSync(tmp, JSON.stringify(this.state) + '\n', { mode: 0o600, flag: 'wx' });
    renameSync(tmp, this.file);
  }
}
