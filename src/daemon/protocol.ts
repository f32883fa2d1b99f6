// The control protocol (docs/DAEMON.md): newline-delimited JSON on <run>/control.sock, one response line per request.
// Requests come from any process that can reach the socket: each is parsed and validated here, field by field, and
// answered with {ok:false, error} when wrong. The daemon never dies of a client.
import { isAbsolute } from 'node:path';
import { INSTANCE_RE, NAME_RE } from './records.js';

/** A request line longer than this is refused (and the connection closed): bounded buffering per client. */
export const MAX_REQUEST_LINE = 64 * 1024;

export type Request =
  | { op: 'ping' }
  | { op: 'list' }
  | {
      op: 'up';
      name?: string;
      /** An absolute path to a guest config file; none: the default guest. */
      config?: string;
      tcp?: { host: string; port: number };
    }
  | { op: 'destroy'; domain: string }
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
  /** Times output stopped because a client was full (`keep`): the guest was throttled. */
  throttled: number;
  reason?: string;
}

export type Response =
  | { ok: true; domid?: number; name?: string; domains?: DomainInfo[]; pid?: number; instance?: string; offset?: number; inputAcked?: number }
  | { ok: false; error: string };

/** Parse "127.0.0.1:PORT" (or "[::1]:PORT", "localhost:PORT"); loopback only. */
export function parseTcp(v: string): { host: string; port: number } | string {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(v);
  if (!m) return 'tcp: expected HOST:PORT';
  const host = m[1] ?? m[2]!;
  const port = Number(m[3]);
  if (port > 65535) return 'tcp: port out of range';
  const loop = host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
  if (!loop) return `tcp: ${host} is not a loopback address (only 127.0.0.0/8, ::1, localhost are allowed)`;
  return { host: host === 'localhost' ? '127.0.0.1' : host, port };
}

function domainRef(v: unknown): string | undefined {
  if (typeof v === 'number' && Number.isInteger(v) && v > 0) return String(v);
  if (typeof v === 'string' && (NAME_RE.test(v) || /^\d+$/.test(v))) return v;
  return undefined;
}

/** Validate one parsed request line. */
export function parseRequest(line: string): Request | string {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return 'request is not valid JSON';
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'request must be a JSON object';
  const r = v as Record<string, unknown>;
  const allowed: Record<string, string[]> = {
    ping: ['op'],
    list: ['op'],
    up: ['op', 'name', 'config', 'tcp'],
    destroy: ['op', 'domain'],
    attach: ['op', 'domain', 'readOnly', 'session', 'offset', 'instance', 'inputAcked'],
  };
  if (typeof r.op !== 'string' || !(r.op in allowed)) return `op: unknown operation ${JSON.stringify(r.op)}`;
  for (const k of Object.keys(r)) if (!allowed[r.op]!.includes(k)) return `${k}: unknown field for ${r.op}`;
  switch (r.op) {
    case 'ping':
    case 'list':
      return { op: r.op };
    case 'destroy': {
      const d = domainRef(r.domain);
      return d === undefined ? 'domain: expected a domain name or id' : { op: 'destroy', domain: d };
    }
    case 'attach': {
      const d = domainRef(r.domain);
      if (d === undefined) return 'domain: expected a domain name or id';
      if (r.readOnly !== undefined && typeof r.readOnly !== 'boolean') return 'readOnly: expected true or false';
      const out: Extract<Request, { op: 'attach' }> = { op: 'attach', domain: d, readOnly: r.readOnly === true };
      if (r.session !== undefined) {
        if (typeof r.session !== 'string' || !/^[0-9a-f]{32}$/.test(r.session) || /^0+$/.test(r.session)) return 'session: expected 32 hex digits';
        out.session = r.session;
      }
      for (const k of ['offset', 'inputAcked'] as const) {
        const v = r[k];
        if (v === undefined) continue;
        if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) return `${k}: expected a non-negative integer`;
        if (out.session === undefined) return `${k}: only with a session`;
        out[k] = v;
      }
      if (r.instance !== undefined) {
        if (typeof r.instance !== 'string' || !INSTANCE_RE.test(r.instance)) return 'instance: invalid';
        if (out.session === undefined) return 'instance: only with a session';
        out.instance = r.instance;
      }
      return out;
    }
    case 'up': {
      const out: Extract<Request, { op: 'up' }> = { op: 'up' };
      if (r.name !== undefined) {
        if (typeof r.name !== 'string' || !NAME_RE.test(r.name)) return 'name: 1-64 characters of A-Z a-z 0-9 . _ -, not starting with a punctuation';
        out.name = r.name;
      }
      if (r.config !== undefined) {
        // Absolute: the daemon's working directory is not the client's.
        if (typeof r.config !== 'string' || r.config.length > 4096 || !isAbsolute(r.config)) return 'config: expected an absolute file path';
        out.config = r.config;
      }
      if (r.tcp !== undefined) {
        if (typeof r.tcp !== 'string') return 'tcp: expected "127.0.0.1:PORT"';
        const t = parseTcp(r.tcp);
        if (typeof t === 'string') return t;
        out.tcp = t;
      }
      return out;
    }
  }
  return 'unreachable';
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
