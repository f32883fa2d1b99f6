// Build the bare-metal guests with binutils-aarch64-linux-gnu into the cache (never into the repository).
// Each program is linked at 0x40000000 (GUEST_RAM0_BASE) and flattened with objcopy. stream, checksum and scribble
// are the console daemon's test guests (docs/DAEMON.md).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, existsSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheDir } from '../toolstack/cache.js';

export const BARE_GUESTS = ['hello', 'tx-flood', 'bad-access', 'stream', 'checksum', 'scribble', 'spin', 'fr-poll', 'abort-probe', 'no-vector', 'vector-loop', 'insight-probe'] as const;
export type BareGuest = (typeof BARE_GUESTS)[number];
export const BARE_LOAD_ADDR = 0x40000000;

/** The source folder: guests/bare in the repository, also when running from dist/. */
function sourceDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const cands = [join(here, '..', '..', 'guests', 'bare'), join(here, '..', '..', '..', 'guests', 'bare')];
  for (const c of cands) if (existsSync(join(c, 'common.inc'))) return c;
  throw new Error(`bare guests: sources not found near ${here}`);
}

export interface BareBuildOptions {
  /**
   * Build-time constants (the assembler's --defsym), e.g. { COUNT: 1048576 } for stream and checksum. Each set of
   * values is its own cached binary.
   */
  defines?: Record<string, number>;
}

const DEFINE_NAME = /^[A-Z][A-Z0-9_]{0,31}$/;

/** Build (if stale) one guest and return the path of its flat binary (in the cache), e.g. for a config's kernel. */
export function buildBareGuestFile(name: BareGuest, opts: BareBuildOptions = {}): string {
  if (!BARE_GUESTS.includes(name)) throw new Error(`bare guest ${String(name)}: unknown`);
  const defs = Object.entries(opts.defines ?? {}).sort(([a], [b]) => (a < b ? -1 : 1));
  for (const [k, v] of defs) {
    if (!DEFINE_NAME.test(k) || !Number.isSafeInteger(v) || v < 0) throw new Error(`bare guest ${name}: bad define ${k}=${v}`);
  }
  const variant = name + defs.map(([k, v]) => `-${k}=${v}`).join('');
  const src = sourceDir();
  const out = join(cacheDir(), 'bare');
  mkdirSync(out, { recursive: true });
  const s = join(src, `${name}.S`);
  const bin = join(out, `${variant}.bin`);
  const newest = Math.max(statSync(s).mtimeMs, statSync(join(src, 'common.inc')).mtimeMs);
  if (!existsSync(bin) || statSync(bin).mtimeMs < newest) {
    // Build under a unique name and rename: test processes may build the same variant at once.
    const tmp = join(out, `${variant}.${process.pid}.${Math.random().toString(36).slice(2)}`);
    const obj = `${tmp}.o`;
    const elf = `${tmp}.elf`;
    try {
      const defsym = defs.flatMap(([k, v]) => ['--defsym', `${k}=${v}`]);
      execFileSync('aarch64-linux-gnu-as', ['-I', src, ...defsym, '-o', obj, s], { stdio: 'pipe' });
      execFileSync('aarch64-linux-gnu-ld', ['-Ttext=0x40000000', '-o', elf, obj], { stdio: 'pipe' });
      execFileSync('aarch64-linux-gnu-objcopy', ['-O', 'binary', elf, `${tmp}.bin`], { stdio: 'pipe' });
      renameSync(`${tmp}.bin`, bin);
    } catch (e) {
      const err = e as { stderr?: Buffer; message: string };
      throw new Error(`bare guest ${name}: build failed (needs binutils-aarch64-linux-gnu): ${err.stderr?.toString() || err.message}`);
    } finally {
      rmSync(obj, { force: true });
      rmSync(elf, { force: true });
      rmSync(`${tmp}.bin`, { force: true });
    }
  }
  return bin;
}

/** Build (if stale) and return the flat binary of one guest. */
export function buildBareGuest(name: BareGuest, opts: BareBuildOptions = {}): Uint8Array {
  return new Uint8Array(readFileSync(buildBareGuestFile(name, opts)));
}

/**
 * What guests/bare/stream.S writes: byte i is '\n' when i % 64 == 63, else '!' + (x % 94) with x the next
 * xorshift32 state (13, 17, 5) from 0x2545f491. Tests regenerate the guest's output with it.
 */
export function streamPattern(count: number): Buffer {
  const out = Buffer.alloc(count);
  let x = 0x2545f491;
  for (let i = 0; i < count; i++) {
    if ((i & 63) === 63) {
      out[i] = 0x0a;
      continue;
    }
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = 0x21 + (x % 94);
  }
  return out;
}

/** 32-bit FNV-1a, as guests/bare/checksum.S computes it. */
export function fnv1a32(data: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < data.length; i++) h = Math.imul(h ^ data[i]!, 0x01000193) >>> 0;
  return h >>> 0;
}
