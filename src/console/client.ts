// Clients of the console daemon: one-shot control requests (list, up, destroy), starting the daemon when needed,
// and attaching a terminal or pipes to a domain's console (`vpl011 console`, xenconsole's job).
import { spawn } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Response } from '../daemon/protocol.js';
import { ensurePrivateDir, runPaths } from '../daemon/paths.js';
import { socketAnswers } from '../daemon/daemon.js';
import { loadDaemonOptions } from '../daemon/daemon-options.js';

const BIN = fileURLToPath(new URL('../../../bin/vpl011.js', import.meta.url));

export class ClientError extends Error {}

export function connect(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection(path);
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', (e) => reject(new ClientError(`cannot reach the console daemon at ${path}: ${e.message}`)));
  });
}

/** Read one response line; the rest of the stream is left in `leftover`. */
export function readResponse(s: Socket): Promise<{ res: Response; leftover: Buffer }> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      const i = buf.indexOf(0x0a);
      if (i < 0) {
        if (buf.length > 1 << 20) fail(new ClientError('response too long'));
        return;
      }
      s.off('data', onData);
      s.off('end', onEnd);
      s.pause();
      try {
        resolve({ res: JSON.parse(buf.subarray(0, i).toString('utf8')) as Response, leftover: buf.subarray(i + 1) });
      } catch {
        reject(new ClientError('malformed response from the daemon'));
      }
    };
    const onEnd = () => fail(new ClientError('the daemon closed the connection'));
    const fail = (e: Error) => {
      s.off('data', onData);
      reject(e);
    };
    s.on('data', onData);
    s.once('end', onEnd);
  });
}

/** Send one request and return the response (throws ClientError on transport errors; {ok:false} is returned). */
export async function controlRequest(runDir: string, req: { op: string; [k: string]: unknown }): Promise<Response> {
  const s = await connect(runPaths(runDir).controlSocket);
  try {
    s.write(JSON.stringify(req) + '\n');
    return (await readResponse(s)).res;
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

// `vpl011 console` lives in ./console-session.ts (resumable across a daemon restart).
export { attachConsole, type AttachOptions } from './console-session.js';
