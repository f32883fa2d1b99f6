// Shared helpers for the daemon tests: a private run dir, a daemon child process (killable with -9), requests on
// the control socket, raw console attachments, and a cleanup that kills every process these tests started (daemon
// and domain hosts, by pid) and unlinks their shm objects.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, readFileSync, existsSync, writeFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { controlRequest } from '../../src/client/client.js';
import { runPaths } from '../../src/daemon/paths.js';
import { listRecords } from '../../src/daemon/records.js';
import { socketAnswers } from '../../src/daemon/socket-probe.js';
import { unlinkShared } from '../../src/host/shm.js';
import type { Response, DomainInfo } from '../../src/daemon/protocol.js';
import { buildBareGuestFile, type BareGuest } from '../../src/vmm/bare-guests.js';

export { VPL011_BIN as BIN } from '../../src/util/self.js';
import { VPL011_BIN as BIN } from '../../src/util/self.js';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Harness {
  readonly runDir: string;
  readonly logDir: string;
  daemon: ChildProcess | undefined;
  daemonOutput = '';
  private readonly hostPids = new Set<number>();

  constructor() {
    this.runDir = mkdtempSync(join(tmpdir(), 'vpl011-test-'));
    this.logDir = join(this.runDir, 'log');
  }

  /**
   * Spawn a daemon child without waiting for it to serve (startDaemon waits). `env` is added to this process's
   * environment (e.g. VPL011_CRASH_AT, src/util/crash-point.ts).
   */
  spawnDaemon(extra: string[] = [], env: Record<string, string> = {}): ChildProcess {
    const child = spawn(process.execPath, [BIN, 'daemon', '--foreground', '--run-dir', this.runDir, ...extra], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    child.stdout!.on('data', (b: Buffer) => (this.daemonOutput += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (this.daemonOutput += b.toString()));
    this.daemon = child;
    return child;
  }

  /** Wait (at most limitMs) for the daemon child to exit by itself; returns its exit code or signal. */
  async daemonExit(limitMs = 60_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const d = this.daemon;
    if (!d) throw new Error('no daemon');
    if (d.exitCode === null && d.signalCode === null) {
      let timer: NodeJS.Timeout | undefined;
      try {
        await new Promise<void>((res, rej) => {
          d.once('exit', () => res());
          timer = setTimeout(() => rej(new Error(`daemon still running after ${limitMs} ms\n${this.daemonOutput.slice(-2000)}`)), limitMs);
        });
      } finally {
        clearTimeout(timer);
      }
    }
    this.daemon = undefined;
    return { code: d.exitCode, signal: d.signalCode };
  }

  async startDaemon(extra: string[] = [], env: Record<string, string> = {}): Promise<void> {
    const child = this.spawnDaemon(extra, env);
    const sock = runPaths(this.runDir).controlSocket;
    for (let i = 0; i < 300; i++) {
      if (child.exitCode !== null) throw new Error(`daemon exited: ${this.daemonOutput}`);
      // The pid file is written after listen(): a socket left by a killed daemon does not count.
      if (existsSync(runPaths(this.runDir).daemonPid) && (await socketAnswers(sock))) {
        const pid = Number(readFileSync(runPaths(this.runDir).daemonPid, 'utf8'));
        if (pid === child.pid) return;
      }
      await sleep(20);
    }
    throw new Error(`daemon did not start: ${this.daemonOutput}`);
  }

  async killDaemon(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const d = this.daemon;
    if (!d || d.exitCode !== null || d.signalCode !== null) return;
    const exited = new Promise((r) => d.once('exit', r));
    d.kill(signal);
    await exited;
    this.daemon = undefined;
  }

  request(req: { op: string; [k: string]: unknown }): Promise<Response> {
    return controlRequest(this.runDir, req);
  }

  /**
   * Start a bare-metal guest (guests/bare/<guest>.S, built by buildBareGuest with `defines`) under the daemon,
   * through a config file, as a user would: `kind = "bare"`.
   */
  async up(name: string, guest: BareGuest, defines?: Record<string, number>, extra: Record<string, unknown> = {}): Promise<number> {
    const res = await this.request({ op: 'up', name, config: this.bareConfig(name, guest, defines), ...extra });
    if (!res.ok) throw new Error(`up ${name}: ${res.error}`);
    this.trackHosts();
    return res.domid!;
  }

  /** Write a config file for a bare-metal guest; returns its path. */
  bareConfig(name: string, guest: BareGuest, defines?: Record<string, number>): string {
    const kernel = buildBareGuestFile(guest, defines ? { defines } : {});
    const file = join(this.runDir, `${name}.cfg`);
    writeFileSync(file, `name = "${name}"\nkind = "bare"\nkernel = "${kernel}"\nmemory = 16\n`);
    return file;
  }

  trackHosts(): void {
    for (const r of listRecords(runPaths(this.runDir).domainsDir)) this.hostPids.add(r.pid);
  }

  async list(): Promise<DomainInfo[]> {
    const res = await this.request({ op: 'list' });
    if (!res.ok) throw new Error(res.error);
    return res.domains!;
  }

  async info(name: string): Promise<DomainInfo | undefined> {
    return (await this.list()).find((d) => d.name === name);
  }

  logPath(name: string): string {
    return join(this.logDir, `guest-${name}-vuart0.log`);
  }

  log(name: string): Buffer {
    return existsSync(this.logPath(name)) ? readFileSync(this.logPath(name)) : Buffer.alloc(0);
  }

  /** Poll (no timing assertion: the deadline only keeps a broken run from hanging) until pred() holds. */
  async until(pred: () => boolean | Promise<boolean>, what: string, limitMs = 60_000): Promise<void> {
    const end = Date.now() + limitMs;
    while (!(await pred())) {
      if (Date.now() > end) throw new Error(`gave up waiting for ${what}\n${this.daemonOutput.slice(-2000)}`);
      await sleep(25);
    }
  }

  /** A raw attachment: the socket after the daemon's {ok:true} line, with everything it received so far. */
  async attach(domain: string, readOnly = false): Promise<{ sock: Socket; received: () => Buffer; close: () => void }> {
    const sock = createConnection(runPaths(this.runDir).controlSocket);
    await new Promise<void>((res, rej) => {
      sock.once('connect', () => res());
      sock.once('error', rej);
    });
    sock.write(JSON.stringify({ op: 'attach', domain, readOnly }) + '\n');
    let buf = Buffer.alloc(0);
    let header: Response | undefined;
    sock.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      if (!header) {
        const i = buf.indexOf(0x0a);
        if (i >= 0) {
          header = JSON.parse(buf.subarray(0, i).toString()) as Response;
          buf = buf.subarray(i + 1);
        }
      }
    });
    sock.on('error', () => {}); // a reset ends the attach; the test sees it as missing output
    await this.until(() => header !== undefined, 'attach response', 10_000);
    if (!header!.ok) throw new Error(`attach: ${(header as { error: string }).error}`);
    return { sock, received: () => buf, close: () => sock.destroy() };
  }

  /** Kill everything we started, by pid; unlink our shm objects; remove the run dir. */
  async cleanup(): Promise<void> {
    this.trackHosts();
    await this.killDaemon();
    // A daemon a client command started in the background (detached): its pid is in the run dir.
    try {
      const pid = Number(readFileSync(runPaths(this.runDir).daemonPid, 'utf8'));
      if (Number.isInteger(pid) && pid > 1) process.kill(pid, 'SIGKILL');
    } catch {
      // none, or already gone
    }
    for (const pid of this.hostPids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    const p = runPaths(this.runDir);
    const prefix = p.shmPrefix.slice(1) + '-';
    for (const f of readdirSync('/dev/shm')) if (f.startsWith(prefix)) unlinkShared('/' + f);
    rmSync(this.runDir, { recursive: true, force: true });
  }
}

/**
 * Run the CLI with stdin from `input`; resolves with stdout, stderr and the exit code. A CLI still running after
 * `limitMs` is killed (SIGKILL, code -1), so a hung command fails its test instead of outliving it.
 */
export function runCli(args: string[], input?: string | Buffer, limitMs = 240_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      stderr += `\n[test harness: killed after ${limitMs} ms]`;
      child.kill('SIGKILL');
    }, limitMs);
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(input ?? '');
  });
}
