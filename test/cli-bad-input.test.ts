// Issue 8, items 4-10, through the real CLI as a process: every bad input is one clear line on stderr (no stack
// trace), exit 2 for a bad config or argument, nothing hangs, and no untrusted byte reaches the terminal raw.
// No guest boots here: each case must be refused before one would.
import { after } from 'node:test';
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BIN, cli, fakeDaemon, terminalControls } from './lib/cli-process.js';
import { runPaths } from '../src/daemon/paths.js';
import { recordedEvtchnName } from '../src/daemon/evtchn-table.js';
import { unlinkShared } from '../src/host/shm.js';

const fixtures = resolve(fileURLToPath(import.meta.url), '../../../test/fixtures/configs');
const kernel = join(fixtures, 'kernel.bin');
const dir = mkdtempSync(join(tmpdir(), 'vpl011-badinput-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** One line, prefixed, no stack trace, nothing a terminal would act on. */
function oneCleanLine(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, `expected one line, got:\n${stderr.slice(0, 2000)}`);
  assert.doesNotMatch(stderr, /\n\s+at |Error:|RangeError|Maximum call stack/, 'no stack trace');
  assert.deepEqual(terminalControls(stderr.replace(/\n$/, '')), [], 'no raw control bytes');
  return lines[0]!;
}

test('item 9: --config naming a missing file or a directory: the file named, exit 2', { timeout: 60_000 }, async () => {
  const missing = join(dir, 'nonexistent.cfg');
  const r = await cli(['run', '--config', missing]);
  assert.equal(r.code, 2, r.stderr);
  assert.equal(oneCleanLine(r.stderr), `vpl011: ${missing}: no such file`);
  const d = await cli(['run', '--config', dir]);
  assert.equal(d.code, 2, d.stderr);
  assert.equal(oneCleanLine(d.stderr), `vpl011: ${dir}: is a directory, not a regular file`);
});

test('item 5: run --config /dev/zero, a FIFO nobody writes, a 2 MiB file: refused at once, exit 2', { timeout: 90_000 }, async () => {
  const z = await cli(['run', '--config', '/dev/zero']);
  assert.equal(z.code, 2, `killed or wrong code; stderr: ${z.stderr.slice(0, 500)}`);
  assert.equal(oneCleanLine(z.stderr), 'vpl011: /dev/zero: is a character device, not a regular file');
  const fifo = join(dir, 'fifo.cfg');
  execFileSync('mkfifo', [fifo]);
  const f = await cli(['run', '--config', fifo]);
  assert.equal(f.code, 2, `killed or wrong code; stderr: ${f.stderr.slice(0, 500)}`);
  assert.equal(oneCleanLine(f.stderr), `vpl011: ${fifo}: is a FIFO, not a regular file`);
  const big = join(dir, 'big.cfg');
  writeFileSync(big, '# ' + 'x'.repeat(2 * 1024 * 1024) + '\n');
  const b = await cli(['run', '--config', big]);
  assert.equal(b.code, 2, b.stderr);
  assert.equal(oneCleanLine(b.stderr), `vpl011: ${big}: is 2.0 MiB; the limit is 1 MiB`);
});

test('item 6: a config nested 200,000 levels deep is an error naming file:line, exit 2', { timeout: 60_000 }, async () => {
  const deep = join(dir, 'deep.cfg');
  writeFileSync(deep, `kernel = "${kernel}"\nmemory = ${'['.repeat(200_000)}\n`);
  const r = await cli(['run', '--config', deep]);
  assert.equal(r.code, 2, r.stderr.slice(0, 2000));
  assert.equal(oneCleanLine(r.stderr), `vpl011: ${deep}:2: memory: lists nested deeper than 16 levels`);
});

test('item 7: --memory / --append / --mmio-policy are checked by the config rules, before unicorn, exit 2', { timeout: 90_000 }, async () => {
  // The same value in a config file gives the same words: one rule, two front ends.
  const cfg = join(dir, 'mem.cfg');
  writeFileSync(cfg, `kernel = "${kernel}"\nkind = "bare"\nmemory = 99999\n`);
  const fromFile = oneCleanLine((await cli(['run', '--config', cfg])).stderr);
  assert.equal(fromFile, `vpl011: ${cfg}:3: memory: 99999 MiB is outside 16..3072 MiB`);
  for (const [args, line] of [
    [['--memory', '99999'], 'vpl011: --memory: 99999 MiB is outside 16..3072 MiB'],
    [['--memory', '1'], 'vpl011: --memory: 1 MiB is outside 16..3072 MiB'],
    [['--memory', '0'], 'vpl011: --memory: 0 MiB is outside 16..3072 MiB'],
    [['--append', 'a'.repeat(2049)], 'vpl011: --append: is 2049 bytes; arm64 Linux accepts at most 2048 (COMMAND_LINE_SIZE)'],
    [['--mmio-policy', 'ignore'], 'vpl011: --mmio-policy: "ignore" is not one of "abort", "crash-domain"'],
  ] as const) {
    const r = await cli(['run', '--bare', '-k', kernel, ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(oneCleanLine(r.stderr), line);
  }
  const k = await cli(['run', '--bare', '-k', join(dir, 'no-such-kernel')]);
  assert.equal(k.code, 2, k.stderr);
  assert.equal(oneCleanLine(k.stderr), `vpl011: --kernel: ${join(dir, 'no-such-kernel')}: no such file`);
  // Not a number at all: commander's parse error, also one line and exit 2.
  const nan = await cli(['run', '--bare', '-k', kernel, '--memory', 'lots']);
  assert.equal(nan.code, 2, nan.stderr);
  assert.match(oneCleanLine(nan.stderr), /--memory.*'lots' is invalid/);
  // A timeout Node's timers cannot hold would fire after 1 ms: refused instead.
  const t = await cli(['run', '--bare', '-k', kernel, '--timeout', '1e308']);
  assert.equal(t.code, 2, t.stderr);
  assert.match(oneCleanLine(t.stderr), /--timeout.*'1e308' is invalid\. expected a number of seconds in 0\.\.2147483/);
});

test('item 8: run --log into a folder that does not exist: a clear error before the guest starts, exit 2', { timeout: 60_000 }, async () => {
  const log = join(dir, 'nonexistent', 'dir', 'log');
  const r = await cli(['run', '--bare', '-k', kernel, '--log', log]);
  assert.equal(r.code, 2, `killed or wrong code; stderr: ${r.stderr.slice(0, 2000)}`);
  assert.equal(oneCleanLine(r.stderr), `vpl011: --log ${log}: cannot create it: the folder does not exist`);
  const fifo = join(dir, 'log.fifo');
  execFileSync('mkfifo', [fifo]);
  const f = await cli(['run', '--bare', '-k', kernel, '--log', fifo]);
  assert.equal(f.code, 2, `killed or wrong code; stderr: ${f.stderr.slice(0, 2000)}`);
  assert.match(oneCleanLine(f.stderr), /FIFO or device with no reader/);
});

test('item 4: config values with ESC, BEL, CR are shown escaped, never raw', { timeout: 60_000 }, async () => {
  const cfg = join(dir, 'inject.cfg');
  writeFileSync(cfg, `name = "x\x1b]0;owned\x07\r\x1b[2J"\nkernel = "${kernel}"\nkind = "bare"\nvuart = "\x9b31m${'v'.repeat(100_000)}"\n`);
  const r = await cli(['run', '--config', cfg]);
  assert.equal(r.code, 2, r.stderr);
  assert.deepEqual(terminalControls(r.stderr.replace(/\n/g, '')), []);
  assert.ok(r.stderr.includes('"x\\e]0;owned\\a\\r\\e[2J"'), r.stderr);
  // The 100,000-character value is quoted capped: each line stays short.
  for (const line of r.stderr.split('\n')) assert.ok(line.length < 300, `line of ${line.length} chars`);
  assert.ok(r.stderr.includes('"\\x9b31mvvv'), r.stderr.slice(0, 500));
  // A bad argument is echoed escaped too.
  const a = await cli(['run', '--memory', '\x1b[31mred']);
  assert.equal(a.code, 2);
  oneCleanLine(a.stderr);
});

test('item 4: replay errors escape control bytes and cap a 900 KB token', { timeout: 60_000 }, async () => {
  const script = `frob\x1b]0;owned\x07\n${'\x1b[2J'.repeat(225_000)}\nread 0x18 \r\x07junk\n`;
  const r = await cli(['replay', '-'], { input: script });
  assert.equal(r.code, 2, r.stderr);
  assert.deepEqual(terminalControls(r.stdout.replace(/\n/g, '')), []);
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines.length, 3, r.stdout.slice(0, 1000));
  assert.equal(lines[0], 'line 1: unknown step "frob\\e]0;owned\\a"');
  assert.ok(lines[1]!.startsWith('line 2: unknown step "\\e[2J\\e[2J') && lines[1]!.endsWith('…"'), lines[1]!.slice(0, 200));
  assert.ok(lines[1]!.length < 120, `line 2 is ${lines[1]!.length} chars`);
  // A replay of /dev/zero is refused, not read forever.
  const z = await cli(['replay', '/dev/zero']);
  assert.equal(z.code, 2);
  assert.equal(oneCleanLine(z.stderr), 'vpl011 replay: /dev/zero: is a character device, not a regular file');
});

test("item 4: a daemon's answers are printed escaped and capped (a real socket answering hostile text)", { timeout: 60_000 }, async () => {
  const runDir = mkdtempSync(join(tmpdir(), 'vpl011-fake-'));
  const evil = `\x1b]0;owned\x07\r\x1b[2K${'z'.repeat(900_000)}`;
  const fake = await fakeDaemon(runPaths(runDir).controlSocket, JSON.stringify({ ok: false, error: evil }) + '\n');
  try {
    const r = await cli(['destroy', 'web', '--run-dir', runDir]);
    assert.equal(r.code, 2, r.stderr.slice(0, 300));
    assert.ok(oneCleanLine(r.stderr).length < 600);
    assert.ok(r.stderr.startsWith('vpl011: \\e]0;owned\\a\\r\\e[2Kzzz'), r.stderr.slice(0, 100));
  } finally {
    await fake.close();
    rmSync(runDir, { recursive: true, force: true });
  }
  const runDir2 = mkdtempSync(join(tmpdir(), 'vpl011-fake-'));
  const domains = [{ id: 1, name: 'a\x1b[31m', state: 'running\r', reason: '\x07'.repeat(10), bytesIn: 0, bytesOut: 0, clients: 0, dropped: 0 }];
  const fake2 = await fakeDaemon(runPaths(runDir2).controlSocket, JSON.stringify({ ok: true, domains }) + '\n');
  try {
    const r = await cli(['list', '--run-dir', runDir2]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(terminalControls(r.stdout.replace(/\n/g, '')), []);
    assert.match(r.stdout, /a\\e\[31m/);
  } finally {
    await fake2.close();
    rmSync(runDir2, { recursive: true, force: true });
  }
});

test('item 5: every client command says "the daemon does not answer" when the socket accepts and never answers', { timeout: 120_000 }, async () => {
  const runDir = mkdtempSync(join(tmpdir(), 'vpl011-mute-'));
  const mute = await fakeDaemon(runPaths(runDir).controlSocket);
  const env = { VPL011_ANSWER_TIMEOUT_MS: '700' };
  try {
    for (const args of [['list'], ['destroy', 'web'], ['console', 'web'], ['up', join(fixtures, 'good.cfg')]]) {
      const r = await cli([...args, '--run-dir', runDir], { env, limitMs: 20_000 });
      assert.notEqual(r.code, null, `${args[0]} hung (killed after 20 s)`);
      assert.equal(r.code, 1, `${args[0]}: ${r.stderr}`);
      assert.match(oneCleanLine(r.stderr), /^vpl011: the daemon does not answer \(no reply in 0\.7 s on .*control\.sock\)$/, args[0]);
    }
  } finally {
    await mute.close();
    rmSync(runDir, { recursive: true, force: true });
  }
});

test('item 10: up --tcp with an invalid host or port is refused by the client, exit 2, no daemon started', { timeout: 60_000 }, async () => {
  const runDir = join(dir, 'run-tcp');
  for (const [tcp, re] of [
    ['127.300.0.1:7000', /^vpl011: --tcp: "127\.300\.0\.1" is not a loopback address/],
    ['10.0.0.1:7000', /is not a loopback address/],
    ['127.0.0.1:0', /^vpl011: --tcp: port 0 is outside 1\.\.65535$/],
    ['127.0.0.1:70000', /port 70000 is outside/],
    ['nonsense', /^vpl011: --tcp: expected HOST:PORT, got "nonsense"$/],
  ] as const) {
    const r = await cli(['up', join(fixtures, 'good.cfg'), '--tcp', tcp, '--run-dir', runDir]);
    assert.equal(r.code, 2, `${tcp}: ${r.stderr}`);
    assert.match(oneCleanLine(r.stderr), re);
  }
  try {
    assert.equal(existsSync(runPaths(runDir).controlSocket), false, 'no daemon was started');
  } finally {
    // Code that does start one (the old code did) must not leave it running.
    const pidFile = runPaths(runDir).daemonPid;
    if (existsSync(pidFile)) {
      try {
        process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL');
      } catch {
        // already gone
      }
      const table = recordedEvtchnName(runPaths(runDir));
      if (table) unlinkShared(table);
    }
  }
});

test('item 8: standard output closed by its reader (| head -1) ends the command quietly, not with an EPIPE trace', { timeout: 60_000 }, async () => {
  const script = join(dir, 'long.txt');
  writeFileSync(script, 'read 0x18\n'.repeat(100_000));
  const child = spawn(process.execPath, [BIN, 'replay', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  try {
    // Read one chunk, then go away, as `head -1` does.
    await new Promise<void>((r) => child.stdout.once('data', () => r()));
    child.stdout.destroy();
    const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    assert.equal(stderr, '', 'nothing on stderr');
    assert.equal(code, 0);
  } finally {
    clearTimeout(killer);
    child.kill('SIGKILL');
  }
});

test('item 5: a kernel larger than the guest memory is refused before it is read (a sparse 1.5 GiB file), exit 2', { timeout: 60_000 }, async () => {
  const big = join(dir, 'huge-kernel.bin');
  writeFileSync(big, '');
  truncateSync(big, 1536 * 1024 * 1024);
  try {
    const r = await cli(['run', '--bare', '-k', big, '--memory', '16']);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(oneCleanLine(r.stderr), `vpl011: kernel: ${big}: is 1536 MiB; the limit is 16 MiB (the guest's memory)`);
  } finally {
    rmSync(big, { force: true });
  }
});
