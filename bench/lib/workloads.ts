// The guest workloads (boot, tx, rx, echo, idle), driven over a VMM's console pipes exactly the same way for QEMU and for ours:
// boot to the busybox prompt, idle CPU at the prompt, tx (cat of a 4 MiB tmpfs file), echo round trips through a
// raw-mode cat, rx (1 MiB of random printable bytes into head -c), and the bare-metal tx flood.
import { createHash, randomInt } from 'node:crypto';
import { closeSync, fstatSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BenchTimeout, ConsoleProcess } from '../../test/lib/console-process.js';
import { nsToMs, percentile } from './stats.js';
import { errorMessage } from '../../src/util/errors.js';

/** busybox ash's prompt for root in / (it may be followed by ESC[6n, its cursor-position query). */
export const PROMPT = '/ # ';

export const TX_FILE_BYTES = 4_194_304;
export const TX_LINE = 'LINE';
/** The bulk reader's period: QEMU writes each byte with its own write(); read what has piled up every 2 ms. */
export const BULK_READ_MS = 2;
export const RX_BYTES = 1_048_576;
export const ECHO_WARMUP = 20;
export const ECHO_SAMPLES = 200;
export const IDLE_MS = 10_000;

export interface Limits {
  bootMs: number;
  commandMs: number;
  txMs: number;
  rxMs: number;
  echoCharMs: number;
  exitMs: number;
}

export const DEFAULT_LIMITS: Limits = { bootMs: 120_000, commandMs: 60_000, txMs: 180_000, rxMs: 180_000, echoCharMs: 5_000, exitMs: 20_000 };

export interface LinuxRun {
  bootS?: number;
  idlePct?: number;
  txMBs?: number;
  /** Every byte of the cat output received and equal to the file with onlcr applied. */
  txOk?: boolean;
  txDetail?: string;
  echoP50Ms?: number;
  echoP99Ms?: number;
  rxMBs?: number;
  /** The guest's md5 of what head -c read equals the md5 of what the host wrote. */
  rxOk?: boolean;
  rxDetail?: string;
  /** The first failure, if the session could not finish. */
  error?: string;
  exit?: string;
}

/** A marker the guest prints with shell arithmetic, so the echoed command line never contains it. */
function marker(prefix: string): { command: string; text: string } {
  const n = randomInt(10_000_000, 90_000_000);
  return { command: `echo ${prefix}-$((${n}+1))`, text: `${prefix}-${n + 1}` };
}

/** Sends one command line after the prompt and waits for the next prompt; returns the offset where output began. */
async function command(p: ConsoleProcess, line: string, ms: number): Promise<number> {
  const off = p.length;
  await p.write(line + '\n');
  await p.waitFor(PROMPT, off, ms, `prompt after "${line}"`);
  return off;
}

/**
 * The expected cat output of `yes LINE | head -c 4194304`: whole "LINE\n" lines, then a partial line, with the
 * tty's onlcr turning each \n into \r\n.
 */
export function expectedTxOutput(): Buffer {
  const unit = TX_LINE + '\n';
  const whole = Math.floor(TX_FILE_BYTES / unit.length);
  const tail = unit.slice(0, TX_FILE_BYTES - whole * unit.length);
  return Buffer.from((TX_LINE + '\r\n').repeat(whole) + tail, 'latin1');
}

/** Compares what arrived with the expected bytes; says where they first differ. */
export function compareBytes(got: Buffer, want: Buffer): { ok: boolean; detail: string } {
  if (got.equals(want)) return { ok: true, detail: `${got.length} bytes, all equal` };
  const n = Math.min(got.length, want.length);
  let i = 0;
  while (i < n && got[i] === want[i]) i++;
  return { ok: false, detail: `${got.length} bytes received, ${want.length} expected, first difference at byte ${i}` };
}

/** Random printable ASCII (0x20..0x7e): never a tty special character even if a mode were left cooked. */
export function randomPrintable(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = 0x20 + randomInt(0, 95);
  return b;
}

export async function bootToPrompt(p: ConsoleProcess, lim: Limits): Promise<number> {
  const { ns } = await p.waitFor(PROMPT, 0, lim.bootMs, 'first prompt');
  return Number(ns - p.startNs) / 1e9;
}

/** Host CPU of the VMM process over IDLE_MS at the prompt, in % of one core. */
export async function idle(p: ConsoleProcess): Promise<number> {
  const c0 = p.cpuNs();
  const t0 = process.hrtime.bigint();
  await sleep(IDLE_MS);
  const c1 = p.cpuNs();
  const t1 = process.hrtime.bigint();
  return ((c1 - c0) / Number(t1 - t0)) * 100;
}

export async function tx(p: ConsoleProcess, lim: Limits): Promise<{ mbs: number; ok: boolean; detail: string }> {
  // Through `sh -c`: a pipeline element forked by the interactive shell keeps the shell's unbuffered stdio, and
  // `yes` then makes one 5-byte write() per line (110 s under QEMU for 4 MiB); a fresh busybox buffers fully.
  await command(p, `mount -t tmpfs tmpfs /tmp; sh -c 'yes ${TX_LINE} | head -c ${TX_FILE_BYTES} >/tmp/tx'`, lim.commandMs);
  const m = marker('TX-END');
  const line = `cat /tmp/tx; ${m.command}`;
  const off = p.length;
  const t0 = process.hrtime.bigint();
  await p.write(line + '\n');
  const end = await p.waitFor(m.text, off, lim.txMs, 'tx end marker');
  const mbs = TX_FILE_BYTES / (Number(end.ns - t0) / 1e9) / 1e6;
  await p.waitFor(PROMPT, end.at, lim.commandMs, 'prompt after tx');
  // The shell echoes the command line and ends it with \r\n; cat's output starts right after.
  const region = p.output(off, end.at);
  const echoEnd = region.indexOf('\r\n');
  if (echoEnd < 0) return { mbs, ok: false, detail: 'command echo not found' };
  const { ok, detail } = compareBytes(region.subarray(echoEnd + 2), expectedTxOutput());
  return { mbs, ok, detail };
}

export async function echo(p: ConsoleProcess, lim: Limits): Promise<{ p50: number; p99: number }> {
  // raw -echo for single-byte reads and no tty echo, isig kept so ^C ends cat afterwards.
  await command(p, 'stty raw -echo isig', lim.commandMs);
  const m = marker('EC-GO');
  const off = p.length;
  await p.write(`${m.command}; cat\n`);
  await p.waitFor(m.text, off, lim.commandMs, 'echo start marker');
  const samples: number[] = [];
  p.readEvery(0); // latency: every chunk as it arrives, for both VMMs
  try {
    for (let i = 0; i < ECHO_WARMUP + ECHO_SAMPLES; i++) {
      const ch = String.fromCharCode(0x61 + (i % 26));
      const from = p.length;
      const t0 = process.hrtime.bigint();
      await p.write(ch);
      const got = await p.waitFor(ch, from, lim.echoCharMs, `echo of "${ch}" (sample ${i})`);
      if (i >= ECHO_WARMUP) samples.push(nsToMs(got.ns - t0));
    }
  } finally {
    p.readEvery(BULK_READ_MS);
  }
  const stop = p.length;
  await p.write('\x03');
  await p.waitFor(PROMPT, stop, lim.commandMs, 'prompt after ^C');
  await command(p, 'stty sane', lim.commandMs);
  return { p50: percentile(samples, 50), p99: percentile(samples, 99) };
}

export async function rx(p: ConsoleProcess, lim: Limits): Promise<{ mbs: number; ok: boolean; detail: string }> {
  // busybox's line editor restores the tty modes it found after each line, so raw -echo holds for the next line.
  await command(p, 'stty raw -echo', lim.commandMs);
  const m = marker('RX-GO');
  const off = p.length;
  await p.write(`${m.command}; head -c ${RX_BYTES} > /tmp/in; md5sum /tmp/in\n`);
  const go = await p.waitFor(m.text, off, lim.commandMs, 'rx start marker');
  const data = randomPrintable(RX_BYTES);
  const want = createHash('md5').update(data).digest('hex');
  const t0 = process.hrtime.bigint();
  // As fast as the console accepts: 64 KiB writes, each waiting for the pipe to drain (VMM backpressure).
  const CHUNK = 64 << 10;
  for (let i = 0; i < data.length; i += CHUNK) await p.write(data.subarray(i, i + CHUNK));
  let sum: { at: number; ns: bigint };
  try {
    sum = await p.waitFor('  /tmp/in', go.at, lim.rxMs, 'md5sum output');
  } catch (e) {
    if (e instanceof BenchTimeout) throw new BenchTimeout(`rx: head -c ${RX_BYTES} never finished (input lost?): ${e.message}`);
    throw e;
  }
  const mbs = RX_BYTES / (Number(sum.ns - t0) / 1e9) / 1e6;
  const got = p.output(Math.max(go.at, sum.at - 32), sum.at).toString('latin1');
  await p.waitFor(PROMPT, sum.at, lim.commandMs, 'prompt after rx');
  await command(p, 'stty sane', lim.commandMs);
  const ok = got === want;
  return { mbs, ok, detail: ok ? `md5 ${want} equal` : `guest md5 ${JSON.stringify(got)}, host md5 ${want}` };
}

/** Asks the guest to power off; kills the VMM if it has not exited in time. Returns how it ended. */
export async function powerOff(p: ConsoleProcess, lim: Limits): Promise<string> {
  if (!p.exitStatus) {
    await p.write('poweroff -f\n').catch(() => {}); // the VMM exited first: the kill below handles any other case
    const timer = sleep(lim.exitMs).then(() => 'timeout' as const);
    const r = await Promise.race([p.exited, timer]);
    if (r === 'timeout') {
      await p.kill(2000);
      return `did not exit within ${lim.exitMs / 1000} s of poweroff -f; killed`;
    }
  }
  const e = p.exitStatus!;
  return e.signal ? `signal ${e.signal}` : `exit ${e.code}`;
}

/** One Linux session: every workload in turn on one boot; a failure ends the session and is recorded. */
export async function linuxSession(start: () => ConsoleProcess, lim: Limits = DEFAULT_LIMITS, log: (s: string) => void = () => {}): Promise<LinuxRun> {
  const r: LinuxRun = {};
  const p = start();
  // Bulk output (boot log, cat, paste) is read in batches for every VMM; echo switches to eager reads itself.
  p.readEvery(BULK_READ_MS);
  try {
    r.bootS = await bootToPrompt(p, lim);
    log(`boot ${r.bootS.toFixed(2)} s`);
    await sleep(1000); // let the shell and the kernel's deferred work settle before the idle window
    r.idlePct = await idle(p);
    log(`idle ${r.idlePct.toFixed(2)} %`);
    const t = await tx(p, lim);
    Object.assign(r, { txMBs: t.mbs, txOk: t.ok, txDetail: t.detail });
    log(`tx ${t.mbs.toFixed(2)} MB/s (${t.detail})`);
    const e = await echo(p, lim);
    Object.assign(r, { echoP50Ms: e.p50, echoP99Ms: e.p99 });
    log(`echo p50 ${e.p50.toFixed(3)} ms p99 ${e.p99.toFixed(3)} ms`);
    const x = await rx(p, lim);
    Object.assign(r, { rxMBs: x.mbs, rxOk: x.ok, rxDetail: x.detail });
    log(`rx ${x.mbs.toFixed(3)} MB/s (${x.detail})`);
  } catch (e) {
    r.error = errorMessage(e);
    log(`failed: ${r.error}`);
  } finally {
    r.exit = r.error ? (await p.kill(2000), 'killed after failure') : await powerOff(p, lim);
  }
  return r;
}

export interface BareRun {
  seconds?: number;
  mbs?: number;
  ok?: boolean;
  detail?: string;
  error?: string;
}

/**
 * Runs a bare-metal tx-flood program to its PSCI SYSTEM_OFF: wall time from process start to exit, MB/s of
 * `bytes`. With `check`, the received bytes are verified (undefined: output not captured, e.g. -serial file:).
 */
export async function bareRun(start: (stdoutFd: number) => ConsoleProcess, bytes: number, timeoutMs: number, check?: (out: Buffer) => { ok: boolean; why?: string }): Promise<BareRun> {
  // The console goes to a regular file, not a pipe to us: a program doing one write() per byte would otherwise
  // be measuring how fast node reads a pipe.
  const file = join(tmpdir(), `vpl011-bench-bare-${process.pid}-${randomInt(1e9)}.out`);
  const fd = openSync(file, 'w+', 0o600);
  try {
    const p = start(fd);
    const timer = sleep(timeoutMs).then(() => 'timeout' as const);
    const r = await Promise.race([p.exited, timer]);
    const seconds = Number(process.hrtime.bigint() - p.startNs) / 1e9;
    if (r === 'timeout') {
      await p.kill(2000);
      return { error: `no exit within ${timeoutMs / 1000} s (${fstatSync(fd).size} bytes written); killed` };
    }
    if (r.code !== 0) return { seconds, error: `exited with ${r.signal ?? `code ${r.code}`}: ${p.stderr.trim().split('\n').slice(-3).join(' / ')}` };
    const out: BareRun = { seconds, mbs: bytes / seconds / 1e6 };
    if (check) {
      const got = readFileSync(file);
      const c = check(got);
      out.ok = c.ok;
      out.detail = c.ok ? `${got.length} bytes, all equal` : c.why ?? 'differs';
    }
    return out;
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
}
