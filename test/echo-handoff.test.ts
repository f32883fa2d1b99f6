// The vCPU hands its CPU to the backend it has just woken (src/vmm/machine.ts handOffIfWoke, src/host/cpu-yield.ts,
// docs/PERF.md "Echo latency"): after a vpl011 access whose notify woke a sleeping backend, and only then, on both
// vCPU paths (the native fast path's tail and the TypeScript device). That it does not slow a stream is a benchmark's
// question (bench/bare.ts floodOnce with VPL011_YIELD_ON_WAKE=0/1), not a test's.
import { vuartBackend } from './lib/vuart-backend.js';
import { test, within } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { startDomainThread } from '../src/vmm/domain-thread.js';
import { buildBareGuest, BARE_LOAD_ADDR } from '../src/vmm/bare-guests.js';
import type { GuestImage } from '../src/toolstack/guest-image.js';
import type { MachineStats } from '../src/vmm/machine.js';

function hello(): GuestImage {
  const data = buildBareGuest('hello');
  return { ramBase: BARE_LOAD_ADDR, ramSize: 0x200000, segments: [{ addr: BARE_LOAD_ADDR, data, what: 'hello' }], entry: BARE_LOAD_ADDR, x0: 0 };
}

const GREETING = 'hello from bare metal\n';

/**
 * Runs the hello guest (greeting, then echoes its input until EOT) with a backend that sleeps on its doorbell between
 * drains (`sleeps`) or never sleeps (it polls with timers: no waiter is ever counted). Returns the vCPU's stats.
 */
async function session(sleeps: boolean, native: '0' | '1'): Promise<MachineStats> {
  const before = process.env.VPL011_NATIVE;
  process.env.VPL011_NATIVE = native; // the worker reads it at start
  const dom = startDomainThread({ domid: 1, name: 'handoff', image: hello() });
  if (before === undefined) delete process.env.VPL011_NATIVE;
  else process.env.VPL011_NATIVE = before;
  let running = true;
  // Atomics.waitAsync and the worker hold no reference on the event loop: this does, until the session ends.
  const keepAlive = setInterval(() => {}, 1000);
  try {
    const port = await dom.vuartPort;
    const { ev, local, ring } = vuartBackend(dom, port);
    let out = '';
    const buf = new Uint8Array(2048);
    let sent = false;
    const backend = (async () => {
      while (running) {
        const seen = ev.doorbell(0);
        ev.dispatch(0);
        for (let n; (n = ring.readOut(buf)) > 0; ) out += Buffer.from(buf.subarray(0, n)).toString('latin1');
        if (!sent && out === GREETING) {
          sent = true;
          ring.writeIn(new TextEncoder().encode('abc\x04'));
          ev.notify(0, local);
        }
        // Asleep on the doorbell (a counted waiter: the guest's notify wakes it), or awake and polling.
        if (sleeps) await ev.waitAsync(0, seen, 200);
        else await new Promise((r) => setTimeout(r, 2));
      }
    })();
    const exit = await within(dom.exited, 30_000, 'the hello guest to echo and power off');
    running = false;
    await backend;
    for (let n; (n = ring.readOut(buf)) > 0; ) out += Buffer.from(buf.subarray(0, n)).toString('latin1');
    assert.equal(exit.reason, 'poweroff', exit.message);
    assert.equal(out, GREETING + 'abc', 'every byte echoed, in order');
    return exit.stats!;
  } finally {
    running = false;
    clearInterval(keepAlive);
    await dom.stop();
  }
}

for (const native of ['1', '0'] as const) {
  const path = native === '1' ? 'native fast path' : 'TypeScript path';
  test(`${path}: a guest write that wakes the sleeping backend yields the vCPU's CPU to it (at most once per wake)`, async () => {
    const s = await session(true, native);
    assert.ok(s.evtchnWakes > 0, 'the backend slept and the guest woke it');
    // Every wake this vCPU sent came from a vpl011 access (OUT 0 -> 1 on a DR write); each was handed off but those
    // within HANDOFF_GAP_MS of the previous hand-off (a stream's).
    assert.ok(s.handoffs >= 1 && s.handoffs <= s.evtchnWakes, `handoffs ${s.handoffs}, wakes ${s.evtchnWakes}`);
  });

  test(`${path}: a backend that never sleeps is never woken, and the vCPU never yields`, async () => {
    const s = await session(false, native);
    assert.equal(s.evtchnWakes, 0);
    assert.equal(s.handoffs, 0);
  });
}
