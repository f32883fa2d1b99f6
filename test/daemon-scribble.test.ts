// A real guest that scribbles random values over the indices of its own ring page (guests/bare/scribble.S on
// unicorn; the rule: "a ring whose indices are corrupt is reported and ignored, never trusted"): the daemon
// reports it, stays up, and another domain's console (guests/bare/hello.S) is unaffected.
import { after } from 'node:test';
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { Harness } from './lib/daemon-harness.js';

const h = new Harness();
after(() => h.cleanup());

const BANNER = 'hello from bare metal\n';

test('a ring scribbler is reported and ignored; the daemon stays up; the other console is unaffected', async () => {
  await h.startDaemon();
  await h.up('calm', 'hello');
  await h.up('vandal', 'scribble');
  const calm = await h.attach('calm');
  for (let i = 0; i < 20; i++) calm.sock.write(`line ${i}\n`);
  // Hundreds of corrupt-index events (each detection counts once), reported rate-limited.
  await h.until(async () => ((await h.info('vandal'))?.corrupt ?? 0) >= 200, 'corruption counted', 120_000);
  const want = Array.from({ length: 20 }, (_, i) => `line ${i}\n`).join('');
  await h.until(() => calm.received().toString().endsWith(want), 'the calm console echoes every line');
  const got = calm.received().toString();
  assert.ok(got === want || got === BANNER + want, `nothing from the vandal reached the calm console: ${JSON.stringify(got.slice(0, 200))}`);
  assert.equal(h.log('calm').toString(), `${BANNER}${want}`);
  assert.match(h.daemonOutput, /d\d+: console vandal: corrupt (OUT|IN) ring indices/);
  const reports = h.daemonOutput.split('\n').filter((l) => l.includes('console vandal:')).length;
  assert.ok(reports < 80, `the guest cannot flood the daemon's output (${reports} lines for >= 200 events)`);
  assert.equal(h.daemon?.exitCode, null, 'the daemon is still running');
  assert.equal((await h.request({ op: 'ping' })).ok, true);
  const vandal = await h.info('vandal');
  assert.equal(vandal?.state, 'running', 'the scribbler keeps running: its corruption is its own problem');
  // The vandal's log holds only bytes of its own ring's data area: characters of "scribble\n" or the page's initial
  // zeros (a scribbled distance makes stale ring bytes look queued). Scribbled indices never make the daemon read
  // outside the ring, and nothing of another console appears.
  assert.ok((vandal?.bytesOut ?? 0) > 0, 'the scribbler also got output through');
  assert.match(h.log('vandal').toString('latin1'), /^[scribel\n\0]*$/);
  calm.close();
});
