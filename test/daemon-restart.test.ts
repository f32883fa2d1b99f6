// Restart without loss: the daemon is killed with SIGKILL at random points while a real guest
// (guests/bare/stream.S on unicorn, in its own domain host) streams, and started again, 20 times; the log must be the
// guest's output byte for byte: nothing lost, nothing repeated. This pins the journal protocol of
// src/daemon/durable-log.ts and the adoption of the event channel and ring.
import { after } from 'node:test';
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Harness, sleep } from './lib/daemon-harness.js';
import { streamPattern } from '../src/vmm/bare-guests.js';

const h = new Harness();
after(() => h.cleanup());

const MID_BATCH = ['journal', 'log-partial', 'log'] as const;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('kill -9 the daemon at random points during a stream, 20 times: the log is byte-exact', async () => {
  // Each kill comes after the log has grown by a random 8..256 KiB, plus what the guest streams in a random few ms
  // (with the native fast path ~6 MB/s, so up to ~200 KiB more): the 20 kills use a few MiB of the stream, and the
  // guest must still be streaming at the last one (a crash-point daemon needs batches to crash in).
  const COUNT = 32 * 1024 * 1024;
  await h.startDaemon();
  await h.up('flood', 'stream', { COUNT });
  let kills = 0;
  let midBatch = 0;
  let progressedWhileKilled = 0;
  while (kills < 20) {
    const target = h.log('flood').length + 8192 + Math.floor(Math.random() * 248 * 1024);
    await h.until(() => h.log('flood').length >= target, 'the stream to move on', 120_000);
    await sleep(Math.floor(Math.random() * 30));
    const before = h.log('flood').length;
    await h.killDaemon('SIGKILL');
    kills++;
    if (kills % 4 === 0) {
      // A random kill almost always lands between batches (a batch takes microseconds). Every 4th restart, the next
      // daemon kills itself at a random step inside a batch (src/util/crash-point.ts), which leaves a recovery to do.
      const point = MID_BATCH[Math.floor(Math.random() * MID_BATCH.length)]!;
      h.spawnDaemon([], { VPL011_CRASH_AT: `${point}:${1 + Math.floor(Math.random() * 20)}` });
      const end = await h.daemonExit(120_000);
      assert.equal(end.signal, 'SIGKILL', `the ${point} crash point was reached`);
      midBatch++;
    }
    await h.startDaemon();
    if (h.log('flood').length > before) progressedWhileKilled++;
  }
  assert.ok(h.log('flood').length < COUNT, 'the stream was still in flight at the last kill');
  const note = '[vpl011: domain flood (d1) shut down (poweroff)]\n';
  await h.until(() => h.log('flood').length >= COUNT + note.length, 'the whole stream in the log', 300_000);
  const log = h.log('flood');
  const want = streamPattern(COUNT);
  assert.equal(log.length, COUNT + note.length, 'no byte lost or repeated (length)');
  assert.equal(sha(log.subarray(0, COUNT)), sha(want), 'no byte lost or repeated (content)');
  assert.equal(log.subarray(COUNT).toString(), note);
  assert.ok(kills >= 20);
  // The stream really was in flight during the kills (otherwise the test would prove nothing).
  assert.ok(progressedWhileKilled > 0, 'output progressed across restarts');
  assert.match(h.daemonOutput, /console connected/);
  // Recovery really ran: kills mid-batch leave a journal entry that the next daemon finished or undid, and said so
  // (every step's recovery is proved deterministically in test/daemon-crash-points.test.ts).
  const actions = [...h.daemonOutput.matchAll(/log recovery: ([a-z-]+)/g)].map((m) => m[1]!);
  assert.ok(actions.length >= midBatch, `${actions.length} recoveries reported for ${midBatch} mid-batch crashes`);
  for (const a of actions) assert.ok(['published', 'redo', 'truncated-redo'].includes(a), `recovery action ${a}`);
});
