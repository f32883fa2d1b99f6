// Issue 8, items 5 and 10, against a real daemon: `up` with a config that is /dev/zero, a FIFO or too big is
// refused at once (the daemon reads configs only from bounded regular files) and the daemon stays alive; `up --tcp`
// on a port in use fails with exit 2 and leaves no domain; a pipelining client that never reads its answers
// cannot grow the daemon without bound.
import { after, before } from 'node:test';
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Harness, sleep } from './lib/daemon-harness.js';
import { cli, terminalControls } from './lib/cli-process.js';
import { runPaths } from '../src/daemon/paths.js';

const h = new Harness();
// The daemon (a child) inherits it: idle control connections are closed after 1.5 s instead of 30 s.
process.env.VPL011_CONTROL_IDLE_MS = '1500';
before(() => h.startDaemon());
after(() => h.cleanup());

async function daemonAnswers(): Promise<void> {
  const res = await h.request({ op: 'ping' });
  assert.ok(res.ok, 'the daemon answers a ping');
}

test('item 5: up /dev/zero, a FIFO, a 2 MiB config: refused, exit 2, the daemon alive and quick', { timeout: 120_000 }, async () => {
  const fifo = join(h.runDir, 'cfg.fifo');
  execFileSync('mkfifo', [fifo]);
  const big = join(h.runDir, 'big.cfg');
  writeFileSync(big, '#'.repeat(2 * 1024 * 1024) + '\n');
  for (const [file, why] of [
    ['/dev/zero', 'is a character device, not a regular file'],
    [fifo, 'is a FIFO, not a regular file'],
    [big, 'is 2.0 MiB; the limit is 1 MiB'],
    [join(h.runDir, 'missing.cfg'), 'no such file'],
    [h.runDir, 'is a directory, not a regular file'],
  ] as const) {
    // limitMs: the old daemon blocked its loop on /dev/zero for a minute, and forever on a FIFO.
    const r = await cli(['up', file, '--run-dir', h.runDir], { limitMs: 30_000 });
    assert.notEqual(r.code, null, `up ${file} hung`);
    assert.equal(r.code, 2, `${file}: ${r.stderr}`);
    assert.equal(r.stderr, `vpl011: ${file}: ${why}\n`);
    await daemonAnswers();
  }
  assert.equal(h.daemon!.exitCode, null, 'the daemon still runs');
  assert.deepEqual(await h.list(), []);
  // Naming a domain that does not exist is the caller's mistake too: exit 2, like destroy.
  const c = await cli(['console', 'nosuch', '--run-dir', h.runDir], { limitMs: 30_000 });
  assert.equal(c.code, 2, c.stderr);
  assert.equal(c.stderr, 'vpl011: domain: no running console for nosuch\n');
});

test('item 10: up --tcp on a port in use: exit 2 naming the endpoint, and no domain left behind', { timeout: 120_000 }, async () => {
  const squatter = createServer();
  await new Promise<void>((r) => squatter.listen(0, '127.0.0.1', () => r()));
  const port = (squatter.address() as AddressInfo).port;
  try {
    const cfg = h.bareConfig('tcpbusy', 'hello');
    const r = await cli(['up', cfg, '--tcp', `127.0.0.1:${port}`, '--run-dir', h.runDir], { limitMs: 60_000 });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr, `vpl011: tcp: cannot listen on 127.0.0.1:${port}: the port is in use\n`);
    assert.deepEqual((await h.list()).map((d) => d.name), []);
  } finally {
    await new Promise((r) => squatter.close(r));
  }
  // The same endpoint once free works: the console is reachable over TCP as soon as `up` returns.
  const cfg = h.bareConfig('tcpfree', 'hello');
  const up = await cli(['up', cfg, '--tcp', `127.0.0.1:${port}`, '--run-dir', h.runDir], { limitMs: 60_000 });
  h.trackHosts();
  assert.equal(up.code, 0, up.stderr);
  const secrets = await h.request({ op: 'list', secrets: true });
  const secret = secrets.ok ? secrets.domains?.find((d) => d.name === 'tcpfree')?.secret : undefined;
  assert.ok(secret, 'the TCP console has a secret');
  const sock = createConnection(port, '127.0.0.1');
  try {
    let got = '';
    sock.on('data', (b: Buffer) => (got += b.toString()));
    await new Promise<void>((res, rej) => {
      sock.once('connect', () => res());
      sock.once('error', rej);
    });
    sock.write(`${secret}\nping-over-tcp\n`);
    await h.until(() => got.includes('ping-over-tcp'), 'the echo over TCP', 30_000);
  } finally {
    sock.destroy();
  }
  const d = await cli(['destroy', 'tcpfree', '--run-dir', h.runDir]);
  assert.equal(d.code, 0, d.stderr);
});

test('item 5: a client that pipelines requests and never reads the answers is throttled; others are served', { timeout: 60_000 }, async () => {
  const hog = createConnection(runPaths(h.runDir).controlSocket);
  hog.on('error', () => {}); // the daemon may reset the hog: the test checks the others are served
  try {
    await new Promise<void>((r) => hog.once('connect', () => r()));
    hog.pause(); // never read
    // "{}" is refused with a ~50-byte answer: 3 bytes in, 17 times that queued out, if the daemon kept reading.
    const batch = Buffer.from('{}\n'.repeat(20_000));
    const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${h.daemon!.pid}/status`, 'utf8'))![1]) * 1024;
    const before = rss();
    // Write for up to 5 s, waiting for each drain at most 1 s: a daemon that stops reading stops the drains. The old
    // daemon read on, slowly, queueing a promise and an answer per line: +40 MB per 60 KB it read.
    const end = Date.now() + 5000;
    while (Date.now() < end) {
      if (hog.write(batch)) continue;
      const drained = await Promise.race([new Promise((r) => hog.once('drain', () => r(true))), sleep(1000).then(() => false)]);
      if (!drained) break;
    }
    const grown = rss() - before;
    assert.ok(grown < 64 * 1024 * 1024, `the daemon grew by ${(grown / 1048576).toFixed(0)} MiB reading a client that never reads`);
    await daemonAnswers();
    const r = await cli(['list', '--run-dir', h.runDir]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(terminalControls(r.stdout.replace(/\n/g, '')), []);
  } finally {
    hog.destroy();
  }
});

test('item 5: a control connection that sends half a request and stalls is closed; an attached console is not', { timeout: 60_000 }, async () => {
  const stall = createConnection(runPaths(h.runDir).controlSocket);
  stall.on('error', () => {}); // closed by the daemon on purpose: checked through 'close'
  try {
    await new Promise<void>((r) => stall.once('connect', () => r()));
    stall.write('{"op":');
    const closed = await Promise.race([new Promise((r) => stall.once('close', () => r(true))), sleep(15_000).then(() => false)]);
    assert.ok(closed, 'the daemon still holds a connection that never finished its request');
  } finally {
    stall.destroy();
  }
  await h.up('quiet', 'hello');
  const a = await h.attach('quiet');
  try {
    await sleep(3000);
    assert.equal(a.sock.destroyed || a.sock.readyState !== 'open', false, 'an idle attached console stays open');
  } finally {
    a.close();
  }
  const d = await cli(['destroy', 'quiet', '--run-dir', h.runDir]);
  assert.equal(d.code, 0, d.stderr);
});
