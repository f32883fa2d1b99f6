// Bulk data through the daemon with real guests : the bare-metal stream guest
// (guests/bare/stream.S on unicorn) writes its pattern under `keep` with a deliberately slow client attached; the log
// is byte-exact, the guest was throttled (TXFF backpressure) and nothing dropped. Then 16 MiB of client input reach
// the bare-metal checksum guest (guests/bare/checksum.S) unchanged: its FNV-1a equals ours.
import { after, before } from 'node:test';
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Harness, sleep } from './lib/daemon-harness.js';
import { fnv1a32, streamPattern } from '../src/vmm/bare-guests.js';

const h = new Harness();
before(() => h.startDaemon());
after(() => h.cleanup());

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const MiB = 1024 * 1024;
// The 100 MiB. Unicorn moves ~0.6 MB/s of polled-UART output on the 2-core CI machine (one FR read and one
// DR write trapped per byte): ~3 minutes. VPL011_TEST_STREAM_MIB shrinks it for a quick local run.
const STREAM_MIB = Number(process.env.VPL011_TEST_STREAM_MIB ?? 100);

test(`${STREAM_MIB} MiB of guest output under keep with a slow client: log byte-exact, guest throttled, nothing dropped`, async () => {
  const count = STREAM_MIB * MiB;
  await h.up('flood', 'stream', { COUNT: count });
  const slow = await h.attach('flood');
  const chunks: Buffer[] = [Buffer.from(slow.received())];
  let clientBytes = chunks[0]!.length;
  slow.sock.removeAllListeners('data');
  // The guest powers off when done and its domain leaves the list: watch the counters while it runs.
  let throttled = 0;
  let dropped = 0;
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      const i = await h.info('flood');
      if (i) {
        throttled = Math.max(throttled, i.throttled);
        dropped = Math.max(dropped, i.dropped);
      }
      await sleep(100);
    }
  })();
  // A slow client: at 1/4, 1/2 and 3/4 of the stream it stops reading until the daemon reports that it throttled the
  // guest (the client's backlog passed the 1 MiB limit, so under `keep` the ring filled and the guest saw TXFF).
  const stalls = [count / 4, count / 2, (3 * count) / 4];
  slow.sock.on('data', (c: Buffer) => {
    chunks.push(c);
    clientBytes += c.length;
    if (stalls.length > 0 && clientBytes >= stalls[0]!) {
      stalls.shift();
      slow.sock.pause();
      const seen = throttled;
      void h.until(() => throttled > seen, 'the daemon to throttle the guest', 120_000).then(() => slow.sock.resume());
    }
  });
  const note = '[vpl011: domain flood (d1) shut down (poweroff)]\n';
  await h.until(() => h.log('flood').length >= count + note.length, 'the whole stream in the log', 900_000);
  await h.until(async () => (await h.info('flood')) === undefined, 'the domain to finish', 60_000);
  watching = false;
  await watcher;
  const want = streamPattern(count);
  const log = h.log('flood');
  assert.equal(log.length, count + note.length, 'no byte lost or repeated (length)');
  assert.equal(sha(log.subarray(0, count)), sha(want), 'no byte lost or repeated (content)');
  assert.equal(log.subarray(count).toString(), note, 'the log ends with why the console closed');
  assert.equal(dropped, 0, 'keep never drops');
  assert.ok(throttled >= 3, `the slow client throttled the guest at each stall (${throttled})`);
  // The client attached after the first bytes went to the log; from then on it got every byte, in order, then the
  // daemon's closing line.
  const clientNote = '\r\n[vpl011: domain flood shut down (poweroff)]\r\n';
  await h.until(() => Buffer.concat(chunks).toString('latin1').endsWith(clientNote), 'the client to get the closing note', 60_000);
  const got = Buffer.concat(chunks);
  const body = got.subarray(0, got.length - clientNote.length);
  assert.ok(body.length > count / 2);
  assert.equal(sha(body), sha(want.subarray(count - body.length)), 'the slow client got an unbroken suffix');
  slow.close();
});

test('16 MiB of client input into a guest that checksums it: equal', async () => {
  const count = 16 * MiB;
  const data = randomBytes(count);
  await h.up('sum', 'checksum', { COUNT: count });
  const c = await h.attach('sum');
  // Write with backpressure from the socket (the daemon pauses us when the guest is slow).
  for (let off = 0; off < count; off += 64 * 1024) {
    if (!c.sock.write(data.subarray(off, off + 64 * 1024))) await new Promise((r) => c.sock.once('drain', r));
  }
  const re = /fnv1a32 ([0-9a-f]{8}) bytes ([0-9a-f]{8})\n/;
  await h.until(() => re.test(h.log('sum').toString()), 'the guest checksum', 600_000);
  const m = re.exec(h.log('sum').toString())!;
  assert.equal(parseInt(m[2]!, 16), count, 'the guest read every byte');
  assert.equal(m[1], fnv1a32(data).toString(16).padStart(8, '0'), 'the bytes it read are the ones sent');
  assert.match(h.log('sum').toString(), /^checksum ready\n/);
  c.close();
});
