// Capturing a Machine's state at a safe point and loading it into a freshly built one (docs/SAVE.md). Capture runs
// in the vCPU thread between two uc_emu_start calls (the run loop's pause), so every register, the GIC, the device
// and the ring page are quiescent from the guest's side; the backend may still move its own ring indices, which the
// restored device re-reads (adopt/refresh) and the saved copy of the page records as they were.
import { applyCpu, captureCpu } from '../cpu/cpu-state.js';
import type { UnicornVcpu } from '../cpu/vcpu.js';
import type { Gicv2 } from '../xen/gicv2.js';
import type { EventChannels } from '../xen/evtchn.js';
import type { VuartInstance } from '../xen/vuart.js';
import { XEN_PAGE_SIZE } from '../xen/arch-arm.js';
import { ringIndicesOf, type SavedDomain, type SavedRam } from './saved-domain.js';

/** What a machine saves: everything but the header and the config, which the toolstack adds. */
export type MachineState = Omit<SavedDomain, 'header' | 'config'>;

export interface MachineParts {
  vcpu: UnicornVcpu;
  gic: Gicv2;
  vuart: VuartInstance;
  evtchn: EventChannels;
  domid: number;
  magic: Uint8Array;
  ram: { base: number; size: number };
}

const CHUNK = 2 * 1024 * 1024;

/**
 * Guest RAM, sparse: only pages that are not all zero (unicorn 2.1.1 has no dirty-page log through its API, and a
 * fresh page is zero, so "not zero" is the pages the guest or the loader ever wrote, minus those written back to 0).
 */
export function captureRam(vcpu: UnicornVcpu, base: number, size: number): SavedRam {
  const pages: number[] = [];
  const kept: Uint8Array[] = [];
  for (let off = 0; off < size; off += CHUNK) {
    const len = Math.min(CHUNK, size - off);
    const chunk = vcpu.uc.memRead(base + off, len);
    const words = new BigUint64Array(chunk.buffer, chunk.byteOffset, len / 8);
    for (let p = 0; p < len / XEN_PAGE_SIZE; p++) {
      const w0 = (p * XEN_PAGE_SIZE) / 8;
      let zero = true;
      for (let i = w0; i < w0 + XEN_PAGE_SIZE / 8; i++) {
        if (words[i] !== 0n) {
          zero = false;
          break;
        }
      }
      if (!zero) {
        pages.push((off + p * XEN_PAGE_SIZE) / XEN_PAGE_SIZE);
        kept.push(chunk.subarray(p * XEN_PAGE_SIZE, (p + 1) * XEN_PAGE_SIZE));
      }
    }
  }
  const data = new Uint8Array(kept.length * XEN_PAGE_SIZE);
  kept.forEach((k, i) => data.set(k, i * XEN_PAGE_SIZE));
  return { base, size, pages: Uint32Array.from(pages), data };
}

export function captureMachine(p: MachineParts): MachineState {
  const { vcpu, vuart, evtchn, domid } = p;
  const magic = new Uint8Array(p.magic.length);
  magic.set(p.magic);
  const peer = evtchn.peer(domid, vuart.evtchn);
  return {
    cpu: { registers: captureCpu(vcpu.uc), timer: vcpu.timer.state(), queuedAbort: vcpu.queuedAbort },
    gic: p.gic.snapshot(),
    vuart: { profile: vuart.profile, device: vuart.device.snapshot(), ring: ringIndicesOf(magic) },
    evtchn: {
      guestPort: vuart.evtchn,
      guestPending: evtchn.isPending(domid, vuart.evtchn),
      backendPending: peer !== undefined && evtchn.isPending(peer.domid, peer.port),
    },
    magic,
    ram: captureRam(vcpu, p.ram.base, p.ram.size),
  };
}

/** Before the vuart is built over it: the saved ring page (and the other magic pages) back in place. */
export function loadMagic(target: Uint8Array, s: MachineState): void {
  if (s.magic.length !== target.length) throw new Error(`restore: ${s.magic.length} bytes of magic pages for ${target.length}`);
  target.set(s.magic);
}

/** Guest RAM from its sparse copy: consecutive pages in one write each. */
export function loadRam(vcpu: UnicornVcpu, ram: SavedRam): void {
  const { pages, data } = ram;
  let i = 0;
  while (i < pages.length) {
    let j = i + 1;
    while (j < pages.length && pages[j] === pages[j - 1]! + 1) j++;
    vcpu.loadMemory(ram.base + pages[i]! * XEN_PAGE_SIZE, data.subarray(i * XEN_PAGE_SIZE, j * XEN_PAGE_SIZE));
    i = j;
  }
}

/**
 * Everything after RAM and the magic pages, into a machine built for this state (same RAM size, same profile): the
 * registers, the timer with the guest's counter continuing from the saved value, the GIC, the device (its ring
 * indices re-read from the page), a queued abort, and a notification the guest side had not handled yet.
 */
export function applyMachine(p: Omit<MachineParts, 'magic' | 'ram'>, s: MachineState): void {
  const { vcpu, vuart } = p;
  if (s.vuart.profile !== vuart.profile) throw new Error(`restore: a ${s.vuart.profile} vuart saved, this domain has ${vuart.profile}`);
  applyCpu(vcpu.uc, s.cpu.registers);
  vcpu.timer.load(s.cpu.timer);
  p.gic.load(s.gic);
  if (!vuart.xencons) throw new Error('restore: the vuart has no ring page (a dom0less console cannot be restored)');
  vuart.xencons.adopt();
  vuart.device.load(s.vuart.device);
  p.gic.setLevel(vuart.spi, vuart.device.irqLevel); // the device's line as the loaded state drives it
  if (s.cpu.queuedAbort) vcpu.queueDataAbort(s.cpu.queuedAbort.addr, s.cpu.queuedAbort.write);
  // The handler re-derives the device from the ring: harmless when nothing was pending, and it delivers a
  // notification that was in flight at the save.
  vuart.device.notification();
}

/**
 * The state with the magic pages as they are now: after the console backend stopped serving a paused domain, its
 * own indices (out_cons, in_prod) and the input it wrote are final, so the file carries exactly the bytes that
 * backend did not take (they come out after restore) and the input it gave (the guest reads it after restore).
 */
export function withMagic(state: MachineState, magicNow: Uint8Array): MachineState {
  const magic = Uint8Array.from(magicNow);
  return { ...state, magic, vuart: { ...state.vuart, ring: ringIndicesOf(magic) } };
}

/** The GuestImage a restored machine is built with: only its RAM range is used. */
export function restoreImage(state: MachineState): { ramBase: number; ramSize: number; segments: []; entry: number; x0: number } {
  return { ramBase: state.ram.base, ramSize: state.ram.size, segments: [], entry: 0, x0: 0 };
}
