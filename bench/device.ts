// Device-core micro-benchmark (not a test): ns per DR write, FR read and DR read, with the console ring in a
// SharedArrayBuffer. The backend drains / fills between batches so the ring never blocks.
// Run: npm run build && node dist/bench/device.js
import { pathToFileURL } from 'node:url';
import { Vpl011 } from '../src/device/vpl011.js';
import { Reg } from '../src/device/spec.js';
import { ConsoleRing, ConsoleRingBackend, XENCONS_IN_SIZE } from '../src/xen/ring.js';

const BATCH = 1000; // < 1024 (IN) and < 2048 (OUT): one batch never fills the ring
const ROUNDS = 3000;

interface Row {
  op: string;
  ns: number;
}

function measure(label: string, batch: (dev: Vpl011) => number, between: () => void, dev: Vpl011): Row {
  let sink = 0;
  // warm-up so the measurement sees optimised code
  for (let r = 0; r < 300; r++) {
    between();
    sink += batch(dev);
  }
  let best = Infinity;
  for (let rep = 0; rep < 5; rep++) {
    let total = 0n;
    for (let r = 0; r < ROUNDS; r++) {
      between();
      const t0 = process.hrtime.bigint();
      sink += batch(dev);
      total += process.hrtime.bigint() - t0;
    }
    best = Math.min(best, Number(total) / (ROUNDS * BATCH));
  }
  if (sink === 0.5) console.log(''); // keep `sink` alive
  return { op: label, ns: best };
}

export async function run(): Promise<void> {
  const sab = new SharedArrayBuffer(4096);
  const ring = new ConsoleRing(sab, 0);
  const backend = new ConsoleRingBackend(sab, 0);
  let notifies = 0;
  const dev = new Vpl011({ ring, irq: { set: () => {} }, notify: () => void notifies++ });
  dev.write(Reg.IMSC, 4, 0x70);
  const drainBuf = new Uint8Array(4096);
  const fill = new Uint8Array(XENCONS_IN_SIZE).fill(0x61);

  const drDrainOut = (): void => {
    backend.readOut(drainBuf);
    dev.notification();
  };
  const fillIn = (): void => {
    backend.writeIn(fill);
    dev.notification();
  };

  const rows: Row[] = [
    measure(
      'DR write (8-bit)',
      (d) => {
        for (let i = 0; i < BATCH; i++) d.write(Reg.DR, 1, 0x41);
        return 1;
      },
      drDrainOut,
      dev,
    ),
    measure(
      'FR read (32-bit)',
      (d) => {
        let s = 0;
        for (let i = 0; i < BATCH; i++) s += d.read(Reg.FR, 4);
        return s;
      },
      () => {},
      dev,
    ),
    measure(
      'DR read (32-bit)',
      (d) => {
        let s = 0;
        for (let i = 0; i < BATCH; i++) s += d.read(Reg.DR, 4);
        return s;
      },
      fillIn,
      dev,
    ),
  ];
  console.log(`vpl011 device core, node ${process.version}, batch ${BATCH} x ${ROUNDS} rounds, best of 5`);
  console.log('| access | ns per access |');
  console.log('|---|---|');
  for (const r of rows) console.log(`| ${r.op} | ${r.ns.toFixed(1)} |`);
  console.log(`(backend notifications during the run: ${notifies})`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await run();
}
