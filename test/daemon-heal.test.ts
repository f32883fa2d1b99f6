// A daemon crash heals itself and forgets nothing, with real bare-metal guests on unicorn:
//  - after kill -9 of the daemon, `list` and `console` start a new one (as `up` does) with the options the old one
//    was started with, instead of answering ECONNREFUSED;
//  - IN/OUT counters are part of the console's record: a restarted daemon shows them as they were (OUT = the bytes
//    in the log);
//  - a dead domain leaves no `domains/<id>.stderr` behind; what its host said is kept in the daemon's log.
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Harness, runCli } from './lib/daemon-harness.js';
import { runPaths } from '../src/daemon/paths.js';
import { readRecord } from '../src/daemon/records.js';
import { buildBareGuestFile } from '../src/vmm/bare-guests.js';

const stderrFiles = (h: Harness) => readdirSync(runPaths(h.runDir).domainsDir).filter((f) => f.endsWith('.stderr'));

test('a domain whose host is killed leaves no stderr file behind', { timeout: 180_000 }, async () => {
  const h = new Harness();
  try {
    await h.startDaemon();
    const id = await h.up('victim', 'hello');
    assert.deepEqual(stderrFiles(h), [`${id}.stderr`], 'the host writes its diagnostics to a file while it runs');
    const rec = readRecord(runPaths(h.runDir).domainsDir, id)!;
    process.kill(rec.pid, 'SIGKILL');
    await h.until(() => /\[vpl011: domain victim \(d\d+\) domain host \(pid \d+\) died\]/.test(h.log('victim').toString()), 'the daemon noticing the death');
    await h.until(async () => (await h.info('victim')) === undefined, 'the domain gone from list');
    assert.deepEqual(stderrFiles(h), [], 'no stale stderr file');
  } finally {
    await h.cleanup();
  }
});

test('a crashed domain leaves no stderr file; its host\'s last words are in the daemon\'s log', { timeout: 180_000 }, async () => {
  const h = new Harness();
  try {
    await h.startDaemon();
    const cfg = join(h.runDir, 'crash.cfg');
    const kernel = buildBareGuestFile('bad-access');
    writeFileSync(cfg, `name = "crasher"\nkind = "bare"\nkernel = "${kernel}"\nmemory = 16\nmmio_policy = "crash-domain"\n`);
    const res = await h.request({ op: 'up', config: cfg });
    h.trackHosts();
    // Either it crashed before `up` answered, or right after: both end with the domain gone.
    if (res.ok) await h.until(() => /\[vpl011: domain crasher \(d\d+\) crashed/.test(h.log('crasher').toString()), 'the crash in the log');
    await h.until(async () => (await h.info('crasher')) === undefined && stderrFiles(h).length === 0, 'the domain and its stderr file gone');
    assert.match(h.daemonOutput, /domain-host.*crashed/, 'the host\'s own report is kept in the daemon\'s log');
  } finally {
    await h.cleanup();
  }
});

const daemonPid = (h: Harness) => Number(readFileSync(runPaths(h.runDir).daemonPid, 'utf8'));
const pidAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test('after kill -9 of the daemon, `list` and `console` start a new one with the old options', { timeout: 300_000 }, async () => {
  const h = new Harness();
  try {
    const logs = join(h.runDir, 'elsewhere');
    const started = await runCli(['daemon', '--run-dir', h.runDir, '--log-dir', logs]);
    assert.equal(started.code, 0, started.stderr);
    const cfg = h.bareConfig('phoenix', 'hello');
    const up = await runCli(['up', cfg, '--run-dir', h.runDir]);
    assert.equal(up.code, 0, up.stderr);
    h.trackHosts();
    const first = daemonPid(h);
    process.kill(first, 'SIGKILL');
    await h.until(() => !pidAlive(first), 'the daemon dead');

    const list = await runCli(['list', '--run-dir', h.runDir]);
    assert.equal(list.code, 0, `list after the crash: ${list.stderr}`);
    assert.match(list.stdout, /phoenix\s+running/);
    const second = daemonPid(h);
    assert.ok(second !== first && pidAlive(second), 'a new daemon serves the run dir');

    process.kill(second, 'SIGKILL');
    await h.until(() => !pidAlive(second), 'the second daemon dead');
    const typed = await runCli(['console', 'phoenix', '--run-dir', h.runDir, '--linger', '300'], 'still here\n');
    assert.equal(typed.code, 0, `console after the crash: ${typed.stderr}`);
    assert.match(typed.stdout, /still here\n/);
    // The new daemons kept the first one's --log-dir: the guest's log goes on in the same file.
    assert.match(readFileSync(join(logs, 'guest-phoenix-vuart0.log'), 'latin1'), /^hello from bare metal\nstill here\n$/);
    assert.ok(!existsSync(h.logPath('phoenix')), 'nothing went to the default log dir');
  } finally {
    await h.cleanup();
  }
});

test('IN/OUT counters survive a daemon restart (OUT = the bytes in the log)', { timeout: 300_000 }, async () => {
  const h = new Harness();
  try {
    await h.startDaemon();
    await h.up('count', 'hello');
    const c = await h.attach('count');
    const line = 'counting bytes across a crash\n';
    for (let i = 0; i < 50; i++) c.sock.write(line);
    const banner = 'hello from bare metal\n';
    const total = banner.length + 50 * line.length;
    await h.until(() => h.log('count').length === total, 'every echo in the log');
    c.close();
    const before = await h.info('count');
    assert.equal(before?.bytesIn, 50 * line.length);
    assert.equal(before?.bytesOut, total);
    for (let k = 0; k < 2; k++) {
      await h.killDaemon('SIGKILL');
      await h.startDaemon();
      const after = await h.info('count');
      assert.equal(after?.bytesIn, before?.bytesIn, `IN after restart ${k + 1}`);
      assert.equal(after?.bytesOut, h.log('count').length, `OUT after restart ${k + 1} = the log's bytes`);
    }
    const again = await h.attach('count');
    again.sock.write('more\n');
    await h.until(async () => (await h.info('count'))?.bytesOut === total + 5, 'counting goes on from there');
    assert.equal((await h.info('count'))?.bytesIn, 50 * line.length + 5);
    again.close();
  } finally {
    await h.cleanup();
  }
});

test('two daemons started at once on one run dir: one serves, the other exits 3 ("already running")', { timeout: 120_000 }, async () => {
  const h = new Harness();
  try {
    const a = runCli(['daemon', '--foreground', '--run-dir', h.runDir]);
    const b = runCli(['daemon', '--foreground', '--run-dir', h.runDir]);
    const loser = await Promise.race([a, b]);
    assert.equal(loser.code, 3, loser.stderr);
    assert.match(loser.stderr, /already running/);
    const list = await runCli(['list', '--run-dir', h.runDir]);
    assert.equal(list.code, 0, list.stderr);
    assert.ok(pidAlive(daemonPid(h)), 'the winner serves');
  } finally {
    await h.cleanup();
  }
});
