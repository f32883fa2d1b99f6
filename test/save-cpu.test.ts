// The vCPU's saved registers on the real unicorn (src/cpu/cpu-state.ts) and the timer's counter continuity
// (src/cpu/timer.ts VirtTimer.state/load): every listed register is readable, a captured register set applied to a
// fresh engine reads back the same, and a restored guest's virtual counter continues from the saved value.
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { loadUnicorn, Uc, SYS, REG } from '../src/cpu/unicorn.js';
import { unicornLibraryPath } from '../src/toolstack/cache.js';
import { CPU_REGISTER_NAMES, SAVED_SYSREGS, applyCpu, captureCpu } from '../src/cpu/cpu-state.js';
import { VirtTimer } from '../src/cpu/timer.js';
import { SCR_EL3_VALUE, HCR_EL2_BASE } from '../src/cpu/el-registers.js';

function engine(): Uc {
  const u = new Uc(loadUnicorn(unicornLibraryPath()));
  u.setSys(SYS.SCR_EL3, SCR_EL3_VALUE);
  u.setSys(SYS.HCR_EL2, HCR_EL2_BASE);
  u.setReg(REG.PSTATE, 0x3c5n);
  return u;
}

const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
/** System registers a guest writes freely without side effects on an engine that does not run. */
const FREE = ['ttbr0_el1', 'ttbr1_el1', 'mair_el1', 'amair_el1', 'vbar_el1', 'elr_el1', 'spsr_el1', 'esr_el1', 'far_el1', 'par_el1', 'tpidr_el0', 'tpidrro_el0', 'tpidr_el1', 'contextidr_el1', 'tcr_el1', 'cntkctl_el1', 'afsr0_el1'];

test('every saved register is readable on the loaded unicorn, and the list has no duplicates', () => {
  const u = engine();
  try {
    const r = captureCpu(u);
    assert.deepEqual(Object.keys(r).sort(), [...CPU_REGISTER_NAMES].sort());
    assert.equal(new Set(CPU_REGISTER_NAMES).size, CPU_REGISTER_NAMES.length);
    assert.ok(Object.keys(SAVED_SYSREGS).length >= 40);
  } finally {
    u.close();
  }
});

test('property: registers captured from one engine, applied to a fresh one, read back identical (core, Q, FP, system)', () => {
  const a = engine();
  const b = engine();
  try {
    fc.assert(
      fc.property(
        fc.array(u64, { minLength: 31, maxLength: 31 }),
        fc.constantFrom(0x0n, 0x4n, 0x5n, 0x3c5n, 0x3c4n, 0x80000005n, 0x600003c0n),
        u64, u64, u64, u64,
        fc.array(fc.uint8Array({ minLength: 16, maxLength: 16 }), { minLength: 32, maxLength: 32 }),
        fc.array(u64, { minLength: FREE.length, maxLength: FREE.length }),
        (xs, pstate, sp0, sp1, sp, pc, qs, sys) => {
          a.setReg(REG.PSTATE, pstate);
          a.setReg(REG.SP_EL0, sp0);
          a.setReg(REG.SP_EL1, sp1);
          a.setReg(REG.SP, sp);
          xs.forEach((v, n) => a.setReg(n <= 28 ? REG.X0 + n : n === 29 ? REG.X29 : REG.X30, v));
          a.setReg(REG.PC, pc & ~3n);
          qs.forEach((q, n) => a.setReg128(104 + n, q));
          FREE.forEach((name, i) => a.setSys(SAVED_SYSREGS[name]!, sys[i]!));
          const saved = captureCpu(a);
          applyCpu(b, saved);
          assert.deepEqual(captureCpu(b), saved);
        },
      ),
      { numRuns: 40 },
    );
  } finally {
    a.close();
    b.close();
  }
});

test('a state with a missing or unknown register is refused before anything is written', () => {
  const u = engine();
  try {
    const r = captureCpu(u);
    const x5 = r.x5;
    const bad = { ...r, x5: 'zz' };
    assert.throws(() => applyCpu(u, bad), /register x5/);
    assert.throws(() => applyCpu(u, { ...r, bogus: '0'.repeat(16) }), /unknown register bogus/);
    assert.equal(captureCpu(u).x5, x5);
  } finally {
    u.close();
  }
});

test("the guest's virtual counter continues from the saved value (CNTVOFF_EL2), not from the host's clock", async () => {
  const a = engine();
  const b = engine();
  try {
    const ta = new VirtTimer(a);
    // A counter far from the host's (as after an hour saved): the restored guest must see it, not the gap.
    const saved = { ctl: 1n, cval: 123456789n, counter: 5_000_000_000_000n };
    const tb = new VirtTimer(b);
    tb.load(saved);
    const freq = Number(tb.freq);
    const c0 = b.sys(SYS.CNTVCT_EL0);
    assert.ok(c0 >= saved.counter && c0 < saved.counter + BigInt(freq), `counter ${c0} right after restore is not within 1 s of ${saved.counter}`);
    await new Promise((r) => setTimeout(r, 100));
    const c1 = b.sys(SYS.CNTVCT_EL0);
    const ms = Number(c1 - c0) / (freq / 1000);
    assert.ok(ms >= 90 && ms < 5000, `the counter advanced ${ms} ms in 100 ms`);
    assert.deepEqual({ ctl: tb.ctl, cval: tb.cval }, { ctl: 1n, cval: 123456789n });
    assert.equal(b.sys(SYS.CNTV_CVAL_EL0), 123456789n);
    // The timer fires on the restored counter: CVAL in the past is due at once.
    assert.equal(tb.poll(), true);
    // And the state a save takes reads the guest's counter, not the host's.
    const s = tb.state();
    assert.ok(s.counter >= c1 && s.counter < saved.counter + 60n * BigInt(freq));
    void ta;
  } finally {
    a.close();
    b.close();
  }
});
