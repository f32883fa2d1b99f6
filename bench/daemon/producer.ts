// Synthetic guests for the daemon benchmark: no CPU, this worker plays the frontend side (what the vpl011 does for a
// guest) of many consoles by writing their rings directly: OUT bytes of a per-console pattern, published with
// Xen's ordering (data, then out_prod), and a notify on the empty -> non-empty edge. Console 0 is interactive: it
// echoes whatever arrives in its IN ring. Bulk copies, because the point is to load the daemon, not the producer.
import { parentPort, workerData } from 'node:worker_threads';
import { EventChannels } from '../../src/xen/evtchn.js';
import {
  XENCONS_IN_CONS, XENCONS_IN_OFFSET, XENCONS_IN_SIZE, XENCONS_OUT_OFFSET, XENCONS_OUT_SIZE, XENCONS_PAGE_SIZE,
} from '../../src/xen/ring.js';
import { patternByte } from './pattern.js';

export interface ProducerInit {
  pages: SharedArrayBuffer;
  evtchn: SharedArrayBuffer;
  /** Guest-side ports, one per console; console i is domain i + 1. */
  ports: number[];
  /** Bytes each streaming console writes in total (console 0 does not stream). */
  bytesPerConsole: number;
  /** Int32 word 0 = 1 once the main thread says go, 2 = stop. */
  control: SharedArrayBuffer;
}

const init = workerData as ProducerInit;
const ev = EventChannels.attach(init.evtchn);
const control = new Int32Array(init.control);
const n = init.ports.length;
const idx = (i: number) => new Int32Array(init.pages, i * XENCONS_PAGE_SIZE + XENCONS_IN_CONS, 4); // in_cons, in_prod, out_cons, out_prod
const views = Array.from({ length: n }, (_, i) => ({
  idx: idx(i),
  out: new Uint8Array(init.pages, i * XENCONS_PAGE_SIZE + XENCONS_OUT_OFFSET, XENCONS_OUT_SIZE),
  inp: new Uint8Array(init.pages, i * XENCONS_PAGE_SIZE + XENCONS_IN_OFFSET, XENCONS_IN_SIZE),
  sent: 0,
}));
const chunk = new Uint8Array(XENCONS_OUT_SIZE);
// The pattern depends on the console only through i * 13 mod 94: one precomputed stream per residue, so the
// producer copies (memcpy) instead of computing bytes, and the daemon, not the producer, is what is measured.
const streams = new Map<number, Uint8Array>();
function streamOf(i: number): Uint8Array {
  const key = (i * 13) % 94;
  let s = streams.get(key);
  if (!s) {
    s = new Uint8Array(init.bytesPerConsole);
    for (let k = 0; k < s.length; k++) s[k] = patternByte(i, k);
    streams.set(key, s);
  }
  return s;
}

function putOut(i: number, src: Uint8Array): number {
  const v = views[i]!;
  const prod = Atomics.load(v.idx, 3);
  const cons = Atomics.load(v.idx, 2);
  const free = XENCONS_OUT_SIZE - ((prod - cons) >>> 0);
  const m = Math.min(free, src.length);
  if (m <= 0) return 0;
  const start = prod & (XENCONS_OUT_SIZE - 1);
  const first = Math.min(m, XENCONS_OUT_SIZE - start);
  v.out.set(src.subarray(0, first), start);
  if (first < m) v.out.set(src.subarray(first, m), 0);
  Atomics.store(v.idx, 3, (prod + m) | 0);
  // Wake the backend when it may have seen the ring empty (the device's rule: docs/DEVICE.md).
  if (((prod - Atomics.load(v.idx, 2)) | 0) === 0) ev.notify(i + 1, init.ports[i]!);
  return m;
}

function echoInput(): void {
  const v = views[0]!;
  const prod = Atomics.load(v.idx, 1);
  const cons = Atomics.load(v.idx, 0);
  const level = (prod - cons) >>> 0;
  if (level === 0 || level > XENCONS_IN_SIZE) return;
  const bytes = new Uint8Array(level);
  for (let k = 0; k < level; k++) bytes[k] = v.inp[(cons + k) & (XENCONS_IN_SIZE - 1)]!;
  Atomics.store(v.idx, 0, (cons + level) | 0);
  let off = 0;
  while (off < level) off += putOut(0, bytes.subarray(off));
}

for (let i = 1; i < n; i++) streamOf(i); // before the clock starts
parentPort!.postMessage({ type: 'ready' });
while (Atomics.load(control, 0) === 0) Atomics.wait(control, 0, 0, 50);
let streaming = true;
while (Atomics.load(control, 0) !== 2) {
  echoInput();
  if (streaming) {
    streaming = false;
    for (let i = 1; i < n; i++) {
      if ((i & 31) === 0) echoInput(); // the interactive guest answers promptly, whatever the streams do
      const v = views[i]!;
      const left = init.bytesPerConsole - v.sent;
      if (left <= 0) continue;
      streaming = true;
      const m = Math.min(left, chunk.length);
      v.sent += putOut(i, streamOf(i).subarray(v.sent, v.sent + m));
    }
    if (!streaming) parentPort!.postMessage({ type: 'streamed' });
  } else {
    Atomics.wait(control, 0, 1, 1); // only the echo console is left: poll it every millisecond
  }
}
