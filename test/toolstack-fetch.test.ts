// Fetching Debian packages with private apt state (src/toolstack/fetch.ts). The host's apt configuration must
// never be touched (docs/UPSTREAM.md §4: "without changing the system's apt configuration"), and a second run does nothing.
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DEBIAN_KEYRING, aptCommand, ensureGuestImages, ensureUnicorn, guestPaths, hostMirrors,
  kernelPackageFromDepends, parseAptSources, privateApt,
} from '../src/toolstack/fetch.js';
import { parseArm64ImageHeader } from '../src/toolstack/image.js';
import { hostArch, UnsupportedHostError } from '../src/toolstack/cache.js';

const work = mkdtempSync(join(tmpdir(), 'vpl011-fetch-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
const mirrors = { debian: 'http://mirror.example/debian', security: 'http://mirror.example/debian-security' };

function optionMap(argv: string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '-o') {
      const [k, ...v] = argv[i + 1]!.split('=');
      m.set(k!, v.join('='));
      i++;
    }
  }
  return m;
}

test('private apt: every Dir:: option points inside the private root (or /dev/null), never /etc/apt or /var/*/apt', () => {
  for (const name of ['bookworm-arm64', 'trixie-host'] as const) {
    const apt = privateApt(name, '/cache', mirrors);
    const folder = name === 'bookworm-arm64' ? name : `trixie-${hostArch().debian}`;
    for (const tool of ['apt-get', 'apt-cache'] as const) {
      const { cmd, argv } = aptCommand(apt, tool, ['update']);
      assert.equal(cmd, tool);
      for (const a of argv) assert.doesNotMatch(a, /\/etc\/apt|\/var\/lib\/apt|\/var\/cache\/apt|\/var\/lib\/dpkg/, a);
      const o = optionMap(argv);
      // Without SourceParts and PreferencesParts apt would still read the host's sources.list.d / preferences.d.
      for (const k of ['Dir::Etc::SourceList', 'Dir::Etc::SourceParts', 'Dir::Etc::Preferences', 'Dir::Etc::PreferencesParts',
        'Dir::State', 'Dir::State::Lists', 'Dir::Cache']) {
        assert.ok(o.get(k)?.startsWith(`/cache/apt/${folder}/`), `${k}=${o.get(k)}`);
      }
      assert.equal(o.get('Dir::State::Status'), '/dev/null', 'an empty dpkg status: nothing is "installed"');
      assert.equal(o.get('APT::Architectures'), name === 'bookworm-arm64' ? 'arm64' : hostArch().debian);
    }
  }
});

test('private sources: bookworm + bookworm-security for arm64, trixie for the host, all signed-by the Debian keyring', () => {
  const b = privateApt('bookworm-arm64', '/c', mirrors);
  assert.deepEqual(b.sources, [
    `deb [signed-by=${DEBIAN_KEYRING}] http://mirror.example/debian bookworm main`,
    `deb [signed-by=${DEBIAN_KEYRING}] http://mirror.example/debian-security bookworm-security main`,
  ]);
  assert.deepEqual(privateApt('trixie-host', '/c', mirrors).sources, [`deb [signed-by=${DEBIAN_KEYRING}] http://mirror.example/debian trixie main`]);
});

test('host architecture: amd64 and arm64 hosts are named in Debian terms; any other host is refused by name', () => {
  assert.deepEqual(hostArch('x64'), { debian: 'amd64', multiarch: 'x86_64-linux-gnu' });
  assert.deepEqual(hostArch('arm64'), { debian: 'arm64', multiarch: 'aarch64-linux-gnu' });
  assert.throws(() => hostArch('riscv64'), (e: Error) => e instanceof UnsupportedHostError && /^unsupported host: riscv64 /.test(e.message));
});

test('host mirrors are read from sources.list and deb822 .sources files (disabled and non-deb entries skipped)', () => {
  const etc = join(work, 'etc-apt');
  mkdirSync(join(etc, 'sources.list.d'), { recursive: true });
  writeFileSync(join(etc, 'sources.list.d', 'debian.sources'), [
    'Types: deb-src', 'URIs: http://src.example/debian', 'Suites: bookworm', 'Components: main', '',
    'Types: deb', 'URIs: http://deb.example/debian/', 'Suites: bookworm bookworm-updates', 'Components: main', '',
    'Types: deb', 'URIs: http://sec.example/debian-security', 'Suites: bookworm-security', 'Components: main', '',
  ].join('\n'));
  writeFileSync(join(etc, 'sources.list.d', 'other.list'), 'deb https://packages.example/apt cloud-sdk main\n');
  assert.deepEqual(hostMirrors(etc), { debian: 'http://deb.example/debian', security: 'http://sec.example/debian-security' });
  assert.deepEqual(parseAptSources('# deb http://x/ y main\ndeb [arch=amd64] http://a/debian bookworm main\n', false), [{ uri: 'http://a/debian', suites: ['bookworm'] }]);
  assert.deepEqual(parseAptSources('Enabled: no\nTypes: deb\nURIs: http://z\nSuites: bookworm\n', true), []);
  // No sources at all: Debian's own redirector.
  assert.deepEqual(hostMirrors(join(work, 'nowhere')), { debian: 'http://deb.debian.org/debian', security: 'http://deb.debian.org/debian-security' });
});

test('the kernel package is the unsigned twin of linux-image-arm64\'s dependency', () => {
  const out = 'linux-image-arm64:arm64\n  Depends: linux-image-6.1.0-56-arm64:arm64\n';
  assert.equal(kernelPackageFromDepends(out), 'linux-image-6.1.0-56-arm64-unsigned');
  assert.throws(() => kernelPackageFromDepends('linux-image-arm64:arm64\n'), /cannot find the kernel ABI/);
});

test('a real apt-cache run with private state leaves the host\'s apt state untouched', (t) => {
  const apt = privateApt('bookworm-arm64');
  if (!existsSync(join(apt.root, 'lists')) || spawnSync('sh', ['-c', 'command -v apt-cache']).status !== 0) {
    t.skip('no private package lists yet (run scripts/setup.sh)');
    return;
  }
  const watched = ['/var/cache/apt', '/var/lib/apt/lists', '/etc/apt'].filter(existsSync);
  const before = watched.map((p) => statSync(p).mtimeMs);
  const { cmd, argv } = aptCommand(apt, 'apt-cache', ['depends', '--important', 'linux-image-arm64:arm64']);
  const r = spawnSync(cmd, argv, { env: { ...process.env, LC_ALL: 'C' } });
  assert.equal(r.status, 0, r.stderr.toString());
  assert.match(kernelPackageFromDepends(r.stdout.toString()), /^linux-image-\d.*-arm64-unsigned$/);
  assert.deepEqual(watched.map((p) => statSync(p).mtimeMs), before);
});

test('ensureUnicorn and ensureGuestImages: fetch when missing, then a second call does nothing and says so', async () => {
  const quiet = { log: () => {}, quiet: true };
  const lib = await ensureUnicorn(quiet);
  const images = await ensureGuestImages(quiet);
  const p = guestPaths();
  assert.deepEqual(images, { kernel: p.kernel, initrd: p.initrd });
  parseArm64ImageHeader(new Uint8Array(readFileSync(images.kernel)).subarray(0, 64));
  const stamp = [lib, images.kernel, images.initrd].map((f) => statSync(f).mtimeMs);
  const lines: string[] = [];
  assert.equal(await ensureUnicorn({ log: (s) => lines.push(s) }), lib);
  assert.deepEqual(await ensureGuestImages({ log: (s) => lines.push(s) }), images);
  assert.equal(lines.length, 2, lines.join('\n'));
  assert.match(lines[0]!, /unicorn library present/);
  assert.match(lines[1]!, /guest images present .*nothing to fetch/);
  assert.deepEqual([lib, images.kernel, images.initrd].map((f) => statSync(f).mtimeMs), stamp);
});

test('a changed /init script rebuilds only the initramfs, from the cached busybox, without apt', async () => {
  const cache = join(work, 'cache-rebuild');
  const saved = process.env.VPL011_CACHE;
  process.env.VPL011_CACHE = cache;
  try {
    const p = guestPaths();
    mkdirSync(p.guestDir, { recursive: true });
    writeFileSync(p.kernel, 'kernel bytes');
    writeFileSync(p.busybox, Buffer.from([0x7f, 0x45, 0x4c, 0x46, 1, 2, 3]));
    writeFileSync(p.initrd, 'stale');
    writeFileSync(p.manifest, JSON.stringify({ kernelPackage: 'k', busyboxPackage: 'b', initSha256: 'an older script' }));
    const lines: string[] = [];
    const r = await ensureGuestImages({ log: (s) => lines.push(s), quiet: true });
    assert.equal(r.initrd, p.initrd);
    assert.ok(lines.some((l) => /building the initramfs/.test(l)), lines.join('\n'));
    assert.ok(!lines.some((l) => /downloading|package lists/.test(l)), lines.join('\n'));
    assert.notEqual(readFileSync(p.initrd, 'utf8'), 'stale');
    assert.equal(readFileSync(p.kernel, 'utf8'), 'kernel bytes');
    assert.equal(JSON.parse(readFileSync(p.manifest, 'utf8')).kernelPackage, 'k');
    // And now it is current.
    lines.length = 0;
    await ensureGuestImages({ log: (s) => lines.push(s) });
    assert.match(lines.join('\n'), /nothing to fetch/);
  } finally {
    if (saved === undefined) delete process.env.VPL011_CACHE;
    else process.env.VPL011_CACHE = saved;
  }
});
