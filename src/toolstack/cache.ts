// Where downloaded and built artefacts live: never in the repository.
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Vpl011Error } from '../util/errors.js';

/** The cache root: $VPL011_CACHE, else ~/.cache/vpl011. */
export function cacheDir(): string {
  return process.env.VPL011_CACHE || join(homedir(), '.cache', 'vpl011');
}

export class UnsupportedHostError extends Vpl011Error<'ENOTSUP'> {
  constructor(message: string) {
    super('ENOTSUP', message);
  }
}

/** A host Debian can give us libunicorn2t64 for: its Debian architecture and its multiarch library folder. */
export interface HostArch {
  debian: 'amd64' | 'arm64';
  multiarch: 'x86_64-linux-gnu' | 'aarch64-linux-gnu';
}

/**
 * The host's architecture in Debian's terms. Only the two Debian architectures that ship libunicorn2t64 2.1.x and
 * that Node 20 runs on are accepted; anything else is said plainly here rather than failing later in apt or dlopen.
 */
export function hostArch(nodeArch: string = process.arch): HostArch {
  if (nodeArch === 'x64') return { debian: 'amd64', multiarch: 'x86_64-linux-gnu' };
  if (nodeArch === 'arm64') return { debian: 'arm64', multiarch: 'aarch64-linux-gnu' };
  throw new UnsupportedHostError(
    `unsupported host: ${nodeArch} (vpl011 runs on x86_64 (amd64) or aarch64 (arm64) hosts; set VPL011_UNICORN to a libunicorn 2.1.x of your own to try another)`,
  );
}

/** The unpacked libunicorn 2.1.x (Debian 13 libunicorn2t64) inside the cache; $VPL011_UNICORN overrides. */
export function unicornLibraryPath(): string {
  return process.env.VPL011_UNICORN || join(cacheDir(), 'unicorn', 'usr', 'lib', hostArch().multiarch, 'libunicorn.so.2');
}

/** Where the CPU self-test's verdicts are kept, per library file (src/cpu/selftest-cache.ts). */
export function selftestVerdictDir(): string {
  return join(cacheDir(), 'selftest');
}
