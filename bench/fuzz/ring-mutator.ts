// Worker thread of the hostile-ring campaign (bench/fuzz/ring.ts): scribbles on one console ring page through the
// shared memory while the device and the console backend use it in the main thread. Indices get hostile values
// (random, off by one, off by a ring size, half the index space away), data bytes and the rest of the page get
// random bytes. It touches nothing but the page it is given (the campaign checks canaries around it).
import { workerData, parentPort } from 'node:worker_threads';
import { Prng } from './prng.js';

export interface MutatorInit {
  buffer: SharedArrayBuffer;
  /** The ring page's offset in buffer. */
  pageOffset: number;
  seed: number;
  /** Stop after this many mutations (or when ctl[0] becomes 1). */
  mutations: number;
  /** [0]: stop flag (set by the campaign); [1]: mutations done so far (published by us). */
  ctl: SharedArrayBuffer;
}

const init = workerData as MutatorInit;
const rng = new Prng(init.seed);
const page = new Uint8Array(init.buffer, init.pageOffset, 4096);
const idx = new Int32Array(init.buffer, init.pageOffset + 0xc00, 4);
const ctl = new Int32Array(init.ctl);
const SIZES = [1024, 1024, 2048, 2048]; // in_cons, in_prod, out_cons, out_prod

let done = 0;
while (done < init.mutations && Atomics.load(ctl, 0) === 0) {
  for (let k = 0; k < 16; k++) {
    const r = rng.int(100);
    if (r < 45) {
      const w = rng.int(4);
      const cur = Atomics.load(idx, w);
      const other = Atomics.load(idx, w ^ 1); // the other index of the same half
      const size = SIZES[w]!;
      let v: number;
      switch (rng.int(7)) {
        case 0:
          v = rng.u32();
          break;
        case 1:
          v = cur + rng.range(-2, 2);
          break;
        case 2:
          v = other + size + rng.range(0, 2);
          break;
        case 3:
          v = other - size - rng.range(0, 2);
          break;
        case 4:
          v = other + rng.range(0, size);
          break;
        case 5:
          v = cur + 0x80000000;
          break;
        default:
          v = rng.pick([0, -1, 0x7fffffff, -0x80000000]);
      }
      Atomics.store(idx, w, v | 0);
    } else if (r < 90) {
      page[rng.int(0xc00)] = rng.int(256); // in[] and out[]
    } else if (r < 95) {
      page[0xc10] = rng.int(256); // connection
    } else {
      page[0xc11 + rng.int(4096 - 0xc11)] = rng.int(256); // padding after the header
    }
  }
  done += 16;
  Atomics.store(ctl, 1, done);
  // Spread the mutations over the device's and the backend's work instead of finishing before they start.
  Atomics.wait(ctl, 0, 0, 0.02);
}
Atomics.store(ctl, 1, done);
parentPort?.postMessage({ done });
