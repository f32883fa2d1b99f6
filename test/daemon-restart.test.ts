// Restart without loss (issue #4 item 3): the daemon is killed with SIGKILL at random points while a guest streams,
// and started again, many times; the log must be the guest's output byte for byte: nothing lost, nothing repeated.
// This pins the journal protocol of src/daemon/durable-log.ts and the adoption of the event channel and ring.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Harness, sleep } from './daemon-harness.js';
import { streamBytes } from '../src/daemon/guest-programs.js';

const h = new Harness();
after(() => h.cleanup());

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('kill -9 the daemon at random points during a stream, 20 times: the log is byte-exact', async () => {
  const COUNT = 6 * 1024 * 1024;
  await h.startDaemon();
  await h.up('flood', 'stream', { count: COUNT });
  let kills = 0;
  let progressedWhileKilled = 0;
  while (kills < 20) {
    await sleep(20 + Math.floor(Math.random() * 150));
    const before = h.log('flood').length;
    await h.killDaemon('SIGKILL');
    kills++;
    await h.startDaemon();
    if (h.log('flood').length > before) progressedWhileKilled++;
  }
  await h.until(() => h.log('flood').length >= COUNT, 'the whole stream in the log', 120_000);
  const log = h.log('flood');
  const want = streamBytes('flood', COUNT);
  assert.equal(log.length, want.length, 'no byte lost or repeated (length)');
  assert.equal(sha(log), sha(want), 'no byte lost or repeated (content)');
  assert.ok(kills >= 20);
  // The stream really was in flight during the kills (otherwise the test would prove nothing).
  assert.ok(progressedWhileKilled > 0, 'output progressed across restarts');
  assert.match(h.daemonOutput, /console connected/);
});
