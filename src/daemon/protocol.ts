// The control protocol (docs/DAEMON.md): newline-delimited JSON on <run>/control.sock, one response line per request.
// Requests come from any process that can reach the socket: each is parsed and validated here, field by field, and
// answered with {ok:false, error} when wrong. The daemon never dies of a client.
import { isIPv4 } from 'node:net';
import { isAbsolute } from 'node:path';
import { quote } from '../util/quote.js';
import { invalid, valid, type Checked } from '../util/errors.js';
import { INSTANCE_RE, NAME_RE } from './records.js';

/** The line events a client may send: a BREAK, or a character with a framing or parity error. */
export type LineEventName = 'break' | 'framing' | 'parity';
export const LINE_EVENT_NAMES: readonly LineEventName[] = ['break', 'framing', 'parity'];

/** A request line longer than this is refused (and the connection closed): bounded buffering per client. */
export const MAX_REQUEST_LINE = 64 * 1024;

export type Request =
  | { op: 'ping' }
  | { op: 'list'; secrets?: boolean }
  | {
      op: 'up';
      name?: string;
      /** An absolute path to a guest config file; none: the default guest. */
      config?: string;
      tcp?: { host: string; port: number };
    }
  | { op: 'destroy'; domain: string }
  /** A line event on the domain's console, after the input queued so far (docs/DEVICE.md "Line events"). */
  | { op: 'line-event'; domain: string; event: LineEventName }
  /** Save a running domain to `file` (absolute; docs/SAVE.md); it then ends unless keepRunning. */
  | { op: 'save'; domain: string; file: string; keepRunning?: boolean }
  /** Start a domain from a saved file (absolute), named `name` or as it was saved. */
  | { op: 'restore'; file: string; name?: string; tcp?: { host: string; port: number } }
  /** Save + restore into a new domain host, same name; attached consoles follow (docs/SAVE.md). */
  | { op: 'migrate'; domain: string }
  /** Start the web console if it is not running (at `listen`, default 127.0.0.1:8011) and return its URLs. */
  | { op: 'web'; listen?: string; public?: boolean }
  | {
      op: 'attach';
      domain: string;
      readOnly: boolean;
      /** A resumable client (src/daemon/resume.ts): 32 hex digits it chose; output then comes in frames. */
      session?: string;
      /** Log offset to resume output from (what the client has already shown); default: the live point. */
      offset?: number;
      /** The domain instance the client was attached to (a reused name must not resume another guest's log). */
      instance?: string;
      /** Input bytes this session knows were acknowledged (used if the daemon has no record of the session). */
      inputAcked?: number;
    };

export interface DomainInfo {
  id: number;
  name: string;
  state: string;
  bytesIn: number;
  bytesOut: number;
  clients: number;
  dropped: number;
  corrupt: number;
  discardedInput: number;
  /** Line events (BREAK, framing/parity errors) delivered to the guest, and input lost to rx_overrun = "strict". */
  lineEvents?: number;
  rxOverrun?: number;
  /** Times output stopped because a client was full (`keep`): the guest was throttled. */
  throttled: number;
  /** When the domain was started (ISO 8601): the web page shows its uptime. */
  startedAt?: string;
  /** The loopback TCP console, "HOST:PORT", if any. */
  tcp?: string;
  /** TCP console connections refused for a missing or wrong secret. */
  authFailures: number;
  /** Only in answer to {"op":"list","secrets":true}: the TCP console's secrets. */
  secret?: string;
  readOnlySecret?: string;
  reason?: string;
}

/** The domain a request acted on (up, destroy, save, ...). */
interface DomainAnswer {
  domid: number;
  name: string;
}

/** What each request answers when it succeeded, by op: the handler table (requests/index.ts) is typed by it. */
export interface Answers {
  ping: { pid: number };
  list: { domains: DomainInfo[] };
  up: DomainAnswer;
  destroy: DomainAnswer;
  'line-event': DomainAnswer;
  save: DomainAnswer;
  restore: DomainAnswer;
  migrate: DomainAnswer;
  web: { url: string; readOnlyUrl: string };
  /** A resumable attach also says where its output resumes (src/daemon/resume.ts). */
  attach: DomainAnswer & { instance?: string; offset?: number; inputAcked?: number };
}

export type Op = Request['op'];
export type Refusal = { ok: false; error: string };
/** The one response line to a request of this op: its answer, or why it was refused. */
export type ResponseFor<K extends Op> = ({ ok: true } & Answers[K]) | Refusal;
/** A response to any request. */
export type Response = ResponseFor<Op>;

/** Parse "127.0.0.1:PORT" (or "[::1]:PORT", "localhost:PORT"); loopback only. */
export function parseTcp(v: string): Checked<{ host: string; port: number }> {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(v);
  if (!m) return invalid(`tcp: expected HOST:PORT, got ${quote(v)}`);
  const host = m[1] ?? m[2]!;
  const port = Number(m[3]);
  // Port 0 would listen on a port nobody is told.
  if (port < 1 || port > 65535) return invalid(`tcp: port ${port} is outside 1..65535`);
  const loop = host === 'localhost' || host === '::1' || (isIPv4(host) && host.startsWith('127.'));
  if (!loop) return invalid(`tcp: ${quote(host)} is not a loopback address (only 127.0.0.0/8, ::1, localhost are allowed)`);
  return valid({ host: host === 'localhost' ? '127.0.0.1' : host, port });
}

/** A request's optional `tcp` field, as sent: a "HOST:PORT" string, loopback only. */
function tcpField(v: unknown): Checked<{ host: string; port: number }> {
  return typeof v === 'string' ? parseTcp(v) : invalid('tcp: expected "127.0.0.1:PORT"');
}

function domainRef(v: unknown): string | undefined {
  if (typeof v === 'number' && Number.isInteger(v) && v > 0) return String(v);
  if (typeof v === 'string' && (NAME_RE.test(v) || /^\d+$/.test(v))) return v;
  return undefined;
}

/** Validate one parsed request line. */
export function parseRequest(line: string): Checked<Request> {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return invalid('request is not valid JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return invalid('request must be a JSON object');
  const r = v as Record<string, unknown>;
  const allowed: Record<string, string[]> = {
    ping: ['op'],
    list: ['op', 'secrets'],
    up: ['op', 'name', 'config', 'tcp'],
    destroy: ['op', 'domain'],
    'line-event': ['op', 'domain', 'event'],
    save: ['op', 'domain', 'file', 'keepRunning'],
    restore: ['op', 'file', 'name', 'tcp'],
    migrate: ['op', 'domain'],
    attach: ['op', 'domain', 'readOnly', 'session', 'offset', 'instance', 'inputAcked'],
    web: ['op', 'listen', 'public'],
  };
  // Own keys only: `in` would also accept Object.prototype's names ("toString", "__proto__"), whose values are not
  // field lists (a request {"op":"toString"} threw out of the socket handler and killed the daemon).
  if (typeof r.op !== 'string' || !Object.hasOwn(allowed, r.op)) return invalid(`op: unknown operation ${JSON.stringify(r.op)}`);
  for (const k of Object.keys(r)) if (!allowed[r.op]!.includes(k)) return invalid(`${k}: unknown field for ${r.op}`);
  switch (r.op) {
    case 'ping':
      return valid<Request>({ op: r.op });
    case 'list':
      if (r.secrets !== undefined && typeof r.secrets !== 'boolean') return invalid('secrets: expected true or false');
      return valid<Request>(r.secrets === true ? { op: 'list', secrets: true } : { op: 'list' });
    case 'destroy': {
      const d = domainRef(r.domain);
      return d === undefined ? invalid('domain: expected a domain name or id') : valid<Request>({ op: 'destroy', domain: d });
    }
    case 'line-event': {
      const d = domainRef(r.domain);
      if (d === undefined) return invalid('domain: expected a domain name or id');
      const e = LINE_EVENT_NAMES.find((n) => n === r.event);
      if (e === undefined) return invalid(`event: expected one of ${LINE_EVENT_NAMES.join(', ')}`);
      return valid<Request>({ op: 'line-event', domain: d, event: e });
    }
    case 'save': {
      const d = domainRef(r.domain);
      if (d === undefined) return invalid('domain: expected a domain name or id');
      if (typeof r.file !== 'string' || r.file.length > 4096 || !isAbsolute(r.file)) return invalid('file: expected an absolute file path');
      if (r.keepRunning !== undefined && typeof r.keepRunning !== 'boolean') return invalid('keepRunning: expected true or false');
      return valid<Request>({ op: 'save', domain: d, file: r.file, ...(r.keepRunning === true ? { keepRunning: true } : {}) });
    }
    case 'restore': {
      if (typeof r.file !== 'string' || r.file.length > 4096 || !isAbsolute(r.file)) return invalid('file: expected an absolute file path');
      const out: Extract<Request, { op: 'restore' }> = { op: 'restore', file: r.file };
      if (r.name !== undefined) {
        if (typeof r.name !== 'string' || !NAME_RE.test(r.name)) return invalid('name: 1-64 characters of A-Z a-z 0-9 . _ -, not starting with a punctuation');
        out.name = r.name;
      }
      if (r.tcp !== undefined) {
        const t = tcpField(r.tcp);
        if (!t.ok) return invalid(t.error);
        out.tcp = t.value;
      }
      return valid<Request>(out);
    }
    case 'migrate': {
      const d = domainRef(r.domain);
      return d === undefined ? invalid('domain: expected a domain name or id') : valid<Request>({ op: 'migrate', domain: d });
    }
    case 'attach': {
      const d = domainRef(r.domain);
      if (d === undefined) return invalid('domain: expected a domain name or id');
      if (r.readOnly !== undefined && typeof r.readOnly !== 'boolean') return invalid('readOnly: expected true or false');
      const out: Extract<Request, { op: 'attach' }> = { op: 'attach', domain: d, readOnly: r.readOnly === true };
      if (r.session !== undefined) {
        if (typeof r.session !== 'string' || !/^[0-9a-f]{32}$/.test(r.session) || /^0+$/.test(r.session)) return invalid('session: expected 32 hex digits');
        out.session = r.session;
      }
      for (const k of ['offset', 'inputAcked'] as const) {
        const v = r[k];
        if (v === undefined) continue;
        if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) return invalid(`${k}: expected a non-negative integer`);
        if (out.session === undefined) return invalid(`${k}: only with a session`);
        out[k] = v;
      }
      if (r.instance !== undefined) {
        if (typeof r.instance !== 'string' || !INSTANCE_RE.test(r.instance)) return invalid('instance: invalid');
        if (out.session === undefined) return invalid('instance: only with a session');
        out.instance = r.instance;
      }
      return valid<Request>(out);
    }
    case 'web': {
      const out: Extract<Request, { op: 'web' }> = { op: 'web' };
      if (r.listen !== undefined) {
        if (typeof r.listen !== 'string' || r.listen.length > 300) return invalid('listen: expected "[HOST:]PORT"');
        out.listen = r.listen;
      }
      if (r.public !== undefined) {
        if (typeof r.public !== 'boolean') return invalid('public: expected true or false');
        out.public = r.public;
      }
      return valid<Request>(out);
    }
    case 'up': {
      const out: Extract<Request, { op: 'up' }> = { op: 'up' };
      if (r.name !== undefined) {
        if (typeof r.name !== 'string' || !NAME_RE.test(r.name)) return invalid('name: 1-64 characters of A-Z a-z 0-9 . _ -, not starting with a punctuation');
        out.name = r.name;
      }
      if (r.config !== undefined) {
        // Absolute: the daemon's working directory is not the client's.
        if (typeof r.config !== 'string' || r.config.length > 4096 || !isAbsolute(r.config)) return invalid('config: expected an absolute file path');
        out.config = r.config;
      }
      if (r.tcp !== undefined) {
        const t = tcpField(r.tcp);
        if (!t.ok) return invalid(t.error);
        out.tcp = t.value;
      }
      return valid<Request>(out);
    }
  }
  return invalid('unreachable');
}

/**
 * Splits a byte stream into request lines, bounded: more than MAX_REQUEST_LINE bytes without a newline is an error.
 * After an attach, the bytes left over belong to the console (take them with rest()).
 */
export class LineReader {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
  }

  /** The next complete line, undefined if none yet, or 'overflow'. */
  next(): string | undefined | 'overflow' {
    const i = this.buf.indexOf(0x0a);
    if (i < 0) return this.buf.length > MAX_REQUEST_LINE ? 'overflow' : undefined;
    if (i > MAX_REQUEST_LINE) return 'overflow';
    const line = this.buf.subarray(0, i).toString('utf8');
    this.buf = this.buf.subarray(i + 1);
    return line;
  }

  rest(): Buffer {
    const b = this.buf;
    this.buf = Buffer.alloc(0);
    return b;
  }
}
