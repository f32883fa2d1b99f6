// Fetching what the project needs from Debian's archive without touching the host's apt configuration:
// the arm64 guest (Debian 12's kernel Image and busybox-static) and libunicorn 2.1.x (Debian 13's libunicorn2t64,
// docs/CPU.md says why not Debian 12's 2.0.1). apt runs with private state under the cache (its own
// sources.list, lists, package cache, an empty dpkg status), and packages are only unpacked, never installed.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { cacheDir, hostArch, unicornLibraryPath } from './cache.js';
import { parseArm64ImageHeader } from './image.js';
import { DEFAULT_INIT, buildDefaultInitramfs } from './initramfs.js';
import { Vpl011Error, errorMessage } from '../util/errors.js';

export class FetchError extends Vpl011Error<'EIO'> {
  constructor(message: string) {
    super('EIO', message);
  }
}

export interface FetchOptions {
  /** Progress and status lines (default: to stderr). */
  log?: (s: string) => void;
  /** Do not show apt's own download progress (it goes to stderr otherwise). */
  quiet?: boolean;
}

export const DEBIAN_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';
const DEFAULT_MIRROR = 'http://deb.debian.org/debian';
const DEFAULT_SECURITY_MIRROR = 'http://deb.debian.org/debian-security';

/** Where each artefact lives inside the cache. */
export function guestPaths(root = cacheDir()) {
  const guest = join(root, 'guest');
  return {
    guestDir: guest,
    kernel: join(guest, 'Image'),
    busybox: join(guest, 'busybox'),
    initrd: join(guest, 'initramfs.cpio.gz'),
    manifest: join(guest, 'manifest.json'),
    debs: join(root, 'debs'),
    aptRoot: join(root, 'apt'),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Mirrors: the host's own Debian mirror, read (never written) from its apt sources.

export interface HostMirrors {
  debian: string;
  security: string;
}

/** Parses one-line ("deb [opts] URI suite comp...") and deb822 (.sources) entries; returns [uri, suites[]] pairs. */
export function parseAptSources(text: string, deb822: boolean): Array<{ uri: string; suites: string[] }> {
  const out: Array<{ uri: string; suites: string[] }> = [];
  if (!deb822) {
    for (const raw of text.split('\n')) {
      const line = raw.replace(/#.*/, '').trim();
      const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line);
      if (m) out.push({ uri: m[1]!, suites: [m[2]!] });
    }
    return out;
  }
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    for (const raw of stanza.split('\n')) {
      if (raw.startsWith('#')) continue;
      const m = /^([A-Za-z-]+):\s*(.*)$/.exec(raw);
      if (m) fields.set(m[1]!.toLowerCase(), m[2]!.trim());
    }
    if (fields.get('enabled')?.toLowerCase() === 'no') continue;
    const types = (fields.get('types') ?? '').split(/\s+/);
    if (!types.includes('deb')) continue;
    const suites = (fields.get('suites') ?? '').split(/\s+/).filter(Boolean);
    for (const uri of (fields.get('uris') ?? '').split(/\s+/).filter(Boolean)) out.push({ uri, suites });
  }
  return out;
}

/** The host's Debian mirror and security mirror, or deb.debian.org; $VPL011_DEBIAN_MIRROR overrides the first. */
export function hostMirrors(etcApt = '/etc/apt'): HostMirrors {
  const entries: Array<{ uri: string; suites: string[] }> = [];
  const read = (file: string, deb822: boolean) => {
    try {
      entries.push(...parseAptSources(readFileSync(file, 'utf8'), deb822));
    } catch {
      // unreadable or missing: fall back to the defaults below
    }
  };
  read(join(etcApt, 'sources.list'), false);
  let parts: string[] = [];
  try {
    parts = readdirSync(join(etcApt, 'sources.list.d')).sort();
  } catch {
    parts = [];
  }
  for (const f of parts) {
    if (f.endsWith('.list')) read(join(etcApt, 'sources.list.d', f), false);
    else if (f.endsWith('.sources')) read(join(etcApt, 'sources.list.d', f), true);
  }
  const debianSuite = /^(bookworm|trixie|bullseye|sid|stable|testing|oldstable)(-updates)?$/;
  const clean = (u: string) => u.replace(/\/+$/, '');
  const debian = entries.find((e) => e.suites.some((s) => debianSuite.test(s)) && /^(https?|file):/.test(e.uri));
  const security = entries.find((e) => e.suites.some((s) => /-security$/.test(s)) && /^(https?|file):/.test(e.uri));
  return {
    debian: process.env.VPL011_DEBIAN_MIRROR || (debian ? clean(debian.uri) : DEFAULT_MIRROR),
    security: security ? clean(security.uri) : DEFAULT_SECURITY_MIRROR,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Private apt state.

export interface PrivateApt {
  /** Folder holding etc/, lists/, cache/ and state/ of this apt instance. */
  root: string;
  /** The one architecture whose indexes it fetches (arm64 for the guest, the host's for the unicorn library). */
  arch: string;
  /** sources.list lines. */
  sources: string[];
}

export function privateApt(name: 'bookworm-arm64' | 'trixie-host', root = cacheDir(), mirrors = hostMirrors()): PrivateApt {
  const signed = `[signed-by=${DEBIAN_KEYRING}]`;
  if (name === 'bookworm-arm64') {
    return {
      root: join(root, 'apt', name),
      arch: 'arm64',
      // The current kernel ABI is usually only in bookworm-security (docs/UPSTREAM.md §4).
      sources: [`deb ${signed} ${mirrors.debian} bookworm main`, `deb ${signed} ${mirrors.security} bookworm-security main`],
    };
  }
  const arch = hostArch().debian;
  return { root: join(root, 'apt', `trixie-${arch}`), arch, sources: [`deb ${signed} ${mirrors.debian} trixie main`] };
}

/**
 * The -o options that give apt its private state. Every Dir:: path points inside apt.root (or /dev/null), so
 * /etc/apt/sources.list(.d), /etc/apt/preferences(.d), /var/lib/apt and /var/cache/apt are neither read for
 * sources nor written; the host's apt.conf(.d) is still read, as any apt-get run reads it.
 */
export function aptOptions(apt: PrivateApt): string[] {
  const o = (k: string, v: string) => ['-o', `${k}=${v}`];
  return [
    ...o('Dir::Etc::SourceList', join(apt.root, 'etc', 'sources.list')),
    ...o('Dir::Etc::SourceParts', join(apt.root, 'etc', 'sources.list.d')),
    ...o('Dir::Etc::Preferences', join(apt.root, 'etc', 'preferences')),
    ...o('Dir::Etc::PreferencesParts', join(apt.root, 'etc', 'preferences.d')),
    ...o('Dir::State', join(apt.root, 'state')),
    ...o('Dir::State::Lists', join(apt.root, 'lists')),
    ...o('Dir::State::Status', '/dev/null'),
    ...o('Dir::Cache', join(apt.root, 'cache')),
    ...o('APT::Architecture', apt.arch),
    ...o('APT::Architectures', apt.arch),
    ...o('Acquire::Languages', 'none'),
    // As root, apt drops to the _apt user for downloads, which cannot write into a cache under /root.
    ...o('APT::Sandbox::User', 'root'),
  ];
}

/** The argv of an apt-get / apt-cache run with private state. */
export function aptCommand(apt: PrivateApt, tool: 'apt-get' | 'apt-cache', args: string[]): { cmd: string; argv: string[] } {
  return { cmd: tool, argv: [...aptOptions(apt), ...args] };
}

function preparePrivateApt(apt: PrivateApt): void {
  for (const d of ['etc/sources.list.d', 'etc/preferences.d', 'state', 'lists/partial', 'cache/archives/partial']) {
    mkdirSync(join(apt.root, d), { recursive: true });
  }
  const file = join(apt.root, 'etc', 'sources.list');
  const text = apt.sources.join('\n') + '\n';
  if (!existsSync(file) || readFileSync(file, 'utf8') !== text) writeFileSync(file, text);
}

// ---------------------------------------------------------------------------------------------------------------
// Running tools.

function haveTool(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

function requireTools(names: string[]): void {
  const missing = names.filter((n) => !haveTool(n));
  if (missing.length > 0) {
    throw new FetchError(`missing host tools: ${missing.join(', ')} (a Debian host provides them in the apt, dpkg and tar packages)`);
  }
  if (!existsSync(DEBIAN_KEYRING)) {
    throw new FetchError(`missing ${DEBIAN_KEYRING}: install the debian-archive-keyring package (apt-get install debian-archive-keyring)`);
  }
}

interface RunResult {
  stdout: string;
  stderr: string;
}

/** Runs a command; when `showProgress`, its stdout goes to our stderr so apt draws its progress there. */
function run(cmd: string, argv: string[], opts: { cwd?: string; showProgress?: boolean } = {}): Promise<RunResult> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(cmd, argv, {
      cwd: opts.cwd,
      env: { ...process.env, LC_ALL: 'C', DEBIAN_FRONTEND: 'noninteractive' },
      stdio: ['ignore', opts.showProgress ? 2 : 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (b: Buffer) => {
      if (stdout.length < 1 << 20) stdout += b.toString();
    });
    child.stderr?.on('data', (b: Buffer) => {
      if (stderr.length < 1 << 20) stderr += b.toString();
      if (opts.showProgress) process.stderr.write(b);
    });
    child.on('error', (e) => reject(new FetchError(`cannot run ${cmd}: ${e.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) resolveRun({ stdout, stderr });
      else {
        const tail = stderr.trim().split('\n').slice(-6).join('\n');
        reject(new FetchError(`${cmd} ${argv.filter((a) => !a.includes('::') && a !== '-o').join(' ')} failed (${signal ?? `exit ${code}`})${tail ? `:\n${tail}` : ''}`));
      }
    });
  });
}

async function aptUpdate(apt: PrivateApt, opts: FetchOptions): Promise<void> {
  preparePrivateApt(apt);
  const log = opts.log ?? defaultLog;
  log(`vpl011: fetching Debian package lists (${apt.sources.map((s) => s.split(' ').slice(-2, -1)[0]).join(', ')}, ${apt.arch}) into ${apt.root}`);
  const { cmd, argv } = aptCommand(apt, 'apt-get', ['-q', 'update']);
  const mirrors = apt.sources.map((s) => s.split(' ')[2]).join(' and ');
  let result: RunResult;
  try {
    result = await run(cmd, argv, { showProgress: !opts.quiet });
  } catch (e) {
    throw new FetchError(`could not fetch Debian package lists from ${mirrors} (no network, or the mirror is unreachable?)\n${errorMessage(e)}`);
  }
  // apt-get update exits 0 when an index could not be downloaded ("W: Failed to fetch ..."); a download from
  // stale or missing lists would then fail obscurely, so treat it as the network error it is.
  const failed = result.stderr.split('\n').filter((l) => /^(W: Failed to fetch|E: )/.test(l));
  if (failed.length > 0) {
    throw new FetchError(`could not fetch Debian package lists from ${mirrors} (no network, or the mirror is unreachable?)\n${failed.slice(0, 4).join('\n')}`);
  }
}

async function aptDownload(apt: PrivateApt, pkgs: string[], into: string, opts: FetchOptions): Promise<string[]> {
  mkdirSync(into, { recursive: true });
  const before = new Set(readdirSync(into));
  (opts.log ?? defaultLog)(`vpl011: downloading ${pkgs.join(', ')} into ${into}`);
  const { cmd, argv } = aptCommand(apt, 'apt-get', ['download', ...pkgs]);
  await run(cmd, argv, { cwd: into, showProgress: !opts.quiet });
  const debs = readdirSync(into).filter((f) => f.endsWith('.deb'));
  // apt-get download names files <name>_<version>_<arch>.deb; find each package's file.
  return pkgs.map((p) => {
    const [name, arch] = p.split(':');
    const matches = debs.filter((f) => f.startsWith(`${name}_`) && f.endsWith(`_${arch}.deb`));
    const fresh = matches.filter((f) => !before.has(f));
    const pick = (fresh.length > 0 ? fresh : matches).sort().at(-1);
    if (!pick) throw new FetchError(`apt-get download ${p} produced no .deb in ${into}`);
    return join(into, pick);
  });
}

/** linux-image-arm64 depends on linux-image-<abi>-arm64 (signed); the unsigned twin holds the same Image. */
export function kernelPackageFromDepends(aptCacheDependsOutput: string): string {
  const m = /Depends:\s*(linux-image-[0-9][^\s:]*-arm64)\b/.exec(aptCacheDependsOutput);
  if (!m) throw new FetchError(`cannot find the kernel ABI in linux-image-arm64's dependencies:\n${aptCacheDependsOutput.slice(0, 400)}`);
  return `${m[1]!.replace(/-unsigned$/, '')}-unsigned`;
}

function defaultLog(s: string): void {
  process.stderr.write(s + '\n');
}

/** Writes a file through a temporary name, so an interrupted run never leaves a truncated artefact. */
function writeAtomic(path: string, data: Uint8Array | string, mode = 0o644): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data, { mode });
  renameSync(tmp, path);
}

function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

interface Manifest {
  kernelPackage: string;
  busyboxPackage: string;
  /** sha256 of the /init script the initramfs was built with: a changed script rebuilds it. */
  initSha256: string;
}

function readManifest(file: string): Partial<Manifest> {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Partial<Manifest>;
  } catch {
    return {};
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The two entry points.

/**
 * Makes sure the default guest's kernel Image and initramfs are in the cache; downloads and builds what is missing.
 * A second call finds everything and only says so.
 */
export async function ensureGuestImages(opts: FetchOptions = {}): Promise<{ kernel: string; initrd: string }> {
  const log = opts.log ?? defaultLog;
  const p = guestPaths();
  const manifest = readManifest(p.manifest);
  const initSha = sha256(DEFAULT_INIT);
  if (existsSync(p.kernel) && existsSync(p.initrd) && manifest.initSha256 === initSha) {
    log(`vpl011: guest images present in ${p.guestDir} (${manifest.kernelPackage ?? 'kernel'}, ${manifest.busyboxPackage ?? 'busybox'}); nothing to fetch`);
    return { kernel: p.kernel, initrd: p.initrd };
  }
  mkdirSync(p.guestDir, { recursive: true });
  if (!existsSync(p.kernel) || !existsSync(p.busybox)) {
    requireTools(['apt-get', 'apt-cache', 'dpkg', 'dpkg-deb', 'tar']);
    const apt = privateApt('bookworm-arm64');
    await aptUpdate(apt, opts);
    const deps = await run(...spread(aptCommand(apt, 'apt-cache', ['depends', '--important', 'linux-image-arm64:arm64'])));
    const kernelPkg = kernelPackageFromDepends(deps.stdout);
    const [kernelDeb, busyboxDeb] = await aptDownload(apt, [`${kernelPkg}:arm64`, 'busybox-static:arm64'], p.debs, opts);
    log(`vpl011: unpacking ${kernelDeb!.split('/').at(-1)} and ${busyboxDeb!.split('/').at(-1)}`);
    writeAtomic(p.kernel, await extractKernelImage(kernelDeb!, join(p.guestDir, 'unpack-kernel')));
    writeAtomic(p.busybox, await extractFile(busyboxDeb!, 'bin/busybox', join(p.guestDir, 'unpack-busybox')), 0o755);
    manifest.kernelPackage = debLabel(kernelDeb!);
    manifest.busyboxPackage = debLabel(busyboxDeb!);
    // The artefacts are what we keep; the .debs (60 MB of kernel modules) are not needed again.
    rmSync(kernelDeb!, { force: true });
    rmSync(busyboxDeb!, { force: true });
  }
  log(`vpl011: building the initramfs ${p.initrd}`);
  writeAtomic(p.initrd, buildDefaultInitramfs(new Uint8Array(readFileSync(p.busybox))));
  manifest.initSha256 = initSha;
  writeAtomic(p.manifest, JSON.stringify(manifest, null, 2) + '\n');
  log(`vpl011: guest images ready: ${p.kernel}, ${p.initrd}`);
  return { kernel: p.kernel, initrd: p.initrd };
}

/** Makes sure libunicorn 2.1.x is unpacked at unicornLibraryPath(); returns that path. */
export async function ensureUnicorn(opts: FetchOptions = {}): Promise<string> {
  const log = opts.log ?? defaultLog;
  const lib = unicornLibraryPath();
  if (existsSync(lib)) {
    log(`vpl011: unicorn library present: ${lib}`);
    return lib;
  }
  if (process.env.VPL011_UNICORN) throw new FetchError(`VPL011_UNICORN=${process.env.VPL011_UNICORN} does not exist (unset it to fetch Debian 13's libunicorn2t64 into the cache)`);
  requireTools(['apt-get', 'dpkg', 'dpkg-deb']);
  const apt = privateApt('trixie-host');
  await aptUpdate(apt, opts);
  const [deb] = await aptDownload(apt, [`libunicorn2t64:${apt.arch}`], guestPaths().debs, opts);
  const dest = join(cacheDir(), 'unicorn');
  const tmp = `${dest}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  await run('dpkg', ['-x', deb!, tmp]);
  rmSync(dest, { recursive: true, force: true });
  renameSync(tmp, dest);
  rmSync(deb!, { force: true });
  if (!existsSync(lib)) throw new FetchError(`${deb} unpacked, but ${lib} is not in it`);
  log(`vpl011: unicorn library ready: ${lib} (${debLabel(deb!)})`);
  return lib;
}

function spread(c: { cmd: string; argv: string[] }): [string, string[]] {
  return [c.cmd, c.argv];
}

function debLabel(deb: string): string {
  return (deb.split('/').at(-1) ?? deb).replace(/\.deb$/, '').replace(/%3a/gi, ':');
}

/** dpkg -x into a scratch folder, returns one file's bytes, removes the folder. */
async function extractFile(deb: string, member: string, scratch: string): Promise<Uint8Array> {
  rmSync(scratch, { recursive: true, force: true });
  await run('dpkg', ['-x', deb, scratch]);
  try {
    const file = join(scratch, member);
    if (!existsSync(file) || !statSync(file).isFile()) throw new FetchError(`${deb} has no ${member}`);
    return new Uint8Array(readFileSync(file));
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * The kernel package is 60 MB of modules around one Image: unpack only ./boot (dpkg-deb --fsys-tarfile | tar, the
 * same data dpkg -x would write) and take boot/vmlinuz-*, which Debian ships as an uncompressed arm64 Image.
 */
async function extractKernelImage(deb: string, scratch: string): Promise<Uint8Array> {
  rmSync(scratch, { recursive: true, force: true });
  mkdirSync(scratch, { recursive: true });
  await run('bash', ['-c', 'set -o pipefail; dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" ./boot', 'bash', deb, scratch]);
  try {
    const boot = join(scratch, 'boot');
    const vmlinuz = readdirSync(boot).find((f) => f.startsWith('vmlinuz-'));
    if (!vmlinuz) throw new FetchError(`${deb} has no boot/vmlinuz-*`);
    const image = new Uint8Array(readFileSync(join(boot, vmlinuz)));
    try {
      parseArm64ImageHeader(image);
    } catch (e) {
      throw new FetchError(`${deb}: boot/${vmlinuz} is not usable: ${errorMessage(e)}`);
    }
    return image;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
