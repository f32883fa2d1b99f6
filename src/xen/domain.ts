// A domain as the hypervisor core sees it (Xen's struct domain, the parts vpl011 needs): an id and a name, the MMIO
// bus with the policy for refused accesses, the vGIC, the event-channel table, and guest-physical memory regions
// backed by (Shared)ArrayBuffers for prepare_ring_for_helper().

import type { Vpl011, Vpl011Profile } from '../device/vpl011.js';
import { MmioBus, MMIO_ABORT, MMIO_DONE, type AccessWidth, type MmioRegion } from './mmio.js';
import type { ConsolePort } from '../device/ports.js';
import type { Vgic } from './vgic.js';
import type { EventChannels } from './evtchn.js';
import { ConsoleRing } from './ring.js';
import { XEN_PAGE_SHIFT, XEN_PAGE_SIZE } from './arch-arm.js';
import { hex } from '../util/hex.js';
import { Vpl011Error } from '../util/errors.js';

/** d->arch.vpl011 once domain_vpl011_init (src/xen/vuart.ts) has run. */
export interface VuartInstance {
  readonly device: Vpl011;
  /** The device's byte port: the xencons ring, or Xen's buffers (dom0less). */
  readonly ring: ConsolePort;
  /** The xencons ring page when the backend is a domain (the native fast path serves only this); else undefined. */
  readonly xencons: ConsoleRing | undefined;
  /** The guest-side port (what the domctl returns; xenconsoled binds to it). */
  readonly evtchn: number;
  readonly spi: number;
  readonly region: MmioRegion;
  readonly consoleDomid: number;
  readonly gfn: number;
  readonly profile: Vpl011Profile;
}

/** The console backend's domain: dom0, where xenconsoled runs (and where our console backend stands in). */
export const BACKEND_DOMID = 0;

/**
 * What a refused MMIO access (a handler returned MMIO_ABORT) does to the guest:
 *  - 'abort': a data abort is injected (upstream since 0b6122a117; the default);
 *  - 'crash-domain': the domain is crashed (domain_crash_synchronous, as Xen's first merged vpl011 did: docs/UPSTREAM.md §1).
 */
export const REFUSED_ACCESS_POLICIES = ['abort', 'crash-domain'] as const;
export type RefusedAccessPolicy = (typeof REFUSED_ACCESS_POLICIES)[number];

/** What the CPU layer must do after handleMmio / handleRefusedAccess. */
export type MmioOutcome = 'ok' | 'inject-abort' | 'crashed';

/** One trapped access (Xen's mmio_info_t: gpa, dabt.size, dabt.write, the register value). Reusable by the caller. */
export interface MmioAccess {
  /** Guest physical address. */
  addr: number;
  width: AccessWidth;
  write: boolean;
  /** For a write: the value written (low 32 bits). For a read: set by handleMmio to the value read. */
  value: number;
}

export interface GuestMemoryRegion {
  readonly name: string;
  /** Guest physical base, page-aligned. */
  readonly base: number;
  /** Size in bytes, a multiple of the page size. */
  readonly size: number;
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  /** Where the region starts inside buffer. */
  readonly byteOffset: number;
  /**
   * The buffer is shared memory although it is not a SharedArrayBuffer: a MAP_SHARED mapping viewed as a plain
   * ArrayBuffer (src/host/shm.ts), which the console daemon maps from its own process (xenforeignmemory_map).
   * Within one process only a SharedArrayBuffer can be shared between threads, hence the flag.
   */
  readonly shared?: boolean;
}

export class DomainError extends Vpl011Error<'EINVAL' | 'ENOENT' | 'EEXIST'> {}

export interface DomainOptions {
  domid: number;
  name: string;
  vgic: Vgic;
  evtchn: EventChannels;
  policy?: RefusedAccessPolicy;
}

export class Domain {
  readonly domid: number;
  readonly name: string;
  readonly mmio = new MmioBus();
  readonly vgic: Vgic;
  readonly evtchn: EventChannels;
  policy: RefusedAccessPolicy;
  /** Set once the domain has been crashed (by policy or by crash()). */
  crashReason: string | undefined = undefined;
  refusedAccesses = 0;
  /** The vuart instance (d->arch.vpl011), owned by src/xen/vuart.ts. */
  vpl011: VuartInstance | undefined = undefined;
  private readonly memory: GuestMemoryRegion[] = [];

  constructor(opts: DomainOptions) {
    if (!Number.isInteger(opts.domid) || opts.domid < 0 || opts.domid >= opts.evtchn.maxDomains) {
      throw new DomainError('EINVAL', `domain id ${String(opts.domid)} is outside the event-channel table`);
    }
    if (typeof opts.name !== 'string' || opts.name.length === 0) throw new DomainError('EINVAL', 'domain needs a name');
    this.domid = opts.domid;
    this.name = opts.name;
    this.vgic = opts.vgic;
    this.evtchn = opts.evtchn;
    this.policy = opts.policy ?? 'abort';
    if (this.policy !== 'abort' && this.policy !== 'crash-domain') {
      throw new DomainError('EINVAL', `unknown refused-access policy ${String(this.policy)}`);
    }
  }

  get crashed(): boolean {
    return this.crashReason !== undefined;
  }

  /** domain_crash: record why (the first reason wins). */
  crash(reason: string): void {
    if (this.crashReason === undefined) this.crashReason = reason;
  }

  // ---- MMIO ------------------------------------------------------------------------------------------------

  /**
   * Dispatch a trapped access (Xen's handle_mmio). On success a read's value is stored in `access.value`.
   * A refused access goes through handleRefusedAccess.
   */
  handleMmio(access: MmioAccess): MmioOutcome {
    if (this.crashReason !== undefined) return 'crashed';
    if (access.write) {
      if (this.mmio.write(access.addr, access.width, access.value >>> 0) === MMIO_DONE) return 'ok';
    } else {
      const v = this.mmio.read(access.addr, access.width);
      if (v !== MMIO_ABORT) {
        access.value = v;
        return 'ok';
      }
    }
    return this.handleRefusedAccess(access);
  }

  /** Apply the policy to a refused access: 'inject-abort' (the CPU injects a data abort) or 'crashed'. */
  handleRefusedAccess(access: MmioAccess): MmioOutcome {
    this.refusedAccesses++;
    if (this.crashReason !== undefined) return 'crashed';
    if (this.policy === 'abort') return 'inject-abort';
    const region = this.mmio.find(access.addr);
    this.crash(
      `refused MMIO ${access.write ? 'write' : 'read'} w${access.width} at ${hex(access.addr)}` +
        (region ? ` (${region.name} +${hex(access.addr - region.base)})` : ' (no device)'),
    );
    return 'crashed';
  }

  // ---- guest memory ----------------------------------------------------------------------------------------

  /** Add a guest-physical region backed by a buffer (e.g. the 4 magic pages at GFN 0x39000 in a 16 KiB SAB). */
  addMemory(region: GuestMemoryRegion): void {
    const { base, size, buffer, byteOffset } = region;
    if (!Number.isSafeInteger(base) || base < 0 || base % XEN_PAGE_SIZE !== 0) {
      throw new DomainError('EINVAL', `memory ${region.name}: base ${hex(base)} is not page-aligned`);
    }
    if (!Number.isSafeInteger(size) || size <= 0 || size % XEN_PAGE_SIZE !== 0) {
      throw new DomainError('EINVAL', `memory ${region.name}: size ${size} is not a positive multiple of a page`);
    }
    if (!Number.isSafeInteger(byteOffset) || byteOffset < 0 || byteOffset % 4 !== 0 || byteOffset + size > buffer.byteLength) {
      throw new DomainError('EINVAL', `memory ${region.name}: does not fit in its buffer`);
    }
    for (const r of this.memory) {
      if (base < r.base + r.size && r.base < base + size) {
        throw new DomainError('EEXIST', `memory ${region.name} overlaps ${r.name}`);
      }
    }
    this.memory.push({ ...region });
  }

  findMemory(gpa: number): GuestMemoryRegion | undefined {
    for (const r of this.memory) if (gpa >= r.base && gpa < r.base + r.size) return r;
    return undefined;
  }

  /**
   * The backing of one guest page (what the backend's xenforeignmemory_map gives): the buffer and the byte offset
   * of the page in it. Only SharedArrayBuffer-backed pages, or regions flagged `shared` (cross-process mappings),
   * can be shared with the backend.
   */
  mapGuestPage(gfn: number): { buffer: ArrayBuffer | SharedArrayBuffer; byteOffset: number; shared: boolean } {
    if (!Number.isSafeInteger(gfn) || gfn < 0 || gfn > Number.MAX_SAFE_INTEGER / XEN_PAGE_SIZE) {
      throw new DomainError('EINVAL', `bad gfn ${String(gfn)}`);
    }
    const gpa = gfn * XEN_PAGE_SIZE;
    const r = this.findMemory(gpa);
    if (!r) throw new DomainError('ENOENT', `gfn ${hex(gfn)} is not backed by guest memory in d${this.domid}`);
    return {
      buffer: r.buffer,
      byteOffset: r.byteOffset + (gpa - r.base),
      shared: r.shared === true || (typeof SharedArrayBuffer !== 'undefined' && r.buffer instanceof SharedArrayBuffer),
    };
  }

  /**
   * prepare_ring_for_helper(gfn): map a guest page as the console ring's frontend view. Fails with a DomainError if
   * the gfn is not backed, or is backed by memory that cannot be shared with the backend's thread.
   */
  prepareRingForHelper(gfn: number): ConsoleRing {
    const page = this.mapGuestPage(gfn);
    if (!page.shared) {
      throw new DomainError('EINVAL', `gfn ${hex(gfn)} is not in a shareable (SharedArrayBuffer or shared mapping) region`);
    }
    return new ConsoleRing(page.buffer, page.byteOffset);
  }
}

export { XEN_PAGE_SHIFT };
