// The real CLI as a child process, bounded: a run that does not end within `limitMs` is killed (by its pid) and
// reported as code null, so a regression to "hangs" fails its test instead of hanging the suite.
import { spawn } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';

export { VPL011_BIN as BIN } from '../../src/util/self.js';
import { VPL011_BIN as BIN } from '../../src/util/self.js';

export interface CliResult {
  /** null: killed after limitMs. */
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export function cli(args: string[], opts: { input?: string | Buffer; env?: Record<string, string>; limitMs?: number } = {}): Promise<CliResult> {
  const start = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
    let stdout = '';
    let stderr = '';
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, opts.limitMs ?? 20_000);
    // setEncoding: a multi-byte character split across chunks is decoded whole.
    child.stdout.setEncoding('utf8').on('data', (t: string) => (stdout += t));
    child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
    child.stdin.on('error', () => {}); // EPIPE when the command exits before reading its input: its exit is the result
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: killed ? null : code, stdout, stderr, ms: Date.now() - start });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Characters a terminal would act on: C0 controls but \n and \t, DEL, C1 controls (the output is UTF-8). */
export function terminalControls(s: string): string[] {
  return [...s.matchAll(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/g)].map((m) => '0x' + m[0].charCodeAt(0).toString(16));
}

/**
 * A real unix socket server at `path` that accepts and then does what `answer` says for each connection: nothing
 * (never answers, the wedged daemon), or a fixed line. Close it with close().
 */
export async function fakeDaemon(path: string, answer?: string): Promise<{ server: Server; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {}); // a peer's reset: the socket is dropped from the set on 'close'
    s.on('close', () => sockets.delete(s));
    if (answer !== undefined) s.once('data', () => s.write(answer));
  });
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(path, () => res());
  });
  return {
    server,
    close: () =>
      new Promise<void>((res) => {
        for (const s of sockets) s.destroy();
        server.close(() => res());
      }),
  };
}
