#!/usr/bin/env node
// Fetches what `vpl011` needs at run time into the cache (see src/toolstack/fetch.ts): the unicorn library and
// the default guest's kernel Image + initramfs. Needs a built tree (npm run build). Flags: --quiet (nothing but
// errors), --terse (only what is being fetched, with its progress; not "already present"), --guest-only,
// --unicorn-only.
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = new Set(process.argv.slice(2));
const quiet = args.has('--quiet');
const terse = args.has('--terse');
const log = quiet
  ? () => {}
  : (s) => {
      if (!terse || !/nothing to fetch|library present/.test(s)) process.stderr.write(s + '\n');
    };
try {
  const { ensureGuestImages, ensureUnicorn } = await import(join(root, 'dist/src/toolstack/fetch.js'));
  if (!args.has('--guest-only')) await ensureUnicorn({ log, quiet });
  if (!args.has('--unicorn-only')) await ensureGuestImages({ log, quiet });
} catch (e) {
  process.stderr.write(`vpl011: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
}
