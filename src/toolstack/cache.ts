// Where downloaded and built artefacts live: never in the repository.
import { homedir } from 'node:os';
import { join } from 'node:path';

/** The cache root: $VPL011_CACHE, else ~/.cache/vpl011. */
export function cacheDir(): string {
  return process.env.VPL011_CACHE || join(homedir(), '.cache', 'vpl011');
}

/** The unpacked libunicorn 2.1.x (Debian 13 libunicorn2t64) inside the cache; $VPL011_UNICORN overrides. */
export function unicornLibraryPath(): string {
  return process.env.VPL011_UNICORN || join(cacheDir(), 'unicorn', 'usr', 'lib', 'x86_64-linux-gnu', 'libunicorn.so.2');
}

/** Where the CPU self-test's verdicts are kept, per library file (src/cpu/selftest-cache.ts). */
export function selftestVerdictDir(): string {
  return join(cacheDir(), 'selftest');
}
