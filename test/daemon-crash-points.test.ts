// Exactly-once log across kill -9 at EVERY step of a batch, deterministically. The daemon is killed
// by its own crash points (src/util/crash-point.ts: VPL011_CRASH_AT=<point>:<n>) while a real bare-metal guest
// (guests/bare/stream.S in its own domain host) streams: after the journal entry, in the middle of the log write,
// after the log write, after publishing out_cons, and inside recovery (after the truncation, after the publish).
// Each point is hit twice, back to back where the state allows it, and a truncation is followed by more output and
// another crash. Each restarted daemon must say which recovery it ran, and at the end the log must be the guest's
// output byte for byte.
import { after } from 'node:test';
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { Harness } from './lib/daemon-harness.js';
import { streamPattern } from '../src/vmm/bare-guests.js';
import type { CrashPoint } from '../src/util/crash-point.js';

const h = new Harness();
after(() => h.cleanup());

interface Life {
  /** Where this daemon kills itself (point:n); undefined: it runs to the end. */
  crash?: `${CrashPoint}:${number}`;
  /** The recovery this daemon must report on start (src/daemon/durable-log.ts RecoveryResult.action), or none. */
  recovery: 'redo' | 'truncated-redo' | 'published' | null | 'any';
}

// Comments say what state the previous life left behind.
const LIVES: Life[] = [
  { crash: 'journal:3', recovery: 'any' }, // after a kill -9 at a random point
  { crash: 'journal:3', recovery: 'redo' }, // entry sealed, no log byte: the batch is read again
  { crash: 'log-partial:3', recovery: 'redo' },
  { crash: 'log-partial:3', recovery: 'truncated-redo' }, // half a batch in the log: cut
  { crash: 'recover-truncate:1', recovery: null }, // dies inside recovery, after the cut, before clearing the entry
  { crash: 'log:3', recovery: 'redo' }, // the cut was complete: redo; then more output, and a crash after the log
  { crash: 'log:3', recovery: 'published' }, // the batch is in the log but not released: publish only
  { crash: 'recover-publish:1', recovery: null }, // dies after publishing, before clearing the entry
  { crash: 'publish:3', recovery: null }, // out_cons already moved on: nothing to do
  { crash: 'publish:3', recovery: null },
  { crash: 'log-partial:2', recovery: null },
  { crash: 'recover-truncate:1', recovery: null },
  { crash: 'log:2', recovery: 'redo' },
  { crash: 'recover-publish:1', recovery: null },
  { crash: 'log-partial:3', recovery: null },
  { crash: 'log:4', recovery: 'truncated-redo' }, // a truncation followed by more output, then a crash after the log
  { recovery: 'published' },
];

test('a daemon killed at every step of a batch (and inside recovery), twice, recovers the log byte-exact', { timeout: 600_000 }, async () => {
  const COUNT = 256 * 1024;
  const want = streamPattern(COUNT);
  const isPrefix = (log: Buffer) => log.length <= COUNT && want.subarray(0, log.length).equals(log);

  // Start the stream under a plain daemon, then kill it -9 anywhere: the lives below take over from there.
  await h.startDaemon();
  await h.up('flood', 'stream', { COUNT });
  await h.until(() => h.log('flood').length >= 8192, 'the stream to start');
  await h.killDaemon('SIGKILL');

  for (const [i, life] of LIVES.entries()) {
    const from = h.daemonOutput.length;
    const what = `life ${i} (${life.crash ?? 'no crash'})`;
    if (life.crash) {
      h.spawnDaemon([], { VPL011_CRASH_AT: life.crash });
      const end = await h.daemonExit(120_000);
      const out = h.daemonOutput.slice(from);
      assert.equal(end.signal, 'SIGKILL', `${what}: died by SIGKILL\n${out}`);
      assert.match(out, new RegExp(`crash point ${life.crash.split(':')[0]} reached`), `${what}: at its crash point`);
    } else {
      await h.startDaemon();
    }
    const out = h.daemonOutput.slice(from);
    const said = /log recovery: ([a-z-]+)/.exec(out)?.[1] ?? null;
    if (life.recovery !== 'any') assert.equal(said, life.recovery, `${what}: recovery reported\n${out}`);
    if (life.crash) assert.ok(isPrefix(h.log('flood')), `${what}: the log is a prefix of the stream after the crash`);
  }

  const note = '[vpl011: domain flood (d1) shut down (poweroff)]\n';
  await h.until(() => h.log('flood').length >= COUNT + note.length, 'the whole stream in the log', 300_000);
  const log = h.log('flood');
  assert.equal(log.length, COUNT + note.length, 'no byte lost or repeated (length)');
  assert.ok(log.subarray(0, COUNT).equals(want), 'no byte lost or repeated (content)');
  assert.equal(log.subarray(COUNT).toString(), note);
});
