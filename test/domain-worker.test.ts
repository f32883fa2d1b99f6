// The one "run a domain in a worker" module (src/vmm/domain-thread.ts): requests answered by a running vCPU at its
// safe points, and production teardown through domain_vpl011_deinit (the guest's event channel is freed by the
// worker itself when its machine closes, on every exit path).
import { test, within } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { startDomainThread } from '../src/vmm/domain-thread.js';
import { buildBareGuest, BARE_LOAD_ADDR, type BareGuest } from '../src/vmm/bare-guests.js';
import { ECS_FREE, ECS_INTERDOMAIN, ECS_UNBOUND, EventChannels } from '../src/xen/evtchn.js';
import { ConsoleRingBackend } from '../src/xen/ring.js';
import { VUART_PFN_OFFSET, XEN_PAGE_SIZE } from '../src/xen/arch-arm.js';
import type { GuestImage } from '../src/toolstack/guest-image.js';

function image(name: BareGuest): GuestImage {
  const data = buildBareGuest(name);
  return { ramBase: BARE_LOAD_ADDR, ramSize: 0x200000, segments: [{ addr: BARE_LOAD_ADDR, data, what: name }], entry: BARE_LOAD_ADDR, x0: 0 };
}

test('a running guest answers a stats request at its next safe point; requests after the exit are refused', async () => {
  // hello polls FR for input that never comes: every poll is a trap, and the request's kick moves the doorbell.
  const dom = startDomainThread({ domid: 1, name: 'hello', image: image('hello') });
  try {
    await within(dom.vuartPort, 60_000, 'vuart port');
    // Once its banner is in the ring, the guest has written DR: the answer must count those accesses.
    const ring = new ConsoleRingBackend(dom.magicPages, VUART_PFN_OFFSET * XEN_PAGE_SIZE);
    let out = '';
    const buf = new Uint8Array(256);
    const deadline = Date.now() + 60_000;
    while (!out.includes('hello from bare metal') && Date.now() < deadline) {
      for (let n; (n = ring.readOut(buf)) > 0; ) out += Buffer.from(buf.subarray(0, n)).toString('latin1');
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.match(out, /hello from bare metal/);
    const first = await within(dom.request('stats', {}), 30_000, 'first stats');
    assert.ok(first.mmio > 0, `the guest has trapped before answering (mmio ${first.mmio})`);
    // A second answer comes from the same live machine, later: its counters only grow.
    await new Promise((r) => setTimeout(r, 50));
    const second = await within(dom.request('stats', {}), 30_000, 'second stats');
    assert.ok(second.mmio >= first.mmio, `counters grow (${first.mmio} -> ${second.mmio})`);
    // Several in flight at once are each answered (paired by id).
    const many = await within(Promise.all([1, 2, 3, 4].map(() => dom.request('stats', {}))), 30_000, 'four stats');
    assert.equal(many.length, 4);
    for (const s of many) assert.ok(s.mmio >= second.mmio);
    await dom.stop();
    assert.equal((await dom.exited).reason, 'stopped');
    await assert.rejects(dom.request('stats', {}), /has exited/);
  } finally {
    await dom.stop();
  }
});

test("the worker's teardown is domain_vpl011_deinit: after the exit the guest's vuart port is free and the backend's end unbound", async () => {
  for (const how of ['poweroff', 'stopped'] as const) {
    const dom = startDomainThread({ domid: 1, name: 'hello', image: image('hello') });
    try {
      const port = await within(dom.vuartPort, 60_000, 'vuart port');
      const ev = EventChannels.attach(dom.evtchn);
      const local = ev.bindInterdomain(0, 1, port);
      assert.equal(ev.state(1, port), ECS_INTERDOMAIN);
      if (how === 'poweroff') {
        // EOT makes hello power off (PSCI SYSTEM_OFF).
        const ring = new ConsoleRingBackend(dom.magicPages, VUART_PFN_OFFSET * XEN_PAGE_SIZE);
        ring.writeIn(new Uint8Array([0x04]));
        ev.notify(0, local);
      } else {
        await dom.stop();
      }
      const exit = await within(dom.exited, 60_000, 'exit');
      assert.equal(exit.reason, how, exit.message);
      assert.equal(ev.state(1, port), ECS_FREE, `${how}: the guest's vuart port is freed by the worker`);
      assert.equal(ev.state(0, local), ECS_UNBOUND, `${how}: the backend's end goes back to unbound (Xen evtchn_close)`);
    } finally {
      await dom.stop();
    }
  }
});
