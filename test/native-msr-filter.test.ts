// The native MSR filter's timer decision (src/cpu/native/fastpath.c timer_due): an MSR reaches JS (a safe point,
// where the timer fires) once the timer's next check time (HotF64.TimerCheckMonoMs, CLOCK_MONOTONIC ms) has come.
// The filter reads the clock only when a TSC gate says the time may have come; this checks, against the clock read
// before each call, that no MSR at or past the check time is held back (never later than a clock read per MSR), that
// MSRs well before it are not passed, and that the gate does take most decisions once calibrated.
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import fc from 'fast-check';
import koffi from 'koffi';
import { deviceRig } from './lib/device-rig.js';
import { HotF64, HotWord } from '../src/device/hot-state.js';
import { loadNative, nativeLibraryPath } from '../src/cpu/native.js';
import '../src/cpu/unicorn.js'; // the callback prototypes

const built = existsSync(nativeLibraryPath());

/** DAIF as uc_arm64_cp_reg {crn, crm, op0, op1, op2, pad; u64 val}: a non-timer register (`msr daif` of a spinlock). */
function daif(): Buffer {
  const b = Buffer.alloc(32);
  b.writeUInt32LE(4, 0);
  b.writeUInt32LE(2, 4);
  b.writeUInt32LE(3, 8);
  b.writeUInt32LE(3, 12);
  b.writeUInt32LE(1, 16);
  return b;
}

test('MSR filter: every MSR at or after the timer check time reaches JS, none well before it (TSC gate vs the clock)', { skip: !built && 'native library not built', timeout: 120_000 }, () => {
  const native = loadNative();
  assert.ok(native, 'the native library loads');
  const l = koffi.load(nativeLibraryPath());
  const fpNew = l.func('void *fp_new(void *hot, void *page, void *doorbell, void *line_events)');
  const fpSetJs = l.func('void fp_set_js(void *s, vpl011_uc_mmio_read_cb *rd, vpl011_uc_mmio_write_cb *wr, vpl011_uc_sys_cb *msr, vpl011_fp_tail_cb *tail)');
  const fpFree = l.func('void fp_free(void *s)');
  const fpMsr = l.func('uint32_t fp_msr(void *uc, int reg, void *cp, void *user)');
  const fpGated = l.func('double fp_gated(void *s)');
  const mono = l.func('double fp_mono_ms(void)');
  const r = deviceRig('sbsa');
  const doorbell = new Int32Array(new SharedArrayBuffer(4));
  const s = fpNew(new Uint8Array(r.ring.hot.buffer), r.ring.page, doorbell, r.lineWords);
  assert.ok(s, 'layout accepted');
  let passes = 0;
  const msrCb = koffi.register(() => {
    passes++;
    return 0;
  }, koffi.pointer('vpl011_uc_sys_cb'));
  const f = r.ring.hot.f;
  const w = r.ring.hot.w;
  const cp = daif();
  try {
    fpSetJs(s, null, null, msrCb, null);
    /** One MSR; whether it reached JS, and the clock read just before it. */
    const call = (): { passed: boolean; before: number } => {
      const before = mono() as number;
      const n = passes;
      fpMsr(null, 0, cp, s);
      return { passed: passes !== n, before };
    };
    let late = 0;
    let early = 0;
    let calls = 0;
    // Calibration: the gate is used only once its TSC rate is measured over >= 100 ms.
    f[HotF64.TimerCheckMonoMs] = (mono() as number) + 1e6;
    const calEnd = (mono() as number) + 150;
    while ((mono() as number) < calEnd) call();
    fc.assert(
      fc.property(fc.array(fc.record({ ahead: fc.oneof(fc.double({ min: -1, max: 8, noNaN: true }), fc.constantFrom(0, 0.01, 0.05, 0.3, 1e9)), tailMs: fc.double({ min: 0, max: 3, noNaN: true }) }), { minLength: 1, maxLength: 6 }), (steps) => {
        for (const st of steps) {
          const check = (mono() as number) + st.ahead;
          f[HotF64.TimerCheckMonoMs] = check;
          // Call until the check time and `tailMs` past it (or a bounded while for a far one).
          const end = Math.min(check, (mono() as number) + 10) + st.tailMs;
          for (;;) {
            w[HotWord.MsrSince] = 0; // keep the every-64th pass out of the way: only the timer decides here
            const { passed, before } = call();
            calls++;
            if (before >= check && !passed) late++;
            // Passed: it must be due by the clock read right after it (the C side read it between the two reads).
            if (passed && (mono() as number) < check) early++;
            if (passed || before >= end) break;
          }
        }
        return late === 0 && early === 0;
      }),
      { numRuns: 25 },
    );
    assert.equal(late, 0, 'no MSR at or after the check time was held back');
    assert.equal(early, 0, 'no MSR before the check time was passed for the timer');
    const gated = fpGated(s) as number;
    if (process.arch === 'x64') assert.ok(gated > calls / 4, `the TSC gate took ${gated} of ${calls} decisions (an x86-64 host with an invariant TSC)`);
  } finally {
    fpFree(s);
    koffi.unregister(msrCb);
  }
});
