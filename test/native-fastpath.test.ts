// The native fast path (src/cpu/native/fastpath.c) against the TypeScript device, its specification: two vpl011s
// over two rings, one driven through the TypeScript device directly, one through the C MMIO callbacks (which serve
// FR/DR themselves and fall back to the same TypeScript device for everything else), on the same access streams
// (fast-check, both profiles, streams long enough to fill and wrap the rings), with the backend draining and
// filling and a hostile guest scribbling indices. After every step: the same values read, the same ring pages
// (bytes and indices), registers, counters, interrupt line changes and backend notifications.
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import koffi from 'koffi';
import { deviceRig } from './lib/device-rig.js';
import { HotF64, HotWord } from '../src/device/hot-state.js';
import { Reg } from '../src/device/spec.js';
import { VPL011_PROFILES, type Vpl011Profile } from '../src/device/vpl011.js';
import { loadNative, nativeLibraryPath } from '../src/cpu/native.js';
import '../src/cpu/unicorn.js'; // the callback prototypes
import { XENCONS_IN_CONS, XENCONS_OUT_CONS } from '../src/xen/ring.js';
import { MMIO_DONE } from '../src/device/ports.js';

const built = existsSync(nativeLibraryPath());

interface CRaw {
  fp_new(hot: Uint8Array, page: Uint8Array, doorbell: Int32Array, lineEvents: Int32Array): unknown;
  fp_set_js(s: unknown, rd: unknown, wr: unknown, msr: unknown, tail: unknown): void;
  fp_free(s: unknown): void;
  fp_mmio_read(uc: null, off: number, size: number, user: unknown): number | bigint;
  fp_mmio_write(uc: null, off: number, size: number, value: number, user: unknown): void;
}

function cRaw(): CRaw {
  assert.ok(loadNative(), 'the native library loads'); // defines the tail prototype
  const l = koffi.load(nativeLibraryPath());
  return {
    fp_new: l.func('void *fp_new(void *hot, void *page, void *doorbell, void *line_events)'),
    fp_set_js: l.func('void fp_set_js(void *s, vpl011_uc_mmio_read_cb *rd, vpl011_uc_mmio_write_cb *wr, vpl011_uc_sys_cb *msr, vpl011_fp_tail_cb *tail)'),
    fp_free: l.func('void fp_free(void *s)'),
    fp_mmio_read: l.func('uint64_t fp_mmio_read(void *uc, uint64_t off, unsigned int size, void *user)'),
    fp_mmio_write: l.func('void fp_mmio_write(void *uc, uint64_t off, unsigned int size, uint64_t value, void *user)'),
  } as unknown as CRaw;
}

type Op =
  | { k: 'read'; off: number; w: 1 | 2 | 4 | 8 }
  | { k: 'write'; off: number; w: 1 | 2 | 4 | 8; v: number }
  | { k: 'burst'; n: number; b: number }
  | { k: 'frPoll'; n: number }
  | { k: 'receive'; n: number }
  | { k: 'drain'; max: number }
  | { k: 'fill'; n: number; b: number }
  | { k: 'scribble'; at: number; v: number }
  | { k: 'doorbell' }
  | { k: 'lineEvent'; bits: number; b: number; notify: boolean }
  | { k: 'clock'; ms: number }
  | { k: 'toggle' };

const offsets = [Reg.DR, Reg.DR, Reg.DR, Reg.FR, Reg.FR, Reg.IMSC, Reg.ICR, Reg.RIS, Reg.MIS, Reg.RSR, Reg.RSR, Reg.CR, Reg.CR, Reg.LCR_H, Reg.IFLS, 0x800];
const width = fc.constantFrom<1 | 2 | 4 | 8>(1, 2, 4, 4, 4, 8);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ k: fc.constant('read' as const), off: fc.constantFrom(...offsets), w: width }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant('write' as const), off: fc.constantFrom(...offsets), w: width, v: fc.integer({ min: 0, max: 0xffff }) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('burst' as const), n: fc.integer({ min: 1, max: 2100 }), b: fc.integer({ min: 0, max: 255 }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('frPoll' as const), n: fc.integer({ min: 1, max: 40 }) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('receive' as const), n: fc.integer({ min: 1, max: 1100 }) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('drain' as const), max: fc.integer({ min: 1, max: 2048 }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('fill' as const), n: fc.integer({ min: 1, max: 1100 }), b: fc.integer({ min: 0, max: 255 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('scribble' as const), at: fc.constantFrom(XENCONS_OUT_CONS, XENCONS_IN_CONS + 4), v: fc.integer({ min: -5000, max: 5000 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('doorbell' as const) }) },
  // A BREAK / framing / parity error / overrun from the backend, notified or not yet (the C path must not serve that
  // byte without its bits).
  // Guest time passing (the pl011 receive timeout, armed in half the runs): both devices' safe-point tick.
  { weight: 2, arbitrary: fc.record({ k: fc.constant('clock' as const), ms: fc.constantFrom(0.05, 0.2, 0.3, 5) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('lineEvent' as const), bits: fc.integer({ min: 1, max: 15 }), b: fc.integer({ min: 0, max: 255 }), notify: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('toggle' as const) }) },
);

/** One rig whose guest accesses go through the C callbacks. */
function nativeRig(c: CRaw, profile: Vpl011Profile) {
  const r = deviceRig(profile);
  const doorbell = new Int32Array(new SharedArrayBuffer(4));
  const s = c.fp_new(new Uint8Array(r.ring.hot.buffer), r.ring.page, doorbell, r.lineWords);
  assert.ok(s, 'layout accepted');
  const box: { cold: { v: number } | undefined } = { cold: undefined };
  const keep = [
    koffi.register((_uc: unknown, off: number | bigint, sz: number) => {
      const v = r.dev.read(Number(off), sz as 1 | 2 | 4);
      box.cold = { v };
      return v >>> 0;
    }, koffi.pointer('vpl011_uc_mmio_read_cb')),
    koffi.register((_uc: unknown, off: number | bigint, sz: number, val: number | bigint) => {
      box.cold = { v: r.dev.write(Number(off), sz as 1 | 2 | 4, Number(val)) };
    }, koffi.pointer('vpl011_uc_mmio_write_cb')),
    koffi.register(() => 0, koffi.pointer('vpl011_uc_sys_cb')),
    koffi.register((flags: number, prod: number, cons: number) => r.dev.nativeTail(flags, prod, cons), koffi.pointer('vpl011_fp_tail_cb')),
  ];
  c.fp_set_js(s, keep[0], keep[1], keep[2], keep[3]);
  r.ring.hot.w[HotWord.Enabled] = 1;
  return {
    ...r,
    doorbell,
    read(off: number, w: 1 | 2 | 4 | 8): number {
      box.cold = undefined;
      const v = Number(c.fp_mmio_read(null, off, w, s));
      const got = box.cold as { v: number } | undefined;
      return got ? got.v : v;
    },
    write(off: number, w: 1 | 2 | 4 | 8, v: number): number {
      box.cold = undefined;
      c.fp_mmio_write(null, off, w, v, s);
      const got = box.cold as { v: number } | undefined;
      return got ? got.v : MMIO_DONE; // served by C: accepted
    },
    served: () => r.ring.hot.f[HotF64.NativeMmio]!,
    close() {
      r.ring.hot.w[HotWord.Enabled] = 0;
      c.fp_free(s);
      for (const k of keep) koffi.unregister(k);
    },
  };
}

function tsRig(profile: Vpl011Profile) {
  const r = deviceRig(profile);
  return { ...r, read: (off: number, w: 1 | 2 | 4 | 8) => r.dev.read(off, w), write: (off: number, w: 1 | 2 | 4 | 8, v: number) => r.dev.write(off, w, v) };
}

/** After every access: the device's and ring's whole hot state (indices, levels, FR, RIS, IMSC, line...). */
function sameHot(a: ReturnType<typeof tsRig>, b: ReturnType<typeof nativeRig>, where: string): void {
  const wa = a.ring.hot.w;
  const wb = b.ring.hot.w;
  for (let i = 0; i <= HotWord.RtMode; i++) if (wa[i] !== wb[i]) assert.fail(`${where}: hot word ${i}: C ${wb[i]} vs TS ${wa[i]}`);
  for (let i = 0; i <= HotF64.TxWhileDisabled; i++) if (a.ring.hot.f[i] !== b.ring.hot.f[i]) assert.fail(`${where}: counter ${i}`);
  if (a.notifies() !== b.notifies()) assert.fail(`${where}: notifications C ${b.notifies()} vs TS ${a.notifies()}`);
  if (a.line() !== b.line()) assert.fail(`${where}: line`);
}

function sameState(a: ReturnType<typeof tsRig>, b: ReturnType<typeof nativeRig>, where: string): void {
  assert.ok(Buffer.from(a.ring.page).equals(Buffer.from(b.ring.page)), `${where}: ring pages differ`);
  assert.deepEqual(b.dev.registers(), a.dev.registers(), `${where}: registers`);
  assert.deepEqual(b.dev.counters, a.dev.counters, `${where}: counters`);
  assert.equal(b.notifies(), a.notifies(), `${where}: notifications`);
  assert.equal(b.line(), a.line(), `${where}: interrupt line`);
  assert.equal(b.dev.irqLevel, a.dev.irqLevel, `${where}: device line`);
}

for (const profile of VPL011_PROFILES) {
  test(`native fast path = TypeScript device on the same access streams (${profile})`, { skip: !built && 'native library not built', timeout: 240_000 }, () => {
    const c = cRaw();
    let served = 0;
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 60 }), (ops) => {
        const a = tsRig(profile);
        const b = nativeRig(c, profile);
        let now = 0;
        try {
          if (profile === 'pl011') {
            // The receiver and transmitter enabled and the FIFO on, as Linux's driver sets them; at 115200 with the
            // guest clock given (a timed receive timeout) in half the runs.
            const timedRun = ops.length % 2 === 0;
            for (const x of [a, b]) {
              if (timedRun) x.dev.setRxClock(() => now), x.write(Reg.IBRD, 4, 13), x.write(Reg.FBRD, 4, 1);
              x.write(Reg.LCR_H, 4, 0x70), x.write(Reg.CR, 4, 0x301);
            }
          }
          ops.forEach((op, i) => {
            const where = `op ${i} ${JSON.stringify(op)}`;
            switch (op.k) {
              case 'read':
                assert.equal(b.read(op.off, op.w), a.read(op.off, op.w), `${where}: value`);
                break;
              case 'write':
                assert.equal(b.write(op.off, op.w, op.v), a.write(op.off, op.w, op.v), `${where}: accepted`);
                break;
              case 'burst':
                // A guest transmitting: FR poll then DR write, as the bare-metal flood and Linux's console do.
                for (let j = 0; j < op.n; j++) {
                  assert.equal(b.read(Reg.FR, 4), a.read(Reg.FR, 4), `${where}: FR at byte ${j}`);
                  a.write(Reg.DR, 4, (op.b + j) & 0xff);
                  b.write(Reg.DR, 4, (op.b + j) & 0xff);
                  sameHot(a, b, `${where} byte ${j}`);
                }
                break;
              case 'receive':
                // A guest receiving: while FR.RXFE is clear, read DR (Linux's pl011_fifo_to_tty), up to n bytes.
                for (let j = 0; j < op.n; j++) {
                  const fr = a.read(Reg.FR, 4);
                  assert.equal(b.read(Reg.FR, 4), fr, `${where}: FR at byte ${j}`);
                  if ((fr & 0x10) !== 0) break;
                  assert.equal(b.read(Reg.DR, 4), a.read(Reg.DR, 4), `${where}: DR at byte ${j}`);
                  sameHot(a, b, `${where} byte ${j}`);
                }
                break;
              case 'frPoll':
                for (let j = 0; j < op.n; j++) {
                  assert.equal(b.read(Reg.FR, 4), a.read(Reg.FR, 4), `${where}: FR poll ${j}`);
                  sameHot(a, b, `${where} poll ${j}`);
                }
                break;
              case 'drain':
                assert.deepEqual(b.drainBytes(op.max), a.drainBytes(op.max), `${where}: drained bytes`);
                break;
              case 'fill': {
                const data = Uint8Array.from({ length: op.n }, (_, j) => (op.b + j) & 0xff);
                assert.equal(b.fill(data), a.fill(data), `${where}: filled`);
                break;
              }
              case 'scribble':
                for (const x of [a, b]) new DataView(x.sab).setInt32(op.at, op.v, true);
                break;
              case 'doorbell':
                Atomics.add(b.doorbell, 0, 1);
                break;
              case 'clock':
                now += op.ms;
                a.dev.rxTimeoutTick();
                b.dev.rxTimeoutTick();
                break;
              case 'lineEvent':
                assert.equal(b.lineEvent(op.bits, op.b, op.notify), a.lineEvent(op.bits, op.b, op.notify), `${where}: posted`);
                break;
              case 'toggle':
                b.ring.hot.w[HotWord.Enabled] ^= 1;
                break;
            }
            sameHot(a, b, where);
            sameState(a, b, where);
          });
          served += b.served();
        } finally {
          b.close();
        }
      }),
      { numRuns: 60 },
    );
    assert.ok(served > 10_000, `the C path served accesses itself (${served}), not only the fallback`);
  });
}

test('VPL011_NATIVE=0 forces the TypeScript path; a missing library gives one hint line and the TypeScript path', { timeout: 60_000 }, () => {
  const probe = `import('${new URL('../src/cpu/native.js', import.meta.url).href}').then((m) => { const a = m.loadNative(); const b = m.loadNative(); console.log(JSON.stringify({ a: a !== null, b: b !== null })); })`;
  const run = (env: Record<string, string>) => spawnSync(process.execPath, ['-e', probe], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 30_000 });
  const off = run({ VPL011_NATIVE: '0' });
  assert.equal(off.status, 0, off.stderr);
  assert.deepEqual(JSON.parse(off.stdout), { a: false, b: false });
  assert.equal(off.stderr, '', 'forcing TypeScript is silent');
  const missing = run({ VPL011_NATIVE: '1', VPL011_NATIVE_LIB: '/nonexistent/libvpl011_fastpath.so' });
  assert.equal(missing.status, 0, missing.stderr);
  assert.deepEqual(JSON.parse(missing.stdout), { a: false, b: false });
  const lines = missing.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one hint line: ${missing.stderr}`);
  assert.match(lines[0]!, /not built.*C compiler.*setup\.sh.*TypeScript/);
  if (built) {
    const on = run({ VPL011_NATIVE: '1' });
    assert.deepEqual(JSON.parse(on.stdout), { a: true, b: true }, on.stderr);
  }
});

test('FR spin count: the C path counts in the machine\'s words, resets them on other accesses, and leaves the spinning read to the machine uncounted', { skip: !built && 'native library not built', timeout: 30_000 }, () => {
  const c = cRaw();
  const b = nativeRig(c, 'sbsa');
  try {
    const w = b.ring.hot.w;
    let cold = 0;
    const served = () => b.served();
    // FR = 0x90 (TXFE | RXFE), not TXFF: the machine's spin threshold is FR_SPIN_READS = 16.
    let before = served();
    b.read(Reg.FR, 4);
    assert.equal(w[HotWord.LastFr], 0x90);
    assert.equal(w[HotWord.FrRepeats], 1);
    for (let i = 2; i < 16; i++) b.read(Reg.FR, 4);
    assert.equal(served() - before, 15, 'reads 1..15 served in C');
    assert.equal(w[HotWord.FrRepeats], 15);
    before = served();
    b.read(Reg.FR, 4);
    if (served() === before) cold++;
    assert.equal(cold, 1, 'the 16th identical read goes to the machine');
    assert.equal(w[HotWord.FrRepeats], 15, 'uncounted: the machine counts it itself (Machine.mmioRead) and waits');
    b.write(Reg.DR, 4, 0x41);
    assert.equal(w[HotWord.FrRepeats], 0, 'a DR write served in C ends the spin for the machine too');
    b.read(Reg.FR, 4);
    b.read(Reg.DR, 4); // IN empty: to JS, still not an FR read
    assert.equal(w[HotWord.FrRepeats], 0, 'any other access ends the spin');
  } finally {
    b.close();
  }
});
