// Hostile-ring campaign: a worker thread (bench/fuzz/ring-mutator.ts) scribbles on one domain's console ring page
// (indices and bytes) through the shared memory while, in this thread, that domain's vpl011 is driven by a guest
// loop through the MMIO bus and the real console backend (src/console: ConsoleBackend + Console) serves it and a
// second, healthy domain. Checked:
//   - no exception anywhere (MMIO path, event handlers, backend loop), the domains do not crash;
//   - no out-of-bounds: canary pages around the victim's ring page are unchanged;
//   - no hang: the longest chunk of 64 guest accesses and the longest backend turn (the time the event loop was away
//     from the guest loop) are recorded, and the run fails if either passes HANG_MS;
//   - the victim's device invariants after every access (MIS = RIS & IMSC, line = MIS != 0, FR self-consistent;
//     not FR against the indices: another thread moves them at any time);
//   - corruption is seen and counted (device and console counters grow), never on the healthy domain;
//   - the healthy console's bytes arrive exactly, both ways: every output byte its guest wrote reaches its sink in
//     order, and every input byte queued for it is read by its guest in order.
// The seed fixes both threads' operation sequences; the interleaving of the two threads is up to the scheduler, so
// a failure replays with the same seed in kind, not necessarily at the same operation.
import { Worker } from 'node:worker_threads';
import { Writable } from 'node:stream';
import { Domain, type MmioAccess } from '../../src/xen/domain.js';
import type { AccessWidth } from '../../src/xen/mmio.js';
import { EventChannels } from '../../src/xen/evtchn.js';
import { SpiLevels } from '../../src/xen/spi-levels.js';
import { domainVpl011Init, vuartOf } from '../../src/xen/vuart.js';
import { ConsoleRingBackend } from '../../src/xen/ring.js';
import { GUEST_MAGIC_BASE, GUEST_PL011_BASE, GUEST_VPL011_SPI, GUEST_VUART_GFN } from '../../src/xen/arch-arm.js';
import { Console } from '../../src/console/console.js';
import { ConsoleBackend } from '../../src/console/backend.js';
import type { Vpl011, Vpl011Profile } from '../../src/device/vpl011.js';
import { Prng, subSeed } from './prng.js';
import type { MutatorInit } from './ring-mutator.js';

export interface RingCampaignOptions {
  seed: number;
  /** Hostile mutations the worker makes (the campaign runs until they are done). */
  mutations: number;
  victimProfile?: Vpl011Profile;
  /** Give up (fail) if the run takes longer than this. */
  limitMs?: number;
}

export interface RingCampaignResult {
  seed: number;
  mutations: number;
  victimAccesses: number;
  victimCorruptDevice: number;
  victimCorruptConsole: number;
  victimBytesOut: number;
  healthyBytesOut: number;
  healthyBytesIn: number;
  maxChunkMs: number;
  maxBackendTurnMs: number;
  seconds: number;
  failure?: string;
}

/** A single guest access or backend turn taking this long is a hang. */
export const HANG_MS = 2000;
const REGS = [0x000, 0x004, 0x018, 0x038, 0x03c, 0x040, 0x044, 0x030, 0x02c, 0x034];

class Failure extends Error {}

interface GuestDomain {
  d: Domain;
  dev: Vpl011;
  vgic: SpiLevels;
  magic: SharedArrayBuffer;
  pageOffset: number;
  console: Console;
}

function makeDomain(evtchn: EventChannels, backend: ConsoleBackend, domid: number, name: string, profile: Vpl011Profile, report: (m: string) => void): GuestDomain {
  const vgic = new SpiLevels();
  const d = new Domain({ domid, name, vgic, evtchn });
  const magic = new SharedArrayBuffer(4 * 4096);
  d.addMemory({ name: 'magic', base: GUEST_MAGIC_BASE, size: magic.byteLength, buffer: magic, byteOffset: 0 });
  const guestPort = domainVpl011Init(d, { consoleDomid: 0, gfn: GUEST_VUART_GFN, profile });
  const localPort = evtchn.bindInterdomain(0, domid, guestPort);
  const page = d.mapGuestPage(GUEST_VUART_GFN);
  const console = new Console({
    name,
    domid,
    ring: new ConsoleRingBackend(page.buffer, page.byteOffset),
    evtchn,
    backendDomid: 0,
    localPort,
    report,
  });
  backend.add(console, evtchn, localPort);
  return { d, dev: vuartOf(d)!.device, vgic, magic, pageOffset: page.byteOffset, console };
}

export async function runRingCampaign(opts: RingCampaignOptions): Promise<RingCampaignResult> {
  const limitMs = opts.limitMs ?? 600_000;
  const res: RingCampaignResult = {
    seed: opts.seed, mutations: 0, victimAccesses: 0, victimCorruptDevice: 0, victimCorruptConsole: 0, victimBytesOut: 0,
    healthyBytesOut: 0, healthyBytesIn: 0, maxChunkMs: 0, maxBackendTurnMs: 0, seconds: 0,
  };
  const started = performance.now();
  const rng = new Prng(subSeed(opts.seed, 0));
  const evtchn = EventChannels.create({ maxDomains: 4, portsPerDomain: 8 });
  const backend = new ConsoleBackend(0);
  const reports: string[] = [];
  const report = (m: string) => {
    if (reports.length < 100) reports.push(m);
  };
  const victim = makeDomain(evtchn, backend, 1, 'victim', opts.victimProfile ?? 'sbsa', report);
  const healthy = makeDomain(evtchn, backend, 2, 'healthy', 'pl011', report);

  // Canaries: the victim's magic pages other than the ring page.
  const vbytes = new Uint8Array(victim.magic);
  const outside = (i: number) => i < victim.pageOffset || i >= victim.pageOffset + 4096;
  for (let i = 0; i < vbytes.length; i++) if (outside(i)) vbytes[i] = (i * 13 + 5) & 0xff;

  // The victim's output only counted; the healthy one's compared with the stream its guest writes.
  let victimOut = 0;
  victim.console.addSink(new Writable({ write: (c: Buffer, _e, cb) => ((victimOut += c.length), cb()) }), { label: 'victim sink' });
  const outCheck = new Prng(subSeed(opts.seed, 2));
  let healthyReceived = 0;
  let mismatch: string | undefined;
  healthy.console.addSink(
    new Writable({
      write: (c: Buffer, _e, cb) => {
        for (let i = 0; i < c.length && mismatch === undefined; i++) {
          const want = outCheck.int(256);
          if (c[i] !== want) mismatch = `healthy output byte ${healthyReceived + i} is ${c[i]}, expected ${want}`;
        }
        healthyReceived += c.length;
        cb();
      },
    }),
    { label: 'healthy sink' },
  );
  const outGen = new Prng(subSeed(opts.seed, 2));
  const inGen = new Prng(subSeed(opts.seed, 3));
  const inCheck = new Prng(subSeed(opts.seed, 3));
  let healthySent = 0;
  let healthyQueued = 0;
  let healthyRead = 0;
  const loopDone = backend.start();

  const ctl = new SharedArrayBuffer(8);
  const ctlView = new Int32Array(ctl);
  const init: MutatorInit = { buffer: victim.magic, pageOffset: victim.pageOffset, seed: subSeed(opts.seed, 1), mutations: opts.mutations, ctl };
  const worker = new Worker(new URL('./ring-mutator.js', import.meta.url), { workerData: init });
  let workerError: Error | undefined;
  let workerDone = false;
  worker.on('error', (e) => (workerError = e));
  worker.on('exit', () => (workerDone = true));

  const acc: MmioAccess = { addr: 0, width: 4, write: false, value: 0 };
  const mmio = (g: GuestDomain, offset: number, width: AccessWidth, write: boolean, value: number): number => {
    acc.addr = GUEST_PL011_BASE + offset;
    acc.width = width;
    acc.write = write;
    acc.value = value;
    let o: string;
    try {
      o = g.d.handleMmio(acc);
    } catch (e) {
      throw new Failure(`${g.d.name}: exception from the MMIO path: ${(e as Error).stack ?? String(e)}`);
    }
    if (o === 'crashed') throw new Failure(`${g.d.name}: domain crashed: ${g.d.crashReason}`);
    return o === 'ok' ? acc.value >>> 0 : -1;
  };
  const checkVictim = (): void => {
    const r = victim.dev.registers();
    const mis = mmio(victim, 0x40, 4, false, 0);
    const ris = mmio(victim, 0x3c, 4, false, 0);
    const imsc = mmio(victim, 0x38, 4, false, 0);
    const fr = mmio(victim, 0x18, 4, false, 0);
    if (mis !== ((ris & imsc) >>> 0)) throw new Failure(`victim: MIS ${mis} != RIS ${ris} & IMSC ${imsc}`);
    if (victim.vgic.level(GUEST_VPL011_SPI) !== (mis !== 0)) throw new Failure(`victim: line ${victim.vgic.level(GUEST_VPL011_SPI)} with MIS ${mis}`);
    // Both profiles: TXFF implies BUSY, BUSY excludes TXFE (sbsa: BUSY only with TXFF; pl011: while TX is not
    // empty), never TXFF with TXFE or RXFF with RXFE.
    if (((fr & 0x20) !== 0 && (fr & 0x08) === 0) || (fr & 0x88) === 0x88 || (fr & 0xa0) === 0xa0 || (fr & 0x50) === 0x50 || (fr & ~0xf8) !== 0) {
      throw new Failure(`victim: FR 0x${fr.toString(16)} is inconsistent`);
    }
    if (r.inLevel < 0 || r.inLevel > 1024 || r.outLevel < 0 || r.outLevel > 2048) throw new Failure(`victim: levels ${r.inLevel}/${r.outLevel} out of range`);
  };

  try {
    let lastYield = performance.now();
    for (;;) {
      if (workerError) throw new Failure(`mutator thread failed: ${workerError.message}`);
      if (performance.now() - started > limitMs) throw new Failure(`the campaign did not finish in ${limitMs} ms`);
      const mutating = !workerDone && Atomics.load(ctlView, 1) < opts.mutations;
      if (!mutating) break;
      // The victim's guest: 64 accesses, mostly data, some register pokes.
      const t0 = performance.now();
      for (let k = 0; k < 64; k++) {
        const r = rng.int(100);
        if (r < 40) mmio(victim, 0, 1, true, rng.int(256));
        else if (r < 70) mmio(victim, 0, 4, false, 0);
        else if (r < 85) mmio(victim, 0x18, 4, false, 0);
        else mmio(victim, rng.pick(REGS), rng.pick([1, 2, 4] as const), rng.chance(0.5), rng.u32());
        res.victimAccesses++;
        checkVictim();
      }
      const chunk = performance.now() - t0;
      if (chunk > res.maxChunkMs) res.maxChunkMs = chunk;
      if (victim.console.pendingInput < 8192) victim.console.queueInput(rng.bytes(rng.int(512)));
      // The healthy guest: a driver that writes while TXFF is clear and reads while RXFE is clear.
      for (let k = 0; k < 256 && (mmio(healthy, 0x18, 4, false, 0) & 0x20) === 0; k++) {
        mmio(healthy, 0, 1, true, outGen.int(256));
        healthySent++;
      }
      drainHealthyInput();
      if (healthy.console.pendingInput < 4096) {
        const n = 1 + rng.int(300);
        const b = new Uint8Array(n);
        for (let i = 0; i < n; i++) b[i] = inGen.int(256);
        healthy.console.queueInput(b);
        healthyQueued += n;
      }
      // The vCPU side of the event channels (the backend's notifications reach the devices).
      evtchn.dispatch(1);
      evtchn.dispatch(2);
      if (evtchn.handlerErrors !== 0) throw new Failure(`an event handler threw: ${String(evtchn.lastHandlerError)}`);
      if (mismatch) throw new Failure(mismatch);
      const y = performance.now();
      if (y - lastYield > 5) {
        await new Promise<void>((r) => setImmediate(r));
        const turn = performance.now() - y;
        if (turn > res.maxBackendTurnMs) res.maxBackendTurnMs = turn;
        lastYield = performance.now();
      }
      if (res.maxChunkMs > HANG_MS) throw new Failure(`64 victim accesses took ${res.maxChunkMs.toFixed(0)} ms`);
      if (res.maxBackendTurnMs > HANG_MS) throw new Failure(`a backend turn took ${res.maxBackendTurnMs.toFixed(0)} ms`);
    }
    Atomics.store(ctlView, 0, 1);
    Atomics.notify(ctlView, 0);
    // The healthy console finishes what its guest wrote and what was queued for it, exactly.
    const end = performance.now() + 60_000;
    while (healthyReceived < healthySent || healthyRead < healthyQueued) {
      if (performance.now() > end) {
        throw new Failure(`healthy console stalled: ${healthyReceived}/${healthySent} bytes out, ${healthyRead}/${healthyQueued} in`);
      }
      drainHealthyInput();
      evtchn.dispatch(1);
      evtchn.dispatch(2);
      healthy.console.flushOutput();
      if (mismatch) throw new Failure(mismatch);
      await new Promise<void>((r) => setTimeout(r, 1));
    }
    if (mismatch) throw new Failure(mismatch);
    for (let i = 0; i < vbytes.length; i++) {
      if (outside(i) && vbytes[i] !== ((i * 13 + 5) & 0xff)) throw new Failure(`victim magic byte ${i} (outside the ring page) changed`);
    }
    const vc = victim.dev.counters;
    res.victimCorruptDevice = vc.corruptRingEvents;
    res.victimCorruptConsole = victim.console.counters.corrupt;
    if (vc.corruptRingEvents === 0 || victim.console.counters.corrupt === 0) {
      throw new Failure(`hostile indices were not counted (device ${vc.corruptRingEvents}, console ${victim.console.counters.corrupt})`);
    }
    if (healthy.dev.counters.corruptRingEvents !== 0 || healthy.console.counters.corrupt !== 0) throw new Failure('the healthy domain saw corruption');
    if (healthy.console.counters.dropped !== 0) throw new Failure('the healthy console dropped output');
  } catch (e) {
    res.failure = e instanceof Failure ? e.message : `unexpected exception: ${(e as Error).stack ?? String(e)}`;
  } finally {
    Atomics.store(ctlView, 0, 1);
    Atomics.notify(ctlView, 0);
    await worker.terminate();
    await backend.stop();
    await loopDone;
    victim.console.close();
    healthy.console.close();
  }
  res.mutations = Atomics.load(ctlView, 1);
  res.victimBytesOut = victimOut;
  res.healthyBytesOut = healthyReceived;
  res.healthyBytesIn = healthyRead;
  res.seconds = (performance.now() - started) / 1000;
  return res;

  function drainHealthyInput(): void {
    for (let k = 0; k < 1100 && (mmio(healthy, 0x18, 4, false, 0) & 0x10) === 0; k++) {
      const b = mmio(healthy, 0, 4, false, 0);
      const want = inCheck.int(256);
      if (b !== want && mismatch === undefined) mismatch = `healthy input byte ${healthyRead} read as ${b}, expected ${want}`;
      healthyRead++;
    }
  }
}
