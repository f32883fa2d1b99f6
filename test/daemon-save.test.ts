// Daemon-managed save, restore and migrate (docs/SAVE.md) with real guests on unicorn: `vpl011 migrate` under an
// attached `vpl011 console` client, which follows the domain to its new instance and prints the guest's stream byte
// for byte (output in flight at the save comes out once, after the restore); input piped across a migration reaches
// the guest exactly once; `vpl011 save` / `vpl011 restore` by hand, with bad files refused with their reason.
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Harness, runCli } from './lib/daemon-harness.js';
import { vpl011Process, type ConsoleProcess } from './lib/console-process.js';
import { expectReadOnce, pipeIntoChecksumGuest } from './lib/piped-input.js';
import { streamPattern } from '../src/vmm/bare-guests.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

test('migrate under an attached console: the client follows the domain and prints the stream byte for byte, then its end', { timeout: 600_000 }, async () => {
  const h = new Harness();
  // Long enough that the guest still streams when the migration comes, at the native path's speed.
  const COUNT = 32 * 1024 * 1024;
  let client: ConsoleProcess | undefined;
  try {
    await h.startDaemon();
    await h.up('river', 'stream', { COUNT });
    client = vpl011Process(['console', 'river', '--run-dir', h.runDir]);
    await h.until(() => client!.length >= 256 * 1024, 'the client to have printed 256 KiB', 240_000);
    const m = await runCli(['migrate', 'river', '--run-dir', h.runDir]);
    assert.equal(m.code, 0, m.stderr);
    assert.match(m.stderr, /domain river migrated/);
    h.trackHosts();
    const { code } = await client.exitWithin(400_000);
    assert.equal(code, 0, client.stderr);
    assert.match(client.stderr, /is migrating; following it/);
    assert.match(client.stderr, /following the migrated domain/);
    const out = Buffer.from(client.out, 'latin1');
    const end = /\r\n\[vpl011: domain river \(d\d+\) shut down \(poweroff\)\]\r\n$/.exec(client.out);
    assert.ok(end, `the client saw the end: ${JSON.stringify(client.out.slice(-100))}`);
    const body = out.subarray(0, out.length - end[0].length);
    assert.ok(body.length > 256 * 1024, `the client printed across the migration (${body.length} bytes)`);
    assert.equal(sha(body), sha(streamPattern(COUNT).subarray(COUNT - body.length)), 'no gap, no duplicate across the migration');
    // The log (one per name) is the whole stream: the saved instance's part, then the restored one's.
    assert.equal(sha(h.log('river').subarray(0, COUNT)), sha(streamPattern(COUNT)));
  } finally {
    client?.kill();
    await h.cleanup();
  }
});

test('input piped into a console client across a migration reaches the guest exactly once', { timeout: 600_000 }, async () => {
  const h = new Harness();
  // Long enough that the guest still reads when the migration comes.
  const COUNT = 16 * 1024 * 1024;
  let client: ConsoleProcess | undefined;
  try {
    await h.startDaemon();
    const piped = await pipeIntoChecksumGuest(h, 'sum', COUNT);
    client = piped.client;
    const data = piped.data;
    await h.until(async () => ((await h.info('sum'))?.bytesIn ?? 0) >= 64 * 1024, '64 KiB of input in the guest', 240_000);
    const before = (await h.info('sum'))?.bytesIn ?? 0;
    assert.ok(before < COUNT, 'the guest still reads when the migration is asked for');
    const m = await runCli(['migrate', 'sum', '--run-dir', h.runDir]);
    assert.equal(m.code, 0, m.stderr);
    h.trackHosts();
    assert.match(client.stderr, /is migrating; following it/, 'the migration came while the client was attached');

    await expectReadOnce(client, data);
    client.child.stdin.end();
    assert.equal((await client.exitWithin(120_000)).code, 0, client.stderr);
  } finally {
    client?.kill();
    await h.cleanup();
  }
});

test('save then restore by hand: the domain ends with its file written (0600), comes back under its name; bad files are refused', { timeout: 400_000 }, async () => {
  const h = new Harness();
  try {
    await h.startDaemon();
    await h.up('echo1', 'hello');
    await h.until(() => h.log('echo1').includes('hello from bare metal\n'), 'the banner');
    const file = join(h.runDir, 'echo1.save');
    const s = await runCli(['save', 'echo1', file, '--run-dir', h.runDir]);
    assert.equal(s.code, 0, s.stderr);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(await h.info('echo1'), undefined, 'the saved domain is gone');
    // A snapshot of nothing: saving a domain that does not run is refused.
    const none = await runCli(['save', 'echo1', file + '.2', '--run-dir', h.runDir]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /no domain echo1/);
    assert.ok(!existsSync(file + '.2'));

    const r = await runCli(['restore', file, '--run-dir', h.runDir]);
    assert.equal(r.code, 0, r.stderr);
    h.trackHosts();
    assert.equal((await h.info('echo1'))?.state, 'running');
    // It answers: the hello guest echoes input until EOT, then powers off.
    const c = await runCli(['console', 'echo1', '--run-dir', h.runDir], 'after restore\x04', 120_000);
    assert.match(c.stdout, /after restore/);
    // Keep running: a snapshot while it runs on.
    await h.up('echo2', 'hello');
    const k = await runCli(['save', 'echo2', file + '.k', '--keep-running', '--run-dir', h.runDir]);
    assert.equal(k.code, 0, k.stderr);
    assert.equal((await h.info('echo2'))?.state, 'running');
    const named = await runCli(['restore', file + '.k', '--name', 'echo3', '--run-dir', h.runDir]);
    assert.equal(named.code, 0, named.stderr);
    h.trackHosts();
    assert.equal((await h.info('echo3'))?.state, 'running');

    const good = readFileSync(file);
    const bad: [string, Buffer, RegExp][] = [
      ['truncated', good.subarray(0, good.length - 7), /truncated/],
      ['flipped', (() => { const b = Buffer.from(good); b[b.length - 5]! ^= 0x40; return b; })(), /checksum/],
      ['newer', (() => { const b = Buffer.from(good); b.writeUInt32LE(2, 8); return b; })(), /saved by a newer vpl011/],
    ];
    for (const [what, bytes, why] of bad) {
      const f = join(h.runDir, `${what}.save`);
      writeFileSync(f, bytes);
      const res = await runCli(['restore', f, '--name', `bad-${what}`, '--run-dir', h.runDir]);
      assert.equal(res.code, 2, `${what}: ${res.stderr}`);
      assert.match(res.stderr, why, what);
      assert.equal(await h.info(`bad-${what}`), undefined, `${what}: no domain was built`);
    }
  } finally {
    await h.cleanup();
  }
});

test('Linux under the daemon, `while :; do date; sleep 1; done &` running, migrated under an attached console: it keeps printing and answers', { timeout: 600_000 }, async () => {
  const h = new Harness();
  let client: ConsoleProcess | undefined;
  try {
    await h.startDaemon();
    const up = await runCli(['up', '--name', 'deb', '--run-dir', h.runDir]);
    assert.equal(up.code, 0, up.stderr);
    h.trackHosts();
    await h.until(() => /\/ # /.test(h.log('deb').toString('latin1')), 'the shell prompt', 180_000);
    client = vpl011Process(['console', 'deb', '--run-dir', h.runDir]);
    await h.until(async () => ((await h.info('deb'))?.clients ?? 0) === 1, 'the client attached');
    // In the background: the loop keeps printing while typed commands are answered.
    client.type('while :; do date; sleep 1; done &\n');
    await client.expect(/(UTC \d{4}\r?\n[^]*){2}/, 60_000);
    const m = await runCli(['migrate', 'deb', '--run-dir', h.runDir]);
    assert.equal(m.code, 0, m.stderr);
    h.trackHosts();
    const at = client.out.length;
    await client.expect(/(UTC \d{4}\r?\n[^]*){3}/, 60_000, at);
    assert.match(client.stderr, /following the migrated domain/);
    // Every date once, one or two guest seconds apart, across the migration.
    const secs = [...client.out.matchAll(/(\d\d):(\d\d):(\d\d) UTC \d{4}\r?\n/g)].map((x) => Number(x[1]) * 3600 + Number(x[2]) * 60 + Number(x[3]));
    for (let i = 1; i < secs.length; i++) assert.ok(secs[i]! - secs[i - 1]! >= 1 && secs[i]! - secs[i - 1]! <= 2, `dates ${secs.join(' ')}`);
    const q = client.out.length;
    client.type('echo migrated-$((6*7))\n');
    await client.expect(/migrated-42/, 30_000, q);
  } finally {
    client?.kill();
    await h.cleanup();
  }
});
