// One domain's machine (one vCPU): guest RAM, the magic pages, the MMIO bus (GICv2, vpl011), the arch timer, PSCI,
// and the run loop. Runs in the domain's worker thread; MMIO traps are handled synchronously, as on Xen's pCPU.
import { hop, hopFlush } from '../util/hop-trace.js';
import type { GuestImage } from '../toolstack/guest-image.js';
import { UnicornVcpu, type RunExit } from '../cpu/vcpu.js';
import { selftestVerdictDir, unicornLibraryPath } from '../toolstack/cache.js';
import { loadUnicorn } from '../cpu/unicorn.js';
import { ensureSelfTestCached } from '../cpu/selftest-cache.js';
import { Gicv2 } from '../xen/gicv2.js';
import { Domain, type RefusedAccessPolicy, type MmioAccess } from '../xen/domain.js';
import { EventChannels } from '../xen/evtchn.js';
import { domainVpl011Deinit, domainVpl011Init, vuartOf, type VuartInstance } from '../xen/vuart.js';
import { XenConsoleFrontend } from '../xen/xen-console.js';
import { MMIO_ABORT, MMIO_DONE, type AccessWidth } from '../xen/mmio.js';
import { FrPollWatch } from '../device/poll-pacer.js';
import { addressHoles } from './address-holes.js';
import { yieldCpu } from '../host/cpu-yield.js';
import { AccessTraceWriter, initTraceRegion, monoMs, TRACE_DEFAULT_CAPACITY, traceRegionBytes } from '../device/access-trace.js';
import { initInsightRegion, InsightPublisher, INSIGHT_TRACE_OFFSET, PUBLISH_PERIOD_MS } from './insight.js';
import { HotWord } from '../device/hot-state.js';
import { FlashBank } from './flash-bank.js';
import { applyMachine, captureMachine, loadMagic, loadRam, type MachineState } from './machine-state.js';
import { XEN_LAYOUT } from '../toolstack/guest-map.js';
import { GUEST_MAGIC_BASE, GUEST_VUART_GFN, NR_MAGIC_PAGES, XEN_PAGE_SIZE } from '../xen/arch-arm.js';
import { errorMessage } from '../util/errors.js';

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
  /** Times the vCPU yielded its CPU right after a vpl011 access woke the sleeping backend (handOffIfWoke). */
  handoffs: number;
  /** pollEvents' periodic checks (stop, trace switch, insight) reached through UART accesses: one per 1024. */
  periodicChecks: number;
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
  /**
   * The domain's insight region (src/vmm/insight.ts: INSIGHT_BYTES of zeroed host memory, never guest RAM): the vCPU
   * thread publishes the vpl011's state there and records its access trace (`vpl011 stat`, `vpl011 trace`).
   */
  insight?: ArrayBuffer | SharedArrayBuffer;
  /** Start with the access trace recording (default off; it can be switched in the region at any time). */
  trace?: boolean;
  /**
   * The vuart's backend is Xen (dom0less, docs/DOM0LESS.md): its IN/OUT buffers, a region made by
   * createXenConsoleRegion() and served by the console mux. Default: a console domain over the ring page.
   */
  xenConsole?: SharedArrayBuffer;
  /**
   * Build this machine from a saved state (docs/SAVE.md) instead of booting `image` (whose RAM range must match
   * the state's; its segments and entry are not used).
   */
  restore?: MachineState;
  /** Polled where shouldStop is: true pauses the vCPU at the next resumable point and calls onPause. */
  shouldPause?: () => boolean;
  /** The vCPU is paused between runs (captureState() is valid now); return false to end the run with 'stopped'. */
  onPause?: () => boolean;
}

export interface SleepBounds {
  /** Longest wait of a vCPU spinning on an unchanged FR. */
  frStallMs: number;
  /** Longest WFI sleep with no timer armed. */
  idleMs: number;
}

const YIELD_ON_WAKE = process.env.VPL011_YIELD_ON_WAKE !== '0';
/** Hand-offs at most this often (ms): a TX stream wakes the backend every few bytes after each hand-off (each drain
 * empties the ring), and a hand-off per wake made the bare flood 4.5x slower; an echo's wakes are a round trip apart. */
const HANDOFF_GAP_MS = 0.1;
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
  private pausePending = false;
  /** The pause's stop has been requested from a place the run can resume from exactly (UnicornVcpu.requestPause). */
  private pauseStopped = false;
  private receiverListening = false;
  /** FR polling: the episode and how long the vCPU may be parked instead of trapping (the device's answer). */
  private readonly frWatch: FrPollWatch;
  private frStalls = 0;
  private handoffs = 0;
  private lastHandoff = -Infinity;
  /**
   * Accesses since the start, for the periodic checks of pollEvents: the hot state's Polls word, counted by both
   * paths (the native one serves most accesses and sends every 1024th here uncounted), or this thread's own.
   */
  private readonly pollCount: Int32Array;
  private periodicChecks = 0;
  private readonly uartInst: VuartInstance | undefined;
  private readonly insight: InsightPublisher | undefined;
  private lastPublish = -Infinity;
  private readonly traceWriter: AccessTraceWriter | undefined;
  /** Whether the device and the native path are recording (they follow the region's switch at safe points). */
  private tracing = false;
  private ended = false;
  /** The layout's vpl011 base and timer PPI (image.layout: Xen's or QEMU virt's, src/toolstack/guest-map.ts). */
  private readonly uartBase: number;
  private readonly timerPpi: number;

  constructor(private readonly opts: MachineOptions) {
    const { image } = opts;
    const layout = image.layout ?? XEN_LAYOUT;
    this.uartBase = layout.uart.base;
    this.timerPpi = layout.timerPpis.virt;
    this.domain = new Domain({ domid: opts.domid, name: opts.name, vgic: this.gic, evtchn: opts.evtchn, policy: opts.policy ?? 'abort' });
    this.domain.mmio.register(layout.gicd.base, layout.gicd.size, this.gic.distributor, 'gicd');
    this.domain.mmio.register(layout.gicc.base, layout.gicc.size, this.gic.cpuInterface, 'gicc');
    // Flash banks after the first: read-only, trapped (flash-bank.ts). Bank 0 is mapped as read-only RAM below.
    layout.flash.forEach((bank, k) => {
      if (k === 0) return;
      const contents = image.flash?.find((f) => f.bank === k)?.data;
      this.domain.mmio.register(bank.base, bank.size, new FlashBank(bank.size, contents), `flash${k}`);
    });
    if (opts.restore) loadMagic(new Uint8Array(opts.magicPages), opts.restore);
    this.domain.addMemory({ name: 'magic', base: GUEST_MAGIC_BASE, size: NR_MAGIC_PAGES * XEN_PAGE_SIZE, buffer: opts.magicPages, byteOffset: 0, shared: true });
    this.vuartPort = domainVpl011Init(this.domain, {
      consoleDomid: opts.backendDomid ?? 0,
      gfn: GUEST_VUART_GFN,
      profile: opts.profile ?? 'sbsa',
      base: layout.uart.base,
      spi: layout.uartIntid,
      ...(opts.xenConsole ? { xen: new XenConsoleFrontend(opts.xenConsole, opts.domid) } : {}),
    });
    this.uartInst = vuartOf(this.domain);
    this.frWatch = new FrPollWatch(this.uartInst?.ring.hot);
    this.pollCount = this.uartInst?.ring.hot.w ?? new Int32Array(HotWord.Polls + 1);

    const vpl011Base = layout.uart.base;
    const vpl011End = vpl011Base + XEN_PAGE_SIZE;
    const frAddr = vpl011Base + FrPollWatch.OFFSET;
    const inst = this.uartInst;
    // The insight region: the snapshot's publisher and the access trace, which the device (every access it serves)
    // and the native fast path (every access it serves) record into.
    let traceWriter: AccessTraceWriter | undefined;
    let traceView: Uint8Array | undefined;
    if (opts.insight && inst) {
      initInsightRegion(opts.insight);
      initTraceRegion(opts.insight, INSIGHT_TRACE_OFFSET, TRACE_DEFAULT_CAPACITY, opts.trace === true);
      this.insight = new InsightPublisher(opts.insight);
      traceWriter = new AccessTraceWriter(opts.insight, INSIGHT_TRACE_OFFSET, inst.ring.hot);
      traceView = new Uint8Array(opts.insight, INSIGHT_TRACE_OFFSET, traceRegionBytes(TRACE_DEFAULT_CAPACITY));
    }
    this.traceWriter = traceWriter;
    // The native fast path serves FR/DR against the xencons ring only; with the backend in Xen every vpl011 access
    // takes the TypeScript path (a DR write there may print a line or wait for the mux: not a C path's job).
    const xencons = inst?.xencons;
    const lib = loadUnicorn(opts.libraryPath ?? unicornLibraryPath());
    ensureSelfTestCached(lib, selftestVerdictDir()); // ~90 ms saved per start once the library's verdict is known
    this.vcpu = new UnicornVcpu(lib, {
      // The native fast path serves FR/DR from the device's own hot state, and falls back to mmioRead/mmioWrite.
      ...(inst && xencons
        ? {
            nativeUart: {
              base: vpl011Base,
              hot: xencons.hot,
              ringPage: xencons.page,
              doorbell: opts.evtchn.doorbellView(opts.domid),
              lineEvents: opts.evtchn.lineEventWords(opts.domid),
              tail: (flags: number, prod: number, cons: number) => {
                const wakes = opts.evtchn.wakesSent;
                inst.device.nativeTail(flags, prod, cons);
                this.handOffIfWoke(wakes);
              },
              live: () => this.domain.vpl011 === inst && !this.domain.crashed && !this.stopRequested,
              ...(traceView ? { trace: traceView } : {}),
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
          this.frWatch.end();
          const wakes = this.opts.evtchn.wakesSent; // a DR read that frees IN space notifies the backend
          const r = this.uartRead(addr, width);
          this.handOffIfWoke(wakes);
          return r;
        }
        const v = this.uartRead(addr, width);
        if (v === null) {
          this.frWatch.end();
          return v;
        }
        // The same FR again with no other vpl011 access between: the guest polls, waiting for the backend, which
        // notifies us when it moves data. The device's pacer says how long the vCPU may be parked on the doorbell
        // instead of trapping (src/device/poll-pacer.ts): never so long that a guest counting its reads sees them
        // slower than hardware's, at most MAX_PARK_MS (IRQs and timers are taken at safe points, which a polling
        // loop does not reach anyway).
        const park = this.frWatch.read(v, performance.now());
        if (park > 0 && !this.stopRequested && !this.pauseStopped) {
          // First re-derive FR from the ring as it is now: the backend does not notify after a small drain
          // (src/console/console.ts), so TXFE may be stale; a polling guest must still see it.
          this.uartInst?.device.notification();
          const now = this.uartRead(addr, width);
          if (now !== v) return this.frSeen(now);
          this.frStalls++;
          this.publishInsight(false);
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
          this.frWatch.write();
          const inst = this.uartInst;
          // The vpl011 directly (what the bus would find), while it is the domain's and the domain is alive.
          if (inst !== undefined && this.domain.vpl011 === inst && !this.domain.crashed) {
            const wakes = opts.evtchn.wakesSent;
            const done = inst.device.write(addr - vpl011Base, width, value) === MMIO_DONE;
            this.handOffIfWoke(wakes);
            if (done) return true;
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
    // pl011: the receive timeout counts 32 bit periods in guest time, on the guest's virtual counter.
    if (inst) {
      const timer = this.vcpu.timer;
      const ticksPerMs = Number(timer.freq) / 1000;
      inst.device.setRxClock(() => Number(timer.now()) / ticksPerMs);
    }

    const v = this.vcpu;
    // RAM the toolstack read the images into (a SharedArrayBuffer: its store never moves, and the Uc keeps it
    // referenced) is mapped in place; otherwise unicorn allocates it and the segments are copied in.
    const ram = opts.restore ? undefined : image.ram;
    if (ram !== undefined) {
      if (ram.byteLength !== image.ramSize) throw new Error('machine: the image\'s RAM does not match its size');
      v.mapShared(image.ramBase, ram);
    } else {
      v.mapRam(image.ramBase, image.ramSize);
    }
    if (opts.restore) {
      if (opts.restore.ram.base !== image.ramBase || opts.restore.ram.size !== image.ramSize) throw new Error('machine: the saved RAM does not match the domain');
      loadRam(v, opts.restore.ram);
    }
    for (const s of opts.restore ? [] : image.segments) {
      if (s.addr < image.ramBase || s.addr + s.data.length > image.ramBase + image.ramSize) {
        throw new Error(`machine: segment ${s.what} at 0x${s.addr.toString(16)} is outside guest RAM`);
      }
      if (ram !== undefined && s.data.buffer === ram && s.data.byteOffset === s.addr - image.ramBase) continue; // in place
      v.loadMemory(s.addr, s.data);
    }
    // Flash bank 0 (qemu-virt): the firmware runs from it before relocating itself to RAM, as under QEMU's -bios.
    // Read-only: a guest write there ends the run with unicorn's write-protection error (docs/LAYOUTS.md).
    const bank0 = layout.flash[0];
    if (bank0 !== undefined) {
      v.mapRom(bank0.base, bank0.size);
      const firmware = image.flash?.find((f) => f.bank === 0);
      if (firmware !== undefined) {
        if (firmware.data.length > bank0.size) throw new Error(`machine: ${firmware.what} does not fit flash bank 0`);
        v.loadMemory(bank0.base, firmware.data);
      }
    }
    // The SAB's backing store never moves and this Machine (through the Uc) keeps it referenced, so the raw pointer
    // unicorn keeps stays valid until close().
    // A shared mapping's view is external memory that stays mapped until its owner (the domain host) closes it,
    // after this Machine.
    v.mapShared(GUEST_MAGIC_BASE, opts.magicPages);
    // The vpl011 (and the holes) take 8-byte accesses whole, so one refused as Xen does is not half-executed first.
    for (const r of this.domain.mmio.list()) v.mapMmio(r.base, r.size, r.base === vpl011Base);
    // Nothing else is there: any access goes to the domain's policy (through the bus, which finds no device).
    const mapped = [{ base: image.ramBase, size: image.ramSize }, { base: GUEST_MAGIC_BASE, size: opts.magicPages.byteLength }, ...this.domain.mmio.list(), ...(bank0 ? [bank0] : [])];
    for (const h of addressHoles(mapped)) v.mapMmio(h.base, h.size, true);
    if (opts.restore) {
      if (!this.uartInst) throw new Error('machine: a saved domain needs its vuart');
      applyMachine({ vcpu: v, gic: this.gic, vuart: this.uartInst, evtchn: opts.evtchn, domid: opts.domid }, opts.restore);
      // Before the first instruction, as at a safe point: the timer's ISTATUS mirrored (a handler of a restored
      // pending timer IRQ reads it) and the IRQ line as the loaded GIC drives it; the native filter follows the new
      // timer. (Not the whole safePoint(): this machine's owner is not ready for its callbacks yet.)
      this.gic.setLevel(this.timerPpi, v.timer.poll());
      v.setIrq(this.gic.irqOut);
      v.stateLoaded();
    } else {
      v.reset(BigInt(image.entry), BigInt(image.x0));
    }
    // Trace times are host-monotonic; this pair turns them into the guest's CNTVCT (which runs from the same clock).
    traceWriter?.setAnchor({ monoMs: monoMs(), counter: Number(v.timer.now()), freq: Number(v.timer.freq) });
    this.followTraceSwitch();
    this.publishInsight(true);
  }

  /**
   * `vpl011 trace NAME --on/--off` flips a word in the region; the device and the native path record only while it
   * is on, and are unhooked while it is off (so off costs nothing per access). Checked at safe points and on the
   * 1024-access stop check: a switch takes effect within that.
   */
  private followTraceSwitch(): void {
    const w = this.traceWriter;
    if (w === undefined) return;
    const on = w.enabled;
    if (on === this.tracing) return;
    this.tracing = on;
    this.uartInst?.device.attachTrace(on ? w : null);
    this.vcpu.fast?.setTrace(on);
  }

  /**
   * Publish the vpl011's state into the insight region (src/vmm/insight.ts): at most every PUBLISH_PERIOD_MS unless
   * `force` (the vCPU is about to sleep or has stopped: the state is then exact).
   */
  private publishInsight(force: boolean, idle = false): void {
    const p = this.insight;
    const inst = this.uartInst;
    if (p === undefined || inst === undefined) return;
    const now = performance.now();
    if (!force && now - this.lastPublish < PUBLISH_PERIOD_MS) return;
    this.lastPublish = now;
    const dev = inst.device;
    const hot = inst.ring.hot.w;
    const st = this.stats();
    const pl011 = dev.pl011Registers();
    p.publish({
      publishedAt: Date.now(),
      running: !this.ended,
      idle,
      profile: dev.profile,
      fr: dev.registers().fr,
      irq: dev.irqView(),
      ...(pl011 ? { pl011 } : {}),
      counters: dev.counters,
      frontend: {
        inCons: hot[HotWord.InCons]! >>> 0,
        inProdSeen: hot[HotWord.InProdSeen]! >>> 0,
        outProd: hot[HotWord.OutProd]! >>> 0,
        outConsSeen: hot[HotWord.OutConsSeen]! >>> 0,
      },
      spi: this.gic.spiView(inst.spi),
      vcpu: { mmio: st.mmio, nativeMmio: st.nativeMmio, irqs: st.irqs, frStalls: st.frStalls, wfiSleeps: this.wfiSleeps },
    });
  }

  /** The whole machine's state; only while paused (inside onPause) or before the first run. */
  captureState(): MachineState {
    // A dom0less vuart's bytes live in Xen's buffers, which this format does not carry.
    if (!this.uartInst?.xencons) throw new Error('machine: only a domain whose vuart has a console ring page can be saved');
    return captureMachine({
      vcpu: this.vcpu, gic: this.gic, vuart: this.uartInst, evtchn: this.opts.evtchn, domid: this.opts.domid,
      magic: new Uint8Array(this.opts.magicPages), ram: { base: this.opts.image.ramBase, size: this.opts.image.ramSize },
    });
  }

  /**
   * The device's access just woke the sleeping backend (the ring's waiter count was non-zero: `wakesSent` moved):
   * yield the CPU, so a backend woken onto this CPU takes the output now instead of after the guest's next slice
   * (src/host/cpu-yield.ts). Free when nothing else waits for this CPU; never with VPL011_YIELD_ON_WAKE=0.
   */
  private handOffIfWoke(wakesBefore: number): void {
    if (this.opts.evtchn.wakesSent === wakesBefore || !YIELD_ON_WAKE) return;
    const now = performance.now();
    if (now - this.lastHandoff < HANDOFF_GAP_MS) return;
    this.lastHandoff = now;
    this.handoffs++;
    yieldCpu();
  }

  /** A changed FR the guest is about to see (after a park or a re-derivation): a new polling episode. */
  private frSeen(v: number | null): number | null {
    if (v === null) this.frWatch.end();
    else this.frWatch.seen(v, performance.now());
    return v;
  }

  /**
   * A vpl011 read: straight to the device (saving the bus lookup on the hottest path) while it is the domain's vuart
   * and the domain is alive; otherwise through the bus. A refused read goes to the domain's policy as handleMmio does.
   */
  private uartRead(addr: number, width: AccessWidth): number | null {
    const inst = this.uartInst;
    if (inst === undefined || this.domain.vpl011 !== inst || this.domain.crashed) return this.read(addr, width);
    const v = inst.device.read(addr - this.uartBase, width);
    return v !== MMIO_ABORT ? v : this.refused(addr, width, false, 0);
  }

  /** Domain.handleRefusedAccess for a device-refused access: null (the vCPU injects the abort) or 0 (crashed). */
  private refused(addr: number, width: AccessWidth, write: boolean, value: number): number | null {
    const a = this.access;
    a.addr = addr; a.width = width; a.write = write; a.value = value;
    if (this.domain.handleRefusedAccess(a) === 'crashed') return this.crash(this.domain.crashReason ?? 'refused access'), 0;
    return null;
  }

  /** A trapped read through the domain's bus: the value, or null for a refused access (the vCPU injects the abort). */
  private read(addr: number, width: AccessWidth): number | null {
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
      hop('db');
      // A guest spinning on the UART never returns to the run loop: notice stop() here too. Both stop paths
      // (domain-thread stop(), the daemon's domain host) set the flag and then kick the doorbell, so the flag is
      // read when the doorbell moves; every 1024th poll reads it anyway, for a stop that did not kick.
      this.checkStop();
      this.opts.evtchn.dispatch(this.opts.domid);
    } else if ((++this.pollCount[HotWord.Polls]! & 1023) === 0) {
      this.periodicChecks++;
      this.checkStop();
      // A guest that only polls the UART reaches no other safe point.
      this.followTraceSwitch();
      this.publishInsight(false);
    }
  }

  private checkStop(): void {
    if (!this.stopRequested && this.opts.shouldStop?.()) {
      this.stopRequested = true;
      this.vcpu.requestStop();
    } else if (!this.pauseStopped && (this.pausePending || this.opts.shouldPause?.())) {
      // A stop the run can be resumed from (not the asynchronous one of src/cpu/remote-stop.ts): at a hook, or past
      // the current MMIO instruction; where neither is possible, asked again at the next check.
      this.pausePending = true;
      this.pauseStopped = this.vcpu.requestPause();
    }
  }

  /** Between TBs: timer, pending events, then the IRQ line. */
  private safePoint(): void {
    this.followTraceSwitch(); // before any event is dispatched to the device
    this.gic.setLevel(this.timerPpi, this.vcpu.timer.poll());
    this.pollEvents();
    this.uartInst?.device.rxTimeoutTick();
    this.vcpu.setIrq(this.gic.irqOut);
    this.publishInsight(false);
    const inst = this.uartInst;
    const listening = inst !== undefined && this.domain.vpl011 === inst && inst.device.receiveInterruptsUnmasked;
    if (listening !== this.receiverListening) {
      this.receiverListening = listening;
      this.opts.onReceiverListening?.(listening);
    }
  }

  /**
   * After a JS MMIO trip outside the vpl011 page (the GIC, the address holes): what safePoint() would do now: an IRQ
   * line to raise (lowering is immediate), a pause to retry, a listener to tell.
   */
  private needsSafePoint(): boolean {
    if (this.gic.irqOut && !this.vcpu.irqLevel) return true;
    if (this.pausePending && !this.pauseStopped) return true;
    const inst = this.uartInst;
    const listening = inst !== undefined && this.domain.vpl011 === inst && inst.device.receiveInterruptsUnmasked;
    return listening !== this.receiverListening;
  }

  stats(): MachineStats {
    const s = this.vcpu.stats;
    return { mmio: s.mmio, irqs: s.irqRaises, wfiSleeps: this.wfiSleeps, sync: s.sync, hvc: s.hvc, aborts: s.aborts, frStalls: this.frStalls, msr: s.msr, counterReads: this.vcpu.timer.counterReads, evtchnWakes: this.opts.evtchn.wakesSent, nativeMmio: s.nativeMmio, msrPassed: s.msrPassed, handoffs: this.handoffs, periodicChecks: this.periodicChecks };
  }

  run(): MachineExit {
    try {
      return this.runLoop();
    } finally {
      this.ended = true;
      this.publishInsight(true); // the last state stays readable after the vCPU stopped
    }
  }

  private runLoop(): MachineExit {
    const { evtchn, domid } = this.opts;
    for (;;) {
      if (this.opts.shouldStop?.()) return { reason: 'stopped' };
      if (this.pausePending || this.opts.shouldPause?.()) {
        this.pausePending = false;
        this.pauseStopped = false;
        if (!(this.opts.onPause?.() ?? true)) return { reason: 'stopped' };
        continue;
      }
      let exit: RunExit;
      try {
        exit = this.vcpu.run();
      } catch (e) {
        return { reason: 'crashed', message: `vCPU error: ${errorMessage(e)}` };
      }
      if (this.crashMsg !== null) return { reason: 'crashed', message: `d${domid} crashed: ${this.crashMsg}` };
      // A stop from the controlling thread (domain-stop.ts) ends uc_emu_start as if at a WFI: never sleep then.
      if (this.stopRequested || this.opts.shouldStop?.()) return { reason: 'stopped' };
      if (this.pausePending && exit.kind === 'stopped') continue; // paused at the top of the loop
      if (exit.kind === 'psci') return { reason: exit.action === 'poweroff' ? 'poweroff' : 'reset' };
      if (exit.kind === 'error') return { reason: 'crashed', message: `d${domid}: ${exit.message}` };
      if (exit.kind === 'stopped') return { reason: 'stopped' };
      // WFI: sleep until the timer deadline or an event (doorbell), never busy-polling.
      const seen = evtchn.doorbell(domid);
      this.safePoint();
      if (this.gic.irqOut) continue; // an interrupt is already due: WFI completes
      if (this.pausePending) continue; // a save asked while idle: pause now, not after the sleep
      // Fractional milliseconds (Atomics.wait takes them): rounding a 100 us hrtimer up to 1 ms made every short
      // kernel sleep during boot ten times longer (docs/PERF.md).
      const timerLeft = this.vcpu.timer.msUntilDeadline();
      const rxLeft = this.uartInst?.device.msUntilRxTimeout() ?? null; // a pl011 receive timeout is a deadline too
      const left = timerLeft === null ? rxLeft : rxLeft === null ? timerLeft : Math.min(timerLeft, rxLeft);
      const idle = this.opts.sleepBounds?.idleMs ?? MAX_IDLE_MS;
      const ms = left === null ? idle : Math.min(idle, left);
      this.wfiSleeps++;
      this.publishInsight(true, true); // idle: what `vpl011 stat` shows is exact while the vCPU sleeps
      hop('sleep', ms);
      hopFlush();
      evtchn.waitSync(domid, seen, ms);
      hop('wake');
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
