// Nothing lost across a daemon restart, end to end with real guests on unicorn: a `vpl011
// console` client keeps going while the daemon is killed with -9 twice, and no one restarts it by hand (the client
// starts a new one, item 12). Output: what the client printed is the guest's stream (guests/bare/stream.S) from its
// attach on, no gap and no duplicate, then the domain's end. Input: bytes piped into the client across the kills
// reach guests/bare/checksum.S exactly once (its FNV-1a and count match).
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Harness } from './lib/daemon-harness.js';
import { ConsoleProcess, vpl011Process } from './lib/console-process.js';
import { expectReadOnce, pipeIntoChecksumGuest } from './lib/piped-input.js';
import { runPaths } from '../src/daemon/paths.js';
import { readRecord } from '../src/daemon/records.js';
import { streamPattern } from '../src/vmm/bare-guests.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Kill the daemon serving the run dir (whoever started it) with -9; resolves once it is gone. */
async function killDaemon(h: Harness): Promise<void> {
  const pid = Number(readFileSync(runPaths(h.runDir).daemonPid, 'utf8'));
  if (h.daemon?.pid === pid) return h.killDaemon('SIGKILL');
  process.kill(pid, 'SIGKILL');
  await h.until(() => {
    try {
      process.kill(pid, 0);
      return false;
    } catch {
      return true;
    }
  }, 'the daemon gone', 10_000);
}

/** The daemon's list, or undefined while no daemon answers. */
async function tryInfo(h: Harness, name: string) {
  try {
    return await h.info(name);
  } catch {
    return undefined;
  }
}

test('output: a console client rides through two kill -9 of the daemon; it printed the stream byte for byte', { timeout: 600_000 }, async () => {
  const h = new Harness();
  // 24 MiB: long enough (seconds, even on the native path) that the stream is still running when the client, a new
  // Node process, has started and attached on a loaded machine; a 3 MiB stream sometimes ended before that.
  const COUNT = 24 * 1024 * 1024;
  let client: ConsoleProcess | undefined;
  try {
    await h.startDaemon();
    await h.up('river', 'stream', { COUNT });
    client = vpl011Process(['console', 'river', '--run-dir', h.runDir]);
    for (const at of [256 * 1024, 1024 * 1024]) {
      await h.until(() => client!.length >= at, `the client to have printed ${at} bytes`, 240_000);
      await killDaemon(h);
    }
    const { code } = await client.exitWithin(400_000);
    assert.equal(code, 0, client.stderr);
    assert.equal(client.stderr.match(/reconnecting\.\.\./g)?.length, 2, `"reconnecting..." once per kill:\n${client.stderr}`);
    const end = '\r\n[vpl011: domain river (d1) shut down (poweroff)]\r\n';
    const out = Buffer.from(client.out, 'latin1');
    assert.equal(out.subarray(out.length - end.length).toString('latin1'), end, 'the client saw the domain end');
    const body = out.subarray(0, out.length - end.length);
    // Where it attached depends on the guest's speed (the native path streams fast); what matters is that both kills
    // (after 256 KiB and 1 MiB of its output) fell inside what it printed, and that the rest is exact.
    assert.ok(body.length > 1024 * 1024, `the client printed through both kills (${body.length} bytes)`);
    assert.equal(sha(body), sha(streamPattern(COUNT).subarray(COUNT - body.length)), 'no gap, no duplicate');
    // And the log, the record, is whole too.
    const log = h.log('river');
    assert.equal(sha(log.subarray(0, COUNT)), sha(streamPattern(COUNT)));
  } finally {
    await client?.kill();
    await h.cleanup();
  }
});

test('input: bytes piped into a console client across two kill -9 of the daemon reach the guest exactly once', { timeout: 600_000 }, async () => {
  const h = new Harness();
  const COUNT = 2 * 1024 * 1024;
  let client: ConsoleProcess | undefined;
  try {
    await h.startDaemon();
    const piped = await pipeIntoChecksumGuest(h, 'sum', COUNT);
    client = piped.client;
    const data = piped.data;
    for (const at of [256 * 1024, 1024 * 1024]) {
      await h.until(async () => ((await tryInfo(h, 'sum'))?.bytesIn ?? 0) >= at, `${at} bytes of input in the guest`, 240_000);
      await killDaemon(h);
    }
    await expectReadOnce(client, data);
    assert.equal(client.stderr.match(/reconnecting\.\.\./g)?.length, 2, client.stderr);
    client.child.stdin.end();
    const { code } = await client.exited;
    assert.equal(code, 0, client.stderr);
  } finally {
    await client?.kill();
    await h.cleanup();
  }
});

test('a domain that ends while the daemon is dead: the reconnecting client still gets its end and exits 0', { timeout: 300_000 }, async () => {
  const h = new Harness();
  let client: ConsoleProcess | undefined;
  try {
    await h.startDaemon();
    const id = await h.up('brief', 'hello');
    client = vpl011Process(['console', 'brief', '--run-dir', h.runDir]);
    await h.until(async () => ((await tryInfo(h, 'brief'))?.clients ?? 0) === 1, 'the client attached');
    client.type('said once\n');
    await client.expect(/said once\n/, 60_000);
    const hostPid = readRecord(runPaths(h.runDir).domainsDir, id)!.pid;
    await killDaemon(h);
    process.kill(hostPid, 'SIGTERM'); // the domain ends with no daemon to see it (a new one finds it ended)
    const { code } = await client.exitWithin(120_000);
    assert.equal(code, 0, client.stderr);
    assert.match(client.out, /said once\n\r\n\[vpl011: domain brief \(d\d+\) shut down \(stopped\)\]\r\n$/);
    assert.equal(client.out.split('said once').length, 2, 'the echo was shown once');
  } finally {
    await client?.kill();
    await h.cleanup();
  }
});
