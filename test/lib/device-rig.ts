// A vpl011 on its own for device tests: a ring page in a SharedArrayBuffer with both ends, a vGIC that records the
// SPI 32 line, and backend helpers that fill/drain the ring and signal the device as the console daemon would.
import { Vpl011, type Vpl011Profile } from '../../src/device/vpl011.js';
import { ConsoleRing, ConsoleRingBackend } from '../../src/xen/ring.js';
import { SpiLevels } from '../../src/xen/spi-levels.js';
import { spiLine } from '../../src/xen/vgic.js';
import { LINE_EVENT_WORDS, LineEventQueue } from '../../src/xen/line-events.js';

/** `start`: the value of all four ring indices at reset (free-running u32: near 2^32 the run crosses the wrap). */
export function deviceRig(profile: Vpl011Profile, logs?: string[], start = 0) {
  const sab = new SharedArrayBuffer(4096);
  const page = new DataView(sab);
  for (const o of [0xc00, 0xc04, 0xc08, 0xc0c]) page.setUint32(o, start >>> 0, true);
  const ring = new ConsoleRing(sab);
  const backend = new ConsoleRingBackend(sab);
  const vgic = new SpiLevels();
  vgic.reserveSpi(32);
  let notifies = 0;
  // The line-event area, as the event-channel table holds it for a domain (host-only memory).
  const lineWords = new Int32Array(new SharedArrayBuffer(LINE_EVENT_WORDS * 4));
  const lineEvents = new LineEventQueue(lineWords);
  const dev = new Vpl011({
    lineEvents,
    ring,
    irq: spiLine(vgic, 32),
    notify: () => void notifies++,
    profile,
    ...(logs ? { log: (m: string) => logs.push(m) } : {}),
  });
  const fill = (s: string | Uint8Array): number => {
    const n = backend.writeIn(typeof s === 'string' ? new TextEncoder().encode(s) : s);
    dev.notification();
    return n;
  };
  const drainBytes = (max?: number): Uint8Array => {
    const b = backend.drainOut(max);
    dev.notification();
    return b;
  };
  const drainText = (): string => Buffer.from(drainBytes()).toString('latin1');
  /** The backend receiving `byte` with line errors `bits` (LineError): entry first, then the byte; notify unless told. */
  const lineEvent = (bits: number, byte = 0, notify = true): boolean => {
    if (backend.inFree() === 0 || !lineEvents.post(backend.inProd, bits)) return false;
    backend.writeIn(Uint8Array.of(byte));
    if (notify) dev.notification();
    return true;
  };
  return { sab, page, ring, backend, vgic, dev, fill, drainBytes, drainText, lineEvent, lineEvents, lineWords, notifies: () => notifies, line: () => vgic.level(32) };
}
