// The product path with the real default guest: `vpl011 up` with no config boots Debian's Linux (the
// default guest of `vpl011 run`) on unicorn in a domain host; `vpl011 console` runs a shell command in it through
// pipes; `vpl011 list` shows it with console bytes in and out; `vpl011 destroy` frees it (record, magic pages,
// event channel).
import { after, before } from 'node:test';
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Harness, runCli } from './lib/daemon-harness.js';
import { runPaths } from '../src/daemon/paths.js';
import { readRecord } from '../src/daemon/records.js';
import { openSharedMapping } from '../src/host/shm.js';
import { recordedEvtchnName } from '../src/daemon/evtchn-table.js';
import { FutexWaker } from '../src/host/futex.js';
import { ECS_FREE, EventChannels } from '../src/xen/evtchn.js';
import type { DomainInfo } from '../src/daemon/protocol.js';

const PROMPT = /\/ # /;
const h = new Harness();
before(() => h.startDaemon());
after(() => h.cleanup());

test('up (no config) boots the default Linux guest; console runs a command; list shows bytes; destroy frees it', async () => {
  const up = await runCli(['up', '--run-dir', h.runDir]);
  assert.equal(up.code, 0, up.stderr);
  assert.equal(up.stdout, 'debian\n', 'the default guest is named after its config');
  h.trackHosts();
  await h.until(() => PROMPT.test(h.log('debian').toString('latin1')), 'the shell prompt', 180_000);
  assert.match(h.log('debian').toString('latin1'), /Booting Linux/);

  const cmd = 'echo vpl011-$((6*7))\n';
  const con = await runCli(['console', 'debian', '--run-dir', h.runDir, '--linger', '1500'], cmd);
  assert.equal(con.code, 0, con.stderr);
  assert.match(con.stdout, /^vpl011-42\r?$/m, 'the command ran in the guest and its output came back');

  const table = await runCli(['list', '--run-dir', h.runDir]);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^\d+\s+debian\s+running\s+\d+\s+\d+/m);
  const json = await runCli(['list', '--run-dir', h.runDir, '--json']);
  const d = (JSON.parse(json.stdout) as DomainInfo[]).find((x) => x.name === 'debian');
  assert.ok(d);
  assert.equal(d.bytesIn, cmd.length, 'every typed byte was delivered');
  assert.ok(d.bytesOut >= h.log('debian').length - 100 && d.bytesOut > 10_000, `boot output counted (${d.bytesOut})`);

  const rec = readRecord(runPaths(h.runDir).domainsDir, d.id);
  assert.ok(rec && rec.vuartPort > 0);
  const evMap = openSharedMapping(recordedEvtchnName(runPaths(h.runDir))!);
  try {
    const ev = EventChannels.attach(evMap.buffer, new FutexWaker(evMap));
    assert.notEqual(ev.state(d.id, rec.vuartPort), ECS_FREE);
    const des = await runCli(['destroy', 'debian', '--run-dir', h.runDir]);
    assert.equal(des.code, 0, des.stderr);
    assert.equal(existsSync(join(runPaths(h.runDir).domainsDir, `${d.id}.json`)), false, 'record removed');
    await h.until(() => !readdirSync('/dev/shm').includes(rec.magicShm.slice(1)), 'magic pages unlinked', 20_000);
    assert.equal(ev.state(d.id, rec.vuartPort), ECS_FREE, 'the guest event channel is closed');
  } finally {
    evMap.close();
  }
  const after = await runCli(['list', '--run-dir', h.runDir, '--json']);
  assert.deepEqual(JSON.parse(after.stdout), []);
  assert.match(h.log('debian').toString('latin1'), /\[vpl011: domain debian \(d\d+\) shut down \(stopped\)\]\n$/);
});

test('input sent right after up, while Linux is still booting, waits until the guest listens (nothing drained)', async () => {
  const up = await runCli(['up', '--run-dir', h.runDir, '--name', 'early']);
  assert.equal(up.code, 0, up.stderr);
  h.trackHosts();
  // No waiting for the prompt: amba-pl011 would drain and discard these bytes if they reached the ring before the
  // driver opened the port.
  const con = await runCli(['console', 'early', '--run-dir', h.runDir, '--linger', '3000', '--timeout', '170000'], 'echo early-$((50+8))\n');
  assert.equal(con.code, 0, con.stderr);
  await h.until(() => /^early-58\r?$/m.test(h.log('early').toString('latin1')), 'the early command ran', 120_000);
  const des = await runCli(['destroy', 'early', '--run-dir', h.runDir]);
  assert.equal(des.code, 0, des.stderr);
});
