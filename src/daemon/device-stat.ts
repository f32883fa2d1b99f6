// `vpl011 stat NAME [--why-irq] [--json]` and the web page's per-domain device view: the vpl011's registers decoded,
// the ring indices both ways, the SPI in the GIC, the device's counters and the trace's state, read from the domain's
// insight region (src/vmm/insight.ts: a host-only shm object the domain host creates O_EXCL 0600 and the vCPU thread
// publishes into; mapped here read-only after the fstat checks of src/host/shm.ts) and its ring page (the magic
// pages, read-only too: the indices as both sides see them now). No request reaches the domain: a stat never
// disturbs the guest, works while the daemon is down, and shows the last state of a domain whose vCPU has stopped.
//
// The JSON shape (`stat --json`) is documented in docs/DAEMON.md; its field names are stable.
import { openSharedMapping, type SharedMapping } from '../host/shm.js';
import { CR, FR, INT, LCRH, IFLS_RX_SHIFT, iflsTriggerBytes } from '../device/spec.js';
import { whyIrq } from '../device/why-irq.js';
import { AccessTraceReader } from '../device/access-trace.js';
import { INSIGHT_BYTES, INSIGHT_TRACE_OFFSET, readInsight, type DeviceInsight } from '../vmm/insight.js';
import { NR_MAGIC_PAGES, VUART_PFN_OFFSET, XEN_PAGE_SIZE } from '../xen/arch-arm.js';
import { XENCONS_IN_CONS } from '../xen/ring.js';
import { listRecords, type DomainRecord } from './records.js';
import { errorMessage, invalid, valid, Vpl011Error, type Checked } from '../util/errors.js';
import { runPaths } from './paths.js';

/** The insight object of a domain instance: named after its magic pages' (whose name has 128 unguessable bits). */
export function insightShmName(magicShm: string): string {
  return `${magicShm}-insight`;
}

export interface DeviceStat {
  name: string;
  domid: number;
  state: DomainRecord['state'];
  profile: DeviceInsight['profile'];
  snapshot: { publishedAt: string; ageMs: number; vcpuRunning: boolean; vcpuIdle: boolean };
  registers: Record<string, number>;
  decoded: Record<string, string[]>;
  ring: {
    /** prod/cons/level: the ring page now; deviceCons/deviceSeenProd: the device's own and last-loaded indices. */
    in: { prod: number; cons: number; level: number; size: number; deviceCons: number; deviceSeenProd: number };
    out: { prod: number; cons: number; level: number; size: number; deviceProd: number; deviceSeenCons: number };
  };
  irq: {
    line: boolean;
    holding: string[];
    rxTriggerBytes: number;
    txTriggerFreeBytes: number;
    receiverOn: boolean;
    spi: DeviceInsight['spi'];
  };
  whyIrq: string[];
  counters: DeviceInsight['counters'];
  vcpu: DeviceInsight['vcpu'];
  trace: { enabled: boolean; recorded: number; capacity: number };
}

/** Nothing to read: no such region (ENOENT), or one that cannot be read (EIO). */
export class StatError extends Vpl011Error<'ENOENT' | 'EIO'> {}

function bitNames(v: number, names: readonly [number, string][]): string[] {
  return names.filter(([b]) => (v & b) !== 0).map(([, n]) => n);
}
const FR_BITS: [number, string][] = [[FR.CTS, 'CTS'], [FR.DSR, 'DSR'], [FR.DCD, 'DCD'], [FR.BUSY, 'BUSY'], [FR.RXFE, 'RXFE'], [FR.TXFF, 'TXFF'], [FR.RXFF, 'RXFF'], [FR.TXFE, 'TXFE'], [FR.RI, 'RI']];
const INT_BITS: [number, string][] = [
  [INT.RIMI, 'RIM'], [INT.CTSMI, 'CTSM'], [INT.DCDMI, 'DCDM'], [INT.DSRMI, 'DSRM'], [INT.RX, 'RX'], [INT.TX, 'TX'], [INT.RT, 'RT'],
  [INT.FE, 'FE'], [INT.PE, 'PE'], [INT.BE, 'BE'], [INT.OE, 'OE'],
];
const CR_BITS: [number, string][] = [
  [CR.UARTEN, 'UARTEN'], [CR.SIREN, 'SIREN'], [CR.SIRLP, 'SIRLP'], [CR.LBE, 'LBE'], [CR.TXE, 'TXE'], [CR.RXE, 'RXE'], [CR.DTR, 'DTR'],
  [CR.RTS, 'RTS'], [CR.OUT1, 'OUT1'], [CR.OUT2, 'OUT2'], [CR.RTSEN, 'RTSEN'], [CR.CTSEN, 'CTSEN'],
];
const LCRH_BITS: [number, string][] = [[LCRH.BRK, 'BRK'], [LCRH.PEN, 'PEN'], [LCRH.EPS, 'EPS'], [LCRH.STP2, 'STP2'], [LCRH.FEN, 'FEN'], [LCRH.SPS, 'SPS']];
const FIFO_FRACTION = ['1/8', '1/4', '1/2', '3/4', '7/8', '1/2 (reserved)', '1/2 (reserved)', '1/2 (reserved)'];

/** Build the stat from a snapshot and the ring page's indices (pure: the tests feed it directly). */
export function buildStat(rec: DomainRecord, s: DeviceInsight, ring: { inCons: number; inProd: number; outCons: number; outProd: number }, trace: DeviceStat['trace'], now = Date.now()): DeviceStat {
  const registers: Record<string, number> = { FR: s.fr, RIS: s.irq.ris, MIS: s.irq.mis, IMSC: s.irq.imsc };
  const decoded: Record<string, string[]> = {
    FR: bitNames(s.fr, FR_BITS),
    RIS: bitNames(s.irq.ris, INT_BITS),
    MIS: bitNames(s.irq.mis, INT_BITS),
    IMSC: bitNames(s.irq.imsc, INT_BITS),
  };
  if (s.pl011) {
    const p = s.pl011;
    Object.assign(registers, { CR: p.cr, LCR_H: p.lcrh, IBRD: p.ibrd, FBRD: p.fbrd, IFLS: p.ifls, ILPR: p.ilpr, divisor: p.divisor });
    decoded.CR = bitNames(p.cr, CR_BITS);
    decoded.LCR_H = [...bitNames(p.lcrh, LCRH_BITS), `WLEN=${5 + ((p.lcrh >> LCRH.WLEN_SHIFT) & 3)}`];
    decoded.IFLS = [`TX ${FIFO_FRACTION[p.ifls & 7]} (${iflsTriggerBytes(p.ifls)} bytes)`, `RX ${FIFO_FRACTION[(p.ifls >> IFLS_RX_SHIFT) & 7]} (${iflsTriggerBytes(p.ifls >> IFLS_RX_SHIFT)} bytes)`];
    decoded.IBRD = [`divisor ${p.ibrd}+${p.fbrd}/64, latched by the last LCR_H write as ${p.divisor >>> 6}+${p.divisor & 63}/64`];
  }
  const level = (prod: number, cons: number): number => (prod - cons) >>> 0;
  return {
    name: rec.name,
    domid: rec.domid,
    state: rec.state,
    profile: s.profile,
    snapshot: { publishedAt: new Date(s.publishedAt).toISOString(), ageMs: Math.max(0, Math.round(now - s.publishedAt)), vcpuRunning: s.running, vcpuIdle: s.idle },
    registers,
    decoded,
    ring: {
      in: { prod: ring.inProd, cons: ring.inCons, level: level(ring.inProd, ring.inCons), size: s.irq.inSize, deviceCons: s.frontend.inCons, deviceSeenProd: s.frontend.inProdSeen },
      out: { prod: ring.outProd, cons: ring.outCons, level: level(ring.outProd, ring.outCons), size: s.irq.outSize, deviceProd: s.frontend.outProd, deviceSeenCons: s.frontend.outConsSeen },
    },
    irq: {
      line: s.irq.line,
      holding: bitNames(s.irq.holding, INT_BITS),
      rxTriggerBytes: s.irq.rxiMinIn,
      txTriggerFreeBytes: s.irq.outSize - s.irq.txiMaxOut,
      receiverOn: s.irq.rxOn,
      spi: s.spi,
    },
    whyIrq: whyIrq(s.irq, s.spi),
    counters: s.counters,
    vcpu: s.vcpu,
    trace,
  };
}

/** The ring page's four indices (the vuart page inside the magic pages). */
export function ringIndices(magic: ArrayBufferLike): { inCons: number; inProd: number; outCons: number; outProd: number } {
  const w = new Int32Array(magic, VUART_PFN_OFFSET * XEN_PAGE_SIZE + XENCONS_IN_CONS, 4);
  return { inCons: Atomics.load(w, 0) >>> 0, inProd: Atomics.load(w, 1) >>> 0, outCons: Atomics.load(w, 2) >>> 0, outProd: Atomics.load(w, 3) >>> 0 };
}

/** Map a domain's insight region (read-only unless `writable`, for the trace switch) and its magic pages. */
export function openInsight(rec: DomainRecord, writable = false): { insight: SharedMapping; magic: SharedMapping; close(): void } {
  let insight: SharedMapping;
  try {
    insight = openSharedMapping(insightShmName(rec.magicShm), { size: INSIGHT_BYTES, readOnly: !writable });
  } catch (e) {
    throw new StatError('ENOENT', `${rec.name}: no device state to read (${errorMessage(e)}); a domain started by an older vpl011 has none`);
  }
  let magic: SharedMapping;
  try {
    magic = openSharedMapping(rec.magicShm, { size: NR_MAGIC_PAGES * XEN_PAGE_SIZE, readOnly: true });
  } catch (e) {
    insight.close();
    throw new StatError('ENOENT', `${rec.name}: its ring page is gone (${errorMessage(e)})`);
  }
  return {
    insight,
    magic,
    close() {
      insight.close();
      magic.close();
    },
  };
}

/** Read one domain's stat. Throws StatError (one line) when there is nothing to read. */
export function readDeviceStat(rec: DomainRecord): DeviceStat {
  const m = openInsight(rec);
  try {
    let snap: DeviceInsight | undefined;
    let trace: AccessTraceReader;
    try {
      snap = readInsight(m.insight.buffer);
      trace = new AccessTraceReader(m.insight.buffer, INSIGHT_TRACE_OFFSET, INSIGHT_BYTES - INSIGHT_TRACE_OFFSET);
    } catch (e) {
      throw new StatError('EIO', `${rec.name}: ${errorMessage(e)}`);
    }
    if (!snap) throw new StatError('ENOENT', `${rec.name}: the vCPU has not published its state yet (starting?)`);
    return buildStat(rec, snap, ringIndices(m.magic.buffer), { enabled: trace.enabled, recorded: trace.head, capacity: trace.capacity });
  } finally {
    m.close();
  }
}

const hx = (v: number, d = 3): string => '0x' + (v >>> 0).toString(16).padStart(d, '0');
const hx8 = (v: number): string => hx(v, 8);

/** The human form of `vpl011 stat`. */
export function formatStat(s: DeviceStat): string[] {
  const out: string[] = [];
  const age = !s.snapshot.vcpuRunning
    ? `vCPU stopped; last state at ${s.snapshot.publishedAt}`
    : s.snapshot.vcpuIdle
      ? `published as the vCPU went idle (WFI) ${s.snapshot.ageMs} ms ago`
      : `snapshot ${s.snapshot.ageMs} ms old`;
  out.push(`d${s.domid} ${s.name}: ${s.profile} vpl011, domain ${s.state}, ${age}`);
  out.push('registers');
  for (const [k, v] of Object.entries(s.registers)) {
    if (k === 'divisor') continue;
    const d = s.decoded[k];
    out.push(`  ${k.padEnd(6)} ${hx(v)}  ${d && d.length > 0 ? d.join(' ') : '-'}`);
  }
  const r = s.ring;
  out.push('ring');
  out.push(`  IN   prod ${hx8(r.in.prod)} cons ${hx8(r.in.cons)}  ${r.in.level} of ${r.in.size} bytes for the guest (in the snapshot: cons ${hx8(r.in.deviceCons)}, prod seen ${hx8(r.in.deviceSeenProd)})`);
  out.push(`  OUT  prod ${hx8(r.out.prod)} cons ${hx8(r.out.cons)}  ${r.out.level} of ${r.out.size} bytes for the backend (in the snapshot: prod ${hx8(r.out.deviceProd)}, cons seen ${hx8(r.out.deviceSeenCons)})`);
  const sp = s.irq.spi;
  out.push('interrupt');
  const bytes = (n: number): string => `${n} byte${n === 1 ? '' : 's'}`;
  out.push(`  line ${s.irq.line ? 'high' : 'low'}; conditions holding: ${s.irq.holding.join(' ') || 'none'}; RX trigger ${bytes(s.irq.rxTriggerBytes)} in IN, TX trigger ${bytes(s.irq.txTriggerFreeBytes)} free in OUT${s.irq.receiverOn ? '' : '; receiver off'}`);
  out.push(`  SPI ${sp.intid}: line ${sp.line ? 'high' : 'low'}, ${sp.enabled ? 'enabled' : 'disabled'}, ${sp.pending ? 'pending' : 'not pending'}, ${sp.active ? 'active' : 'not active'}, priority ${hx(sp.priority, 2)}${sp.signalled ? ', signalled to the vCPU' : ''}`);
  out.push('counters');
  for (const [k, v] of Object.entries(s.counters)) out.push(`  ${k.padEnd(18)} ${v}`);
  out.push(`vcpu: ${s.vcpu.mmio} MMIO accesses (${s.vcpu.nativeMmio} in the native path), ${s.vcpu.irqs} IRQs raised, ${s.vcpu.frStalls} FR waits, ${s.vcpu.wfiSleeps} WFI sleeps`);
  out.push(`trace: ${s.trace.enabled ? 'on' : 'off'}, ${s.trace.recorded} records written (the last ${s.trace.capacity} are kept)`);
  return out;
}

/** A domain's record by name or id in a run dir. */
function findRecord(runDir: string, ref: string): DomainRecord | undefined {
  const recs = listRecords(runPaths(runDir).domainsDir);
  return recs.find((r) => r.name === ref) ?? (/^[0-9]+$/.test(ref) ? recs.find((r) => r.domid === Number(ref)) : undefined);
}

/** The stat of a domain by name or id, or why there is none (one line): the web page's `/api/stat`. */
export function deviceStatByName(runDir: string, ref: string): Checked<DeviceStat> {
  const rec = findRecord(runDir, ref);
  if (!rec) return invalid(`no domain ${ref}`);
  try {
    return valid(readDeviceStat(rec));
  } catch (e) {
    if (e instanceof StatError) return invalid(e.message);
    throw e;
  }
}

/** What `list --json` adds per domain as `device`. */
export interface DeviceSummary {
  counters: DeviceInsight['counters'];
  line: boolean;
  trace: boolean;
}

/** Every domain's device summary by name (domains without an insight region are left out). */
export function deviceSummaries(runDir: string): Map<string, DeviceSummary> {
  const out = new Map<string, DeviceSummary>();
  for (const rec of listRecords(runPaths(runDir).domainsDir)) {
    try {
      const s = readDeviceStat(rec);
      out.set(rec.name, { counters: s.counters, line: s.irq.line, trace: s.trace.enabled });
    } catch (e) {
      if (!(e instanceof StatError)) throw e;
    }
  }
  return out;
}
