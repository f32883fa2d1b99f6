// Bare-metal guests on real unicorn in a worker thread, through the vpl011, the console ring and event channels.
import { vuartBackend } from './lib/vuart-backend.js';
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { startDomainThread, type DomainThread } from '../src/vmm/domain-thread.js';
import { buildBareGuest, BARE_LOAD_ADDR, type BareGuest } from '../src/vmm/bare-guests.js';
import type { GuestImage } from '../src/toolstack/guest-image.js';

function image(name: BareGuest, x1 = 0): GuestImage {
  const data = buildBareGuest(name);
  void x1;
  return { ramBase: BARE_LOAD_ADDR, ramSize: 0x200000, segments: [{ addr: BARE_LOAD_ADDR, data, what: name }], entry: BARE_LOAD_ADDR, x0: 0 };
}

/** A minimal console backend in the test: drains OUT, feeds IN, notifies like xenconsoled. */
async function serve(dom: DomainThread, input: Uint8Array): Promise<{ out: () => string; stop: () => void }> {
  const port = await dom.vuartPort;
  const { ev, local, ring } = vuartBackend(dom, port);
  let out = '';
  let fed = 0;
  let running = true;
  const buf = new Uint8Array(2048);
  void (async () => {
    while (running) {
      const seen = ev.doorbell(0);
      ev.clearPending(0, local);
      let moved = false;
      for (let n; (n = ring.readOut(buf)) > 0; ) { out += Buffer.from(buf.subarray(0, n)).toString('latin1'); moved = true; }
      if (fed < input.length && ring.inFree() > 0) { fed += ring.writeIn(input.subarray(fed)); moved = true; }
      if (moved) ev.notify(0, local);
      await ev.waitAsync(0, seen, 20);
    }
  })();
  return { out: () => out, stop: () => { running = false; } };
}

test('hello: polled TX banner, polled RX echo until EOT, PSCI SYSTEM_OFF ends with poweroff (PL011 TRM FR.TXFF/RXFE)', async () => {
  const dom = startDomainThread({ domid: 1, name: 'hello', image: image('hello') });
  try {
    const be = await serve(dom, new TextEncoder().encode('abc\x04'));
    const exit = await dom.exited;
    be.stop();
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(exit.reason, 'poweroff', exit.message);
    assert.equal(be.out(), 'hello from bare metal\nabc');
    assert.ok(exit.stats && exit.stats.mmio > 0);
  } finally {
    await dom.stop(); // also when an assertion failed: the worker must not outlive the test
  }
});

test("refused access (UARTICR read) under 'crash-domain' ends with 'crashed' naming the access (Xen domain_crash)", async () => {
  const dom = startDomainThread({ domid: 1, name: 'bad', image: image('bad-access'), policy: 'crash-domain' });
  try {
    const exit = await dom.exited;
    assert.equal(exit.reason, 'crashed');
    assert.match(exit.message ?? '', /refused MMIO read/);
    assert.match(exit.message ?? '', /vpl011/);
  } finally {
    await dom.stop(); // also when an assertion failed: the worker must not outlive the test
  }
});

test("refused access under 'abort': the guest's EL1 vector gets a data abort (EC 0x25, DFSC 0x10, FAR = UART+0x44; Xen inject_dabt_exception) and powers off", async () => {
  const dom = startDomainThread({ domid: 1, name: 'bad', image: image('bad-access'), policy: 'abort' });
  try {
    const be = await serve(dom, new Uint8Array());
    const exit = await dom.exited;
    be.stop();
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(exit.reason, 'poweroff', exit.message);
    assert.equal(be.out(), 'ABORT ok\n'); // the guest checked ESR_EL1.EC/DFSC and FAR_EL1 itself
    assert.equal(exit.stats?.aborts, 1);
  } finally {
    await dom.stop(); // also when an assertion failed: the worker must not outlive the test
  }
});

test("stop() ends a guest that spins on FR waiting for input with 'stopped' (checked at UART accesses)", async () => {
  const dom = startDomainThread({ domid: 1, name: 'hello', image: image('hello') });
  try {
    const be = await serve(dom, new Uint8Array()); // no input: the guest polls FR.RXFE forever
    await new Promise((r) => setTimeout(r, 200));
    await dom.stop();
    be.stop();
    const exit = await dom.exited;
    assert.equal(exit.reason, 'stopped');
    assert.equal(be.out(), 'hello from bare metal\n');
  } finally {
    await dom.stop(); // also when an assertion failed: the worker must not outlive the test
  }
});
