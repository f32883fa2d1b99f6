// A VMM process whose guest console is on its stdin/stdout pipes, driven the way a user's script would: the one
// driver for the tests (a `vpl011` command: vpl011Process()) and the benchmarks (ours and QEMU, side by side).
// Spawn, collect every output byte (bounded), wait for a string or a pattern with a hard deadline, type input (or
// write it with pipe backpressure), read the process's CPU time, and kill it (and never leave it behind).
import { execFileSync, spawn, type ChildProcessByStdio } from 'node:child_process';
import { closeSync, constants as fsc, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { VPL011_BIN } from '../../src/util/self.js';

/**
 * A real kernel pipe for a VMM's stdout, read as a stream. Node's stdio 'pipe' is a UNIX socketpair: a VMM that writes
 * one byte per write() (QEMU's chardev) fills its send buffer after ~278 one-byte messages (each costs a whole skb),
 * gets EAGAIN and sleeps (QEMU: 100 us per retry), so a batched reader would throttle it. A pipe merges small writes
 * into pages (64 KiB), so the VMM runs at its own speed between our reads. Made with mkfifo and unlinked at once.
 */
function stdoutPipe(): { readFd: number; writeFd: number } {
  const dir = mkdtempSync(join(tmpdir(), 'vpl011-bench-fifo-'));
  try {
    const fifo = join(dir, 'out');
    execFileSync('mkfifo', ['-m', '600', fifo]);
    const readFd = openSync(fifo, fsc.O_RDONLY | fsc.O_NONBLOCK); // first, so that opening the write end does not block
    const writeFd = openSync(fifo, fsc.O_WRONLY);
    return { readFd, writeFd };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Output kept per process: the 4 MiB tx workload produces ~5 MiB; anything far beyond that is a runaway guest. */
const MAX_OUTPUT = 64 << 20;

/** Stderr kept per process: enough for every message a test looks for, bounded for a runaway one. */
const MAX_STDERR = 1 << 20;

/** A wait that ended without its output: the deadline passed or the process exited first. */
export class BenchTimeout extends Error {
  override name = 'BenchTimeout';
}

/** The busybox shell prompt, possibly followed by the terminal size query busybox sends. */
export const PROMPT = /\/ # (\x1b\[6n)?/;

type Child = ChildProcessByStdio<Writable, null, Readable>;
const live = new Set<Child>();
let exitHookInstalled = false;

/** Kills every process this module started that is still running (on our exit, even an abnormal one). */
export function killAll(): void {
  for (const c of live) {
    try {
      c.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  live.clear();
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      killAll();
      process.exit(130);
    });
  }
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class ConsoleProcess {
  readonly child: Child;
  readonly pid: number;
  /** hrtime (ns) just before spawn(): "process start" for the boot figure. */
  readonly startNs: bigint;
  readonly exited: Promise<Exit>;
  private buf = Buffer.alloc(1 << 20);
  private len = 0;
  private waiters = new Set<() => void>();
  /** The same bytes as latin1 text (one char per byte), for pattern waits. */
  private text = '';
  private exitInfo: Exit | undefined;
  private stderrText = '';
  /**
   * Batched reading (ms between reads of stdout; 0 = eager, every chunk as it arrives). QEMU's chardev makes one
   * write() per guest byte: an eager reader wakes (and makes QEMU wait on the pipe) per byte, and measures the
   * reader. Batched, the pipe collects up to its 64 KiB between reads, so each VMM is read at its best for bulk
   * output; latency workloads (echo) read eagerly. See bench/RESULTS.md ("How each VMM is read").
   */
  private batchMs = 0;
  /** The read end of the VMM's stdout pipe (undefined with stdoutFd). */
  private readonly stdout: Socket | undefined;
  private resumeTimer: NodeJS.Timeout | undefined;
  /** Called with each output chunk and the hrtime (ns) of its arrival; used by the echo workload. */
  onData: ((chunk: Buffer, atNs: bigint) => void) | undefined;

  /**
   * `stdoutFd`: give the VMM this file descriptor (e.g. a regular file) as stdout instead of a pipe to us, so a
   * flood of tiny writes is not slowed by our reading; the output is then not seen here.
   */
  constructor(readonly label: string, cmd: string, args: string[], opts: { cwd?: string; stdoutFd?: number; env?: NodeJS.ProcessEnv } = {}) {
    installExitHook();
    this.startNs = process.hrtime.bigint();
    const pipe = opts.stdoutFd === undefined ? stdoutPipe() : undefined;
    try {
      this.child = spawn(cmd, args, { cwd: opts.cwd, stdio: ['pipe', opts.stdoutFd ?? pipe!.writeFd, 'pipe'], env: { ...process.env, ...opts.env } }) as unknown as Child;
    } finally {
      if (pipe) closeSync(pipe.writeFd); // the child has its copy: EOF when it exits
    }
    if (this.child.pid === undefined) throw new Error(`${label}: cannot start ${cmd}`);
    this.pid = this.child.pid;
    live.add(this.child);
    // `onread` (one buffer, no 'data' events): with it, pause() really stops reading the pipe (uv_read_stop); a
    // plain stream keeps reading into its buffer while paused, i.e. one read per write() of the VMM.
    const readBuf = Buffer.alloc(1 << 20);
    const out = pipe
      ? new Socket({
          fd: pipe.readFd,
          readable: true,
          writable: false,
          onread: {
            buffer: readBuf,
            callback: (n: number) => {
              this.append(Buffer.from(readBuf.subarray(0, n)));
              if (this.batchMs > 0 && this.resumeTimer === undefined) {
                const o = this.stdout!;
                o.pause();
                this.resumeTimer = setTimeout(() => {
                  this.resumeTimer = undefined;
                  o.resume();
                }, this.batchMs);
              }
              return true;
            },
          },
        } as unknown as ConstructorParameters<typeof Socket>[0])
      : undefined;
    this.stdout = out;
    out?.on('error', () => {}); // the pipe's read end fails only as the VMM exits, reported through `exited`
    this.child.stderr.on('data', (b: Buffer) => {
      this.stderrText = (this.stderrText + b.toString('utf8')).slice(-MAX_STDERR);
      this.wake();
    });
    this.child.stdin.on('error', () => {}); // EPIPE when the VMM exits first: reported through `exited`
    this.exited = new Promise<Exit>((resolve) => {
      this.child.on('close', (code, signal) => {
        live.delete(this.child);
        const finish = () => {
          this.exitInfo = { code, signal };
          this.wake();
          resolve(this.exitInfo);
        };
        if (!out || out.destroyed) return finish();
        // Read what is still in the pipe (to EOF: the child's end is closed), at most 2 s more.
        if (this.resumeTimer !== undefined) clearTimeout(this.resumeTimer);
        this.batchMs = 0;
        const t = setTimeout(() => out.destroy(), 2000);
        out.once('close', () => {
          clearTimeout(t);
          finish();
        });
        out.resume();
      });
      this.child.on('error', (e) => {
        live.delete(this.child);
        this.stderrText += `\nspawn error: ${e.message}`;
        this.exitInfo = { code: null, signal: null };
        this.wake();
        resolve(this.exitInfo);
      });
    });
  }

  /** Read stdout at most once per `ms` (bulk output), or eagerly with 0 (latency); takes effect at the next chunk. */
  readEvery(ms: number): void {
    this.batchMs = ms;
    if (ms === 0 && this.resumeTimer !== undefined) {
      clearTimeout(this.resumeTimer);
      this.resumeTimer = undefined;
      this.stdout?.resume();
    }
  }

  private append(b: Buffer): void {
    const at = process.hrtime.bigint();
    if (this.len + b.length > MAX_OUTPUT) {
      this.stderrText += `\n[console-process: output beyond ${MAX_OUTPUT} bytes dropped]`;
      b = b.subarray(0, Math.max(0, MAX_OUTPUT - this.len));
    }
    if (this.len + b.length > this.buf.length) {
      let size = this.buf.length;
      while (size < this.len + b.length) size *= 2;
      const nb = Buffer.alloc(Math.min(size, MAX_OUTPUT));
      this.buf.copy(nb, 0, 0, this.len);
      this.buf = nb;
    }
    b.copy(this.buf, this.len);
    this.len += b.length;
    this.text += b.toString('latin1');
    this.onData?.(b, at);
    this.wake();
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Bytes received so far. */
  get length(): number {
    return this.len;
  }

  /** A copy-free view of received bytes [from, to). */
  output(from = 0, to = this.len): Buffer {
    return this.buf.subarray(from, to);
  }

  /** Everything received so far as text, one char per byte (latin1). */
  get out(): string {
    return this.text;
  }

  get stderr(): string {
    return this.stderrText;
  }

  get exitStatus(): Exit | undefined {
    return this.exitInfo;
  }

  /**
   * Resolves with the offset of the first `needle` at or after `from` and the hrtime when it was seen; rejects
   * with BenchTimeout after `timeoutMs`, or if the process exits first.
   */
  waitFor(needle: string | Buffer, from: number, timeoutMs: number, what = `"${needle.toString()}"`): Promise<{ at: number; ns: bigint }> {
    const pat = typeof needle === 'string' ? Buffer.from(needle, 'latin1') : needle;
    let scanFrom = from;
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const i = this.buf.subarray(0, this.len).indexOf(pat, scanFrom);
        if (i >= 0) {
          done();
          resolve({ at: i, ns: process.hrtime.bigint() });
          return true;
        }
        // Only the last pat.length-1 bytes can start a match that later data completes.
        scanFrom = Math.max(from, this.len - pat.length + 1);
        if (this.exitInfo) {
          done();
          reject(new BenchTimeout(`${this.label}: exited (${this.exitInfo.signal ?? `code ${this.exitInfo.code}`}) while waiting for ${what}${this.tail()}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        reject(new BenchTimeout(`${this.label}: no ${what} within ${(timeoutMs / 1000).toFixed(0)} s${this.tail()}`));
      }, timeoutMs);
      const waiter = () => void check();
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
      };
      this.waiters.add(waiter);
      check();
    });
  }

  /**
   * Resolves with the end offset of the first match of `re` in the output after `from`; rejects with
   * BenchTimeout after `timeoutMs`, or if the process exits first.
   */
  expect(re: RegExp, timeoutMs: number, from = 0): Promise<number> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        re.lastIndex = 0;
        const m = re.exec(this.text.slice(from));
        if (m) {
          done();
          resolve(from + m.index + m[0].length);
        } else if (this.exitInfo) {
          done();
          reject(new BenchTimeout(`${this.label}: exited (${this.exitInfo.signal ?? `code ${this.exitInfo.code}`}) before ${re}${this.tail()}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new BenchTimeout(`${this.label}: timed out after ${timeoutMs} ms waiting for ${re}${this.tail()}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  private tail(): string {
    const out = this.buf.subarray(Math.max(0, this.len - 2000), this.len).toString('latin1').replace(/[^\x20-\x7e\n]/g, '.');
    const err = this.stderrText.trim().split('\n').slice(-20).join('\n');
    return `\n  last output: ${JSON.stringify(out)}${err ? `\n  stderr: ${err}` : ''}`;
  }

  /** Types on the console input, as a user at the keyboard: no wait (text is latin1, one byte per char). */
  type(text: string | Uint8Array): void {
    this.child.stdin.write(typeof text === 'string' ? Buffer.from(text, 'latin1') : text);
  }

  /** Writes to the console input; resolves once the pipe has accepted it (backpressure: waits for 'drain'). */
  write(data: string | Uint8Array): Promise<void> {
    const stdin = this.child.stdin;
    return new Promise((resolve, reject) => {
      if (this.exitInfo || stdin.destroyed) {
        reject(new Error(`${this.label}: console input closed`));
        return;
      }
      const ok = stdin.write(data, (err) => {
        if (err) reject(err);
      });
      if (ok) resolve();
      else {
        const onDrain = () => {
          this.child.off('close', onClose);
          resolve();
        };
        const onClose = () => {
          stdin.off('drain', onDrain);
          reject(new Error(`${this.label}: exited while console input was blocked`));
        };
        stdin.once('drain', onDrain);
        this.child.once('close', onClose);
      }
    });
  }

  /** CPU time (ns) used so far by every thread of the process, from /proc/<pid>/task/<tid>/schedstat. */
  cpuNs(): number {
    return processCpuNs(this.pid);
  }

  /**
   * The process's exit, waited for at most `ms`: past that it is killed (-9) and the wait fails with its stderr, so a
   * process that does not end fails its test instead of hanging it (the timer is cleared either way).
   */
  async exitWithin(ms: number): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.exited,
        new Promise<never>((_, rej) => {
          timer = setTimeout(() => {
            void this.kill();
            rej(new Error(`${this.label}: did not end within ${ms} ms; stderr:\n${this.stderr}`));
          }, ms);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Ends the process: SIGTERM, then SIGKILL after `graceMs`; at once with SIGKILL when `graceMs` is 0. */
  async kill(graceMs = 0): Promise<Exit> {
    if (!this.exitInfo) {
      this.child.kill(graceMs > 0 ? 'SIGTERM' : 'SIGKILL');
      const t = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(t);
    }
    return this.exitInfo!;
  }
}

/**
 * CPU time of a whole process in ns. schedstat (first field: ns on the CPU) is per thread and precise; summing the
 * threads alive now misses threads that already ended, which is right for an idle window. Falls back to
 * /proc/<pid>/stat utime+stime (clock ticks, assumed 100 Hz) when schedstat is not available.
 */
export function processCpuNs(pid: number): number {
  try {
    let total = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const f = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ');
      total += Number(f[0]);
    }
    if (Number.isFinite(total)) return total;
  } catch {
    // fall through
  }
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may contain spaces.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  return (utime + stime) * 10_000_000;
}

/** A `vpl011` command (bin/vpl011.js under this Node), its guest console on the pipes. */
export function vpl011Process(args: string[], env: NodeJS.ProcessEnv = {}): ConsoleProcess {
  return new ConsoleProcess('vpl011', process.execPath, [VPL011_BIN, ...args], { env });
}
