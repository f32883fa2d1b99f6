// A paced stream leaves a byte in OUT between its batches (backend.ts STREAM_KEEP, docs/PERF.md "Bare-metal flood"):
// a batch that emptied the ring made the guest's next byte an "OUT empty -> non-empty" notify, which woke the backend
// for a byte it would not take before its next paced turn: one wasted wake of the backend (and, on a busy host, a
// preempted vCPU) per batch of a flood. Here the frontend plays the vpl011 (notify at OUT level 1, half and full,
// src/device/vpl011.ts) against the real backend loop; it counts the bytes that found OUT empty. Also: the kept bytes
// are not held for good: a stream's tail reaches the sink after it stops, with no flush() and no new notify.
import { test, within } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { Console } from '../src/console/console.js';
import { ConsoleBackend } from '../src/console/backend.js';
import { EventChannels } from '../src/xen/evtchn.js';
import { ConsoleRing, ConsoleRingBackend, XENCONS_OUT_SIZE } from '../src/xen/ring.js';

const BATCHES = 40;

test('a paced stream keeps OUT from emptying between batches, and its tail still arrives in order', async () => {
  const page = new SharedArrayBuffer(4096);
  const ev = EventChannels.create({ maxDomains: 2, portsPerDomain: 4 });
  const gp = ev.allocUnbound(1, 0);
  const localPort = ev.bindInterdomain(0, 1, gp);
  const front = new ConsoleRing(page);
  const console = new Console({ name: 's', domid: 1, ring: new ConsoleRingBackend(page), evtchn: ev, backendDomid: 0, localPort });
  const chunks: Buffer[] = [];
  const sink = new Writable({ write(c: Buffer, _e, cb) { chunks.push(c); cb(); } });
  console.addSink(sink, { label: 'sink' });
  const backend = new ConsoleBackend(0);
  const detach = backend.add(console, ev, localPort);
  const loop = backend.start();
  let sent = 0;
  let foundEmpty = 0;
  const put = (): void => {
    const level = front.putOut(0x61 + (sent % 26));
    assert.ok(level > 0, 'never full here: each batch waits for the drain');
    sent++;
    if (level === 1) foundEmpty++;
    if (level === 1 || level === XENCONS_OUT_SIZE / 2 || level === XENCONS_OUT_SIZE) ev.notify(1, gp);
  };
  try {
    // Each batch fills OUT to just past half (the half-full notify drains a paced stream at once), then waits until
    // the backend took it: a fast guest's rhythm, with the backend always in time.
    for (let b = 0; b < BATCHES; b++) {
      while (front.outQueued() < XENCONS_OUT_SIZE / 2 + 100) put();
      const t0 = Date.now();
      while (front.outQueued() > XENCONS_OUT_SIZE / 2) {
        assert.ok(Date.now() - t0 < 20_000, `batch ${b}: the backend did not drain a half-full ring`);
        await new Promise((r) => setTimeout(r, 0));
      }
    }
    // Old backend: every batch emptied the ring, so every batch's first byte found it empty (BATCHES + 1).
    assert.ok(foundEmpty <= 3, `${foundEmpty} of ${BATCHES} batches found OUT empty: the stream was not kept`);
    // The stream stops: what is kept reaches the sink at a later turn, without flush() and without a notify.
    await within(
      (async () => {
        while (Buffer.concat(chunks).length < sent) await new Promise((r) => setTimeout(r, 1));
      })(),
      20_000,
      'the kept tail of the stream',
    );
    const got = Buffer.concat(chunks);
    assert.equal(got.length, sent);
    for (let i = 0; i < sent; i++) if (got[i] !== 0x61 + (i % 26)) assert.fail(`byte ${i} out of order`);
    assert.equal(front.outQueued(), 0, 'the ring ends empty');
  } finally {
    detach();
    await backend.stop();
    await loop;
    console.close();
  }
});

test('a corrupt OUT half is resynchronised by a turn that keeps bytes, and the guest is told', () => {
  const page = new SharedArrayBuffer(4096);
  const ev = EventChannels.create({ maxDomains: 2, portsPerDomain: 4 });
  const gp = ev.allocUnbound(1, 0);
  const localPort = ev.bindInterdomain(0, 1, gp);
  const front = new ConsoleRing(page);
  const console = new Console({ name: 'c', domid: 1, ring: new ConsoleRingBackend(page), evtchn: ev, backendDomid: 0, localPort, report: () => {} });
  console.addSink(new Writable({ write(_c, _e, cb) { cb(); } }), { label: 'sink' });
  for (let i = 0; i < 10; i++) front.putOut(0x41);
  // The guest scribbles on out_cons (the ring page is guest memory): OUT reads as corrupt.
  const idx = new Int32Array(page, 0xc00, 4);
  Atomics.store(idx, 2, Atomics.load(idx, 3) + 5000);
  assert.ok(front.outQueued() < 0, 'corrupt');
  try {
    console.service(1);
    assert.equal(front.outQueued(), 0, 'resynchronised (out_cons := out_prod), not left for a later turn');
    assert.equal(ev.isPending(1, gp), true, 'the device is told (it treats a corrupt half as full until then)');
  } finally {
    console.close();
  }
});
