#!/usr/bin/env node
// The vpl011 command: the CLI itself is dist/src/cli/main.js (built from src/cli/main.ts), which runs on import.
// Use ./vpl011 at the repository root to have missing pieces installed first.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write('vpl011: the CLI is not built (no dist/src/cli/main.js): run ./vpl011 or bash scripts/setup.sh\n');
  process.exit(1);
}
await import(main.href);
