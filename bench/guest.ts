// Guest workloads, side by side: our VMM (`node bin/vpl011.js run`) and QEMU 7.2 on the same Debian kernel and
// busybox initramfs, console on each VMM's stdin/stdout pipes, in the same run. Prints a table with the
// ratios and whether each goal is met, and replaces the "Guest workloads vs QEMU" section of bench/RESULTS.md.
// Run: npm run build && node dist/bench/guest.js [--runs N] [--only qemu|vpl011] [--part linux|bare] [--no-results]
// (RESULTS.md is only rewritten by a full run: both VMMs, both parts.)
// (also part of `npm run bench`, or alone: node dist/bench/run.js guest). $VPL011_BENCH_RUNS sets the default N.
import { execFileSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { cacheDir } from '../src/toolstack/cache.js';
import { ensureGuestImages } from '../src/toolstack/fetch.js';
import { ConsoleProcess, killAll } from '../test/lib/console-process.js';
import { markdownTable, replaceSection } from './lib/results.js';
import { median } from './lib/stats.js';
import { QEMU, qemuBareArgs, qemuLinuxArgs, repoRoot, vpl011BareArgs, vpl011Command, vpl011LinuxArgs, vpl011NodeFlags } from './lib/targets.js';
import { bareRun, DEFAULT_LIMITS, linuxSession, type BareRun, type LinuxRun } from './lib/workloads.js';
import { BARE_TX_BYTES, buildBareTx, checkBareTxOutput, QEMU_VIRT_UART, XEN_GUEST_PL011 } from './qemu/bare-tx.js';
import { errorMessage } from '../src/util/errors.js';

export const SECTION = 'Guest workloads vs QEMU';

/** QEMU 7.2 on this 2-core machine, median of 5 (docs/UPSTREAM.md §3): shown next to this run's own QEMU figures. */
const REFERENCE = { bootS: 1.13, txMBs: 1.33, rxMBs: 0.15, echoP50Ms: 1.04, echoP99Ms: 1.84, idlePct: 0.3, bareMBs: 1.06 };

/** vpl011-ts: our VMM on its pure-TypeScript vCPU path (VPL011_NATIVE=0), the A/B baseline of the native path. */
type Target = 'qemu' | 'vpl011' | 'vpl011-ts';
const TARGETS: readonly Target[] = ['qemu', 'vpl011', 'vpl011-ts'];

/** --timeout for our VMM: a Linux session, a bare-metal run (each also bounded by the harness's own limits). */
const VPL011_SESSION_TIMEOUT_S = 600;
const VPL011_BARE_TIMEOUT_S = 170;

interface Options {
  runs: number;
  targets: Target[];
  /** Which halves to run: the Linux sessions, the bare-metal flood, or both. */
  linux: boolean;
  bare: boolean;
  writeResults: boolean;
}

function parseOptions(argv: string[]): Options {
  const envRuns = Number(process.env.VPL011_BENCH_RUNS);
  const o: Options = { runs: Number.isInteger(envRuns) && envRuns > 0 ? envRuns : 3, targets: [...TARGETS], linux: true, bare: true, writeResults: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--runs') {
      const n = Number(argv[++i]);
      if (!Number.isInteger(n) || n < 1 || n > 50) throw new Error('--runs expects a whole number 1..50');
      o.runs = n;
    } else if (a === '--only') {
      const t = argv[++i];
      const ts = (t ?? '').split(',') as Target[];
      if (ts.length === 0 || !ts.every((x) => TARGETS.includes(x))) throw new Error('--only expects qemu, vpl011 or vpl011-ts (comma-separated)');
      o.targets = ts;
    } else if (a === '--part') {
      const p = argv[++i];
      if (p !== 'linux' && p !== 'bare') throw new Error('--part expects linux or bare');
      o.linux = p === 'linux';
      o.bare = p === 'bare';
    } else if (a === '--no-results') {
      o.writeResults = false;
    }
  }
  return o;
}

const say = (s: string) => process.stdout.write(`[guest] ${s}\n`);

interface Collected {
  /** 1-minute load average at the start and the end: the machine is shared, and these figures are noisy under load. */
  load: number[];
  linux: Record<Target, LinuxRun[]>;
  bare: Record<Target | 'qemu-file', BareRun[]>;
  notes: string[];
}

function fmt(x: number | undefined, digits: number): string {
  return x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(digits);
}

function med(runs: LinuxRun[] | BareRun[], key: string): number {
  return median(runs.map((r) => (r as unknown as Record<string, unknown>)[key]).filter((v): v is number => typeof v === 'number'));
}

function okCount(runs: Array<{ ok?: boolean } | LinuxRun>, key: 'ok' | 'txOk' | 'rxOk'): string {
  const vals = runs.map((r) => (r as Record<string, unknown>)[key]).filter((v) => typeof v === 'boolean');
  return `${vals.filter((v) => v).length}/${runs.length}`;
}

/** One table row: our figure against this run's QEMU figure, the ratio, the goal, met or not. */
function row(name: string, q: number, v: number, digits: number, goal: string, met: (ratio: number) => boolean, extra = true, ts = NaN): string[] {
  const ratio = v / q;
  const have = Number.isFinite(q) && Number.isFinite(v) && q > 0;
  const verdict = goal === '(info)' ? '—' : met(ratio) && extra ? 'met' : 'NOT met';
  const tsCell = Number.isFinite(ts) ? `${fmt(ts, digits)}${Number.isFinite(q) && q > 0 ? ` (${(ts / q).toFixed(2)}×)` : ''}` : '—';
  return [name, fmt(q, digits), fmt(v, digits), have ? `${ratio.toFixed(2)}×` : '—', goal, have ? verdict : 'not measured', tsCell];
}

function report(c: Collected, opts: Options, cmdline: string): string {
  const q = c.linux.qemu;
  const v = c.linux.vpl011;
  const qb = c.bare.qemu;
  const qf = c.bare['qemu-file'];
  const vb = c.bare.vpl011;
  const t = c.linux['vpl011-ts'];
  const tb = c.bare['vpl011-ts'];
  const rxLossFree = v.length > 0 && v.every((r) => r.rxOk === true);
  const txAllOk = v.length > 0 && v.every((r) => r.txOk === true);
  // Bare metal: judged against the faster QEMU configuration (-serial stdio or -serial file:/dev/null).
  const qemuBare = Math.max(med(qb, 'mbs'), Number.isFinite(med(qf, 'mbs')) ? med(qf, 'mbs') : -Infinity);
  const rows = [
    row('boot to first prompt (s)', med(q, 'bootS'), med(v, 'bootS'), 2, '≤ 1.25×', (r) => r <= 1.25, true, med(t, 'bootS')),
    row('tx: cat 4 MiB file (MB/s)', med(q, 'txMBs'), med(v, 'txMBs'), 2, '≥ 3×, every byte', (r) => r >= 3, txAllOk, med(t, 'txMBs')),
    row('rx: 1 MiB into head -c (MB/s)', med(q, 'rxMBs'), med(v, 'rxMBs'), 3, '≥ 10×, md5 equal', (r) => r >= 10, rxLossFree, med(t, 'rxMBs')),
    row('echo round trip p50 (ms)', med(q, 'echoP50Ms'), med(v, 'echoP50Ms'), 3, '(info)', () => true, true, med(t, 'echoP50Ms')),
    row('echo round trip p99 (ms)', med(q, 'echoP99Ms'), med(v, 'echoP99Ms'), 3, '≤ 0.5×', (r) => r <= 0.5, true, med(t, 'echoP99Ms')),
    row('idle at the prompt (% of a core)', med(q, 'idlePct'), med(v, 'idlePct'), 2, '≤ QEMU', (r) => r <= 1.0, true, med(t, 'idlePct')),
    row('bare metal 4,400,000 bytes (MB/s)', qemuBare, med(vb, 'mbs'), 3, '≥ 3×', (r) => r >= 3, vb.every((r) => r.ok === true), med(tb, 'mbs')),
  ];
  const table = markdownTable(['workload', 'QEMU 7.2', 'vpl011', 'vpl011 / QEMU', 'goal', 'result', 'A/B: TypeScript path (/ QEMU)'], rows);
  const checks = [
    `- tx bytes complete and equal (onlcr applied): QEMU ${okCount(q, 'txOk')}, vpl011 ${okCount(v, 'txOk')}`,
    `- rx md5 equal: QEMU ${okCount(q, 'rxOk')}, vpl011 ${okCount(v, 'rxOk')}`,
    `- bare metal output complete and equal: QEMU -serial stdio ${okCount(qb, 'ok')}, vpl011 ${okCount(vb, 'ok')}; `
      + `QEMU -serial stdio ${fmt(med(qb, 'mbs'), 3)} MB/s, QEMU -serial file:/dev/null ${fmt(med(qf, 'mbs'), 3)} MB/s (the faster is the baseline)`,
  ];
  const perRun = (name: string, runs: LinuxRun[]) => runs.map((r, i) => `- ${name} run ${i + 1}: boot ${fmt(r.bootS, 2)} s, idle ${fmt(r.idlePct, 2)} %, `
    + `tx ${fmt(r.txMBs, 2)} MB/s${r.txDetail ? ` (${r.txDetail})` : ''}, echo p50/p99 ${fmt(r.echoP50Ms, 3)}/${fmt(r.echoP99Ms, 3)} ms, `
    + `rx ${fmt(r.rxMBs, 3)} MB/s${r.rxDetail ? ` (${r.rxDetail})` : ''}; ${r.exit ?? ''}${r.error ? `; FAILED: ${r.error.split('\n')[0]}` : ''}`);
  const bareRuns = (name: string, runs: BareRun[]) => runs.map((r, i) => `- ${name} bare run ${i + 1}: ${fmt(r.seconds, 2)} s, ${fmt(r.mbs, 3)} MB/s`
    + `${r.detail ? ` (${r.detail})` : ''}${r.error ? `; FAILED: ${r.error.split('\n')[0]}` : ''}`);
  let qemuVersion = 'unknown';
  try {
    qemuVersion = execFileSync(QEMU, ['--version'], { encoding: 'utf8', timeout: 10_000 }).split('\n')[0]!;
  } catch {
    // reported as unknown
  }
  return [
    `Measured ${new Date().toISOString()} with \`${cmdline}\` (this part alone: \`node dist/bench/guest.js\`; median of ${opts.runs} run(s) per VMM, alternating; `
      + `${cpus().length} host CPUs, ${cpus()[0]?.model ?? ''}, node ${process.version}, ${qemuVersion}; `
      + `1-minute load average ${c.load.map((l) => l.toFixed(1)).join(' at the start, ')} at the end: other work shares the machine).`,
    '',
    table,
    '',
    'Ratios are vpl011 / QEMU of the figure shown (for times lower is better, for rates higher is better). "vpl011" is the '
      + 'default build (the native fast path, src/cpu/native/fastpath.c); the last column is the same VMM with VPL011_NATIVE=0 '
      + '(the pure-TypeScript vCPU path), measured in the same run, alternating.',
    'How each VMM is read (test/lib/console-process.ts): a Linux session\'s output (boot log, tx, rx) is read in batches, '
      + 'at most one read every 2 ms, for both VMMs (QEMU writes each guest byte with its own write(): an eager reader would '
      + 'wake per byte and measure itself); the echo workload reads eagerly (every chunk as it arrives), for both. Bare metal: '
      + 'each VMM\'s stdout is a regular file (QEMU also with `-serial file:/dev/null`).',
    `Reference QEMU figures from docs (docs/UPSTREAM.md §3, median of 5): boot ${REFERENCE.bootS} s, tx ${REFERENCE.txMBs} MB/s, `
      + `rx ${REFERENCE.rxMBs} MB/s, echo ${REFERENCE.echoP50Ms}/${REFERENCE.echoP99Ms} ms, idle ${REFERENCE.idlePct} %, bare ${REFERENCE.bareMBs} MB/s.`,
    '',
    'Checks:',
    ...checks,
    ...c.notes.map((n) => `- ${n}`),
    '',
    'How it is measured (bench/guest.ts, bench/lib/workloads.ts):',
    `- QEMU: \`${QEMU} ${qemuLinuxArgs('<Image>', '<initramfs>').map((a) => (a.includes(' ') ? `'${a}'` : a)).join(' ')}\` `
      + '(`-nographic -serial stdio` together are refused by QEMU 7.2: "cannot use stdio by multiple character devices"; '
      + '`-display none -monitor none -serial stdio` is the same console without the monitor). '
      + `Ours: \`node ${vpl011NodeFlags().map((f) => `${f} `).join('')}bin/vpl011.js ${vpl011LinuxArgs(VPL011_SESSION_TIMEOUT_S).join(' ')}\` (default guest, \`console=ttyAMA0 earlycon\`; the node flags are bin/node-flags, as ./vpl011 runs it). `
      + 'Same Debian kernel and busybox initramfs (ensureGuestImages()), console on stdin/stdout pipes.',
    '- boot: from just before spawn() to the first `/ # ` on stdout.',
    '- idle: 1 s after the prompt, CPU time of every thread of the VMM process (/proc/<pid>/task/*/schedstat) over 10 s.',
    '- tx: `mount -t tmpfs tmpfs /tmp; sh -c \'yes LINE | head -c 4194304 >/tmp/tx\'` (not timed; through `sh -c` because '
      + 'a pipeline forked by the interactive ash keeps its unbuffered stdio and `yes` then writes 5 bytes per write(): 110 s under QEMU), then '
      + '`cat /tmp/tx; echo TX-END-$((n+1))` timed from the write of that line to the marker; MB/s = 4,194,304 / s / 10^6; '
      + 'the bytes between the echoed command and the marker must be exactly the file with \\n → \\r\\n.',
    `- echo: \`stty raw -echo isig\`, then \`echo EC-GO-$((n+1)); cat\`; ${20} warm-up and 200 measured single characters, `
      + 'each sent after the previous one came back; ^C ends cat, `stty sane`.',
    '- rx: `stty raw -echo`, then `echo RX-GO-$((n+1)); head -c 1048576 > /tmp/in; md5sum /tmp/in`; after the marker the host '
      + 'writes 1 MiB of random bytes 0x20..0x7e in 64 KiB writes, each waiting for the pipe to drain; timed to the md5sum line; '
      + 'MB/s = 1,048,576 / s / 10^6; md5 compared with the host\'s.',
    `- bare metal: bench/qemu/bare-tx.ts (our assembly, built with aarch64-linux-gnu-as/ld into the cache) writes `
      + `${BARE_TX_BYTES.toLocaleString('en-US')} bytes polling FR.TXFF, waits for FR.BUSY clear, PSCI SYSTEM_OFF by hvc; `
      + `UART at 0x${QEMU_VIRT_UART.toString(16)} for QEMU (\`${QEMU} ${qemuBareArgs('<elf>', 'stdio').join(' ')}\`, and with `
      + `\`-serial file:/dev/null\`); ours runs guests/bare/tx-flood.S's flat binary (UART 0x${XEN_GUEST_PL011.toString(16)}, same loop, bytes a..z) when it builds, `
      + `else the program above assembled for 0x${XEN_GUEST_PL011.toString(16)} (\`node ${vpl011NodeFlags().map((f) => `${f} `).join('')}bin/vpl011.js ${vpl011BareArgs('<elf>', VPL011_BARE_TIMEOUT_S).join(' ')}\`); `
      + 'the VMM\'s stdout is a regular file (checked byte for byte after the run, not a pipe to node, whose reading of '
      + 'one-byte writes would be what is measured); wall time from spawn to exit.',
    '',
    'Per run:',
    ...perRun('QEMU', q),
    ...perRun('vpl011', v),
    ...perRun('vpl011 TypeScript path', t),
    ...bareRuns('QEMU (-serial stdio)', qb),
    ...bareRuns('QEMU (-serial file:/dev/null)', qf),
    ...bareRuns('vpl011', vb),
    ...bareRuns('vpl011 TypeScript path', tb),
  ].join('\n');
}

interface BareProgram {
  /** An ELF, or a flat binary entered at the RAM base. */
  elf: string;
  what: string;
  check: (out: Buffer) => { ok: boolean; why?: string };
}

/** bench/qemu/bare-tx.ts assembled for one UART base. */
function ownProgram(uartBase: number): BareProgram {
  return { elf: buildBareTx(uartBase), what: 'bench/qemu/bare-tx.ts', check: (out) => checkBareTxOutput(out) };
}

/** guests/bare/tx-flood.S's output with x1 = 0 at entry: 4,400,000 bytes cycling 'a'..'z'. */
function checkTxFlood(out: Buffer): { ok: boolean; why?: string } {
  if (out.length !== BARE_TX_BYTES) return { ok: false, why: `received ${out.length} bytes, expected ${BARE_TX_BYTES}` };
  for (let i = 0; i < out.length; i++) {
    if (out[i] !== 0x61 + (i % 26)) return { ok: false, why: `byte ${i} is 0x${out[i]!.toString(16)}` };
  }
  return { ok: true };
}

/**
 * For our VMM: guests/bare/tx-flood (another helper's, built by src/vmm/bare-guests.ts into the cache) when it
 * builds, else our own program assembled for the vpl011 at 0x22000000.
 */
async function oursBareProgram(notes: string[]): Promise<BareProgram> {
  try {
    const mod = (await import('../src/vmm/bare-guests.js')) as { buildBareGuest?: (name: 'tx-flood') => Uint8Array };
    if (typeof mod.buildBareGuest !== 'function') throw new Error('src/vmm/bare-guests.js has no buildBareGuest');
    mod.buildBareGuest('tx-flood');
    // The flat binary, loaded raw at the RAM base (it is linked at 0x40000000): the intermediate ELF's first
    // PT_LOAD also covers its headers, one 64 KiB page below RAM, and the ELF loader rightly refuses it.
    const elf = join(cacheDir(), 'bare', 'tx-flood.bin');
    if (!existsSync(elf)) throw new Error(`${elf} was not built`);
    notes.push('bare metal on vpl011: guests/bare/tx-flood.S as its flat binary (same loop: poll FR.TXFF, write DR; no FR.BUSY wait), bytes a..z');
    return { elf, what: 'guests/bare/tx-flood.S', check: checkTxFlood };
  } catch (e) {
    notes.push(`bare metal on vpl011: guests/bare/tx-flood unavailable (${errorMessage(e).split('\n')[0]}); our own program at 0x22000000 instead`);
    return ownProgram(XEN_GUEST_PL011);
  }
}

export async function run(argv: string[] = []): Promise<void> {
  const opts = parseOptions(argv);
  const c: Collected = { load: [loadavg()[0]!], linux: { qemu: [], vpl011: [], 'vpl011-ts': [] }, bare: { qemu: [], 'qemu-file': [], vpl011: [], 'vpl011-ts': [] }, notes: [] };
  const images = await ensureGuestImages({ log: say, quiet: true });
  const ours = vpl011Command();
  const targets = opts.targets.filter((t) => {
    if (t !== 'qemu' && !ours) {
      c.notes.push('vpl011 not measured: bin/vpl011.js is not in the tree');
      say('bin/vpl011.js is missing: our VMM is not measured');
      return false;
    }
    return true;
  });
  const start = (t: Target, args: string[]) => (stdoutFd?: number) =>
    t === 'qemu'
      ? new ConsoleProcess('qemu', QEMU, args, { stdoutFd })
      : new ConsoleProcess(t, ours!.cmd, [...ours!.args, ...args], { cwd: ours!.cwd, stdoutFd, env: { VPL011_NATIVE: t === 'vpl011-ts' ? '0' : '1' } });

  try {
    for (let i = 0; opts.linux && i < opts.runs; i++) {
      for (const t of targets) {
        say(`Linux session ${i + 1}/${opts.runs} on ${t}`);
        const args = t === 'qemu' ? qemuLinuxArgs(images.kernel, images.initrd) : vpl011LinuxArgs(VPL011_SESSION_TIMEOUT_S);
        c.linux[t].push(await linuxSession(start(t, args), DEFAULT_LIMITS, (s) => say(`  ${t}: ${s}`)));
      }
    }
    const bareElf: Record<Target, BareProgram | undefined> = { qemu: undefined, vpl011: undefined, 'vpl011-ts': undefined };
    for (const t of opts.bare ? targets : []) {
      try {
        bareElf[t] = t === 'qemu' ? ownProgram(QEMU_VIRT_UART) : await oursBareProgram(c.notes);
      } catch (e) {
        c.notes.push(`bare metal on ${t} not measured: ${errorMessage(e)}`);
      }
    }
    for (let i = 0; i < opts.runs; i++) {
      for (const t of targets) {
        const prog = bareElf[t];
        if (!prog) continue;
        say(`bare metal ${i + 1}/${opts.runs} on ${t}`);
        if (t === 'qemu') {
          c.bare.qemu.push(await bareRun(start('qemu', qemuBareArgs(prog.elf, 'stdio')), BARE_TX_BYTES, 180_000, prog.check));
          c.bare['qemu-file'].push(await bareRun(start('qemu', qemuBareArgs(prog.elf, 'file:/dev/null')), BARE_TX_BYTES, 180_000));
        } else {
          c.bare[t].push(await bareRun(start(t, vpl011BareArgs(prog.elf, VPL011_BARE_TIMEOUT_S)), BARE_TX_BYTES, 180_000, prog.check));
        }
        const last = c.bare[t].at(-1)!;
        say(`  ${t}: ${fmt(last.mbs, 3)} MB/s ${last.detail ?? ''}${last.error ? ` FAILED: ${last.error}` : ''}`);
      }
    }
  } finally {
    killAll();
  }
  c.load.push(loadavg()[0]!);

  const cmdline = argv.length > 0 ? `node dist/bench/guest.js ${argv.join(' ')}` : 'npm run bench';
  const text = report(c, opts, cmdline);
  process.stdout.write(`\n## ${SECTION}\n\n${text}\n`);
  if (opts.writeResults && opts.targets.includes('qemu') && opts.targets.includes('vpl011') && opts.linux && opts.bare) {
    const file = join(repoRoot(), 'bench', 'RESULTS.md');
    replaceSection(file, SECTION, text);
    say(`section "${SECTION}" of ${file} replaced`);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await run(process.argv.slice(2));
}
