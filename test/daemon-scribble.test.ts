// A guest that scribbles random values over the indices of its own ring page (issue #4 item 2: "a ring whose
// indices are corrupt is reported and ignored, never trusted"): the daemon reports it, stays up, and another
// domain's console is unaffected.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Harness } from './daemon-harness.js';

const h = new Harness();
after(() => h.cleanup());

test('a ring scribbler is reported and ignored; the daemon stays up; the other console is unaffected', async () => {
  await h.startDaemon();
  await h.up('calm', 'echo');
  await h.up('vandal', 'scribble', { count: 2000, seed: 7 });
  const calm = await h.attach('calm');
  for (let i = 0; i < 20; i++) calm.sock.write(`line ${i}\n`);
  await h.until(async () => ((await h.info('vandal'))?.corrupt ?? 0) > 0, 'corruption counted');
  await h.until(() => h.log('vandal').includes('vandal done\n') || /corrupt/.test(h.daemonOutput), 'scribbler progress');
  const want = Array.from({ length: 20 }, (_, i) => `calm: line ${i}\n`).join('');
  await h.until(() => calm.received().toString().endsWith(want), 'the calm console echoes every line');
  assert.equal(calm.received().toString(), want, 'nothing from the vandal reached the calm console');
  assert.equal(h.log('calm').toString(), `calm ready\n${want}`);
  assert.match(h.daemonOutput, /d\d+: console vandal: corrupt (OUT|IN) ring indices/);
  assert.equal(h.daemon?.exitCode, null, 'the daemon is still running');
  assert.equal((await h.request({ op: 'ping' })).ok, true);
  // The vandal's log holds only its own text (bytes the scribbles made look queued are never trusted beyond the ring).
  assert.doesNotMatch(h.log('vandal').toString('latin1'), /calm/);
  calm.close();
});
