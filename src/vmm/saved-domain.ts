// A saved domain's contents and their sections in the container (save-format.ts, docs/SAVE.md). decodeSavedDomain
// checks every section completely (types, ranges, sizes, the device state through the device's own validation, the
// RAM's page list and its decompressed size, the ring indices against the ring page) and only then returns: a file
// that passes can be applied without an error from its contents; one that does not is refused in one line.
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { CPU_REGISTER_NAMES, cpuRegistersProblem, type CpuRegisters } from '../cpu/cpu-state.js';
import { Gicv2, type GicState } from '../xen/gicv2.js';
import { Vpl011, type Vpl011State } from '../device/vpl011.js';
import { ConsoleRing, XENCONS_IN_CONS, XENCONS_IN_PROD, XENCONS_OUT_CONS, XENCONS_OUT_PROD } from '../xen/ring.js';
import { GUEST_RAM0_BASE, GUEST_RAM0_SIZE, NR_MAGIC_PAGES, VUART_PFN_OFFSET, XEN_PAGE_SIZE } from '../xen/arch-arm.js';
import { SaveFormatError, decodeSections, encodeSections } from './save-format.js';
import { errorMessage } from '../util/errors.js';

export interface SavedHeader {
  /** The program that wrote the file, e.g. "vpl011 0.1.0". */
  producer: string;
  savedAt: string;
  /** The domain's name when it was saved. */
  name: string;
}

export interface SavedCpu {
  registers: CpuRegisters;
  timer: { ctl: bigint; cval: bigint; counter: bigint };
  /** A refused access whose data abort had not been taken yet. */
  queuedAbort: { addr: number; write: boolean } | null;
}

export interface RingIndices {
  inCons: number;
  inProd: number;
  outCons: number;
  outProd: number;
}

export interface SavedVuart {
  profile: 'sbsa' | 'pl011';
  device: Vpl011State;
  /** Both ends' indices as they were (also in the ring page; decoding checks that they agree). */
  ring: RingIndices;
}

export interface SavedEvtchn {
  /** The guest-side vuart port (not guest-visible: the restored domain gets whichever port its table gives). */
  guestPort: number;
  /** A notify to the guest side (backend -> vuart) not yet handled: re-sent after restore. */
  guestPending: boolean;
  /** A notify to the backend not yet handled: the restored backend services the ring once anyway. */
  backendPending: boolean;
}

export interface SavedRam {
  base: number;
  size: number;
  /** Indices (ascending) of the pages that are not all zero; every other page of [base, base + size) is zero. */
  pages: Uint32Array;
  /** Those pages' bytes, concatenated (pages.length * 4096). */
  data: Uint8Array;
}

export interface SavedDomain {
  header: SavedHeader;
  /** The guest config the domain was built from (checked by the toolstack, which knows its rules). */
  config: unknown;
  cpu: SavedCpu;
  gic: GicState;
  vuart: SavedVuart;
  evtchn: SavedEvtchn;
  /** The 4 magic pages (the vuart ring is page 3). */
  magic: Uint8Array;
  ram: SavedRam;
}

export const SECTIONS = ['header', 'config', 'cpu', 'gic', 'vuart', 'evtchn', 'magic', 'ram'] as const;
export const MAGIC_BYTES = NR_MAGIC_PAGES * XEN_PAGE_SIZE;
const MAX_JSON_SECTION = 1024 * 1024;

const hex = (v: bigint): string => BigInt.asUintN(64, v).toString(16);
const json = (v: unknown): Uint8Array => Buffer.from(JSON.stringify(v), 'utf8');

export function encodeSavedDomain(d: SavedDomain): Buffer {
  const ramHead = Buffer.alloc(24 + 4 * d.ram.pages.length);
  ramHead.writeBigUInt64LE(BigInt(d.ram.base), 0);
  ramHead.writeBigUInt64LE(BigInt(d.ram.size), 8);
  ramHead.writeUInt32LE(XEN_PAGE_SIZE, 16);
  ramHead.writeUInt32LE(d.ram.pages.length, 20);
  d.ram.pages.forEach((p, i) => ramHead.writeUInt32LE(p, 24 + 4 * i));
  // Level 1: most of a booted guest's pages are code and page cache; speed matters more than the last few percent.
  const packed = deflateRawSync(d.ram.data, { level: 1 });
  return encodeSections([
    { name: 'header', data: json(d.header) },
    { name: 'config', data: json(d.config) },
    {
      name: 'cpu',
      data: json({
        registers: d.cpu.registers,
        timer: { ctl: hex(d.cpu.timer.ctl), cval: hex(d.cpu.timer.cval), counter: hex(d.cpu.timer.counter) },
        queuedAbort: d.cpu.queuedAbort,
      }),
    },
    { name: 'gic', data: json(d.gic) },
    { name: 'vuart', data: json(d.vuart) },
    { name: 'evtchn', data: json(d.evtchn) },
    { name: 'magic', data: d.magic },
    { name: 'ram', data: Buffer.concat([ramHead, packed]) },
  ]);
}

function parseJson(name: string, b: Uint8Array): Record<string, unknown> {
  if (b.length > MAX_JSON_SECTION) throw new SaveFormatError(`corrupt: section ${name} is ${b.length} bytes`);
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(b).toString('utf8'));
  } catch {
    throw new SaveFormatError(`corrupt: section ${name} is not JSON`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new SaveFormatError(`corrupt: section ${name} is not an object`);
  return v as Record<string, unknown>;
}

const bad = (section: string, what: string): SaveFormatError => new SaveFormatError(`corrupt: ${section}: ${what}`);

function u64hex(section: string, name: string, v: unknown): bigint {
  if (typeof v !== 'string' || !/^[0-9a-f]{1,16}$/.test(v)) throw bad(section, `${name} is not a 64-bit hex value`);
  return BigInt(`0x${v}`);
}

function u32(section: string, name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) throw bad(section, `${name} is not a u32`);
  return v;
}

function decodeHeader(o: Record<string, unknown>): SavedHeader {
  const str = (k: string, max: number): string => {
    const v = o[k];
    if (typeof v !== 'string' || v.length > max) throw bad('header', `${k} is not a string of at most ${max} characters`);
    return v;
  };
  return { producer: str('producer', 100), savedAt: str('savedAt', 40), name: str('name', 64) };
}

function decodeCpu(o: Record<string, unknown>): SavedCpu {
  const problem = cpuRegistersProblem(o.registers);
  if (problem !== null) throw bad('cpu', problem);
  const t = o.timer as Record<string, unknown> | null;
  if (typeof t !== 'object' || t === null) throw bad('cpu', 'no timer');
  const timer = { ctl: u64hex('cpu', 'timer.ctl', t.ctl), cval: u64hex('cpu', 'timer.cval', t.cval), counter: u64hex('cpu', 'timer.counter', t.counter) };
  if ((timer.ctl & ~3n) !== 0n) throw bad('cpu', 'timer.ctl has bits other than ENABLE and IMASK');
  let queuedAbort: SavedCpu['queuedAbort'] = null;
  const a = o.queuedAbort as Record<string, unknown> | null | undefined;
  if (a !== null) {
    if (typeof a !== 'object' || typeof a.write !== 'boolean') throw bad('cpu', 'queuedAbort is malformed');
    queuedAbort = { addr: u32('cpu', 'queuedAbort.addr', a.addr), write: a.write };
  }
  const registers: CpuRegisters = {};
  for (const n of CPU_REGISTER_NAMES) registers[n] = (o.registers as CpuRegisters)[n]!;
  return { registers, timer, queuedAbort };
}

function ringOf(magic: Uint8Array): RingIndices {
  const v = new DataView(magic.buffer, magic.byteOffset + VUART_PFN_OFFSET * XEN_PAGE_SIZE, XEN_PAGE_SIZE);
  return {
    inCons: v.getUint32(XENCONS_IN_CONS, true),
    inProd: v.getUint32(XENCONS_IN_PROD, true),
    outCons: v.getUint32(XENCONS_OUT_CONS, true),
    outProd: v.getUint32(XENCONS_OUT_PROD, true),
  };
}

/** The ring indices of the vuart page inside a magic-pages buffer. */
export function ringIndicesOf(magic: Uint8Array): RingIndices {
  return ringOf(magic);
}

function decodeVuart(o: Record<string, unknown>, magic: Uint8Array): SavedVuart {
  if (o.profile !== 'sbsa' && o.profile !== 'pl011') throw bad('vuart', 'profile is not sbsa or pl011');
  const dev = o.device as Record<string, unknown> | null;
  if (typeof dev !== 'object' || dev === null || dev.profile !== o.profile) throw bad('vuart', 'device state missing or of another profile');
  // The device's own validation, on a scratch copy of the ring page: the same code that will load it.
  const scratch = new ArrayBuffer(XEN_PAGE_SIZE);
  new Uint8Array(scratch).set(magic.subarray(VUART_PFN_OFFSET * XEN_PAGE_SIZE, (VUART_PFN_OFFSET + 1) * XEN_PAGE_SIZE));
  try {
    Vpl011.restore(dev, { ring: new ConsoleRing(scratch), irq: { set() {} }, notify() {} });
  } catch (e) {
    throw bad('vuart', errorMessage(e).replace(/^vpl011 restore: /, 'device: '));
  }
  const r = o.ring as Record<string, unknown> | null;
  if (typeof r !== 'object' || r === null) throw bad('vuart', 'no ring indices');
  const ring: RingIndices = {
    inCons: u32('vuart', 'ring.inCons', r.inCons),
    inProd: u32('vuart', 'ring.inProd', r.inProd),
    outCons: u32('vuart', 'ring.outCons', r.outCons),
    outProd: u32('vuart', 'ring.outProd', r.outProd),
  };
  const page = ringOf(magic);
  for (const k of ['inCons', 'inProd', 'outCons', 'outProd'] as const) {
    if (page[k] !== ring[k]) throw bad('vuart', `ring ${k} ${ring[k]} differs from the ring page's ${page[k]}`);
  }
  if (((ring.inProd - ring.inCons) >>> 0) > 1024 || ((ring.outProd - ring.outCons) >>> 0) > 2048) throw bad('vuart', 'ring indices are further apart than the ring');
  return { profile: o.profile, device: dev as unknown as Vpl011State, ring };
}

function decodeEvtchn(o: Record<string, unknown>): SavedEvtchn {
  const guestPort = u32('evtchn', 'guestPort', o.guestPort);
  if (guestPort < 1 || guestPort > 0xffff) throw bad('evtchn', 'guestPort out of range');
  if (typeof o.guestPending !== 'boolean' || typeof o.backendPending !== 'boolean') throw bad('evtchn', 'pending flags are not booleans');
  return { guestPort, guestPending: o.guestPending, backendPending: o.backendPending };
}

function decodeRam(b: Uint8Array): SavedRam {
  const v = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (v.length < 24) throw bad('ram', 'header truncated');
  const base = v.readBigUInt64LE(0);
  const size = v.readBigUInt64LE(8);
  const pageSize = v.readUInt32LE(16);
  const count = v.readUInt32LE(20);
  if (pageSize !== XEN_PAGE_SIZE) throw bad('ram', `page size ${pageSize}`);
  if (base !== BigInt(GUEST_RAM0_BASE) || size === 0n || size > BigInt(GUEST_RAM0_SIZE) || size % BigInt(XEN_PAGE_SIZE) !== 0n) {
    throw bad('ram', `region 0x${base.toString(16)}+0x${size.toString(16)} is not guest RAM`);
  }
  const nPages = Number(size) / XEN_PAGE_SIZE;
  if (count > nPages || v.length < 24 + 4 * count) throw bad('ram', `page list of ${count} entries does not fit`);
  const pages = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    const p = v.readUInt32LE(24 + 4 * i);
    if (p >= nPages || (i > 0 && p <= pages[i - 1]!)) throw bad('ram', `page list entry ${i} is out of order or outside RAM`);
    pages[i] = p;
  }
  const want = count * XEN_PAGE_SIZE;
  let data: Buffer;
  try {
    // Bounded: a deflate bomb stops at the size the page list promises.
    data = inflateRawSync(v.subarray(24 + 4 * count), { maxOutputLength: Math.max(want, 1) });
  } catch (e) {
    throw bad('ram', `pages do not decompress (${errorMessage(e).split('\n')[0]})`);
  }
  if (data.length !== want) throw bad('ram', `pages decompress to ${data.length} bytes, not ${want}`);
  return { base: Number(base), size: Number(size), pages, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/** Parse and check a whole saved domain; throws SaveFormatError (one line) for anything it cannot use. */
export function decodeSavedDomain(buf: Uint8Array): SavedDomain {
  const s = decodeSections(buf, SECTIONS);
  const header = decodeHeader(parseJson('header', s.get('header')!));
  const config = parseJson('config', s.get('config')!);
  const cpu = decodeCpu(parseJson('cpu', s.get('cpu')!));
  const gic = parseJson('gic', s.get('gic')!);
  const gp = Gicv2.stateProblem(gic);
  if (gp !== null) throw bad('gic', gp);
  const magic = s.get('magic')!;
  if (magic.length !== MAGIC_BYTES) throw bad('magic', `${magic.length} bytes, not ${MAGIC_BYTES}`);
  const magicCopy = new Uint8Array(MAGIC_BYTES);
  magicCopy.set(magic);
  const vuart = decodeVuart(parseJson('vuart', s.get('vuart')!), magicCopy);
  const evtchn = decodeEvtchn(parseJson('evtchn', s.get('evtchn')!));
  const ram = decodeRam(s.get('ram')!);
  return { header, config, cpu, gic: gic as unknown as GicState, vuart, evtchn, magic: magicCopy, ram };
}
