// `./vpl011 run` as a user without root, on a checkout and a cache of its own: the runtime setup installs nothing
// with apt, fetches the unicorn library and the default guest into that user's cache (with private apt state), and
// boots the guest to a shell. Under root (CI) the test drops to an unused uid; as any other user it runs as itself.
// The new cache's apt index folder is seeded from the current cache when there is one, so only packages download.
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, cpSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheDir } from '../src/toolstack/cache.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
/** What a checkout holds that `./vpl011 run` uses (a built one: the build is not what this test is about). */
const CHECKOUT = ['bin', 'dist', 'node_modules', 'scripts', 'src', 'guests', 'package.json', 'package-lock.json', 'tsconfig.json', 'vpl011'];

/** A uid with no account on this machine, so nothing about root's environment can leak into the run. */
function unusedUid(): number {
  const passwd = spawnSync('getent', ['passwd'], { encoding: 'utf8' }).stdout ?? '';
  const taken = new Set(passwd.split('\n').map((l) => Number(l.split(':')[2])));
  for (let uid = 61_000; uid < 62_000; uid++) if (!taken.has(uid)) return uid;
  throw new Error('no unused uid in 61000..61999');
}

test('./vpl011 run boots the default guest as a non-root user with a checkout and a cache of its own', { timeout: 300_000 }, async () => {
  const home = mkdtempSync(join(tmpdir(), 'vpl011-nonroot-'));
  try {
    const checkout = join(home, 'vpl011');
    for (const entry of CHECKOUT) cpSync(join(repo, entry), join(checkout, entry), { recursive: true, preserveTimestamps: true });
    const cache = join(home, '.cache', 'vpl011');
    const seed = join(cacheDir(), 'apt');
    if (existsSync(seed)) cpSync(seed, join(cache, 'apt'), { recursive: true, preserveTimestamps: true });

    const root = process.getuid?.() === 0;
    const uid = root ? unusedUid() : process.getuid!();
    const gid = root ? uid : process.getgid!();
    if (root) {
      const chownTree = (p: string): void => {
        chownSync(p, uid, gid);
        for (const d of readdirSync(p, { withFileTypes: true })) {
          const child = join(p, d.name);
          if (d.isDirectory()) chownTree(child);
          else chownSync(child, uid, gid);
        }
      };
      chownTree(home);
    }

    // Only what a user's login would give: no VPL011_* overrides from the test runner's environment.
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, LANG: 'C.UTF-8' };
    const child = spawn(join(checkout, 'vpl011'), ['run', '--timeout', '240'], { cwd: home, env, uid, gid, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString('latin1')));
    child.stderr.on('data', (b: Buffer) => (err += b.toString('latin1')));
    child.stdin.end("uname -m\npoweroff -f\n");
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));

    assert.equal(code, 0, `exit code (stderr: ${err.slice(-2000)})`);
    assert.match(out, /aarch64/, 'the guest answered uname -m');
    assert.doesNotMatch(err, /apt-get install|run this script as root/, 'nothing asked for root');
    assert.ok(existsSync(join(cache, 'guest', 'Image')) && existsSync(join(cache, 'unicorn')), 'the user cache was filled');
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});
