// `npm run bench`: every benchmark module in turn, each exporting run(): Promise<void>. A module that is missing
// or fails is reported and skipped, so one unfinished part does not hide the others.
// Select parts by name: node dist/bench/run.js guest   (or several: device bare)
import { errnoOf, errorMessage } from '../src/util/errors.js';

const PARTS = ['device', 'bare', 'guest', 'daemon', 'restore'] as const;

interface BenchModule {
  run?: () => Promise<void>;
}

async function main(args: string[]): Promise<number> {
  const unknown = args.filter((a) => !(PARTS as readonly string[]).includes(a));
  if (unknown.length > 0) {
    process.stderr.write(`bench: unknown part(s) ${unknown.join(', ')}; parts: ${PARTS.join(', ')}\n`);
    return 2;
  }
  const selected = args.length > 0 ? PARTS.filter((p) => args.includes(p)) : [...PARTS];
  const summary: string[] = [];
  for (const part of selected) {
    process.stdout.write(`\n=== bench/${part} ===\n`);
    let mod: BenchModule;
    try {
      mod = (await import(`./${part}.js`)) as BenchModule;
    } catch (e) {
      const missing = errnoOf(e) === 'ERR_MODULE_NOT_FOUND' && errorMessage(e).includes(`${part}.js`);
      const why = missing ? 'module not built or not in the tree' : `cannot load: ${errorMessage(e)}`;
      process.stdout.write(`bench/${part}: skipped (${why})\n`);
      summary.push(`${part}: skipped (${why.split('\n')[0]})`);
      continue;
    }
    if (typeof mod.run !== 'function') {
      summary.push(`${part}: skipped (exports no run())`);
      continue;
    }
    const t0 = Date.now();
    try {
      await mod.run();
      summary.push(`${part}: done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    } catch (e) {
      process.stdout.write(`bench/${part} failed: ${(e as Error).stack ?? e}\n`);
      summary.push(`${part}: FAILED (${errorMessage(e).split('\n')[0]})`);
    }
  }
  process.stdout.write(`\n=== summary ===\n${summary.join('\n')}\n`);
  return summary.some((s) => s.includes('FAILED')) ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
