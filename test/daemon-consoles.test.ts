// The console daemon serving several real guests: two bare-metal echo guests
// (guests/bare/hello.S on unicorn) each typed into and read from through `vpl011 console`, isolated; clients attach
// over a 0600 socket in a 0700 run dir; read-only watchers cannot type; the control protocol survives bad clients;
// and up/list/destroy free what they allocated (record, magic pages, event channel).
import { after, before } from 'node:test';
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, statSync, existsSync, readdirSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { Harness, runCli } from './lib/daemon-harness.js';
import { ensurePrivateDir, RunDirError, runPaths } from '../src/daemon/paths.js';
import { MAX_REQUEST_LINE, parseTcp } from '../src/daemon/protocol.js';
import { readRecord } from '../src/daemon/records.js';
import { openSharedMapping } from '../src/host/shm.js';
import { recordedEvtchnName } from '../src/daemon/evtchn-table.js';
import { FutexWaker } from '../src/host/futex.js';
import { ECS_FREE, EventChannels } from '../src/xen/evtchn.js';

const BANNER = 'hello from bare metal\n';
const h = new Harness();
before(async () => {
  await h.startDaemon();
  await h.up('alpha', 'hello');
  await h.up('beta', 'hello');
});
after(() => h.cleanup());

/** What a client saw: the banner may have gone out before it attached (clients get output from attach on). */
const afterBanner = (s: string) => (s.startsWith(BANNER) ? s.slice(BANNER.length) : s);

test('two guests under one daemon, each typed into through `vpl011 console`: outputs never mix', async () => {
  const a = await runCli(['console', 'alpha', '--run-dir', h.runDir, '--linger', '300'], 'one\ntwo\n');
  const b = await runCli(['console', 'beta', '--run-dir', h.runDir, '--linger', '300'], 'three\n');
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);
  assert.equal(afterBanner(a.stdout), 'one\ntwo\n');
  assert.equal(afterBanner(b.stdout), 'three\n');
  // The logs hold each guest's own output, from its banner on.
  assert.equal(h.log('alpha').toString(), `${BANNER}one\ntwo\n`);
  assert.equal(h.log('beta').toString(), `${BANNER}three\n`);
  const info = await h.info('alpha');
  assert.equal(info?.bytesIn, 8);
  assert.equal(info?.bytesOut, BANNER.length + 8);
  assert.equal(info?.state, 'running');
});

test('several clients see the same output; a read-only watcher cannot type (input counted, never delivered)', async () => {
  const rw = await h.attach('beta');
  const ro = await h.attach('beta', true);
  ro.sock.write('sneaky\n');
  await h.until(async () => (await h.info('beta'))?.discardedInput === 7, 'discarded input counted');
  rw.sock.write('typed\n');
  await h.until(() => rw.received().includes('typed\n') && ro.received().includes('typed\n'), 'echo to both');
  assert.equal((await h.info('beta'))?.clients, 2);
  assert.ok(!rw.received().includes('sneaky'), 'the watcher typed nothing into the guest');
  assert.ok(!h.log('beta').includes('sneaky'));
  rw.close();
  ro.close();
  await h.until(async () => (await h.info('beta'))?.clients === 0, 'clients gone');
});

test('run dir 0700 and control socket 0600; a group/world-accessible run dir is refused', () => {
  assert.equal(statSync(h.runDir).mode & 0o777, 0o700);
  assert.equal(statSync(runPaths(h.runDir).controlSocket).mode & 0o777, 0o600);
  const open = join(h.runDir, 'too-open');
  mkdirSync(open);
  chmodSync(open, 0o755);
  assert.throws(() => ensurePrivateDir(open), RunDirError);
  chmodSync(open, 0o700);
  assert.doesNotThrow(() => ensurePrivateDir(open));
});

test('the control protocol answers bad requests with errors and the daemon stays up', async () => {
  const bad = async (line: string) => {
    const s = createConnection(runPaths(h.runDir).controlSocket);
    let got = '';
    s.on('data', (b: Buffer) => (got += b.toString()));
    s.on('error', () => {}); // a reset shows as missing output, which the assertion reports
    s.write(line);
    await h.until(() => got.includes('\n'), 'an answer');
    s.destroy();
    return JSON.parse(got.split('\n')[0]!) as { ok: boolean; error?: string };
  };
  const cfg = h.bareConfig('alpha-again', 'hello');
  assert.match((await bad('not json\n')).error ?? '', /JSON/);
  assert.match((await bad('{"op":"format-disk"}\n')).error ?? '', /op: unknown/);
  assert.match((await bad('{"op":"attach","domain":{}}\n')).error ?? '', /domain/);
  assert.match((await bad('{"op":"up","config":"relative.cfg"}\n')).error ?? '', /config: expected an absolute/);
  // The JavaScript test guests are gone: only real guests (configs) can be started.
  assert.match((await bad('{"op":"up","program":"stream"}\n')).error ?? '', /program: unknown field/);
  assert.match((await bad(`{"op":"up","config":${JSON.stringify(cfg)},"tcp":"0.0.0.0:7000"}\n`)).error ?? '', /not a loopback/);
  assert.match((await bad(`{"op":"up","config":${JSON.stringify(cfg)},"name":"alpha"}\n`)).error ?? '', /name: a domain called alpha already exists/);
  assert.match((await bad('x'.repeat(MAX_REQUEST_LINE + 10))).error ?? '', /too long/);
  assert.equal((await h.request({ op: 'ping' })).ok, true);
});

test('up validates a config file with errors naming the field', async () => {
  const cfg = join(h.runDir, 'bad.cfg');
  writeFileSync(cfg, 'name = "x"\nmemory = "lots"\n');
  const r = await h.request({ op: 'up', config: cfg });
  assert.equal(r.ok, false);
  assert.match((r as { error: string }).error, /memory/);
});

test('up of a guest the toolstack cannot build fails with the builder\'s reason and leaves nothing behind', async () => {
  const cfg = join(h.runDir, 'not-a-kernel.cfg');
  writeFileSync(cfg, `name = "broken"\nkernel = "${cfg}"\nmemory = 64\n`);
  const r = await h.request({ op: 'up', config: cfg });
  assert.equal(r.ok, false);
  assert.match((r as { error: string }).error, /broken.*not an arm64 Linux Image/);
  assert.equal(await h.info('broken'), undefined);
});

test('parseTcp: loopback only', () => {
  assert.deepEqual(parseTcp('127.0.0.1:7000'), { ok: true, value: { host: '127.0.0.1', port: 7000 } });
  assert.deepEqual(parseTcp('[::1]:7000'), { ok: true, value: { host: '::1', port: 7000 } });
  assert.equal(parseTcp('192.168.1.2:7000').ok, false);
  assert.equal(parseTcp('127.0.0.1:99999').ok, false);
});

test('raw TCP on loopback reaches the console once the secret is sent', async () => {
  const port = 20000 + Math.floor(Math.random() * 20000);
  await h.up('gamma', 'hello', undefined, { tcp: `127.0.0.1:${port}` });
  const secrets = await h.request({ op: 'list', secrets: true });
  const secret = secrets.ok ? secrets.domains?.find((d) => d.name === 'gamma')?.secret : undefined;
  assert.ok(secret, 'the owner can read the console secret');
  const s = createConnection(port, '127.0.0.1');
  let got = '';
  s.on('data', (b: Buffer) => (got += b.toString()));
  s.on('error', () => {}); // a refused connection shows as missing output, which the assertion reports
  await new Promise((r) => s.once('connect', r));
  s.write(`${secret}\nover tcp\n`);
  await h.until(() => got.includes('over tcp\n'), 'tcp echo');
  s.destroy();
  assert.equal(h.log('gamma').toString(), `${BANNER}over tcp\n`);
});

test('destroy stops a domain and frees its record, shm pages and event channel; the log says why', async () => {
  const id = await h.up('delta', 'hello');
  const rec = readRecord(runPaths(h.runDir).domainsDir, id);
  assert.ok(rec && rec.vuartPort > 0);
  const magicFile = rec.magicShm.slice(1);
  assert.ok(readdirSync('/dev/shm').includes(magicFile));
  const evMap = openSharedMapping(recordedEvtchnName(runPaths(h.runDir))!);
  try {
    const ev = EventChannels.attach(evMap.buffer, new FutexWaker(evMap));
    assert.notEqual(ev.state(id, rec.vuartPort), ECS_FREE, 'the guest port is bound while it runs');
    const r = await h.request({ op: 'destroy', domain: 'delta' });
    assert.equal(r.ok, true);
    assert.equal(await h.info('delta'), undefined);
    assert.equal(existsSync(join(runPaths(h.runDir).domainsDir, `${id}.json`)), false);
    await h.until(() => !readdirSync('/dev/shm').includes(magicFile), 'magic pages unlinked');
    assert.equal(ev.state(id, rec.vuartPort), ECS_FREE, 'the guest port is closed (domain_vpl011_deinit)');
  } finally {
    evMap.close();
  }
  assert.match(h.log('delta').toString(), /\[vpl011: domain delta \(d\d+\) shut down \(stopped\)\]\n$/);
  // The domid is free again for the next domain.
  assert.equal(await h.up('delta2', 'hello'), id);
});
