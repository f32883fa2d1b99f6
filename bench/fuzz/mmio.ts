// MMIO fuzz campaign: random guest register accesses (any offset in and around the 4 KiB window, any width,
// valid or not, any value, reads and writes) against one vpl011 through the real domain MMIO bus (Domain.handleMmio
// -> MmioBus -> Vpl011), interleaved with backend actions (drain OUT, fill IN, event-channel notifications) and
// hostile writes to the ring indices in the shared page. After every operation the invariants are checked from the
// outside (register reads through the bus, the vGIC line, the raw ring indices read with our own arithmetic, not
// with src/xen/ring.ts):
//   - no exception escapes, and a valid-width access inside the window is never refused (except an ICR read);
//   - MIS = RIS & IMSC; the SPI 32 line = (MIS != 0) = the device's own idea of its line; RIS only holds TX/RX/RT
//     (and OE from a pl011 loopback overrun);
//   - FR is self-consistent (sbsa: BUSY = TXFF; pl011: BUSY = not TXFE; never TXFF+TXFE or RXFF+RXFE, no other
//     bits) and, whenever the device has seen every change of the backend's indices (a notification since) and is
//     not in loopback, equals what the raw indices give: TXFF iff OUT holds 2048 (or is corrupt: "reads as full");
//     sbsa: TXFE iff OUT empty, RXFF iff IN full; pl011: TXFE iff OUT <= 2048 - depth, RXFF iff IN >= depth (depth
//     32 with LCR_H.FEN, else 1); RXFE iff IN empty (seen through CR.RXE for the pl011 profile); a latched RIS
//     bit's condition holds, and after a notification every
//     condition that holds is latched;
//   - the device moves its own published indices only by +1 (a byte) or to the backend's (a resynchronisation);
//   - a notification that finds a corrupt half (computed from our shadow of the device's indices) increases the
//     device's corruption counter;
//   - nothing outside the ring page changes (canaries in the other magic pages).
// Single-threaded and driven by one Prng, so a seed replays a run exactly.
import { Domain, type MmioAccess } from '../../src/xen/domain.js';
import type { AccessWidth } from '../../src/xen/mmio.js';
import { EventChannels } from '../../src/xen/evtchn.js';
import { SpiLevels } from '../../src/xen/spi-levels.js';
import { domainVpl011Init, vuartOf } from '../../src/xen/vuart.js';
import { ConsoleRingBackend } from '../../src/xen/ring.js';
import { GUEST_MAGIC_BASE, GUEST_PL011_BASE, GUEST_VPL011_SPI, GUEST_VUART_GFN } from '../../src/xen/arch-arm.js';
import type { Vpl011Profile } from '../../src/device/vpl011.js';
import { Prng } from './prng.js';

export interface MmioCampaignOptions {
  profile: Vpl011Profile;
  seed: number;
  ops: number;
}

export interface MmioCampaignResult {
  profile: Vpl011Profile;
  seed: number;
  /** Operations run (MMIO accesses + backend actions + hostile writes). */
  ops: number;
  mmioAccesses: number;
  /** Register reads made by the invariant checks (not counted in ops). */
  checkReads: number;
  /** Checks of FR/RIS against the raw ring indices (the device had seen every backend change). */
  exactChecks: number;
  /** Of the exact checks, how many saw OUT full (TXFF), OUT empty, IN full (RXFF), IN empty: the states reached. */
  reached: { outFull: number; outEmpty: number; inFull: number; inEmpty: number };
  backendActions: number;
  hostileIndexWrites: number;
  /** Notifications that found a corrupt half (each must raise the device's counter). */
  corruptNotifications: number;
  refused: number;
  bytesOut: number;
  bytesIn: number;
  corruptRingEvents: number;
  seconds: number;
  failure?: string;
}

const FR_BUSY = 0x08;
const FR_RXFE = 0x10;
const FR_TXFF = 0x20;
const FR_RXFF = 0x40;
const FR_TXFE = 0x80;
const INT_RX = 0x10;
const INT_TX = 0x20;
const INT_RT = 0x40;
const INT_OE = 0x400;
const OUT_SIZE = 2048;
const IN_SIZE = 1024;

const REGS = [0x000, 0x004, 0x018, 0x020, 0x024, 0x028, 0x02c, 0x030, 0x034, 0x038, 0x03c, 0x040, 0x044, 0x048,
  0xfe0, 0xfe4, 0xfe8, 0xfec, 0xff0, 0xff4, 0xff8, 0xffc];
const VALID_WIDTHS = [1, 2, 4, 8] as const;
const INVALID_WIDTHS = [0, 3, 5, 6, 7, 16, 32, -1, -8, 0x80000000];
const SPECIAL_VALUES = [0, 0xffffffff, 0x70, 0x7ff, 0x300, 0x301, 0x201, 0x10, 0x12, 0x3f, 0x80000000, 2 ** 32 + 5, -1, 2 ** 53];

/** Operation kinds, for the replay log. */
const K_MMIO = 0;
const K_DRAIN = 1;
const K_FILL = 2;
const K_NOTIFY = 3;
const K_HOSTILE_BACK = 4;
const K_SCRIBBLE_FRONT = 5;
const K_REPAIR = 6;
const K_DATA = 7;
const KIND_NAMES = ['mmio', 'drain', 'fill', 'notify', 'hostile-index', 'scribble-own-index', 'repair', 'data-scribble'];

class Failure extends Error {}

export function runMmioCampaign(opts: MmioCampaignOptions): MmioCampaignResult {
  const { profile, seed } = opts;
  const rng = new Prng(seed);
  const evtchn = EventChannels.create({ maxDomains: 4, portsPerDomain: 8 });
  const vgic = new SpiLevels();
  const d = new Domain({ domid: 1, name: 'fuzz', vgic, evtchn });
  const magic = new SharedArrayBuffer(4 * 4096);
  d.addMemory({ name: 'magic', base: GUEST_MAGIC_BASE, size: magic.byteLength, buffer: magic, byteOffset: 0 });
  // A log sink, so that the device's rate-limited diagnostics are formatted on the way (their text is not checked).
  const guestPort = domainVpl011Init(d, { consoleDomid: 0, gfn: GUEST_VUART_GFN, profile }, { log: () => {} });
  const backPort = evtchn.bindInterdomain(0, 1, guestPort);
  const dev = vuartOf(d)!.device;
  const page = d.mapGuestPage(GUEST_VUART_GFN);
  const backend = new ConsoleRingBackend(page.buffer, page.byteOffset);
  // Our own view of the indices: [in_cons, in_prod, out_cons, out_prod] at 0xC00.
  const raw = new Int32Array(magic, page.byteOffset + 0xc00, 4);
  const pageBytes = new Uint8Array(magic, page.byteOffset, 4096);
  // Canaries: every byte of the magic region outside the ring page.
  const all = new Uint8Array(magic);
  for (let i = 0; i < all.length; i++) if (i < page.byteOffset || i >= page.byteOffset + 4096) all[i] = (i * 31 + 7) & 0xff;
  const canariesIntact = (): boolean => {
    for (let i = 0; i < all.length; i++) {
      if ((i < page.byteOffset || i >= page.byteOffset + 4096) && all[i] !== ((i * 31 + 7) & 0xff)) return false;
    }
    return true;
  };

  const acc: MmioAccess = { addr: 0, width: 4, write: false, value: 0 };
  const chk: MmioAccess = { addr: 0, width: 4, write: false, value: 0 };
  const scratch = new Uint8Array(OUT_SIZE);
  const full = profile === 'pl011';

  // Shadows of the device's private indices (what it last published), and what we know about its view.
  let shP = Atomics.load(raw, 3);
  let shC = Atomics.load(raw, 0);
  let scribP = false; // out_prod in the page is not the device's (we scribbled it)
  let scribC = false; // in_cons likewise
  let stale = false; // the backend's indices changed since the device last looked (no notification yet)

  const res: MmioCampaignResult = {
    profile, seed, ops: 0, mmioAccesses: 0, checkReads: 0, exactChecks: 0, backendActions: 0, hostileIndexWrites: 0,
    corruptNotifications: 0, refused: 0, reached: { outFull: 0, outEmpty: 0, inFull: 0, inEmpty: 0 }, bytesOut: 0, bytesIn: 0, corruptRingEvents: 0, seconds: 0,
  };

  // The last operations, for the failure report (numbers only: no allocation per op).
  const LOG = 32;
  const log = new Float64Array(LOG * 5);
  let logAt = 0;
  const record = (kind: number, a: number, b: number, c: number, e: number) => {
    const o = (logAt++ % LOG) * 5;
    log[o] = kind;
    log[o + 1] = a;
    log[o + 2] = b;
    log[o + 3] = c;
    log[o + 4] = e;
  };
  const history = (): string => {
    const lines: string[] = [];
    for (let k = Math.max(0, logAt - LOG); k < logAt; k++) {
      const o = (k % LOG) * 5;
      const kind = log[o]!;
      const f = (x: number) => (Number.isInteger(x) && x >= 0 ? '0x' + x.toString(16) : String(x));
      lines.push(
        kind === K_MMIO
          ? `  #${k} mmio ${log[o + 4] ? 'write' : 'read'} addr=${f(log[o + 1]!)} w=${log[o + 2]} value=${f(log[o + 3]!)}`
          : `  #${k} ${KIND_NAMES[kind]} ${f(log[o + 1]!)} ${f(log[o + 2]!)} notify=${log[o + 3]}`,
      );
    }
    return lines.join('\n');
  };
  const fail = (msg: string): never => {
    const r = dev.registers();
    throw new Failure(
      `${profile}: ${msg}\n  device view: fr=0x${r.fr.toString(16)} ris=0x${r.ris.toString(16)} imsc=0x${r.imsc.toString(16)} ` +
        `in=${r.inLevel} out=${r.outLevel}; raw in_cons=${raw[0]! >>> 0} in_prod=${raw[1]! >>> 0} out_cons=${raw[2]! >>> 0} ` +
        `out_prod=${raw[3]! >>> 0}; shadow out_prod=${shP >>> 0} in_cons=${shC >>> 0} scribbled=${scribP}/${scribC} stale=${stale}\n` +
        `  last operations:\n${history()}`,
    );
  };

  const readReg = (offset: number): number => {
    chk.addr = GUEST_PL011_BASE + offset;
    chk.width = 4;
    chk.write = false;
    chk.value = 0;
    res.checkReads++;
    const o = d.handleMmio(chk);
    if (o !== 'ok') fail(`a 32-bit read of register 0x${offset.toString(16)} was refused (${o})`);
    return chk.value >>> 0;
  };

  /** The device published its own indices: only +1 or a resynchronisation to the backend's index is legal. */
  const observePublish = (preP: number, preC: number): void => {
    const p = Atomics.load(raw, 3);
    if (p !== preP) {
      if (p !== ((shP + 1) | 0)) fail(`out_prod moved from ${shP >>> 0} to ${p >>> 0} (not +1)`);
      shP = p;
      scribP = false;
    }
    const c = Atomics.load(raw, 0);
    if (c !== preC) {
      if (c !== ((shC + 1) | 0) && c !== Atomics.load(raw, 1)) fail(`in_cons moved from ${shC >>> 0} to ${c >>> 0} (neither +1 nor in_prod)`);
      shC = c;
      scribC = false;
    }
  };

  const check = (afterEvent: boolean): void => {
    const fr = readReg(0x18);
    const ris = readReg(0x3c);
    const imsc = readReg(0x38);
    const mis = readReg(0x40);
    if (mis !== ((ris & imsc) >>> 0)) fail(`MIS 0x${mis.toString(16)} != RIS 0x${ris.toString(16)} & IMSC 0x${imsc.toString(16)}`);
    const line = vgic.level(GUEST_VPL011_SPI);
    if (line !== (mis !== 0)) fail(`SPI 32 line ${line} but MIS = 0x${mis.toString(16)}`);
    if (dev.irqLevel !== line) fail(`the device thinks its line is ${dev.irqLevel}, the vGIC has ${line}`);
    // No line events here; pl011 loopback (CR.LBE) can overrun its FIFO (OEIS).
    if ((ris & ~(INT_RX | INT_TX | INT_RT | (full ? INT_OE : 0))) !== 0) fail(`RIS 0x${ris.toString(16)} has bits the device never raises`);
    if ((fr & ~(FR_BUSY | FR_RXFE | FR_TXFF | FR_RXFF | FR_TXFE)) !== 0) fail(`FR 0x${fr.toString(16)} has unexpected bits`);
    // sbsa (Xen 393a541f7d): BUSY only with TXFF. pl011 (TRM 3.3.3): BUSY while the TX FIFO is not empty.
    if (!full && ((fr & FR_BUSY) !== 0) !== ((fr & FR_TXFF) !== 0)) fail(`FR 0x${fr.toString(16)}: BUSY != TXFF`);
    if (full && ((fr & FR_BUSY) !== 0) === ((fr & FR_TXFE) !== 0)) fail(`FR 0x${fr.toString(16)}: BUSY == TXFE`);
    if ((fr & FR_TXFF) !== 0 && (fr & FR_TXFE) !== 0) fail(`FR 0x${fr.toString(16)}: TXFF and TXFE`);
    if ((fr & FR_RXFF) !== 0 && (fr & FR_RXFE) !== 0) fail(`FR 0x${fr.toString(16)}: RXFF and RXFE`);
    if (stale || scribP || scribC) return;
    // Exact: the device has seen every change of the backend's indices, and the page holds its own.
    res.exactChecks++;
    const cr = full ? readReg(0x30) : 0;
    if ((cr & 0x80) !== 0) return; // loopback: the rings are out of the path (test/device-pl011.test.ts covers it)
    const rxOn = full ? (cr & 0x200) !== 0 : true;
    // pl011: the FIFOs are windows of this depth on the rings (docs/DEVICE.md); sbsa: the whole rings.
    const depth = full ? ((readReg(0x2c) & 0x10) !== 0 ? 32 : 1) : 0;
    const out = (Atomics.load(raw, 3) - Atomics.load(raw, 2)) >>> 0;
    const inQ = (Atomics.load(raw, 1) - Atomics.load(raw, 0)) >>> 0;
    if (inQ > IN_SIZE) fail(`IN is corrupt (${inQ} queued) although the device has looked since`);
    const rx = rxOn ? inQ : 0;
    const outFull = out >= OUT_SIZE; // corrupt reads as full
    const reached = res.reached;
    if (outFull) reached.outFull++;
    else if (out === 0) reached.outEmpty++;
    if (rx === IN_SIZE) reached.inFull++;
    else if (rx === 0) reached.inEmpty++;
    if (((fr & FR_TXFF) !== 0) !== outFull) fail(`FR.TXFF=${(fr & FR_TXFF) !== 0} but OUT holds ${out}`);
    const txEmpty = full ? Math.min(out, OUT_SIZE) <= OUT_SIZE - depth : out === 0;
    if (((fr & FR_TXFE) !== 0) !== txEmpty) fail(`FR.TXFE=${(fr & FR_TXFE) !== 0} but OUT holds ${out}`);
    if (((fr & FR_RXFE) !== 0) !== (rx === 0)) fail(`FR.RXFE=${(fr & FR_RXFE) !== 0} but IN holds ${rx} (receiver ${rxOn ? 'on' : 'off'})`);
    if (((fr & FR_RXFF) !== 0) !== (full ? rx >= depth : rx === IN_SIZE)) fail(`FR.RXFF=${(fr & FR_RXFF) !== 0} but IN holds ${rx}`);
    if ((ris & INT_RT) !== 0 && rx === 0) fail('RIS.RT latched with nothing to receive');
    if ((ris & INT_RX) !== 0 && rx === 0) fail('RIS.RX latched with nothing to receive');
    if ((ris & INT_TX) !== 0 && outFull) fail('RIS.TX latched with OUT full');
    if (afterEvent) {
      // A data event re-latches every condition that holds.
      if (((ris & INT_RT) !== 0) !== (rx > 0)) fail(`after an event RIS.RT=${(ris & INT_RT) !== 0} with ${rx} bytes to receive`);
      if (!full) {
        if (((ris & INT_TX) !== 0) !== (out <= OUT_SIZE - 16)) fail(`after an event RIS.TX=${(ris & INT_TX) !== 0} with OUT at ${out}`);
        if (((ris & INT_RX) !== 0) !== (rx >= IN_SIZE - 16)) fail(`after an event RIS.RX=${(ris & INT_RX) !== 0} with IN at ${rx}`);
      }
    }
  };

  /** The backend's notification, through the event channel as the console daemon sends it. */
  const notifyDevice = (): void => {
    // Corruption the device must see now, computed from our shadows of its indices.
    const outBad = ((shP - Atomics.load(raw, 2)) >>> 0) > OUT_SIZE;
    const inBad = ((Atomics.load(raw, 1) - shC) >>> 0) > IN_SIZE;
    const before = dev.counters.corruptRingEvents;
    const preP = Atomics.load(raw, 3);
    const preC = Atomics.load(raw, 0);
    evtchn.notify(0, backPort);
    if (evtchn.dispatch(1) !== 1) fail('the notification did not reach the device');
    if (evtchn.handlerErrors !== 0) fail(`the device's event handler threw: ${String(evtchn.lastHandlerError)}`);
    observePublish(preP, preC);
    stale = false;
    if (outBad || inBad) {
      res.corruptNotifications++;
      const after = dev.counters.corruptRingEvents;
      if (after < before + (outBad ? 1 : 0) + (inBad ? 1 : 0)) {
        fail(`a notification with a corrupt ${outBad ? 'OUT' : ''}${inBad ? ' IN' : ''} half left the corruption counter at ${after} (was ${before})`);
      }
    }
  };

  const maybeNotify = (p: number): number => {
    if (rng.chance(p)) {
      notifyDevice();
      return 1;
    }
    stale = true;
    return 0;
  };

  /** A hostile value for an index whose honest value is `near`. */
  const hostileIndex = (near: number, size: number): number => {
    switch (rng.int(6)) {
      case 0:
        return rng.u32() | 0;
      case 1:
        return (near + rng.range(-3, 3)) | 0;
      case 2:
        return (near + size + rng.range(-1, 2)) | 0;
      case 3:
        return (near - size - rng.range(-1, 2)) | 0;
      case 4:
        return (near + 0x80000000) | 0;
      default:
        return rng.pick([0, -1, 0x7fffffff, -0x80000000]);
    }
  };
  /** A scribble of the device's own index, far from any value it could publish next (see observePublish). */
  const farFrom = (v: number): number => (v + 0x01000000 + rng.int(0x7e000000)) | 0;

  const randomAccess = (drBias: number): void => {
    const write = rng.chance(0.5);
    let addr: number;
    const r = rng.u32() / 4294967296;
    if (r < drBias) addr = GUEST_PL011_BASE; // DR: move data
    else if (r < drBias + (1 - drBias) * 0.55) addr = GUEST_PL011_BASE + rng.pick(REGS);
    else if (r < drBias + (1 - drBias) * 0.8) addr = GUEST_PL011_BASE + rng.int(0x1000);
    else if (r < drBias + (1 - drBias) * 0.9) addr = GUEST_PL011_BASE + rng.pick(REGS) + rng.range(1, 3); // misaligned
    else {
      switch (rng.int(4)) {
        case 0:
          addr = GUEST_PL011_BASE + 0x1000 + rng.int(0x1000);
          break;
        case 1:
          addr = GUEST_PL011_BASE - 1 - rng.int(0x100);
          break;
        case 2:
          addr = GUEST_PL011_BASE + 0xffc + rng.int(8);
          break;
        default:
          addr = rng.u32();
      }
    }
    const width = (rng.chance(0.9) ? rng.pick(VALID_WIDTHS) : rng.pick(INVALID_WIDTHS)) as AccessWidth;
    const value = rng.chance(0.75) ? rng.u32() : rng.pick(SPECIAL_VALUES);
    acc.addr = addr;
    acc.width = width;
    acc.write = write;
    acc.value = value;
    record(K_MMIO, addr, width, value, write ? 1 : 0);
    const preP = Atomics.load(raw, 3);
    const preC = Atomics.load(raw, 0);
    let outcome: string;
    try {
      outcome = d.handleMmio(acc);
    } catch (e) {
      fail(`exception from the MMIO path: ${(e as Error).stack ?? String(e)}`);
      return;
    }
    res.mmioAccesses++;
    const offset = addr - GUEST_PL011_BASE;
    const inWindow = offset >= 0 && offset < 0x1000;
    if (outcome === 'inject-abort') res.refused++;
    else if (outcome !== 'ok') fail(`outcome ${outcome}`);
    if (!inWindow && outcome !== 'inject-abort') fail(`an access outside the window (0x${addr.toString(16)}) was not refused`);
    if (inWindow && (width === 1 || width === 2 || width === 4)) {
      const refusedOk = !write && offset === 0x44;
      if ((outcome === 'inject-abort') !== refusedOk) fail(`a w${width} ${write ? 'write' : 'read'} at +0x${offset.toString(16)} gave ${outcome}`);
    }
    if (!write && outcome === 'ok') {
      const v = acc.value;
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) fail(`a read returned ${v}, not a u32`);
    }
    observePublish(preP, preC);
  };

  const started = performance.now();
  let phase = 0;
  try {
    for (let i = 0; i < opts.ops; i++) {
      if ((i & 4095) === 0) phase = rng.int(4); // 0 mixed, 1 TX-heavy, 2 RX-heavy, 3 registers
      const drBias = phase === 1 || phase === 2 ? 0.6 : phase === 3 ? 0.02 : 0.3;
      const r = rng.u32() / 4294967296;
      let event = false;
      if (r < 0.955) {
        randomAccess(drBias);
        // A DR write is a data event (re-latches every condition); a DR read may not be one (pl011 RXE off).
        event = acc.write && acc.addr === GUEST_PL011_BASE && (acc.width as number) !== 8;
      } else if (r < 0.97) {
        // Drain OUT (rarely in the TX-heavy phase, so the ring fills up and stays full for a while).
        const want = phase === 1 && rng.chance(0.8) ? 0 : rng.int(OUT_SIZE + 1);
        const n = backend.readOut(scratch.subarray(0, want));
        res.backendActions++;
        record(K_DRAIN, want, n, maybeNotify(0.8), 0);
        event = !stale;
      } else if (r < 0.985) {
        const want = phase === 2 ? rng.int(IN_SIZE + 64) : rng.int(64);
        const n = backend.writeIn(rng.bytes(want));
        res.backendActions++;
        record(K_FILL, want, n, maybeNotify(0.8), 0);
        event = !stale;
      } else if (r < 0.99) {
        res.backendActions++;
        record(K_NOTIFY, 0, 0, 1, 0);
        notifyDevice();
        event = true;
      } else if (r < 0.994) {
        // The backend's indices (or a guest writing them in its page): anything.
        res.hostileIndexWrites++;
        const which = rng.chance(0.5) ? 2 : 1;
        const v = which === 2 ? hostileIndex(shP, OUT_SIZE) : hostileIndex(shC, IN_SIZE);
        Atomics.store(raw, which, v);
        record(K_HOSTILE_BACK, which, v >>> 0, maybeNotify(0.5), 0);
        event = !stale;
      } else if (r < 0.995) {
        // The guest scribbles over the device's own published index in its page.
        res.hostileIndexWrites++;
        if (rng.chance(0.5)) {
          Atomics.store(raw, 3, farFrom(shP));
          scribP = true;
        } else {
          Atomics.store(raw, 0, farFrom(shC));
          scribC = true;
        }
        record(K_SCRIBBLE_FRONT, Atomics.load(raw, 3) >>> 0, Atomics.load(raw, 0) >>> 0, 0, 0);
      } else if (r < 0.998) {
        // ... and puts it back.
        if (scribP) Atomics.store(raw, 3, shP);
        if (scribC) Atomics.store(raw, 0, shC);
        scribP = scribC = false;
        record(K_REPAIR, shP >>> 0, shC >>> 0, 0, 0);
      } else {
        // Random bytes anywhere in the page's data areas and the connection byte.
        const at = rng.int(0xc11);
        if (at < 0xc00 || at === 0xc10) pageBytes[at] = rng.int(256);
        record(K_DATA, at, pageBytes[at]!, 0, 0);
      }
      res.ops++;
      check(event);
      if ((i & 0xffff) === 0xffff && !canariesIntact()) fail('a byte outside the ring page changed');
    }
    if (!canariesIntact()) fail('a byte outside the ring page changed');
    if (d.crashed) fail(`the domain crashed: ${d.crashReason}`);
  } catch (e) {
    if (!(e instanceof Failure)) res.failure = `${profile}: unexpected exception in the campaign: ${(e as Error).stack ?? String(e)}`;
    else res.failure = e.message;
  }
  res.seconds = (performance.now() - started) / 1000;
  const c = dev.counters;
  res.bytesOut = c.bytesOut;
  res.bytesIn = c.bytesIn;
  res.corruptRingEvents = c.corruptRingEvents;
  return res;
}
