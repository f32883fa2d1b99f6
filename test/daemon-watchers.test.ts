// Read-only watchers never slow a guest: under the default `-o keep`, backpressure may come only
// from a read-write client; a stalled read-only watcher gets discard semantics (counted in `dropped`, a visible
// marker when it reads again) and neither the guest nor its log ever waits for it.
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Harness } from './lib/daemon-harness.js';
import { streamPattern } from '../src/vmm/bare-guests.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
/** Only keeps a broken run from hanging; the old code stalled here forever. */
const LIMIT_MS = Number(process.env.VPL011_TEST_WATCHER_LIMIT_MS ?? 240_000);

test('-o keep: a stalled read-only watcher does not freeze the guest or its log; its drops are counted and marked', { timeout: 600_000 }, async () => {
  const h = new Harness();
  try {
    await h.startDaemon(); // default policy: keep
    const COUNT = 8 * 1024 * 1024; // well past the 1 MiB client limit plus what the socket buffers hold
    await h.up('watched', 'stream', { COUNT });
    const watcher = await h.attach('watched', true);
    watcher.sock.pause(); // never reads: the kernel buffer fills, then the daemon's backlog for it
    // Visible while the guest still streams (its counters go with the domain when it powers off).
    await h.until(async () => ((await h.info('watched'))?.dropped ?? 0) > 0, "the watcher's drops counted in `list`", LIMIT_MS);
    await h.until(() => h.log('watched').length >= COUNT, 'the whole stream in the log despite the stalled watcher', LIMIT_MS);
    assert.equal(sha(h.log('watched').subarray(0, COUNT)), sha(streamPattern(COUNT)), 'the log is byte-exact');
    watcher.sock.resume();
    await h.until(() => /bytes of output dropped for read-only client/.test(watcher.received().toString('latin1')), 'the marker reaches the watcher', 60_000);
    watcher.close();
  } finally {
    await h.cleanup();
  }
});

test('-o keep: a stalled read-write client still holds the guest back (backpressure, nothing dropped)', { timeout: 600_000 }, async () => {
  const h = new Harness();
  try {
    await h.startDaemon();
    const COUNT = 3 * 1024 * 1024;
    await h.up('held', 'stream', { COUNT });
    const client = await h.attach('held');
    client.sock.pause();
    await h.until(async () => ((await h.info('held'))?.throttled ?? 0) > 0, 'output throttled by the stalled read-write client', LIMIT_MS);
    const stalledAt = h.log('held').length;
    assert.ok(stalledAt < COUNT, 'the log waits with the guest while the owner\'s client is stalled');
    client.sock.resume();
    await h.until(() => h.log('held').length >= COUNT, 'the stream completes once the client reads', LIMIT_MS);
    // The client gets output from its attach on, then the end note: what it got is the stream's tail, whole.
    await h.until(() => /\[vpl011: domain held/.test(client.received().toString('latin1')), 'the end of the stream at the client', LIMIT_MS);
    const got = client.received();
    const body = got.subarray(0, got.lastIndexOf('\r\n[vpl011: domain held'));
    assert.ok(body.length > COUNT / 2, `the client got most of the stream (${body.length})`);
    assert.equal(sha(body), sha(streamPattern(COUNT).subarray(COUNT - body.length)), 'nothing dropped for the read-write client');
    client.close();
  } finally {
    await h.cleanup();
  }
});
