// The package others use (issue 9 item 7): `npm pack` ships the library (built JS, its declarations, the native
// fast path's C source and build script, the CLI) and nothing else; the tarball installs into a fresh project, and
// each export works from plain JavaScript (device core, ring/event-channel ABI, replay engine, the VMM booting a
// bare-metal guest and streaming its console) and type-checks from TypeScript through the `exports` map's types.
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildBareGuestFile } from '../src/vmm/bare-guests.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NPM_ENV = { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };

/** Run a command; resolves with stdout, rejects with its stderr's end (bounded in time: a hung npm fails the test). */
function run(cmd: string, args: string[], cwd: string, timeoutMs = 240_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd, env: NPM_ENV, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${String(stderr).slice(-3000)}`));
      else resolve(String(stdout));
    });
  });
}

const EXPORTS = ['.', './device', './ring', './replay', './vmm'] as const;

test('npm pack ships the library and nothing else; installed into a new project, every export works from .mjs and type-checks', { timeout: 900_000 }, async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'vpl011-package-'));
  try {
    // ---- the tarball -------------------------------------------------------------------------------------------
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, { types: string; default: string }> };
    for (const e of EXPORTS) assert.ok(pkg.exports[e]?.types && pkg.exports[e]?.default, `package.json exports ${e} with types`);
    // Scripts ignored: dist/ is this run's build (prepack would rebuild it under the tests' feet).
    const packed = JSON.parse(await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', tmp], ROOT)) as { filename: string; files: { path: string }[] }[];
    const files = packed[0]!.files.map((f) => f.path);
    for (const e of EXPORTS) {
      for (const target of [pkg.exports[e]!.default, pkg.exports[e]!.types]) {
        assert.ok(files.includes(target.replace(/^\.\//, '')), `the tarball has ${target} (export ${e})`);
      }
    }
    for (const needed of ['bin/vpl011.js', 'src/cpu/native/fastpath.c', 'scripts/build-native.sh', 'dist/src/vmm/worker.js', 'dist/src/cli/main.js', 'package.json', 'README.md']) {
      assert.ok(files.includes(needed), `the tarball has ${needed}`);
    }
    const unwanted = files.filter((f) => /^(dist\/(test|bench)\/|test\/|bench\/|guests\/|node_modules\/|\.ci\/)/.test(f) || f.endsWith('.map') || (f.startsWith('src/') && f.endsWith('.ts')));
    assert.deepEqual(unwanted, [], 'no tests, benchmarks, guests, sources or source maps in the tarball');
    const tarball = join(tmp, packed[0]!.filename);

    // ---- a new project that installs it ---------------------------------------------------------------------------
    const project = join(tmp, 'consumer');
    await run('mkdir', ['-p', project], tmp);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'vpl011-consumer', version: '1.0.0', private: true, type: 'module' }));
    // From npm's cache when it has everything (no network); else the registry fills the gaps.
    try {
      await run('npm', ['install', '--offline', '--no-audit', '--no-fund', tarball], project);
    } catch {
      await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], project);
    }
    assert.ok(existsSync(join(project, 'node_modules', 'vpl011', 'package.json')));

    // ---- plain JavaScript, each export ---------------------------------------------------------------------------
    const hello = buildBareGuestFile('hello');
    writeFileSync(join(project, 'use.mjs'), USE_MJS);
    const lines = (await run(process.execPath, ['use.mjs', hello], project, 300_000)).trim().split('\n');
    const got = Object.fromEntries(lines.map((l) => JSON.parse(l) as [string, unknown]));
    assert.equal(got.frReset, 0x90, 'the device answers FR: TXFE | RXFE');
    assert.deepEqual(got.txByte, [0x41], 'a DR write lands in the ring, the backend end drains it');
    assert.equal(got.rxByte, 0x68, 'a byte the backend put in IN is read from DR');
    assert.equal(got.notified, true, 'an event-channel notify sets the peer port pending and moves its doorbell');
    assert.equal(got.replayOk, 0, 'a replay script whose expectations hold exits 0');
    assert.equal(got.replayMismatch, 1, 'a wrong expectation is a mismatch (1)');
    assert.equal(got.rootSame, true, 'the main entry re-exports the same classes');
    assert.equal(got.guestExit, 'poweroff');
    assert.equal(got.guestOutput, 'hello from bare metal\nabc', 'the console stream carried the guest output, input echoed');
    assert.ok((got.guestMmio as number) > 0, 'stats from the running guest');

    // ---- TypeScript, through the exports' types -------------------------------------------------------------------
    writeFileSync(join(project, 'use.ts'), USE_TS);
    writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true,
        types: ['node'], typeRoots: [join(ROOT, 'node_modules', '@types')],
      },
      files: ['use.ts'],
    }));
    await run(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'], project, 240_000);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

const USE_MJS = `
import { Vpl011, Reg } from 'vpl011/device';
import { ConsoleRing, ConsoleRingBackend, EventChannels } from 'vpl011/ring';
import { runReplay } from 'vpl011/replay';
import { bootGuest } from 'vpl011/vmm';
import * as all from 'vpl011';
const say = (k, v) => process.stdout.write(JSON.stringify([k, v]) + '\\n');

// The device core over a ring page, with an interrupt line and a notify port of our own.
const page = new SharedArrayBuffer(4096);
const uart = new Vpl011({ ring: new ConsoleRing(page), irq: { set() {} }, notify() {} });
say('frReset', uart.read(Reg.FR, 4));
uart.write(Reg.DR, 4, 0x41);
const backend = new ConsoleRingBackend(page);
say('txByte', [...backend.drainOut()]);
backend.writeIn(new TextEncoder().encode('h'));
uart.notification();
say('rxByte', uart.read(Reg.DR, 4) & 0xff);

// The event-channel ABI: an unbound port for the backend, bound interdomain, notified.
const ev = EventChannels.create();
const guestPort = ev.allocUnbound(1, 0);
const local = ev.bindInterdomain(0, 1, guestPort);
const bell = ev.doorbell(1);
ev.notify(0, local);
say('notified', ev.isPending(1, guestPort) && ev.doorbell(1) !== bell);

// The replay engine.
say('replayOk', runReplay('expect 0x18 0x90\\nwrite 0x00 0x41\\nexpect-out "A"\\n', () => {}));
say('replayMismatch', runReplay('expect 0x18 0x91\\n', () => {}));
say('rootSame', all.Vpl011 === Vpl011 && all.runReplay === runReplay && all.bootGuest === bootGuest && all.EventChannels === EventChannels);

// The VMM: boot the bare-metal hello guest, read its console, type to it.
const guest = await bootGuest({ kind: 'bare', kernel: process.argv[2], memoryMiB: 16 });
let out = '';
const seen = new Promise((resolve) => guest.output.on('data', (b) => { out += b.toString('latin1'); if (out.includes('metal\\n')) resolve(); }));
const stop = setTimeout(() => guest.stop(), 120000);
await seen;
say('guestMmio', (await guest.stats()).mmio);
guest.input.write('abc\\x04');
const exit = await guest.exited;
clearTimeout(stop);
await new Promise((r) => guest.output.on('end', r));
say('guestExit', exit.reason);
say('guestOutput', out);
`;

const USE_TS = `
import { Vpl011, Reg, type Vpl011Counters } from 'vpl011/device';
import { ConsoleRing, ConsoleRingBackend, EventChannels } from 'vpl011/ring';
import { runReplay } from 'vpl011/replay';
import { bootGuest, type Guest, type GuestExit } from 'vpl011/vmm';
import { Vpl011 as SameVpl011 } from 'vpl011';

const uart: SameVpl011 = new Vpl011({ ring: new ConsoleRing(new SharedArrayBuffer(4096)), irq: { set(_level: boolean) {} }, notify() {} });
const fr: number = uart.read(Reg.FR, 4);
const counters: Vpl011Counters = uart.counters;
const drained: Uint8Array = new ConsoleRingBackend(new SharedArrayBuffer(4096)).drainOut();
const port: number = EventChannels.create().allocUnbound(1, 0);
const code: number = runReplay('', (line: string) => void line);
// Real types, not any: these must be errors.
// @ts-expect-error the device has no such method
uart.noSuchMethod();
// @ts-expect-error a width the bus never uses
uart.read(Reg.FR, 3);
async function boot(): Promise<GuestExit> {
  const g: Guest = await bootGuest({ kind: 'bare', kernel: '/nonexistent' });
  // @ts-expect-error output is a stream, not a string
  const s: string = g.output;
  void s;
  return g.exited;
}
void [fr, counters, drained, port, code, boot];
`;
