// Domain names are unique even under concurrent requests: several `vpl011 up --name dup` started
// at once must leave exactly one domain called dup; every other one fails with a clear error and a non-zero exit,
// and leaves nothing behind.
import { after } from 'node:test';
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { Harness, runCli } from './lib/daemon-harness.js';
import { runPaths } from '../src/daemon/paths.js';
import { listRecords } from '../src/daemon/records.js';

const h = new Harness();
after(() => h.cleanup());

test('N concurrent `up --name dup`: exactly one domain, the others fail with "already exists"', { timeout: 180_000 }, async () => {
  const N = 5;
  await h.startDaemon();
  const cfg = h.bareConfig('dup', 'hello');
  const runs = await Promise.all(Array.from({ length: N }, () => runCli(['up', cfg, '--name', 'dup', '--run-dir', h.runDir])));
  h.trackHosts();
  const ok = runs.filter((r) => r.code === 0);
  const failed = runs.filter((r) => r.code !== 0);
  const records = listRecords(runPaths(h.runDir).domainsDir).filter((r) => r.name === 'dup');
  assert.equal(records.length, 1, `one domain called dup, found ${records.length}: ${JSON.stringify(runs)}`);
  assert.equal(ok.length, 1, `exactly one up succeeded: ${JSON.stringify(runs)}`);
  assert.equal(ok[0]!.stdout, 'dup\n');
  assert.equal(failed.length, N - 1);
  for (const r of failed) {
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^vpl011: name: a domain called dup already exists\n$/);
  }
  const listed = (await h.list()).filter((d) => d.name === 'dup');
  assert.equal(listed.length, 1);
  // The losers left no spec, stderr or record behind: only the winner's files are in domains/.
  const files = readdirSync(runPaths(h.runDir).domainsDir).filter((f) => !f.endsWith('.tmp'));
  assert.deepEqual(files.sort(), [`${records[0]!.domid}.json`, `${records[0]!.domid}.spec.json`, `${records[0]!.domid}.stderr`].sort());
});

test('the same race with the name taken from the config file (no --name)', { timeout: 180_000 }, async () => {
  const N = 4;
  const cfg = h.bareConfig('fromcfg', 'hello');
  const runs = await Promise.all(Array.from({ length: N }, () => runCli(['up', cfg, '--run-dir', h.runDir])));
  h.trackHosts();
  assert.equal(listRecords(runPaths(h.runDir).domainsDir).filter((r) => r.name === 'fromcfg').length, 1, JSON.stringify(runs));
  assert.equal(runs.filter((r) => r.code === 0).length, 1);
  for (const r of runs.filter((r) => r.code !== 0)) assert.match(r.stderr, /a domain called fromcfg already exists/);
});
