// The CPU a Linux `cat` of 4 MiB costs each thread of `vpl011 run` (docs/PERF.md "Linux cat"): boot, write the
// bench's tx file into tmpfs, then time `cat` to a marker and take every thread's CPU from
// /proc/<pid>/task/<tid>/schedstat around it (the busiest thread is the vCPU's). Variants (environment settings,
// e.g. another native library through VPL011_NATIVE_LIB) alternate, so an A/B on a shared machine is interleaved.
// Run: npm run build && node dist/bench/cat-cpu.js [--runs N] [NAME=VAR=VALUE[,VAR=VALUE] ...]
//   e.g. node dist/bench/cat-cpu.js --runs 3 old=VPL011_NATIVE_LIB=/tmp/old.so new=
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { median } from './lib/stats.js';
import { errorMessage } from '../src/util/errors.js';

const FILE_BYTES = 4_194_304;
const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'vpl011.js');

interface Variant {
  name: string;
  env: Record<string, string>;
}
interface Sample {
  mbs: number;
  vcpuMs: number;
  mainMs: number;
  allMs: number;
  bytes: number;
  load: number;
}

/** CPU ns per thread of a process (schedstat's first field). */
function threadCpu(pid: number): Map<string, number> {
  const m = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      m.set(tid, Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]));
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return m;
}

async function once(v: Variant): Promise<Sample> {
  const c = spawn(process.execPath, [CLI, 'run', '--timeout', '300'], { env: { ...process.env, ...v.env }, stdio: ['pipe', 'pipe', 'pipe'] });
  try {
    let tail = '';
    let bytes = 0;
    c.stdout.on('data', (b: Buffer) => {
      bytes += b.length;
      tail = (tail + b.toString('latin1')).slice(-8192);
    });
    c.stderr.on('data', (b: Buffer) => (tail += b.toString()));
    const wait = async (s: string, ms: number): Promise<void> => {
      const end = Date.now() + ms;
      while (!tail.includes(s)) {
        if (Date.now() > end || c.exitCode !== null) throw new Error(`${v.name}: no "${s}" within ${ms} ms`);
        await new Promise((r) => setTimeout(r, 2));
      }
    };
    await wait('/ # ', 120_000);
    tail = '';
    c.stdin.write(`mount -t tmpfs tmpfs /tmp; sh -c 'yes LINE | head -c ${FILE_BYTES} >/tmp/tx'; echo PREP-$((1+1))\n`);
    await wait('PREP-2', 60_000);
    await new Promise((r) => setTimeout(r, 500));
    tail = '';
    const c0 = threadCpu(c.pid!);
    const b0 = bytes;
    const t0 = process.hrtime.bigint();
    c.stdin.write('cat /tmp/tx; echo TXEND-$((1+1))\n');
    await wait('TXEND-2', 300_000);
    const t1 = process.hrtime.bigint();
    const c1 = threadCpu(c.pid!);
    const ms = [...c1].map(([tid, ns]) => (ns - (c0.get(tid) ?? 0)) / 1e6).sort((a, b) => b - a);
    c.stdin.write('poweroff -f\n');
    const sec = Number(t1 - t0) / 1e9;
    return { mbs: FILE_BYTES / sec / 1e6, vcpuMs: ms[0] ?? 0, mainMs: ms[1] ?? 0, allMs: ms.reduce((a, b) => a + b, 0), bytes: bytes - b0, load: loadavg()[0]! };
  } finally {
    const exited = new Promise((r) => c.once('exit', r));
    const kill = setTimeout(() => c.kill('SIGKILL'), 10_000);
    if (c.exitCode === null) await exited;
    clearTimeout(kill);
  }
}

export async function run(argv: string[] = process.argv.slice(2)): Promise<void> {
  let runs = 2;
  const variants: Variant[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--runs') runs = Number(argv[++i]);
    else {
      const eq = a.indexOf('=');
      if (eq <= 0) throw new Error('usage: cat-cpu [--runs N] [NAME=VAR=VALUE[,VAR=VALUE] ...]');
      const env: Record<string, string> = {};
      for (const kv of a.slice(eq + 1).split(',').filter((s) => s !== '')) {
        const k = kv.indexOf('=');
        if (k <= 0) throw new Error(`cat-cpu: "${kv}" is not VAR=VALUE`);
        env[kv.slice(0, k)] = kv.slice(k + 1);
      }
      variants.push({ name: a.slice(0, eq), env });
    }
  }
  if (!Number.isInteger(runs) || runs < 1) throw new Error('cat-cpu: --runs takes a positive integer');
  if (variants.length === 0) variants.push({ name: 'vpl011', env: {} });
  const res = new Map<string, Sample[]>();
  for (let r = 0; r < runs; r++) {
    for (const v of variants) {
      const s = await once(v);
      res.set(v.name, [...(res.get(v.name) ?? []), s]);
      console.log(`${v.name.padEnd(10)} ${s.mbs.toFixed(3)} MB/s  vCPU ${s.vcpuMs.toFixed(0)} ms  next thread ${s.mainMs.toFixed(0)} ms  all ${s.allMs.toFixed(0)} ms  ${s.bytes} bytes  load ${s.load.toFixed(2)}`);
    }
  }
  for (const [name, xs] of res) {
    console.log(`median ${name.padEnd(10)} ${median(xs.map((x) => x.mbs)).toFixed(3)} MB/s  vCPU ${median(xs.map((x) => x.vcpuMs)).toFixed(0)} ms`);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  run().catch((e: unknown) => {
    console.error(errorMessage(e));
    process.exit(1);
  });
}
