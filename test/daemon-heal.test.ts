// A daemon crash heals itself and forgets nothing (issue #8 items 12-14), with real bare-metal guests on unicorn:
//  - after kill -9 of the daemon, `list` and `console` start a new one (as `up` does) with the options the old one
//    was started with, instead of answering ECONNREFUSED;
//  - IN/OUT counters are part of the console's record: a restarted daemon shows them as they were (OUT = the bytes
//    in the log);
//  - a dead domain leaves no `domains/<id>.stderr` behind; what its host said is kept in the daemon's log.
import { test } from 'node:test';
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
