// Drive a real `vpl011` process through its console pipes, the way a user's script would: spawn it, wait for
// output matching a pattern (with a deadline), type input, collect everything it printed.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const CLI = join(REPO, 'bin', 'vpl011.js');

export class ConsoleProcess {
  readonly child: ChildProcessWithoutNullStreams;
  /** Everything the process wrote to stdout (the guest console), as latin1 so bytes map 1:1 to chars. */
  out = '';
  outBytes = 0;
  err = '';
  private waiters: (() => void)[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  /** `program`: what to run `args` with (default: our CLI; the U-Boot test runs QEMU the same way). */
  constructor(args: string[], env: NodeJS.ProcessEnv = {}, program: readonly string[] = [process.execPath, CLI]) {
    this.child = spawn(program[0]!, [...program.slice(1), ...args], { env: { ...process.env, ...env }, stdio: 'pipe' });
    this.child.stdout.on('data', (b: Buffer) => {
      this.out += b.toString('latin1');
      this.outBytes += b.length;
      this.poke();
    });
    this.child.stderr.on('data', (b: Buffer) => {
      this.err += b.toString('utf8');
      this.poke();
    });
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => {
      this.poke();
      resolve({ code, signal });
    }));
  }

  private poke(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Wait until `re` matches the console output after position `from`; returns the match end index. */
  async expect(re: RegExp, timeoutMs: number, from = 0): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      re.lastIndex = 0;
      const m = re.exec(this.out.slice(from));
      if (m) return from + m.index + m[0].length;
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`process exited (${this.child.exitCode ?? this.child.signalCode}) before ${re}; stderr:\n${this.err}\nlast output:\n${this.out.slice(-2000)}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${re}; last output:\n${this.out.slice(-2000)}\nstderr:\n${this.err}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  type(text: string | Uint8Array): void {
    this.child.stdin.write(typeof text === 'string' ? Buffer.from(text, 'latin1') : text);
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

/** The busybox shell prompt, possibly followed by the terminal size query busybox sends. */
export const PROMPT = /\/ # (\x1b\[6n)?/;
