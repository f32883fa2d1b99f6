// `npm run mutate [-- FILE...] [--survivors]`: StrykerJS mutation testing of the pure layers (stryker.config.json:
// src/device/, src/xen/ring.ts, src/xen/evtchn.ts, src/toolstack/config.ts, src/daemon/durable-log.ts, against the
// unit tests that cover them), then a score per file and a last line `mutation score N% (killed K of M)`.
// FILE arguments restrict the run to those source files (per-file runs on a busy machine); incremental mode
// (reports/stryker-incremental.json) re-tests only mutants whose code or covering tests changed.
// Killed counts Stryker's Killed and Timeout (a mutant that hangs a test is detected); M is every mutant that ran
// (NoCoverage counts as not killed; compile/runtime errors and ignored mutants are not mutants that ran).
// --report-only prints the scores of the last run without running Stryker. See bench/MUTATION.md.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

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

const REPORT = 'reports/mutation/mutation.json';
const args = process.argv.slice(2);
const files = args.filter((a) => !a.startsWith('--'));
const showSurvivors = args.includes('--survivors');

if (!args.includes('--report-only')) {
  const strykerArgs = ['stryker', 'run', ...(files.length > 0 ? ['--mutate', files.join(',')] : [])];
  const r = spawnSync('npx', strykerArgs, { stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`mutate: stryker exited with ${r.status ?? r.signal}`);
    process.exit(1);
  }
}
if (!existsSync(REPORT)) {
  console.error(`mutate: no report at ${REPORT} (run without --report-only first)`);
  process.exit(1);
}
const report = JSON.parse(readFileSync(REPORT, 'utf8')) as Report;

const DETECTED = new Set(['Killed', 'Timeout']);
const UNDETECTED = new Set(['Survived', 'NoCoverage']);
let killed = 0;
let total = 0;
const survivors: string[] = [];
for (const [file, { mutants }] of Object.entries(report.files).sort(([a], [b]) => a.localeCompare(b))) {
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
if (showSurvivors) for (const s of survivors) console.log(`  ${s}`);
console.log(`mutation score ${total === 0 ? 100 : ((100 * killed) / total).toFixed(1)}% (killed ${killed} of ${total})`);
