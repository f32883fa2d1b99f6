// Build the bare-metal guests with binutils-aarch64-linux-gnu into the cache (never into the repository).
// Each program is linked at 0x40000000 (GUEST_RAM0_BASE) and flattened with objcopy.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheDir } from '../toolstack/cache.js';

export const BARE_GUESTS = ['hello', 'tx-flood', 'bad-access'] as const;
export type BareGuest = (typeof BARE_GUESTS)[number];
export const BARE_LOAD_ADDR = 0x40000000;

/** The source folder: guests/bare in the repository, also when running from dist/. */
function sourceDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const cands = [join(here, '..', '..', 'guests', 'bare'), join(here, '..', '..', '..', 'guests', 'bare')];
  for (const c of cands) if (existsSync(join(c, 'common.inc'))) return c;
  throw new Error(`bare guests: sources not found near ${here}`);
}

/** Build (if stale) and return the flat binary of one guest. */
export function buildBareGuest(name: BareGuest): Uint8Array {
  const src = sourceDir();
  const out = join(cacheDir(), 'bare');
  mkdirSync(out, { recursive: true });
  const s = join(src, `${name}.S`);
  const bin = join(out, `${name}.bin`);
  const newest = Math.max(statSync(s).mtimeMs, statSync(join(src, 'common.inc')).mtimeMs);
  if (!existsSync(bin) || statSync(bin).mtimeMs < newest) {
    const obj = join(out, `${name}.o`);
    const elf = join(out, `${name}.elf`);
    try {
      execFileSync('aarch64-linux-gnu-as', ['-I', src, '-o', obj, s], { stdio: 'pipe' });
      execFileSync('aarch64-linux-gnu-ld', ['-Ttext=0x40000000', '-o', elf, obj], { stdio: 'pipe' });
      execFileSync('aarch64-linux-gnu-objcopy', ['-O', 'binary', elf, bin], { stdio: 'pipe' });
    } catch (e) {
      const err = e as { stderr?: Buffer; message: string };
      throw new Error(`bare guest ${name}: build failed (needs binutils-aarch64-linux-gnu): ${err.stderr?.toString() || err.message}`);
    }
  }
  return new Uint8Array(readFileSync(bin));
}
