// Records what `vpl011 replay --qemu-trace` reads: QEMU 7.2 (qemu-system-aarch64, virt board, its PL011 on a pipe)
// booting the default guest with `-trace pl011_* -D FILE`, a shell command typed once the prompt is there, then
// `poweroff -f`. Used by test/replay-qemu-trace.test.ts and by scripts/record-qemu-trace.mjs (for users).
import { spawn } from 'node:child_process';

export interface RecordOptions {
  kernel: string;
  initrd: string;
  /** Where QEMU writes the trace. */
  traceFile: string;
  /** Typed at the first prompt, each followed by a newline. */
  commands: string[];
  timeoutMs?: number;
}

const PROMPT = /\/ # (\x1b\[6n)?$/;

/** Runs QEMU until the guest powers off; returns the console output. Throws with the output's tail on a timeout. */
export function recordQemuTrace(o: RecordOptions): Promise<string> {
  const args = ['-M', 'virt', '-cpu', 'cortex-a57', '-m', '512', '-nic', 'none', '-display', 'none', '-monitor', 'none',
    '-serial', 'stdio', '-kernel', o.kernel, '-initrd', o.initrd, '-append', 'console=ttyAMA0',
    '-trace', 'pl011_*', '-D', o.traceFile];
  const q = spawn('qemu-system-aarch64', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const todo = [...o.commands, 'poweroff -f'];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      q.kill('SIGKILL');
      reject(new Error(`QEMU did not finish in time; console tail:\n${out.slice(-1500)}\nstderr: ${err.slice(-500)}`));
    }, o.timeoutMs ?? 120_000);
    q.stdout.on('data', (b: Buffer) => {
      out += b.toString('latin1');
      // One command per prompt: the shell reads a line only once it has printed its prompt.
      if (todo.length > 0 && PROMPT.test(out)) q.stdin.write(`${todo.shift()}\n`);
    });
    q.stderr.on('data', (b: Buffer) => (err += b.toString()));
    q.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    q.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`QEMU exited with ${code}: ${err.slice(-500)}`));
    });
  });
}
