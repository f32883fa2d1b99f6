#!/usr/bin/env node
// The vpl011 command: the CLI is dist/src/cli/main.js (built from src/cli/main.ts), whose main(argv) parses
// process.argv (node, script, args...). Use ./vpl011 at the repository root to have missing pieces installed first.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const mainUrl = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(mainUrl))) {
  process.stderr.write('vpl011: the CLI is not built (no dist/src/cli/main.js): run ./vpl011 or bash scripts/setup.sh\n');
  process.exit(1);
}
let spare;
try {
  // `vpl011 run`: the vCPU's thread starts before the CLI's own modules load, and loads its modules meanwhile
  // (dist/src/vmm/spare-worker.js); main() hands it to the run or ends it.
  spare = process.argv[2] === 'run' ? new (await import(new URL('../dist/src/vmm/spare-worker.js', import.meta.url).href)).SpareWorker() : undefined;
  const cli = await import(mainUrl.href);
  await cli.main(process.argv, spare);
} catch (e) {
  // An error nobody expected: one line (the stack only with VPL011_DEBUG=1, for a bug report).
  const text = e instanceof Error ? (process.env.VPL011_DEBUG ? (e.stack ?? e.message) : e.message) : String(e);
  process.stderr.write(`vpl011: ${process.env.VPL011_DEBUG ? text : text.replace(/[\x00-\x1f\x7f-\x9f]/g, ' ').slice(0, 500)}\n`);
  process.exitCode = 1;
} finally {
  spare?.discard(); // never used (e.g. the CLI failed to load): it ends once loaded, and the process with it
}
