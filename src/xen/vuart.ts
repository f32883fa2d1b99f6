// Domain vuart init / deinit: Xen's domain_vpl011_init / domain_vpl011_deinit (xen/arch/arm/vpl011.c), reached by
// XEN_DOMCTL_vuart_op (cmd INIT, type VPL011). init maps the ring gfn, allocates an unbound event channel for the
// console backend domain, reserves SPI 32, builds the device and registers its MMIO window; it returns the port.
// Every failure point undoes exactly what was done before it (08bbc1c02d), and never frees an SPI this call did
// not reserve (upstream's unwinding deinit frees the virq even when the reservation failed because another device
// holds it). deinit is idempotent.

import { Vpl011, type Vpl011Profile } from '../device/vpl011.js';
import type { LogSink } from '../util/ratelimit.js';
import { GUEST_PL011_BASE, GUEST_PL011_SIZE, GUEST_VPL011_SPI } from './arch-arm.js';
import type { Domain, VuartInstance } from './domain.js';
import type { MmioRegion } from './mmio.js';
import type { ConsoleRing } from './ring.js';
import type { ConsolePort } from '../device/ports.js';
import type { XenConsoleFrontend } from './xen-console.js';
import { spiLine } from './vgic.js';
import { Vpl011Error, errnoOf, errorMessage } from '../util/errors.js';
import { LineEventQueue } from './line-events.js';

export class VuartError extends Vpl011Error<'EINVAL' | 'EEXIST' | 'EBUSY' | 'ENOENT' | 'ENOSPC'> {
  constructor(code: VuartError['code'], message: string, cause?: unknown) {
    super(code, message, { cause });
  }
}

/**
 * XEN_DOMCTL_vuart_op INIT arguments: the console backend's domain and the ring page's gfn; `profile` is ours
 * (not in Xen's domctl): 'sbsa' (default, Xen's SBSA UART) or 'pl011' (the full PL011, docs/DEVICE.md).
 */
export interface VuartInitInfo {
  consoleDomid: number;
  gfn: number;
  profile?: Vpl011Profile;
  /**
   * Where the device sits: its MMIO base and its SPI (an INTID). Xen's are fixed (GUEST_PL011_BASE, SPI 32); ours
   * default to them and differ only for the toolstack's qemu-virt layout (src/toolstack/guest-map.ts).
   */
  base?: number;
  spi?: number;
  /**
   * The backend in Xen (upstream: domain_vpl011_init(d, NULL), dom0less): the device's bytes go to these buffers
   * (src/xen/xen-console.ts), not to a ring page; `gfn` is not mapped. The event channel to `consoleDomid` is still
   * allocated, as the host's wakeup transport between the vCPU and the console mux; the guest never learns it.
   */
  xen?: XenConsoleFrontend;
}

export type { VuartInstance };

export function vuartOf(d: Domain): VuartInstance | undefined {
  return d.vpl011;
}

function errCode(e: unknown): VuartError['code'] {
  const c = errnoOf(e);
  return c === 'ENOENT' || c === 'ENOSPC' || c === 'EBUSY' || c === 'EEXIST' ? c : 'EINVAL';
}

/** domain_vpl011_init for a backend in a domain. Returns the event-channel port. Throws VuartError. */
export function domainVpl011Init(d: Domain, info: VuartInitInfo, opts: { log?: LogSink } = {}): number {
  if (d.vpl011 !== undefined) throw new VuartError('EEXIST', `d${d.domid}: vuart already initialised`);
  if (!Number.isInteger(info.consoleDomid) || info.consoleDomid < 0 || info.consoleDomid >= d.evtchn.maxDomains) {
    throw new VuartError('EINVAL', `d${d.domid}: bad console backend domain ${String(info.consoleDomid)}`);
  }
  const profile = info.profile ?? 'sbsa';
  if (profile !== 'sbsa' && profile !== 'pl011') {
    throw new VuartError('EINVAL', `d${d.domid}: unknown vuart profile ${String(profile)} (sbsa or pl011)`);
  }

  // 1. prepare_ring_for_helper: nothing to undo if it fails.
  let ring: ConsolePort;
  let xencons: ConsoleRing | undefined;
  if (info.xen !== undefined) {
    ring = info.xen;
  } else {
    try {
      ring = xencons = d.prepareRingForHelper(info.gfn);
    } catch (e) {
      throw new VuartError(errCode(e), `d${d.domid}: vuart ring: ${errorMessage(e)}`, e);
    }
  }

  // 2. alloc_unbound_xen_event_channel; the handler reaches the device built below.
  let device: Vpl011 | undefined;
  let port: number;
  try {
    port = d.evtchn.allocUnbound(d.domid, info.consoleDomid, () => device?.notification());
  } catch (e) {
    throw new VuartError(errCode(e), `d${d.domid}: vuart event channel: ${errorMessage(e)}`, e);
  }

  // 3. vgic_reserve_virq: on failure undo 2 only; the SPI is someone else's, so it is left alone.
  const spi = info.spi ?? GUEST_VPL011_SPI;
  if (!d.vgic.reserveSpi(spi)) {
    d.evtchn.close(d.domid, port);
    throw new VuartError('EBUSY', `d${d.domid}: vuart SPI ${spi} is not available (reserved by another device?)`);
  }

  // 4. the device and register_mmio_handler: on failure undo 3 and 2.
  let region: MmioRegion;
  try {
    const domid = d.domid;
    const evtchn = d.evtchn;
    const log = opts.log;
    // Line events left by an earlier domain with this id are not this one's: start the queue empty.
    const lineEvents = new LineEventQueue(evtchn.lineEventWords(domid));
    lineEvents.reset();
    device = new Vpl011({
      lineEvents,
      ring,
      irq: spiLine(d.vgic, spi),
      notify: () => void evtchn.notify(domid, port),
      ...(log ? { log: (m: string) => log(`d${domid} ${m}`) } : {}),
      profile,
    });
    region = d.mmio.register(info.base ?? GUEST_PL011_BASE, GUEST_PL011_SIZE, device, 'vpl011');
    if (info.xen !== undefined) info.xen.wake = () => void evtchn.notify(domid, port);
  } catch (e) {
    device = undefined;
    d.vgic.setLevel(spi, false);
    d.vgic.freeSpi(spi);
    d.evtchn.close(d.domid, port);
    throw new VuartError(errCode(e), `d${d.domid}: vuart MMIO: ${errorMessage(e)}`, e);
  }

  const inst: VuartInstance = {
    device,
    ring,
    xencons,
    evtchn: port,
    spi,
    region,
    consoleDomid: info.consoleDomid,
    gfn: info.gfn,
    profile,
  };
  d.vpl011 = inst;
  return port;
}

/** domain_vpl011_deinit: idempotent; undoes init in reverse order. */
export function domainVpl011Deinit(d: Domain): void {
  const inst = vuartOf(d);
  if (inst === undefined) return;
  d.vpl011 = undefined;
  d.mmio.unregister(inst.region);
  d.vgic.setLevel(inst.spi, false);
  d.vgic.freeSpi(inst.spi);
  d.evtchn.close(d.domid, inst.evtchn);
}
