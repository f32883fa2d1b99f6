// Clients of the console daemon: one-shot control requests (list, up, destroy), starting the daemon when needed,
// and attaching a terminal or pipes to a domain's console (`vpl011 console`, xenconsole's job).
import { spawn } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import type { Response } from '../daemon/protocol.js';
import { ensurePrivateDir, runPaths } from '../daemon/paths.js';
import { socketAnswers } from '../daemon/socket-probe.js';
import { loadDaemonOptions } from '../daemon/daemon-options.js';
import { VPL011_BIN as BIN } from '../util/self.js';
import { Vpl011Error } from '../util/errors.js';
import { EscapeReader, escapeHelp, keyName } from '../console/escape.js';


/** The daemon cannot be reached or broke the protocol (EIO), or refused the request (RequestRefused: EINVAL). */
export class ClientError extends Vpl011Error<'EIO' | 'EINVAL'> {
  constructor(message: string, code: 'EIO' | 'EINVAL' = 'EIO') {
    super(code, message);
  }
}
/** The daemon answered {ok:false}: the request was wrong (no such domain, a bad name), not the transport. */
export class RequestRefused extends ClientError {
  constructor(message: string) {
    super(message, 'EINVAL');
  }
}

/**
 * How long a client waits for the daemon to accept and answer (ms). A daemon that is stopped (SIGSTOP), wedged, or
 * a socket someone else listens on never answers: the client says so instead of hanging. `up` waits longer (a boot,
 * or a first fetch of the default guest's images). $VPL011_ANSWER_TIMEOUT_MS overrides both (slow machines, tests).
 */
export function answerTimeoutMs(op: string): number {
  const env = Number(process.env.VPL011_ANSWER_TIMEOUT_MS);
  if (Number.isFinite(env) && env > 0) return env;
  return op === 'up' || op === 'save' || op === 'restore' || op === 'migrate' ? 300_000 : op === 'destroy' ? 60_000 : 15_000;
}

function doesNotAnswer(path: string, ms: number): ClientError {
  return new ClientError(`the daemon does not answer (no reply in ${ms / 1000} s on ${path})`);
}

export function connect(path: string, timeoutMs: number = answerTimeoutMs('connect')): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection(path);
    const timer = setTimeout(() => {
      s.destroy();
      reject(doesNotAnswer(path, timeoutMs));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', (e) => {
      clearTimeout(timer);
      reject(new ClientError(`cannot reach the console daemon at ${path}: ${e.message}`));
    });
  });
}

/** The shape every answer has: {ok: true, ...} or {ok: false, error: "..."}; anything else is not our daemon's. */
function isResponse(v: unknown): v is Response {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const r = v as Record<string, unknown>;
  if (r.ok === false) return typeof r.error === 'string';
  return r.ok === true && (r.domains === undefined || Array.isArray(r.domains)) && (r.name === undefined || typeof r.name === 'string');
}

/** Read one response line, waiting at most timeoutMs; the rest of the stream is left in `leftover`. */
export function readResponse(s: Socket, timeoutMs: number, path: string): Promise<{ res: Response; leftover: Buffer }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(doesNotAnswer(path, timeoutMs)), timeoutMs);
    let buf = Buffer.alloc(0);
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      const i = buf.indexOf(0x0a);
      if (i < 0) {
        if (buf.length > 1 << 20) fail(new ClientError('response too long'));
        return;
      }
      clearTimeout(timer);
      s.off('data', onData);
      s.off('end', onEnd);
      s.pause();
      let res: unknown;
      try {
        res = JSON.parse(buf.subarray(0, i).toString('utf8'));
      } catch {
        res = undefined;
      }
      if (!isResponse(res)) reject(new ClientError('malformed response from the daemon'));
      else resolve({ res, leftover: buf.subarray(i + 1) });
    };
    const onEnd = () => fail(new ClientError('the daemon closed the connection'));
    const fail = (e: Error) => {
      clearTimeout(timer);
      s.off('data', onData);
      s.off('end', onEnd);
      reject(e);
    };
    s.on('data', onData);
    s.once('end', onEnd);
  });
}

/** Send one request and return the response (throws ClientError on transport errors; {ok:false} is returned). */
export async function controlRequest(runDir: string, req: { op: string; [k: string]: unknown }): Promise<Response> {
  const path = runPaths(runDir).controlSocket;
  const s = await connect(path);
  try {
    s.write(JSON.stringify(req) + '\n');
    return (await readResponse(s, answerTimeoutMs(req.op), path)).res;
  } finally {
    s.destroy();
  }
}

export interface DaemonStartOptions {
  logDir?: string;
  timestamp?: string;
  overflow?: string;
}

/** Exit code of `vpl011 daemon --foreground` when another daemon holds the run dir (it won a concurrent start). */
export const EXIT_DAEMON_RUNNING = 3;

/**
 * Start a background daemon unless one answers; resolves once its control socket accepts. Every client command
 * calls this, so a daemon killed by -9 is started again by whoever needs it next, with the options the last daemon
 * on this run dir was started with (unless `opts` are given).
 */
export async function ensureDaemon(runDir: string, given?: DaemonStartOptions): Promise<void> {
  const p = runPaths(runDir);
  if (await socketAnswers(p.controlSocket)) return;
  ensurePrivateDir(runDir);
  const opts = given ?? loadDaemonOptions(runDir);
  const args = [BIN, 'daemon', '--foreground', '--run-dir', runDir];
  if (opts.logDir) args.push('--log-dir', opts.logDir);
  if (opts.timestamp) args.push('--timestamp', opts.timestamp);
  if (opts.overflow) args.push('--overflow', opts.overflow);
  const out = openSync(p.daemonLog, 'a', 0o600);
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', out, out] });
  closeSync(out);
  child.unref();
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (await socketAnswers(p.controlSocket)) return;
    // Lost a race with another starter: wait for the winner to answer.
    if (child.exitCode !== null && child.exitCode !== EXIT_DAEMON_RUNNING) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new ClientError(`the console daemon did not start (see ${p.daemonLog})`);
}

export interface RawAttachOptions {
  readOnly?: boolean;
  input?: ConsoleInput;
  output?: NodeJS.WritableStream;
  /** With non-TTY input: after input ends, stay until output has been quiet this long (ms). */
  lingerMs?: number;
  /** Detach after this long (ms) in any case. */
  timeoutMs?: number;
}

/**
 * A terminal or pipes on a console connection that carries raw bytes both ways: an authenticated TCP console
 * (./tcp-console.ts). TTY input: raw mode, the Ctrl-] escapes of ./escape.ts (Ctrl-] . detaches; a BREAK needs the
 * daemon, so Ctrl-] b says to use `vpl011 send-break`). Pipe input: stays until the input ends and output has
 * been quiet for lingerMs (or the far end closes, or timeoutMs). Resolves with an exit code. (`vpl011 console` over
 * the daemon's socket is ./console-session.ts: framed and resumable.)
 */
/** A console's keyboard: stdin, or what a test or script gives instead. */
export type ConsoleInput = NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };

/** Whether the input is a terminal to put in raw mode while attached (Ctrl-] then detaches). */
export function isTerminal(input: ConsoleInput): boolean {
  return input.isTTY === true && typeof input.setRawMode === 'function';
}

/** Give the keyboard back on detach: our listeners off, cooked mode again, paused (so the process can exit). */
export function releaseInput(input: ConsoleInput, onInput: (chunk: Buffer | string) => void, onEnd: () => void): void {
  input.off('data', onInput);
  input.off('end', onEnd);
  if (isTerminal(input)) input.setRawMode!(false);
  input.pause();
}

export async function attachRawConsole(s: Socket, opts: RawAttachOptions = {}): Promise<number> {
  const input = opts.input ?? process.stdin;
  const output = opts.output ?? process.stdout;
  const tty = isTerminal(input);
  const linger = opts.lingerMs ?? 500;

  return new Promise<number>((resolve) => {
    let done = false;
    let lingerTimer: NodeJS.Timeout | undefined;
    let inputEnded = false;
    const finish = (code: number) => {
      if (done) return;
      done = true;
      if (lingerTimer) clearTimeout(lingerTimer);
      if (timeout) clearTimeout(timeout);
      releaseInput(input, onInput, onEnd);
      s.end();
      s.destroy();
      resolve(code);
    };
    const armLinger = () => {
      if (!inputEnded) return;
      if (lingerTimer) clearTimeout(lingerTimer);
      lingerTimer = setTimeout(() => finish(0), linger);
    };
    const escapes = new EscapeReader();
    const note = (text: string) => process.stderr.write(`\n${text}\n`); // raw mode keeps ONLCR
    const send = (b: Uint8Array) => {
      if (opts.readOnly) return; // a watcher's keystrokes go nowhere (the daemon drops them too)
      if (!s.write(b)) {
        input.pause();
        s.once('drain', () => input.resume());
      }
    };
    const onInput = (chunk: Buffer | string) => {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      if (!tty) return send(b);
      for (const a of escapes.feed(b)) {
        if (a.kind === 'data') send(a.bytes);
        else if (a.kind === 'quit') return finish(0);
        else if (a.kind === 'help') note(escapeHelp('detach'));
        else if (a.kind === 'break') note('vpl011: no BREAK over a raw TCP console: use `vpl011 send-break NAME`');
        else note(`vpl011: Ctrl-] ${keyName(a.key)} is not an escape (nothing sent); Ctrl-] ? lists them`);
      }
    };
    const onEnd = () => {
      inputEnded = true;
      armLinger();
    };
    s.on('data', (c: Buffer) => {
      if (!output.write(c)) {
        s.pause();
        output.once('drain', () => s.resume());
      }
      armLinger();
    });
    s.on('end', () => finish(0));
    s.on('error', () => finish(1));
    s.resume();
    if (tty) input.setRawMode!(true);
    input.on('data', onInput);
    input.on('end', onEnd);
    input.resume();
    const timeout = opts.timeoutMs !== undefined ? setTimeout(() => finish(0), opts.timeoutMs) : undefined;
  });
}
