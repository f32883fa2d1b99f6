// `vpl011 run`'s backend waits for a stream's next batch synchronously (backend.ts BackendOptions.syncStreamMs,
// docs/PERF.md "Bare-metal flood"): the thread is blocked in Atomics.wait between batches instead of returning to the
// event loop. That must never starve the loop (stdin, signals, --timeout are events): each run of synchronous waits
// ends after syncStreamMs and the loop gets a turn. Here a real guest streams 2 MiB (polled TX, guests/bare/stream.S)
// through the real backend and Console; a setImmediate ticker counts event-loop turns while it flows, and every byte
// must arrive in order. A backend whose synchronous waits never ended would tick ~0 times.
import { vuartBackend } from './lib/vuart-backend.js';
import { test, within } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { startDomainThread } from '../src/vmm/domain-thread.js';
import { buildBareGuest, BARE_LOAD_ADDR, streamPattern } from '../src/vmm/bare-guests.js';
import { Console } from '../src/console/console.js';
import { ConsoleBackend, TURN_BUDGET_MS } from '../src/console/backend.js';

const COUNT = 2 << 20;

test('a synchronously waiting backend still gives the event loop its turns during a flood, and loses no byte', async () => {
  const data = buildBareGuest('stream', { defines: { COUNT } });
  const dom = startDomainThread({
    domid: 1,
    name: 'stream',
    image: { ramBase: BARE_LOAD_ADDR, ramSize: 0x200000, segments: [{ addr: BARE_LOAD_ADDR, data, what: 'stream' }], entry: BARE_LOAD_ADDR, x0: 0 },
  });
  const backend = new ConsoleBackend(0, { syncStreamMs: TURN_BUDGET_MS });
  let ticking = true;
  let ticks = 0;
  const tick = (): void => {
    ticks++;
    if (ticking) setImmediate(tick);
  };
  let console: Console | undefined;
  let detach = (): void => {};
  try {
    const port = await dom.vuartPort;
    const { ev, local: localPort, ring } = vuartBackend(dom, port);
    console = new Console({ name: 'stream', domid: 1, ring, evtchn: ev, backendDomid: 0, localPort });
    const chunks: Buffer[] = [];
    let firstByteTicks = -1;
    console.addSink(new Writable({ write(c: Buffer, _e, cb) { if (firstByteTicks < 0) firstByteTicks = ticks; chunks.push(c); cb(); } }), { label: 'sink' });
    detach = backend.add(console, ev, localPort);
    void backend.start();
    setImmediate(tick);
    const exit = await within(dom.exited, 120_000, 'the stream guest to power off');
    assert.equal(exit.reason, 'poweroff', exit.message);
    const during = ticks - Math.max(0, firstByteTicks);
    console.flush();
    const got = Buffer.concat(chunks);
    assert.equal(got.length, COUNT, 'every byte');
    assert.ok(got.equals(streamPattern(COUNT)), 'in order, none repeated');
    assert.ok(backend.syncWaits > 0, 'the synchronous waits were used');
    // At 1 KiB per batch the flood is ~2,000 batches; with a turn every TURN_BUDGET_MS the loop ticks hundreds of
    // times. 20 is far below that on any machine, and far above a starved loop.
    assert.ok(during >= 20, `the event loop ticked ${during} times during the flood (${backend.syncWaits} synchronous waits)`);
  } finally {
    ticking = false;
    detach();
    await backend.stop();
    console?.close();
    await dom.stop();
  }
});
