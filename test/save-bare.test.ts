// Save and restore of running bare-metal guests on the real vCPU (src/vmm/save-pause.ts, machine-state.ts): a guest
// saved mid-stream and restored in a new worker writes exactly its pattern, byte for byte (nothing lost, nothing
// repeated, including what sat in OUT at the save); one saved with "keep running" goes on unchanged; input waiting in
// IN at the save is read by the restored guest exactly once (its checksum of all input matches).
import { vuartBackend } from './lib/vuart-backend.js';
import { test, within } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { startDomainThread, type DomainThread } from '../src/vmm/domain-thread.js';
import { buildBareGuest, BARE_LOAD_ADDR, fnv1a32, streamPattern, type BareGuest } from '../src/vmm/bare-guests.js';
import type { GuestImage } from '../src/toolstack/guest-image.js';
import { restoreImage, withMagic, type MachineState } from '../src/vmm/machine-state.js';
import { decodeSavedDomain, encodeSavedDomain } from '../src/vmm/saved-domain.js';

const RAM = 0x200000;
function image(name: BareGuest, defs: Record<string, number>): GuestImage {
  const data = buildBareGuest(name, { defines: defs });
  return { ramBase: BARE_LOAD_ADDR, ramSize: RAM, segments: [{ addr: BARE_LOAD_ADDR, data, what: name }], entry: BARE_LOAD_ADDR, x0: 0 };
}

/** A console backend in the test (xenconsoled's job): drains OUT, feeds `input` into IN as it frees up. */
function serve(dom: DomainThread, port: number, input: Uint8Array = new Uint8Array()) {
  const { ev, local, ring } = vuartBackend(dom, port);
  const chunks: Buffer[] = [];
  let outBytes = 0;
  let fed = 0;
  let running = true;
  const buf = new Uint8Array(2048);
  // Atomics.waitAsync holds no reference on the event loop: without this, a loop awaiting it after its domain
  // ended would let Node end the test as "still pending".
  const keepAlive = setInterval(() => {}, 1000);
  const loop = (async () => {
    while (running) {
      const seen = ev.doorbell(0);
      ev.clearPending(0, local);
      let moved = false;
      for (let n; running && (n = ring.readOut(buf)) > 0; ) {
        chunks.push(Buffer.from(buf.subarray(0, n)));
        outBytes += n;
        moved = true;
      }
      if (running && fed < input.length && ring.inFree() > 0) {
        fed += ring.writeIn(input.subarray(fed, fed + 64)); // small steps: input is still in flight at a save
        moved = true;
      }
      if (moved) ev.notify(0, local);
      await ev.waitAsync(0, seen, 5);
    }
  })();
  return {
    out: () => Buffer.concat(chunks),
    outBytes: () => outBytes,
    fed: () => fed,
    /** Stop serving (after the current turn): from now on the ring's backend indices are final. */
    stop: async () => {
      running = false;
      await loop;
      clearInterval(keepAlive);
    },
  };
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Save the running domain as `vpl011 save` does: take the ring as the backend left it, end the domain. 'out': the
 * backend stops first, so the guest fills OUT and stalls on it (bytes in flight in OUT); 'in': the guest is paused
 * first and the backend keeps feeding IN until it stops (bytes in flight in IN).
 */
async function saveAndEnd(dom: DomainThread, be: ReturnType<typeof serve>, inFlight: 'out' | 'in' = 'out'): Promise<MachineState> {
  let paused: MachineState;
  if (inFlight === 'out') {
    await be.stop();
    await new Promise((r) => setTimeout(r, 50));
    paused = await within(dom.pause(), 30_000, 'pause');
  } else {
    paused = await within(dom.pause(), 30_000, 'pause');
    await new Promise((r) => setTimeout(r, 50));
    await be.stop();
  }
  const state = withMagic(paused, new Uint8Array(dom.magicPages));
  await dom.stop();
  // Through the file format and back, as a restore from disk sees it.
  const { header: _h, config: _c, ...back } = decodeSavedDomain(encodeSavedDomain({ header: { producer: 't', savedAt: 't', name: 't' }, config: {}, ...state }));
  return back;
}

test('a bare-metal guest saved mid-stream and restored writes its pattern byte-exact (OUT in flight at the save comes out once)', { timeout: 240_000 }, async () => {
  const COUNT = 200_000;
  const doms: DomainThread[] = [];
  try {
    const a = startDomainThread({ domid: 1, name: 'stream', image: image('stream', { COUNT }) });
    doms.push(a);
    const beA = serve(a, await a.vuartPort);
    await until(() => beA.outBytes() > 40_000, 120_000, 'first part of the stream');
    const state = await saveAndEnd(a, beA);
    const inFlight = (state.vuart.ring.outProd - state.vuart.ring.outCons) >>> 0;
    const first = beA.out();
    assert.ok(first.length < COUNT, 'the guest had finished before the save');

    const b = startDomainThread({ domid: 1, name: 'stream', image: restoreImage(state), restore: state });
    doms.push(b);
    const beB = serve(b, await b.vuartPort);
    const exit = await within(b.exited, 180_000, 'restored guest');
    await beB.stop();
    assert.equal(exit.reason, 'poweroff', exit.message);
    const all = Buffer.concat([first, beB.out()]);
    assert.equal(all.length, COUNT, `${all.length} bytes in all, ${inFlight} were in OUT at the save`);
    assert.ok(all.equals(streamPattern(COUNT)), 'the output differs from the pattern');
    // The save caught bytes in OUT (the stream outpaces the backend): they are part of the exact output above.
    assert.ok(inFlight > 0, 'nothing was in flight in OUT at the save (the test did not exercise it)');
  } finally {
    for (const d of doms) await d.stop();
  }
});

test('"keep running": a stream paused for a save and resumed goes on byte-exact', { timeout: 240_000 }, async () => {
  const COUNT = 120_000;
  const a = startDomainThread({ domid: 1, name: 'stream', image: image('stream', { COUNT }) });
  try {
    const be = serve(a, await a.vuartPort);
    await until(() => be.outBytes() > 20_000, 120_000, 'first part of the stream');
    const state = await within(a.pause(), 30_000, 'pause');
    assert.ok(state.ram.pages.length > 0);
    await new Promise((r) => setTimeout(r, 50));
    const frozen = be.outBytes();
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(be.outBytes() - frozen <= 2048, 'the guest kept writing while paused');
    a.resume();
    const exit = await within(a.exited, 180_000, 'resumed guest');
    await be.stop();
    assert.equal(exit.reason, 'poweroff', exit.message);
    assert.ok(be.out().equals(streamPattern(COUNT)), 'the output differs from the pattern');
  } finally {
    await a.stop();
  }
});

test('input waiting in IN at the save is read by the restored guest exactly once (its checksum of all input matches)', { timeout: 240_000 }, async () => {
  const COUNT = 30_000;
  const input = Buffer.alloc(COUNT);
  for (let i = 0; i < COUNT; i++) input[i] = (i * 131 + (i >> 7)) & 0xff;
  const doms: DomainThread[] = [];
  try {
    const a = startDomainThread({ domid: 1, name: 'checksum', image: image('checksum', { COUNT }) });
    doms.push(a);
    const beA = serve(a, await a.vuartPort, input);
    await until(() => beA.fed() > 8_000, 120_000, 'first part of the input');
    const state = await saveAndEnd(a, beA, 'in');
    const waiting = (state.vuart.ring.inProd - state.vuart.ring.inCons) >>> 0;
    const given = beA.fed();
    assert.ok(waiting > 0, 'no input waited in IN at the save (the test did not exercise it)');

    const b = startDomainThread({ domid: 1, name: 'checksum', image: restoreImage(state), restore: state });
    doms.push(b);
    const beB = serve(b, await b.vuartPort, input.subarray(given));
    const exit = await within(b.exited, 180_000, 'restored guest');
    await beB.stop();
    assert.equal(exit.reason, 'poweroff', exit.message);
    const out = Buffer.concat([beA.out(), beB.out()]).toString('latin1');
    const want = `fnv1a32 ${fnv1a32(input).toString(16).padStart(8, '0')} bytes ${COUNT.toString(16).padStart(8, '0')}`;
    assert.ok(out.includes(want), `guest said ${JSON.stringify(out.slice(-80))}, want ${want} (${waiting} bytes waited in IN at the save)`);
  } finally {
    for (const d of doms) await d.stop();
  }
});
