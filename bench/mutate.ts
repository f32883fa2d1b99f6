// `npm run mutate [-- FILE...] [--survivors]`: StrykerJS mutation testing of the pure layers (stryker.config.json:
// src/device/, src/xen/ring.ts, src/xen/evtchn.ts, src/toolstack/config.ts, src/daemon/durable-log.ts, against the
// unit tests that cover them), then a score per file and a last line `mutation score N% (killed K of M)`.
// FILE arguments restrict the run to those source files (per-file runs on a busy machine); incremental mode
// (reports/stryker-incremental.json) re-tests only mutants whose code or covering tests changed.
// Killed counts Stryker's Killed and Timeout (a mutant that hangs a test is detected); M is every mutant that ran
// (NoCoverage counts as not killed; compile/runtime errors and ignored mutants are not mutants that ran).
// Runs one file at a time (reports/mutation/<file>.json, reports/incremental/<file>.json).
// --report-only prints the scores of the last runs without running Stryker; --survivors lists the survivors.
// See bench/MUTATION.md.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';

interface Mutant {
  id: string;
  mutatorName: string;
  replacement?: string;
  status: string;
  location: { start: { line: number; column: number } };
}
interface Report {
  files: Record<string, { mutants: Mutant[] }>;
}

/** The pure layers (stryker.config.json `mutate` says the same). */
const LAYERS = [
  'src/daemon/durable-log.ts',
  'src/toolstack/config.ts',
  'src/device/spec.ts',
  'src/xen/evtchn.ts',
  'src/xen/ring.ts',
  'src/device/vpl011.ts',
];
const STRYKER_REPORT = 'reports/mutation/mutation.json';
const slug = (file: string): string => file.replace(/^src\//, '').replace(/[/.]/g, '-');
const reportOf = (file: string): string => `reports/mutation/${slug(file)}.json`;

const args = process.argv.slice(2);
const files = args.filter((a) => !a.startsWith('--'));
const targets = files.length > 0 ? files : LAYERS;
const showSurvivors = args.includes('--survivors');

// One Stryker run per file: each saves its report and its incremental state as it ends (a long run on a busy
// machine keeps what it finished), and a later run re-tests only what changed.
if (!args.includes('--report-only')) {
  mkdirSync('reports/mutation', { recursive: true });
  for (const file of targets) {
    console.log(`mutate: ${file}`);
    const r = spawnSync('npx', ['stryker', 'run', '--mutate', file, '--incrementalFile', `reports/incremental/${slug(file)}.json`], {
      stdio: 'inherit',
    });
    if (r.status !== 0) {
      console.error(`mutate: stryker exited with ${r.status ?? r.signal} on ${file}`);
      process.exit(1);
    }
    copyFileSync(STRYKER_REPORT, reportOf(file));
  }
}

const DETECTED = new Set(['Killed', 'Timeout']);
const UNDETECTED = new Set(['Survived', 'NoCoverage']);
let killed = 0;
let total = 0;
const survivors: string[] = [];
for (const target of targets) {
  if (!existsSync(reportOf(target))) {
    console.log(`${target}: not run yet (npm run mutate -- ${target})`);
    continue;
  }
  const report = JSON.parse(readFileSync(reportOf(target), 'utf8')) as Report;
  for (const [file, { mutants }] of Object.entries(report.files)) {
    const k = mutants.filter((m) => DETECTED.has(m.status)).length;
    const u = mutants.filter((m) => UNDETECTED.has(m.status));
    const m = k + u.length;
    killed += k;
    total += m;
    console.log(`${file}: ${m === 0 ? 100 : ((100 * k) / m).toFixed(1)}% (killed ${k} of ${m})`);
    for (const s of u) {
      survivors.push(`${file}:${s.location.start.line}:${s.location.start.column} ${s.status} ${s.mutatorName} -> ${JSON.stringify(s.replacement ?? '')}`);
    }
  }
}
if (showSurvivors) for (const s of survivors) console.log(`  ${s}`);
console.log(`mutation score ${total === 0 ? 100 : ((100 * killed) / total).toFixed(1)}% (killed ${killed} of ${total})`);
