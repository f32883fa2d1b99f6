// Console daemon policies, with real bare-metal guests on unicorn:
//  - `-o discard`: a client that stops reading misses output (counted, then a visible marker when it resumes),
//    while the log and the guest are unaffected (xenconsoled's discard; ours drops per client, never for the log);
//  - `--timestamp guest` + SIGHUP: each log line gets "[YYYY-mm-dd HH:MM:SS] " and a rotated log is reopened.
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { Harness, sleep } from './lib/daemon-harness.js';
import { streamPattern } from '../src/vmm/bare-guests.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

test('-o discard: a stalled client misses output (counted, marked when it resumes); the log stays byte-exact', async () => {
  const h = new Harness();
  try {
    await h.startDaemon(['-o', 'discard']);
    const COUNT = 6 * 1024 * 1024;
    await h.up('gush', 'stream', { COUNT }, {});
    const client = await h.attach('gush');
    client.sock.pause(); // stop reading: the kernel buffer fills, then the daemon's backlog for this client
    await h.until(async () => ((await h.info('gush'))?.dropped ?? 0) > 0, 'output dropped for the stalled client', 240_000);
    await h.until(() => h.log('gush').length >= COUNT, 'the whole stream in the log', 240_000);
    const info = await h.info('gush');
    assert.equal(info?.throttled ?? 0, 0, 'discard never throttles the guest');
    assert.equal(sha(h.log('gush').subarray(0, COUNT)), sha(streamPattern(COUNT)), 'the log is byte-exact');
    client.sock.resume();
    await h.until(() => /bytes of output dropped/.test(client.received().toString('latin1')), 'the marker reaches the client', 60_000);
    const got = client.received().length;
    assert.ok(got < COUNT, `the client got less than everything (${got} of ${COUNT})`);
    client.close();
  } finally {
    await h.cleanup();
  }
});

test('--timestamp guest: stamped log lines; SIGHUP reopens a rotated log (logrotate)', async () => {
  const h = new Harness();
  try {
    await h.startDaemon(['--timestamp', 'guest']);
    await h.up('clock', 'hello');
    const c = await h.attach('clock');
    c.sock.write('first line\n');
    await h.until(() => h.log('clock').includes('first line\n'), 'first line logged');
    const path = h.logPath('clock');
    renameSync(path, path + '.1');
    h.daemon!.kill('SIGHUP');
    await sleep(300); // the signal is asynchronous; nothing is typed until the daemon has had time to reopen
    c.sock.write('second line\n');
    await h.until(() => existsSync(path) && h.log('clock').includes('second line'), 'second line in the new log');
    const old = readFileSync(path + '.1', 'latin1');
    const now = h.log('clock').toString('latin1');
    assert.match(old, /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] first line$/m);
    assert.ok(!old.includes('second line'), 'nothing after the rotation went to the old file');
    assert.match(now, /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] second line$/m);
    c.close();
  } finally {
    await h.cleanup();
  }
});
