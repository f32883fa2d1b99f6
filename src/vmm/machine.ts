// One domain's machine (one vCPU): guest RAM, the magic pages, the MMIO bus (GICv2, vpl011), the arch timer, PSCI,
// and the run loop. Runs in the domain's worker thread; MMIO traps are handled synchronously, as on Xen's pCPU.
import type { GuestImage } from '../toolstack/guest-image.js';
import { UnicornVcpu, type RunExit } from '../cpu/vcpu.js';
import { selftestVerdictDir, unicornLibraryPath } from '../toolstack/cache.js';
import { loadUnicorn } from '../cpu/unicorn.js';
import { ensureSelfTestCached } from '../cpu/selftest-cache.js';
import { Gicv2 } from '../xen/gicv2.js';
import { Domain, type RefusedAccessPolicy, type MmioAccess } from '../xen/domain.js';
import { EventChannels } from '../xen/evtchn.js';
import { domainVpl011Deinit, domainVpl011Init, vuartOf, type VuartInstance } from '../xen/vuart.js';
import { MMIO_ABORT } from '../xen/mmio.js';
import { Reg } from '../device/spec.js';
import { FrPollPacer } from '../device/poll-pacer.js';
import { HotState, HotWord } from '../device/hot-state.js';
import { addressHoles } from './address-holes.js';
import {
  GUEST_GICC_BASE, GUEST_GICC_SIZE, GUEST_GICD_BASE, GUEST_GICD_SIZE, GUEST_MAGIC_BASE, GUEST_PL011_BASE,
  GUEST_TIMER_VIRT_PPI, GUEST_VUART_GFN, NR_MAGIC_PAGES, XEN_PAGE_SIZE,
} from '../xen/arch-arm.js';

export type ExitReason = 'poweroff' | 'reset' | 'crashed' | 'stopped';
export interface MachineExit {
  reason: ExitReason;
  message?: string;
}
export interface MachineStats {
  mmio: number;
  irqs: number;
  wfiSleeps: number;
  sync: number;
  hvc: number;
  aborts: number;
  /** Times the vCPU waited for the backend instead of spinning on an unchanged FR. */
  frStalls: number;
  /** MSR hook calls (each is a safe point), and real CNTVCT reads the timer needed at them. */
  msr: number;
  counterReads: number;
  /** Notifies from this vCPU that had to wake a sleeping backend (evtchn waiter count non-zero). */
  evtchnWakes: number;
  /** vpl011 accesses the native fast path served (included in mmio), and MSRs its filter passed to JS. */
  nativeMmio: number;
  msrPassed: number;
}

export interface MachineOptions {
  domid: number;
  name: string;
  image: GuestImage;
  policy?: RefusedAccessPolicy;
  evtchn: EventChannels;
  /**
   * The 4 magic pages: a SharedArrayBuffer (`vpl011 run`: the backend is a thread of this process) or the view of a
   * cross-process MAP_SHARED mapping (the daemon's domain host, src/host/shm.ts: the backend is another process).
   */
  magicPages: SharedArrayBuffer | ArrayBuffer;
  /** The console backend's domain (dom0). */
  backendDomid?: number;
  libraryPath?: string;
  /** Polled between runs: true ends the run with 'stopped'. */
  shouldStop?: () => boolean;
  /** The vuart profile: 'sbsa' (Xen's SBSA UART, default) or 'pl011'. */
  profile?: 'sbsa' | 'pl011';
  /** Told (at safe points) when the guest starts or stops listening for vuart input (receive interrupts unmasked). */
  onReceiverListening?: (listening: boolean) => void;
  /**
   * The bounds on the vCPU's doorbell sleeps (defaults: the poll pacer's park and MAX_IDLE_MS). A test of a wake path sets
   * them far above its own deadline, so a missing wake fails the test instead of being covered by the bounded sleep.
   */
  sleepBounds?: SleepBounds;
}

export interface SleepBounds {
  /** Longest wait of a vCPU spinning on an unchanged FR. */
  frStallMs: number;
  /** Longest WFI sleep with no timer armed. */
  idleMs: number;
}

const MAX_IDLE_MS = 1000; // a WFI with no timer armed still rechecks shouldStop() this often

export class Machine {
  readonly domain: Domain;
  readonly gic = new Gicv2();
  readonly vcpu: UnicornVcpu;
  readonly vuartPort: number;
  private readonly access: MmioAccess = { addr: 0, width: 4, write: false, value: 0 };
  private crashMsg: string | null = null;
  private wfiSleeps = 0;
  private lastDoorbell = NaN;
  private stopRequested = false;
  private receiverListening = false;
  /** FR polling: how long the vCPU may be parked instead of trapping (the device's answer, poll-pacer.ts). */
  private readonly frPacer = new FrPollPacer();
  /** FR polling as the native fast path sees it: the last FR value read and how many times in a row. */
  // Kept in the vpl011's hot state (src/device/hot-state.ts), which the native fast path also counts in, so a spin
  // is seen the same whichever path served the reads before it (a stale count here stalled RX by 1 ms per batch).
  private readonly spin: Int32Array;
  private get lastFr(): number {
    return this.spin[HotWord.LastFr]!;
  }
  private set lastFr(v: number) {
    this.spin[HotWord.LastFr] = v;
  }
  private get frRepeats(): number {
    return this.spin[HotWord.FrRepeats]!;
  }
  private set frRepeats(v: number) {
    this.spin[HotWord.FrRepeats] = v;
  }
  private frStalls = 0;
  private polls = 0;
  private readonly uartInst: VuartInstance | undefined;

  constructor(private readonly opts: MachineOptions) {
    const { image } = opts;
    this.domain = new Domain({ domid: opts.domid, name: opts.name, vgic: this.gic, evtchn: opts.evtchn, policy: opts.policy ?? 'abort' });
    this.domain.mmio.register(GUEST_GICD_BASE, GUEST_GICD_SIZE, this.gic.distributor, 'gicd');
    this.domain.mmio.register(GUEST_GICC_BASE, GUEST_GICC_SIZE, this.gic.cpuInterface, 'gicc');
    this.domain.addMemory({ name: 'magic', base: GUEST_MAGIC_BASE, size: NR_MAGIC_PAGES * XEN_PAGE_SIZE, buffer: opts.magicPages, byteOffset: 0, shared: true });
    this.vuartPort = domainVpl011Init(this.domain, {
      consoleDomid: opts.backendDomid ?? 0,
      gfn: GUEST_VUART_GFN,
      profile: opts.profile ?? 'sbsa',
    });
    this.uartInst = vuartOf(this.domain);
    this.spin = this.uartInst?.ring.hot.w ?? new HotState().w;

    const vpl011Base = GUEST_PL011_BASE;
    const vpl011End = GUEST_PL011_BASE + XEN_PAGE_SIZE;
    const frAddr = GUEST_PL011_BASE + Reg.FR;
    const inst = this.uartInst;
    const lib = loadUnicorn(opts.libraryPath ?? unicornLibraryPath());
    ensureSelfTestCached(lib, selftestVerdictDir()); // ~90 ms saved per start once the library's verdict is known
    this.vcpu = new UnicornVcpu(lib, {
      // The native fast path serves FR/DR from the device's own hot state, and falls back to mmioRead/mmioWrite.
      ...(inst
        ? {
            nativeUart: {
              base: GUEST_PL011_BASE,
              hot: inst.ring.hot,
              ringPage: inst.ring.page,
              doorbell: opts.evtchn.doorbellView(opts.domid),
              tail: (flags: number, prod: number, cons: number) => inst.device.nativeTail(flags, prod, cons),
              live: () => this.domain.vpl011 === inst && !this.domain.crashed && !this.stopRequested,
            },
          }
        : {}),
      safePoint: () => this.safePoint(),
      needsSafePoint: () => this.needsSafePoint(),
      mmioRead: (addr, width) => {
        if (addr < vpl011Base || addr >= vpl011End) return this.read(addr, width);
        // A guest spinning on FR must see the backend's progress without an interrupt: run pending event handlers
        // (vpl011_notification) before each vpl011 access.
        this.pollEvents();
        if (addr !== frAddr) {
          this.frRepeats = 0;
          this.frPacer.reset();
          return this.uartRead(addr, width);
        }
        let v = this.uartRead(addr, width);
        if (v === null) {
          this.frRepeats = 0;
          this.frPacer.reset();
          return v;
        }
        // The native path serves the first reads of a poll and any other access in C (src/cpu/native/fastpath.c);
        // it keeps the shared spin words, so a reset count or a new value here means a new polling episode.
        if (v !== this.lastFr || this.frRepeats === 0) {
          this.frPacer.reset();
          this.lastFr = v;
          this.frRepeats = 1;
        } else if (this.frRepeats < 0x3fffffff) {
          this.frRepeats++;
        }
        // The same FR again with no other vpl011 access between: the guest polls, waiting for the backend, which
        // notifies us when it moves data. The device's pacer says how long the vCPU may be parked on the doorbell
        // instead of trapping (src/device/poll-pacer.ts): never so long that a guest counting its reads sees them
        // slower than hardware's, at most MAX_PARK_MS (IRQs and timers are taken at safe points, which a polling
        // loop does not reach anyway).
        const park = this.frPacer.frRead(v, performance.now());
        if (park > 0 && !this.stopRequested) {
          // First re-derive FR from the ring as it is now: the backend does not notify after a small drain
          // (src/console/console.ts), so TXFE may be stale; a polling guest must still see it.
          this.uartInst?.device.notification();
          const now = this.uartRead(addr, width);
          if (now !== v) return this.frSeen(now);
          this.frStalls++;
          // A wake-path test sets sleepBounds so a missing wake shows as a long stall rather than the pacer's 1 ms.
          this.opts.evtchn.waitSync(this.opts.domid, this.lastDoorbell, this.opts.sleepBounds?.frStallMs ?? park);
          this.checkStop();
          this.pollEvents();
          const after = this.uartRead(addr, width);
          if (after !== v) return this.frSeen(after);
        }
        return v;
      },
      mmioWrite: (addr, width, value) => {
        if (addr >= vpl011Base && addr < vpl011End) {
          this.pollEvents();
          this.frPacer.reset();
          const inst = this.uartInst;
          // The vpl011 directly (what the bus would find), while it is the domain's and the domain is alive.
          if (inst !== undefined && this.domain.vpl011 === inst && !this.domain.crashed) {
            if (inst.device.write(addr - vpl011Base, width, value)) return true;
            return this.refused(addr, width, true, value) !== null;
          }
        }
        const a = this.access;
        a.addr = addr; a.width = width; a.write = true; a.value = value;
        const r = this.domain.handleMmio(a);
        if (r === 'ok') return true;
        if (r === 'crashed') return this.crash(this.domain.crashReason ?? 'refused access'), true;
        return false;
      },
    });
    // The vpl011 drives SPI 32 from inside MMIO callbacks; the GIC only records the level there, the vCPU line is
    // raised at the next safe point. Lowering is safe anywhere (cpu_reset_interrupt requests no exit).
    this.gic.onChange = (level) => { if (!level) this.vcpu.setIrq(false); };

    const v = this.vcpu;
    v.mapRam(image.ramBase, image.ramSize);
    for (const s of image.segments) {
      if (s.addr < image.ramBase || s.addr + s.data.length > image.ramBase + image.ramSize) {
        throw new Error(`machine: segment ${s.what} at 0x${s.addr.toString(16)} is outside guest RAM`);
      }
      v.loadMemory(s.addr, s.data);
    }
    // The SAB's backing store never moves and this Machine (through the Uc) keeps it referenced, so the raw pointer
    // unicorn keeps stays valid until close().
    // A shared mapping's view is external memory that stays mapped until its owner (the domain host) closes it,
    // after this Machine.
    if (opts.magicPages instanceof SharedArrayBuffer) v.mapShared(GUEST_MAGIC_BASE, opts.magicPages);
    else v.uc.memMapPtr(GUEST_MAGIC_BASE, opts.magicPages);
    for (const r of this.domain.mmio.list()) v.mapMmio(r.base, r.size);
    // Nothing else is there: any access goes to the domain's policy (through the bus, which finds no device).
    const mapped = [{ base: image.ramBase, size: image.ramSize }, { base: GUEST_MAGIC_BASE, size: opts.magicPages.byteLength }, ...this.domain.mmio.list()];
    for (const h of addressHoles(mapped)) v.mapMmio(h.base, h.size);
    v.reset(BigInt(image.entry), BigInt(image.x0));
  }

  /** A changed FR the guest is about to see (after a park or a re-derivation): a new polling episode. */
  private frSeen(v: number | null): number | null {
    if (v === null) {
      this.frRepeats = 0;
      this.frPacer.reset();
    } else {
      this.lastFr = v;
      this.frRepeats = 1;
      this.frPacer.frRead(v, performance.now());
    }
    return v;
  }

  /**
   * A vpl011 read: straight to the device (saving the bus lookup on the hottest path) while it is the domain's vuart
   * and the domain is alive; otherwise through the bus. A refused read goes to the domain's policy as handleMmio does.
   */
  private uartRead(addr: number, width: 1 | 2 | 4): number | null {
    const inst = this.uartInst;
    if (inst === undefined || this.domain.vpl011 !== inst || this.domain.crashed) return this.read(addr, width);
    const v = inst.device.read(addr - GUEST_PL011_BASE, width);
    return v !== MMIO_ABORT ? v : this.refused(addr, width, false, 0);
  }

  /** Domain.handleRefusedAccess for a device-refused access: null (the vCPU injects the abort) or 0 (crashed). */
  private refused(addr: number, width: 1 | 2 | 4, write: boolean, value: number): number | null {
    const a = this.access;
    a.addr = addr; a.width = width; a.write = write; a.value = value;
    if (this.domain.handleRefusedAccess(a) === 'crashed') return this.crash(this.domain.crashReason ?? 'refused access'), 0;
    return null;
  }

  /** A trapped read through the domain's bus: the value, or null for a refused access (the vCPU injects the abort). */
  private read(addr: number, width: 1 | 2 | 4): number | null {
    const a = this.access;
    a.addr = addr; a.width = width; a.write = false; a.value = 0;
    const r = this.domain.handleMmio(a);
    if (r === 'ok') return a.value;
    if (r === 'crashed') return this.crash(this.domain.crashReason ?? 'refused access'), 0;
    return null;
  }

  private crash(msg: string): void {
    if (this.crashMsg === null) this.crashMsg = msg;
    this.vcpu.requestStop();
  }

  /**
   * Run pending event handlers only when the doorbell moved: a notify that sets a port pending (0 -> 1) always bumps
   * it, and one that lands after dispatch's clear bumps it again (docs/DESIGN.md wakeup rule), so nothing is missed
   * while the common case (a guest polling FR) costs one Atomics.load instead of a scan of every port.
   */
  private pollEvents(): void {
    const db = this.opts.evtchn.doorbell(this.opts.domid);
    if (db !== this.lastDoorbell) {
      this.lastDoorbell = db;
      // A guest spinning on the UART never returns to the run loop: notice stop() here too. Both stop paths
      // (domain-thread stop(), the daemon's domain host) set the flag and then kick the doorbell, so the flag is
      // read when the doorbell moves; every 1024th poll reads it anyway, for a stop that did not kick.
      this.checkStop();
      this.opts.evtchn.dispatch(this.opts.domid);
    } else if ((++this.polls & 1023) === 0) this.checkStop();
  }

  private checkStop(): void {
    if (!this.stopRequested && this.opts.shouldStop?.()) {
      this.stopRequested = true;
      this.vcpu.requestStop();
    }
  }

  /** Between TBs: timer, pending events, then the IRQ line. */
  private safePoint(): void {
    this.gic.setLevel(GUEST_TIMER_VIRT_PPI, this.vcpu.timer.poll());
    this.pollEvents();
    this.vcpu.setIrq(this.gic.irqOut);
    const inst = this.uartInst;
    const listening = inst !== undefined && this.domain.vpl011 === inst && inst.device.receiveInterruptsUnmasked;
    if (listening !== this.receiverListening) {
      this.receiverListening = listening;
      this.opts.onReceiverListening?.(listening);
    }
  }

  /** What safePoint() would change now: an IRQ line to raise (lowering is immediate), a listener to tell. */
  private needsSafePoint(): boolean {
    if (this.gic.irqOut && !this.vcpu.irqLevel) return true;
    const inst = this.uartInst;
    const listening = inst !== undefined && this.domain.vpl011 === inst && inst.device.receiveInterruptsUnmasked;
    return listening !== this.receiverListening;
  }

  stats(): MachineStats {
    const s = this.vcpu.stats;
    return { mmio: s.mmio, irqs: s.irqRaises, wfiSleeps: this.wfiSleeps, sync: s.sync, hvc: s.hvc, aborts: s.aborts, frStalls: this.frStalls, msr: s.msr, counterReads: this.vcpu.timer.counterReads, evtchnWakes: this.opts.evtchn.wakesSent, nativeMmio: s.nativeMmio, msrPassed: s.msrPassed };
  }

  run(): MachineExit {
    const { evtchn, domid } = this.opts;
    for (;;) {
      if (this.opts.shouldStop?.()) return { reason: 'stopped' };
      let exit: RunExit;
      try {
        exit = this.vcpu.run();
      } catch (e) {
        return { reason: 'crashed', message: `vCPU error: ${(e as Error).message}` };
      }
      if (this.crashMsg !== null) return { reason: 'crashed', message: `d${domid} crashed: ${this.crashMsg}` };
      // A stop from the controlling thread (domain-stop.ts) ends uc_emu_start as if at a WFI: never sleep then.
      if (this.stopRequested || this.opts.shouldStop?.()) return { reason: 'stopped' };
      if (exit.kind === 'psci') return { reason: exit.action === 'poweroff' ? 'poweroff' : 'reset' };
      if (exit.kind === 'error') return { reason: 'crashed', message: `d${domid}: ${exit.message}` };
      if (exit.kind === 'stopped') return { reason: 'stopped' };
      // WFI: sleep until the timer deadline or an event (doorbell), never busy-polling.
      const seen = evtchn.doorbell(domid);
      this.safePoint();
      if (this.gic.irqOut) continue; // an interrupt is already due: WFI completes
      // Fractional milliseconds (Atomics.wait takes them): rounding a 100 us hrtimer up to 1 ms made every short
      // kernel sleep during boot ten times longer (docs/PERF.md).
      const left = this.vcpu.timer.msUntilDeadline();
      const idle = this.opts.sleepBounds?.idleMs ?? MAX_IDLE_MS;
      const ms = left === null ? idle : Math.min(idle, left);
      this.wfiSleeps++;
      evtchn.waitSync(domid, seen, ms);
      this.safePoint();
    }
  }

  /**
   * Tear the domain down (the vCPU has stopped): domain_vpl011_deinit (the vuart's MMIO window, its SPI, and the
   * guest's event channel, whose backend end goes back to unbound), then the engine.
   */
  close(): void {
    domainVpl011Deinit(this.domain);
    this.vcpu.close();
  }
}
