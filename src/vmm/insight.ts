// A domain's insight region (`vpl011 stat`, `vpl011 trace`): host memory the vCPU thread publishes the vpl011's state
// into and records its access trace in, for readers in other processes (the daemon's web page, the CLI). It is a
// host-only shm object the domain host creates (O_CREAT|O_EXCL, 0600) and readers adopt only after fstat checks
// (src/host/shm.ts); never guest RAM, so nothing in it can be forged by the guest.
//
// Layout: [0, 4096) the state snapshot; from INSIGHT_TRACE_OFFSET the access trace (src/device/access-trace.ts).
// Snapshot: int32 [0] magic [1] layout [2] seq (a seqlock: odd while the vCPU thread writes) [3] reserved;
// f64 slots from byte 64 in the order of SLOTS below. The vCPU thread is the only writer, so a snapshot is the state
// between two of its steps: consistent by construction; readers retry until they copy it between two equal even seqs.
//
// When: Machine publishes at safe points and on the 1024-access stop check at most every PUBLISH_PERIOD_MS, and
// always before the vCPU sleeps (WFI, a parked FR poll) and when it stops; so a busy guest's snapshot is at most
// that old and an idle guest's is exact. The snapshot says when it was taken (publishedAt).
import type { Pl011Registers, Vpl011Counters, Vpl011IrqView, Vpl011Profile } from '../device/vpl011.js';
import type { SpiView } from '../device/why-irq.js';
import { TRACE_DEFAULT_CAPACITY, traceRegionBytes } from '../device/access-trace.js';

export const INSIGHT_MAGIC = 0x5349_4c56; // "VLIS"
export const INSIGHT_LAYOUT = 2;
export const INSIGHT_TRACE_OFFSET = 4096;
export const INSIGHT_BYTES = INSIGHT_TRACE_OFFSET + traceRegionBytes(TRACE_DEFAULT_CAPACITY);
/** A busy guest's snapshot is at most this old (ms of host time). */
export const PUBLISH_PERIOD_MS = 50;

const W_MAGIC = 0;
const W_LAYOUT = 1;
const W_SEQ = 2;
const SLOT_BASE = 8; // f64 index (byte 64)

/** What one snapshot holds. Field names are the `stat --json` names (docs/DAEMON.md). */
export interface DeviceInsight {
  /** Wall-clock ms (Date.now()) when the vCPU thread published it. */
  publishedAt: number;
  /** false once the vCPU has stopped (the last snapshot stays). */
  running: boolean;
  /** Published as the vCPU went to sleep (WFI): nothing changes until it wakes, so it is exact however old. */
  idle: boolean;
  profile: Vpl011Profile;
  fr: number;
  irq: Vpl011IrqView;
  /** pl011 profile only. */
  pl011?: Pl011Registers;
  counters: Vpl011Counters;
  /** The frontend's ring indices (its own) and what it last loaded of the backend's. */
  frontend: { inCons: number; inProdSeen: number; outProd: number; outConsSeen: number };
  spi: SpiView;
  vcpu: { mmio: number; nativeMmio: number; irqs: number; frStalls: number; wfiSleeps: number };
}

const COUNTERS: (keyof Vpl011Counters)[] = [
  'bytesOut', 'bytesIn', 'txDropped', 'emptyDrReads', 'corruptRingEvents', 'refusedAccesses', 'unhandledAccesses',
  'notifies', 'backendEvents', 'txWhileDisabled', 'rxWhileDisabled',
];
const PL011: (keyof Pl011Registers)[] = ['ilpr', 'ibrd', 'fbrd', 'lcrh', 'cr', 'ifls', 'divisor'];
const SPI_NUM: ('intid' | 'priority' | 'pmr' | 'runningPriority')[] = ['intid', 'priority', 'pmr', 'runningPriority'];
const SPI_BOOL: ('line' | 'enabled' | 'pending' | 'active' | 'distributorOn' | 'cpuInterfaceOn' | 'signalled')[] = [
  'line', 'enabled', 'pending', 'active', 'distributorOn', 'cpuInterfaceOn', 'signalled',
];
const IRQ_NUM: ('ris' | 'imsc' | 'mis' | 'holding' | 'inLevel' | 'outLevel' | 'txiMaxOut' | 'rxiMinIn' | 'inSize' | 'outSize')[] = [
  'ris', 'imsc', 'mis', 'holding', 'inLevel', 'outLevel', 'txiMaxOut', 'rxiMinIn', 'inSize', 'outSize',
];
const FRONTEND = ['inCons', 'inProdSeen', 'outProd', 'outConsSeen'] as const;
const VCPU = ['mmio', 'nativeMmio', 'irqs', 'frStalls', 'wfiSleeps'] as const;

/** The flat slot order (the layout): changing it changes INSIGHT_LAYOUT. */
function flatten(s: DeviceInsight): number[] {
  const b = (v: boolean): number => (v ? 1 : 0);
  return [
    s.publishedAt, b(s.running), b(s.idle), s.profile === 'pl011' ? 1 : 0, s.fr,
    ...IRQ_NUM.map((k) => s.irq[k]), b(s.irq.line), b(s.irq.rxOn), b(s.irq.txLatchesOnDrWriteOnly), b(s.irq.rtWaiting), b(s.irq.loopback),
    ...PL011.map((k) => s.pl011?.[k] ?? 0),
    ...COUNTERS.map((k) => s.counters[k]),
    ...FRONTEND.map((k) => s.frontend[k]),
    ...SPI_NUM.map((k) => s.spi[k]), ...SPI_BOOL.map((k) => b(s.spi[k])),
    ...VCPU.map((k) => s.vcpu[k]),
  ];
}

const SLOTS = flatten({
  publishedAt: 0, running: false, idle: false, profile: 'sbsa', fr: 0,
  irq: { profile: 'sbsa', ris: 0, imsc: 0, mis: 0, line: false, holding: 0, inLevel: 0, outLevel: 0, rxOn: false, txiMaxOut: 0, rxiMinIn: 0, inSize: 0, outSize: 0, txLatchesOnDrWriteOnly: false, rtWaiting: false, loopback: false },
  counters: Object.fromEntries(COUNTERS.map((k) => [k, 0])) as unknown as Vpl011Counters,
  frontend: { inCons: 0, inProdSeen: 0, outProd: 0, outConsSeen: 0 },
  spi: { intid: 0, line: false, enabled: false, pending: false, active: false, priority: 0, distributorOn: false, cpuInterfaceOn: false, pmr: 0, runningPriority: 0, signalled: false },
  vcpu: { mmio: 0, nativeMmio: 0, irqs: 0, frStalls: 0, wfiSleeps: 0 },
}).length;

function unflatten(v: Float64Array | number[]): DeviceInsight {
  let i = 0;
  const next = (): number => v[i++]!;
  const bool = (): boolean => next() !== 0;
  const publishedAt = next();
  const running = bool();
  const idle = bool();
  const profile: Vpl011Profile = next() === 1 ? 'pl011' : 'sbsa';
  const fr = next();
  const irqNum = Object.fromEntries(IRQ_NUM.map((k) => [k, next()])) as Record<(typeof IRQ_NUM)[number], number>;
  const irq: Vpl011IrqView = { profile, ...irqNum, line: bool(), rxOn: bool(), txLatchesOnDrWriteOnly: bool(), rtWaiting: bool(), loopback: bool() };
  const pl = Object.fromEntries(PL011.map((k) => [k, next()])) as unknown as Pl011Registers;
  const counters = Object.fromEntries(COUNTERS.map((k) => [k, next()])) as unknown as Vpl011Counters;
  const frontend = Object.fromEntries(FRONTEND.map((k) => [k, next()])) as DeviceInsight['frontend'];
  const spiNum = Object.fromEntries(SPI_NUM.map((k) => [k, next()])) as Record<(typeof SPI_NUM)[number], number>;
  const spiBool = Object.fromEntries(SPI_BOOL.map((k) => [k, bool()])) as Record<(typeof SPI_BOOL)[number], boolean>;
  const vcpu = Object.fromEntries(VCPU.map((k) => [k, next()])) as DeviceInsight['vcpu'];
  return {
    publishedAt, running, idle, profile, fr, irq,
    ...(profile === 'pl011' ? { pl011: pl } : {}),
    counters, frontend, spi: { ...spiNum, ...spiBool }, vcpu,
  };
}

/** Prepare a fresh (zeroed) region: the snapshot header. The trace region is initialised by its writer's owner. */
export function initInsightRegion(buffer: ArrayBufferLike): void {
  const w = new Int32Array(buffer, 0, 16);
  w[W_LAYOUT] = INSIGHT_LAYOUT;
  Atomics.store(w, W_MAGIC, INSIGHT_MAGIC);
}

/** The vCPU thread's side. */
export class InsightPublisher {
  private readonly w: Int32Array;
  private readonly f: Float64Array;

  constructor(buffer: ArrayBufferLike) {
    this.w = new Int32Array(buffer, 0, 16);
    if (this.w[W_MAGIC] !== INSIGHT_MAGIC || this.w[W_LAYOUT] !== INSIGHT_LAYOUT) throw new Error('insight: region not initialised');
    this.f = new Float64Array(buffer, SLOT_BASE * 8, SLOTS);
  }

  publish(s: DeviceInsight): void {
    const v = flatten(s);
    Atomics.add(this.w, W_SEQ, 1); // odd: being written
    for (let i = 0; i < v.length; i++) this.f[i] = v[i]!;
    Atomics.add(this.w, W_SEQ, 1);
  }
}

/** A reader in another process: a consistent copy, or undefined if none was ever published. */
export function readInsight(buffer: ArrayBufferLike): DeviceInsight | undefined {
  const w = new Int32Array(buffer, 0, 16);
  if (Atomics.load(w, W_MAGIC) !== INSIGHT_MAGIC || w[W_LAYOUT] !== INSIGHT_LAYOUT) throw new Error('insight: not an insight region (an older domain host?)');
  const f = new Float64Array(buffer, SLOT_BASE * 8, SLOTS);
  const copy = new Float64Array(SLOTS);
  // The writer holds the odd seq for ~1 us, at most every PUBLISH_PERIOD_MS or per WFI; a reader that keeps losing
  // (preempted mid-copy on a loaded machine) retries for a bounded time rather than spin forever.
  const deadline = Date.now() + 200;
  for (let attempt = 0; ; attempt++) {
    if ((attempt & 1023) === 1023 && Date.now() > deadline) break;
    const a = Atomics.load(w, W_SEQ);
    if ((a & 1) !== 0) continue;
    copy.set(f);
    if (Atomics.load(w, W_SEQ) !== a) continue;
    if (a === 0) return undefined;
    return unflatten(copy);
  }
  throw new Error('insight: no consistent snapshot (the vCPU thread kept publishing)');
}
