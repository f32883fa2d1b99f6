// The saved-domain file (src/vmm/save-format.ts, saved-domain.ts; docs/SAVE.md): round trips of every section under
// property tests (the vpl011 device state of both profiles driven by random register traffic), and every corruption
// refused with a one-line SaveFormatError: truncation at any length, any flipped byte, a bumped version, garbage,
// and sections whose checksums are right but whose contents are not.
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { deflateRawSync } from 'node:zlib';
import { Vpl011, type Vpl011Profile } from '../src/device/vpl011.js';
import { ConsoleRing, ConsoleRingBackend } from '../src/xen/ring.js';
import { Gicv2, GIC_NR_IRQS } from '../src/xen/gicv2.js';
import { CPU_REGISTER_NAMES } from '../src/cpu/cpu-state.js';
import { SAVE_FORMAT_VERSION, SaveFormatError, decodeSections, encodeSections } from '../src/vmm/save-format.js';
import { MAGIC_BYTES, SECTIONS, decodeSavedDomain, encodeSavedDomain, ringIndicesOf, type SavedDomain } from '../src/vmm/saved-domain.js';
import { GUEST_RAM0_BASE, VUART_PFN_OFFSET, XEN_PAGE_SIZE } from '../src/xen/arch-arm.js';

const RAM_PAGES = 32;

/** A device of `profile` after random register writes and ring traffic, and the magic pages it lives in. */
function deviceAfter(profile: Vpl011Profile, writes: [number, number][], outBytes: number, inBytes: number, drained: number) {
  const magic = new SharedArrayBuffer(MAGIC_BYTES);
  const ring = new ConsoleRing(magic, VUART_PFN_OFFSET * XEN_PAGE_SIZE);
  const backend = new ConsoleRingBackend(magic, VUART_PFN_OFFSET * XEN_PAGE_SIZE);
  const dev = new Vpl011({ ring, irq: { set() {} }, notify() {}, profile });
  for (const [off, v] of writes) dev.write(off, 4, v);
  backend.writeIn(new Uint8Array(inBytes).fill(0x41));
  for (let i = 0; i < outBytes; i++) dev.write(0, 4, 0x30 + (i % 10));
  backend.readOut(new Uint8Array(drained));
  dev.notification();
  return { dev, magic: new Uint8Array(magic).slice() };
}

const hex16 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map((v) => v.toString(16).padStart(16, '0'));
const hex32 = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => Buffer.from(b).toString('hex'));
const registersArb = fc.tuple(...CPU_REGISTER_NAMES.map((n) => (/^q\d+$/.test(n) ? hex32 : hex16))).map((vals) => Object.fromEntries(CPU_REGISTER_NAMES.map((n, i) => [n, vals[i]!])));
const bits = (m: number) => fc.array(fc.integer({ min: 0, max: 255 }).map((x) => x & m), { minLength: GIC_NR_IRQS, maxLength: GIC_NR_IRQS });
const gicArb = fc.record({
  dctlr: fc.integer({ min: 0, max: 1 }), cctlr: fc.integer({ min: 0, max: 1 }),
  pmr: fc.integer({ min: 0, max: 31 }).map((x) => x << 3), bpr: fc.integer({ min: 0, max: 7 }),
  enabled: bits(1), latch: bits(1), line: bits(1), active: bits(1), prio: bits(0xf8), edge: bits(1),
  activeStack: fc.uniqueArray(fc.integer({ min: 0, max: GIC_NR_IRQS - 1 }), { maxLength: 6 }),
});
const deviceArb = fc.record({
  profile: fc.constantFrom<Vpl011Profile>('sbsa', 'pl011'),
  writes: fc.array(fc.tuple(fc.constantFrom(0x24, 0x28, 0x2c, 0x30, 0x34, 0x38, 0x44), fc.nat()), { maxLength: 12 }),
  outBytes: fc.integer({ min: 0, max: 2100 }),
  inBytes: fc.integer({ min: 0, max: 1100 }),
  drained: fc.integer({ min: 0, max: 2048 }),
});
const ramArb = fc.uniqueArray(fc.integer({ min: 0, max: RAM_PAGES - 1 }), { maxLength: 8 }).chain((pages) => {
  const sorted = Uint32Array.from(pages.sort((a, b) => a - b));
  return fc.uint8Array({ minLength: sorted.length * XEN_PAGE_SIZE, maxLength: sorted.length * XEN_PAGE_SIZE }).map((data) => ({ pages: sorted, data }));
});

const savedArb: fc.Arbitrary<SavedDomain> = fc
  .record({ registers: registersArb, ctl: fc.integer({ min: 0, max: 3 }), cval: hex16, counter: hex16, gic: gicArb, device: deviceArb, ram: ramArb, abort: fc.option(fc.record({ addr: fc.nat(), write: fc.boolean() })) })
  .map((r) => {
    const { dev, magic } = deviceAfter(r.device.profile, r.device.writes, r.device.outBytes, r.device.inBytes, r.device.drained);
    return {
      header: { producer: 'vpl011 test', savedAt: '2026-11-30T00:00:00.000Z', name: 'guest' },
      config: { name: 'guest', kind: 'bare', memoryMiB: 16 },
      cpu: { registers: r.registers, timer: { ctl: BigInt(r.ctl), cval: BigInt(`0x${r.cval}`), counter: BigInt(`0x${r.counter}`) }, queuedAbort: r.abort ? { ...r.abort } : null },
      gic: { ...r.gic }, // fc.record's objects have no prototype; a decoded one has
      vuart: { profile: r.device.profile, device: dev.snapshot(), ring: ringIndicesOf(magic) },
      evtchn: { guestPort: 1, guestPending: r.ctl === 1, backendPending: r.ctl === 2 },
      magic,
      ram: { base: GUEST_RAM0_BASE, size: RAM_PAGES * XEN_PAGE_SIZE, pages: r.ram.pages, data: r.ram.data },
    };
  });

/** Decode must refuse `buf` with a SaveFormatError (never another exception, never a result). */
function refused(buf: Uint8Array, why?: RegExp): string {
  try {
    decodeSavedDomain(buf);
  } catch (e) {
    assert.ok(e instanceof SaveFormatError, `not a SaveFormatError: ${(e as Error).stack}`);
    assert.doesNotMatch(e.message, /\n/);
    if (why) assert.match(e.message, why);
    return e.message;
  }
  assert.fail('a bad file was accepted');
}

test('property: every section round-trips (registers, timer, GIC, vpl011 of both profiles with ring traffic, event channels, magic pages, sparse RAM)', () => {
  fc.assert(
    fc.property(savedArb, (d) => {
      const back = decodeSavedDomain(encodeSavedDomain(d));
      // Compared section by section, so a failure names the section instead of printing the whole domain.
      for (const k of Object.keys(d) as (keyof SavedDomain)[]) assert.ok(isDeepStrictEqual(back[k], d[k]), `section ${k} differs after the round trip`);
    }),
    { numRuns: 60, verbose: 0, includeErrorInReport: false },
  );
});

test('property: the device section restores to a device whose snapshot and registers are the saved ones', () => {
  fc.assert(
    fc.property(deviceArb, (a) => {
      const { dev, magic } = deviceAfter(a.profile, a.writes, a.outBytes, a.inBytes, a.drained);
      const saved: SavedDomain = {
        header: { producer: 'p', savedAt: 't', name: 'n' }, config: {},
        cpu: { registers: Object.fromEntries(CPU_REGISTER_NAMES.map((n) => [n, /^q\d+$/.test(n) ? '0'.repeat(32) : '0'.repeat(16)])), timer: { ctl: 0n, cval: 0n, counter: 0n }, queuedAbort: null },
        gic: new Gicv2().snapshot(), vuart: { profile: a.profile, device: dev.snapshot(), ring: ringIndicesOf(magic) },
        evtchn: { guestPort: 1, guestPending: false, backendPending: false }, magic,
        ram: { base: GUEST_RAM0_BASE, size: XEN_PAGE_SIZE, pages: new Uint32Array(), data: new Uint8Array() },
      };
      const back = decodeSavedDomain(encodeSavedDomain(saved));
      const page = new SharedArrayBuffer(MAGIC_BYTES);
      new Uint8Array(page).set(back.magic);
      const ring = new ConsoleRing(page, VUART_PFN_OFFSET * XEN_PAGE_SIZE);
      const fresh = new Vpl011({ ring, irq: { set() {} }, notify() {}, profile: a.profile });
      fresh.load(back.vuart.device);
      assert.deepEqual(fresh.snapshot(), dev.snapshot());
      assert.deepEqual(fresh.registers(), dev.registers());
      assert.deepEqual(fresh.pl011Registers(), dev.pl011Registers());
    }),
    { numRuns: 100 },
  );
});

test('property: a file cut short anywhere is refused with a reason', () => {
  const file = encodeSavedDomain(fc.sample(savedArb, { numRuns: 1, seed: 7 })[0]!);
  fc.assert(fc.property(fc.integer({ min: 0, max: file.length - 1 }), (n) => void refused(file.subarray(0, n))), { numRuns: 300 });
  assert.match(refused(file.subarray(0, file.length - 1)), /truncated|checksum/);
});

test('property: any flipped byte is refused (checksums cover every payload, the container checks every header field)', () => {
  const file = encodeSavedDomain(fc.sample(savedArb, { numRuns: 1, seed: 11 })[0]!);
  fc.assert(
    fc.property(fc.integer({ min: 0, max: file.length - 1 }), fc.integer({ min: 1, max: 255 }), (at, x) => {
      const bad = Buffer.from(file);
      bad[at]! ^= x;
      refused(bad);
    }),
    { numRuns: 400 },
  );
});

test('property: garbage and foreign files are refused, never a crash', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (b) => void refused(b)), { numRuns: 300 });
  refused(Buffer.from('\x7fELF\x02\x01\x01\x00 not a saved domain'), /bad magic/);
  refused(Buffer.alloc(0), /too short/);
});

test('a newer format version is refused naming both versions; an older unknown one too', () => {
  const file = encodeSavedDomain(fc.sample(savedArb, { numRuns: 1, seed: 3 })[0]!);
  const newer = Buffer.from(file);
  newer.writeUInt32LE(SAVE_FORMAT_VERSION + 1, 8);
  assert.equal(refused(newer), `saved by a newer vpl011 (format ${SAVE_FORMAT_VERSION + 1}; this one reads format ${SAVE_FORMAT_VERSION})`);
  const older = Buffer.from(file);
  older.writeUInt32LE(0, 8);
  refused(older, /unsupported format 0/);
});

/** The file's sections with one replaced (checksums recomputed: only the content checks can refuse it). */
function withSection(file: Buffer, name: string, data: Uint8Array): Buffer {
  const s = decodeSections(file, SECTIONS);
  return encodeSections([...s].map(([n, d]) => ({ name: n, data: n === name ? data : d })));
}
const jsonOf = (file: Buffer, name: string) => JSON.parse(Buffer.from(decodeSections(file, SECTIONS).get(name)!).toString());
const js = (v: unknown) => Buffer.from(JSON.stringify(v));

test('sections with right checksums but wrong contents are refused, each with its reason', () => {
  const d = fc.sample(savedArb, { numRuns: 1, seed: 5 })[0]!;
  const file = encodeSavedDomain(d);
  const cpu = jsonOf(file, 'cpu');
  const noReg = { ...cpu, registers: { ...cpu.registers } };
  delete noReg.registers.sctlr_el1;
  refused(withSection(file, 'cpu', js(noReg)), /cpu: register sctlr_el1 is missing/);
  refused(withSection(file, 'cpu', js({ ...cpu, registers: { ...cpu.registers, zz: '0' } })), /unknown register zz/);
  refused(withSection(file, 'cpu', js({ ...cpu, timer: { ...cpu.timer, ctl: '4' } })), /timer.ctl/);
  const gic = jsonOf(file, 'gic');
  refused(withSection(file, 'gic', js({ ...gic, pmr: 3 })), /gic: GIC pmr/);
  refused(withSection(file, 'gic', js({ ...gic, prio: gic.prio.slice(1) })), /gic: GIC prio is not 64/);
  refused(withSection(file, 'gic', js({ ...gic, activeStack: [5, 5] })), /active stack/);
  const vuart = jsonOf(file, 'vuart');
  refused(withSection(file, 'vuart', js({ ...vuart, ring: { ...vuart.ring, outProd: vuart.ring.outProd + 1 } })), /differs from the ring page/);
  refused(withSection(file, 'vuart', js({ ...vuart, device: { ...vuart.device, ris: 0x400 } })), /vuart: device: ris/);
  refused(withSection(file, 'vuart', js({ ...vuart, profile: vuart.profile === 'sbsa' ? 'pl011' : 'sbsa' })), /another profile/);
  refused(withSection(file, 'evtchn', js({ guestPort: 0, guestPending: false, backendPending: false })), /guestPort/);
  refused(withSection(file, 'magic', new Uint8Array(100)), /magic: 100 bytes/);
  refused(withSection(file, 'config', Buffer.from('{not json')), /config is not JSON/);
  refused(withSection(file, 'header', js({ producer: 'x'.repeat(500), savedAt: '', name: '' })), /producer/);
  // RAM: pages out of order, a page beyond the region, a deflate bomb (bounded by the page list), short data.
  const ramHead = (pages: number[], size = RAM_PAGES * XEN_PAGE_SIZE) => {
    const h = Buffer.alloc(24 + 4 * pages.length);
    h.writeBigUInt64LE(BigInt(GUEST_RAM0_BASE), 0);
    h.writeBigUInt64LE(BigInt(size), 8);
    h.writeUInt32LE(XEN_PAGE_SIZE, 16);
    h.writeUInt32LE(pages.length, 20);
    pages.forEach((p, i) => h.writeUInt32LE(p, 24 + 4 * i));
    return h;
  };
  const page = (n: number) => deflateRawSync(Buffer.alloc(n * XEN_PAGE_SIZE, 1));
  refused(withSection(file, 'ram', Buffer.concat([ramHead([3, 2]), page(2)])), /out of order/);
  refused(withSection(file, 'ram', Buffer.concat([ramHead([RAM_PAGES]), page(1)])), /outside RAM/);
  refused(withSection(file, 'ram', Buffer.concat([ramHead([1]), deflateRawSync(Buffer.alloc(64 * 1024 * 1024))])), /decompress/);
  refused(withSection(file, 'ram', Buffer.concat([ramHead([1, 2]), page(1)])), /decompress to 4096 bytes, not 8192/);
  refused(withSection(file, 'ram', Buffer.concat([ramHead([], 0)])), /not guest RAM/);
  // A section this version does not know, and one missing.
  const s = decodeSections(file, SECTIONS);
  refused(encodeSections([...[...s].map(([n, data]) => ({ name: n, data })), { name: 'extra', data: new Uint8Array() }]), /unknown section extra/);
  refused(encodeSections([...s].filter(([n]) => n !== 'gic').map(([n, data]) => ({ name: n, data }))), /section gic is missing/);
  // The checksum really is SHA-256 of the payload (documented in docs/SAVE.md).
  const hdr = s.get('header')!;
  assert.ok(file.includes(createHash('sha256').update(hdr).digest()));
});
