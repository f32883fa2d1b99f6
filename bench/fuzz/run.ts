// `npm run fuzz`: the fuzz campaigns against hostile input, seeded and reproducible, with their figures
// written to bench/RESULTS.md ("## Fuzz campaigns"). Not part of `npm test` (minutes of work; test/fuzz.test.ts runs
// a small fixed-seed slice of each).
//
//   npm run fuzz                                  every campaign, a fresh seed (printed)
//   npm run fuzz -- --seed 0x1234abcd             replay a run (each campaign's seed is derived from this one)
//   npm run fuzz -- --only mmio,config --scale 0.1   some campaigns, a tenth of the counts
//   npm run fuzz -- --no-write                    do not touch bench/RESULTS.md
//
// Exit status 1 if any campaign failed (the figures, with the failure, are still written: found-and-open).
import { Worker } from 'node:worker_threads';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { markdownTable, replaceSection } from '../lib/results.js';
import { parseSeed, randomSeed, subSeed } from './prng.js';
import type { MmioCampaignOptions, MmioCampaignResult } from './mmio.js';
import { runRingCampaign, type RingCampaignResult } from './ring.js';
import type { ConfigCampaignOptions, ConfigCampaignResult } from './config.js';
import { runControlCampaign, type ControlCampaignResult } from './control.js';
import { VPL011_PROFILES } from '../../src/device/vpl011.js';
import { hex } from '../../src/util/hex.js';
import { errorMessage } from '../../src/util/errors.js';

const CAMPAIGNS = ['mmio', 'ring', 'config', 'control'] as const;
type Campaign = (typeof CAMPAIGNS)[number];

/** How many cases each campaign runs by default. */
export const FULL_COUNTS = { mmioOps: 10_000_000, ringMutations: 1_000_000, configFiles: 100_000, controlRequests: 100_000 };

/** What these campaigns found that is fixed (kept in the figures so that a reader sees what they are worth). */
const FOUND_AND_FIXED = [
  '- control: `{"op":"toString"}` (or any Object.prototype name as op) killed the daemon with a TypeError thrown out of ' +
    'the socket handler; fixed in src/daemon/protocol.ts, test/daemon-protocol.test.ts and the control slice of test/fuzz.test.ts failed before.',
  '- config: parse time was quadratic in the number of bad lines (each error quoted its line by copying and splitting the ' +
    'rest of the file): a 256 KiB file took minutes on the daemon\'s event loop; fixed in src/toolstack/config.ts, ' +
    'test/config-linear.test.ts failed before.',
  '- config: a config nested 200,000 levels deep overflowed the parser\'s stack (RangeError); lists now nest at most 16 ' +
    'deep with an error naming file:line; test/fuzz.test.ts and test/cli-bad-input.test.ts failed before.',
  '- control: the daemon gave a console whose domain had no vuart port the event-channel port 1, so closing that ' +
    'console removed another console\'s handler: that domain\'s output stayed in its ring (the echo domain fell silent ' +
    'in 2 of 3 full runs); src/daemon/daemon.ts and src/console/console.ts, test/console-hold.test.ts failed before.',
];

const RESULTS = fileURLToPath(new URL('../../../bench/RESULTS.md', import.meta.url));
const HEADING = 'Fuzz campaigns';

interface Args {
  seed: number;
  only: Campaign[];
  scale: number;
  write: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { seed: randomSeed(), only: [...CAMPAIGNS], scale: 1, write: true };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const v = (): string => {
      const x = argv[++i];
      if (x === undefined) throw new RangeError(`${k}: missing value`);
      return x;
    };
    if (k === '--seed') a.seed = parseSeed(v());
    else if (k === '--only') {
      const names = v().split(',');
      for (const n of names) if (!(CAMPAIGNS as readonly string[]).includes(n)) throw new RangeError(`--only: unknown campaign ${n} (${CAMPAIGNS.join(', ')})`);
      a.only = names as Campaign[];
    } else if (k === '--scale') {
      a.scale = Number(v());
      if (!(a.scale > 0 && a.scale <= 10)) throw new RangeError('--scale: expected a number in (0, 10]');
    } else if (k === '--no-write') a.write = false;
    else throw new RangeError(`unknown argument ${k}`);
  }
  return a;
}

/** Run a campaign module's entry in a worker thread and resolve with the result it posts. */
function inWorker<T>(file: string, data: unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL(file, import.meta.url), { workerData: data });
    w.once('message', (r: T) => resolve(r));
    w.once('error', reject);
    w.once('exit', (code) => reject(new Error(`${file} exited (${code}) without a result`)));
  });
}

const n = (x: number) => x.toLocaleString('en-US');
const say = (m: string) => process.stderr.write(m + '\n');

async function main(): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    say(`fuzz: ${errorMessage(e)}`);
    return 2;
  }
  const { seed, scale } = args;
  const count = (x: number) => Math.max(1, Math.round(x * scale));
  const command = `npm run fuzz -- --seed ${hex(seed, 8)}${args.only.length < CAMPAIGNS.length ? ` --only ${args.only.join(',')}` : ''}${scale !== 1 ? ` --scale ${scale}` : ''}`;
  say(`fuzz: seed ${hex(seed, 8)} (replay: ${command})`);
  const load0 = loadavg()[0]!;
  const rows: string[][] = [];
  const notes: string[] = [];
  let failed = false;
  const record = (campaign: string, what: string, seconds: number, subseed: number, failure: string | undefined, details: string) => {
    rows.push([campaign, what, seconds.toFixed(1), hex(subseed, 8), failure ? '**FAILED**' : 'ok', details]);
    if (failure) {
      failed = true;
      notes.push(`- ${campaign} (seed ${hex(subseed, 8)}): ${failure.split('\n').slice(0, 12).join('\n  ')}`);
    }
  };

  if (args.only.includes('mmio')) {
    const per = count(FULL_COUNTS.mmioOps / VPL011_PROFILES.length);
    say(`fuzz/mmio: ${n(per)} operations per profile (${VPL011_PROFILES.join(', ')}), one worker thread each`);
    const results = await Promise.all(VPL011_PROFILES.map((profile, i) => inWorker<MmioCampaignResult>('./mmio-worker.js', { profile, seed: subSeed(seed, 1 + i), ops: per } satisfies MmioCampaignOptions)));
    for (const r of results) {
      say(`fuzz/mmio ${r.profile}: ${n(r.ops)} ops in ${r.seconds.toFixed(1)} s${r.failure ? ': FAILED\n' + r.failure : ''}`);
      record(
        `MMIO (${r.profile})`,
        `${n(r.ops)} operations (${n(r.mmioAccesses)} accesses, ${n(r.backendActions)} backend actions, ${n(r.hostileIndexWrites)} hostile index writes)`,
        r.seconds,
        r.seed,
        r.failure,
        `invariants after every op (${n(r.checkReads)} register reads); ${n(r.exactChecks)} exact FR/RIS checks against the raw indices ` +
          `(OUT full ${n(r.reached.outFull)}, empty ${n(r.reached.outEmpty)}; IN full ${n(r.reached.inFull)}, empty ${n(r.reached.inEmpty)}); ` +
          `${n(r.refused)} refused accesses; ${n(r.corruptNotifications)} notifications found a corrupt half, device counted ${n(r.corruptRingEvents)} corrupt events`,
      );
    }
  }

  if (args.only.includes('ring')) {
    const results: RingCampaignResult[] = [];
    for (const [i, profile] of VPL011_PROFILES.entries()) {
      const mutations = count(FULL_COUNTS.ringMutations / VPL011_PROFILES.length);
      say(`fuzz/ring: ${n(mutations)} hostile mutations of a ${profile} victim's ring from a worker thread`);
      const r = await runRingCampaign({ seed: subSeed(seed, 10 + i), mutations, victimProfile: profile });
      results.push(r);
      say(`fuzz/ring ${profile}: ${n(r.mutations)} mutations in ${r.seconds.toFixed(1)} s${r.failure ? ': FAILED\n' + r.failure : ''}`);
      record(
        `hostile ring (${profile} victim)`,
        `${n(r.mutations)} mutations (indices and bytes, another thread), ${n(r.victimAccesses)} victim accesses`,
        r.seconds,
        r.seed,
        r.failure,
        `corrupt events: device ${n(r.victimCorruptDevice)}, console ${n(r.victimCorruptConsole)}; healthy console exact: ${n(r.healthyBytesOut)} B out, ` +
          `${n(r.healthyBytesIn)} B in; slowest 64 accesses ${r.maxChunkMs.toFixed(1)} ms, slowest backend turn ${r.maxBackendTurnMs.toFixed(1)} ms; canaries intact`,
      );
    }
  }

  // The config campaign (a worker thread) runs beside the control campaign (mostly the daemon's process).
  let configRun: Promise<ConfigCampaignResult> | undefined;
  if (args.only.includes('config')) {
    const files = count(FULL_COUNTS.configFiles);
    say(`fuzz/config: ${n(files)} random config files through parseConfig (worker thread)`);
    const valid = `name = "fz"\nkind = "bare"\nkernel = "${fileURLToPath(import.meta.url)}"\nmemory = 16\n`;
    configRun = inWorker<ConfigCampaignResult>('./config-worker.js', { seed: subSeed(seed, 20), files, valid, file: '/tmp/vpl011-fuzz/fz.cfg' } satisfies ConfigCampaignOptions);
    configRun.catch(() => {}); // handled where it is awaited, after the control campaign
  }

  if (args.only.includes('control')) {
    const requests = count(FULL_COUNTS.controlRequests);
    say(`fuzz/control: ${n(requests)} requests to a real daemon (private run dir)`);
    const r: ControlCampaignResult = await runControlCampaign({ seed: subSeed(seed, 30), requests });
    say(`fuzz/control: ${n(r.requests)} requests in ${r.seconds.toFixed(1)} s; crashes ${r.crashes.length}${r.failure ? ': FAILED\n' + r.failure : ''}`);
    for (const c of r.crashes.slice(0, 3)) notes.push(`- control: daemon died: ${c.output.split('\n').filter((l) => /Error|at /.test(l)).slice(0, 3).join(' | ')}`);
    record(
      'control socket',
      `${n(r.requests)} requests on ${n(r.connections)} connections (${n(r.configFilesSent)} random config files via up, ${n(r.overlongLines)} over-long lines, ${n(r.attaches)} attaches)`,
      r.seconds,
      r.seed,
      r.failure,
      `${n(r.responses)} well-formed responses; slowest connection ${(r.maxResponseMs / 1000).toFixed(1)} s; ${n(r.domainsStarted)} domains started by valid configs (destroyed); ` +
        `daemon crashes ${r.crashes.length}; alive, answering and the echo domain echoing at the end: ${r.aliveAtEnd ? 'yes' : 'NO'}`,
    );
  }

  if (configRun) {
    let r: ConfigCampaignResult;
    try {
      r = await configRun;
    } catch (e) {
      r = { seed: subSeed(seed, 20), files: 0, valid: 0, rejected: 0, byKind: {}, maxParseMs: 0, bytes: 0, seconds: 0,
        defects: [{ kind: `the campaign's worker died: ${errorMessage(e)}`, count: 1, firstIndex: -1, example: '' }] };
    }
    const defects = r.defects.map((d) => `${d.kind} x${d.count} (first at file #${d.firstIndex})`).join('; ');
    say(`fuzz/config: ${n(r.files)} files in ${r.seconds.toFixed(1)} s; ${r.defects.length ? 'DEFECTS: ' + defects : 'no defect'}`);
    record(
      'config parser',
      `${n(r.files)} files (${Object.entries(r.byKind).map(([k, v]) => `${k} ${n(v)}`).join(', ')}; ${(r.bytes / 1e6).toFixed(0)} MB)`,
      r.seconds,
      r.seed,
      r.defects.length ? `exceptions other than ConfigError: ${defects}` : undefined,
      `${n(r.valid)} valid, ${n(r.rejected)} rejected with file:line: field messages; slowest parse ${r.maxParseMs.toFixed(0)} ms`,
    );
  }

  const load1 = loadavg()[0]!;
  const body = [
    `Measured ${new Date().toISOString()} with \`${command}\` (code in bench/fuzz/; node ${process.version}, ${cpus().length} host CPUs; ` +
      `load average ${load0.toFixed(1)} at the start, ${load1.toFixed(1)} at the end: the machine is shared, so seconds are wall time under that load).`,
    '',
    markdownTable(['campaign', 'count', 's', 'seed', 'result', 'checked'], rows),
    '',
    'Every campaign follows from the run seed above (each campaign\'s seed is derived from it and shown); the MMIO and config ' +
      'campaigns are single-threaded and replay exactly, the ring campaign replays its operation sequences but not the ' +
      'interleaving of its two threads, the control campaign replays its requests but not the daemon\'s timing. ' +
      'A fixed-seed slice of each runs in `npm test` (test/fuzz.test.ts).',
    ...(notes.length ? ['', 'Found in this run (open):', ...notes] : []),
    '',
    'Found by these campaigns earlier and fixed:',
    ...FOUND_AND_FIXED,
  ].join('\n');
  process.stdout.write(body + '\n');
  if (args.write) {
    replaceSection(RESULTS, HEADING, body);
    say(`fuzz: figures written to ${RESULTS}`);
  }
  return failed ? 1 : 0;
}

process.exitCode = await main();
