// The native exception entry (fp_exc_enter in src/cpu/native/fastpath.c, used through src/cpu/native-exception.ts)
// against its specification, SyncEntry.enter / takeFromHook in src/cpu/exception.ts: two engines get the same
// register state and the same entry, one through TypeScript, one through C, and every register the entry reads or
// writes must then be equal, as must the returned records (fast-check over EL0t/EL1t/EL1h, flags, stacks, vectors,
// kinds, syndromes and fault addresses; and real SVC / alignment-fault exceptions taken from the INTR hook).
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import fc from 'fast-check';
import { loadUnicorn, Uc, REG, SYS, xreg, EXCP } from '../src/cpu/unicorn.js';
import { unicornLibraryPath } from '../src/toolstack/cache.js';
import { SyncEntry, type SyncRecord } from '../src/cpu/exception.js';
import { NativeEntry } from '../src/cpu/native-exception.js';
import { nativeLibraryPath } from '../src/cpu/native.js';
import { ExactFaults, faultLayout } from '../src/cpu/exact-fault.js';

const built = existsSync(nativeLibraryPath());
const skip = built ? false : 'native library not built (scripts/build-native.sh)';
const lib = loadUnicorn(unicornLibraryPath());

function engine(): Uc {
  const u = new Uc(lib);
  u.setSys(SYS.SCR_EL3, 0x531n);
  u.setSys(SYS.HCR_EL2, (1n << 31n) | (1n << 4n) | (1n << 3n));
  u.memMap(0x40000000, 0x20000);
  return u;
}

function snapshot(u: Uc): Record<string, bigint> {
  return {
    pc: u.reg(REG.PC), pstate: u.reg(REG.PSTATE), sp: u.reg(REG.SP), spEl0: u.reg(REG.SP_EL0), spEl1: u.reg(REG.SP_EL1),
    elr: u.reg(REG.ELR_EL1), spsr: u.sys(SYS.SPSR_EL1), esr: u.sys(SYS.ESR_EL1), far: u.sys(SYS.FAR_EL1), vbar: u.sys(SYS.VBAR_EL1),
  };
}

const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const state = fc.record({
  el: fc.constantFrom(0, 1),
  spx: fc.boolean(),
  nzcv: fc.integer({ min: 0, max: 15 }),
  daif: fc.integer({ min: 0, max: 15 }),
  pc: fc.bigInt({ min: 0n, max: (1n << 48n) - 1n }).map((v) => v & ~3n),
  sp: u64, spEl0: u64, spEl1: u64,
  vbar: fc.bigInt({ min: 0n, max: (1n << 48n) - 1n }).map((v) => v & ~0x7ffn),
  kind: fc.constantFrom('sync' as const, 'irq' as const, 'serror' as const),
  syndrome: fc.integer({ min: 0, max: 0xffffffff }),
  far: fc.option(u64, { nil: undefined }),
  targetEl: fc.constantFrom(1, 2),
});

test('native entry = SyncEntry.enter on random states: every register it touches, and the record', { skip, timeout: 120_000 }, () => {
  const a = engine();
  const b = engine();
  try {
    const ts = new SyncEntry(a);
    const nat = NativeEntry.attach(nativeLibraryPath(), b, 0n);
    assert.ok(nat, 'the native entry binds to the loaded libunicorn');
    fc.assert(fc.property(state, (s) => {
      const pstate = BigInt((s.nzcv << 28) | (s.daif << 6) | (s.el << 2) | (s.el === 1 && s.spx ? 1 : 0));
      let recA: SyncRecord | undefined;
      let recB: SyncRecord | undefined;
      for (const [u, enter] of [[a, (k: typeof s.kind) => (recA = ts.enter(k, s.syndrome, s.far, s.targetEl))], [b, (k: typeof s.kind) => (recB = nat!.enter(k, s.syndrome, s.far, s.targetEl))]] as const) {
        u.setReg(REG.PSTATE, pstate);
        u.setReg(REG.SP_EL0, s.spEl0);
        u.setReg(REG.SP_EL1, s.spEl1);
        u.setReg(REG.SP, s.sp);
        u.setReg(REG.PC, s.pc);
        u.setSys(SYS.VBAR_EL1, s.vbar);
        u.setSys(SYS.FAR_EL1, 0xdeadn); // so a missing FAR write shows
        enter(s.kind);
      }
      assert.deepEqual(snapshot(b), snapshot(a));
      assert.deepEqual(recB, recA);
    }), { numRuns: 400, seed: 0x7e7 });
  } finally {
    a.close();
    b.close();
  }
});

// EL1h code: svc #0x1234 at +0; an unaligned ldxr x0, [x5] at +0x100; the vector table at +0x800 (b . at +0xa00).
const CODE: ReadonlyArray<readonly [number, number]> = [[0x000, 0xd4024681], [0x100, 0xc85f7ca0], [0xa00, 0x14000000]];

for (const [what, entry, intno] of [['SVC #0x1234', 0x000, EXCP.SWI], ['alignment fault (unaligned LDXR)', 0x100, EXCP.DATA_ABORT]] as const) {
  test(`native takeFromHook = SyncEntry.takeFromHook for a real ${what}, env->exception read in place`, { skip, timeout: 60_000 }, () => {
    faultLayout(lib); // before the engines: the layout's scratch engine must not outlive or precede-close another
    const results: { snap: Record<string, bigint>; rec: SyncRecord; intr: number[] }[] = [];
    for (const native of [false, true]) {
      const u = engine();
      try {
        const img = Buffer.alloc(0x1000);
        for (const [o, w] of CODE) img.writeUInt32LE(w, o);
        u.memWrite(0x40000000, img);
        u.setSys(SYS.VBAR_EL1, 0x40000800n);
        u.setReg(xreg(5), 0x40010003n);
        u.setReg(REG.SP, 0x40018000n);
        u.setReg(REG.PSTATE, 0x3c5n);
        const se = new SyncEntry(u);
        if (native) {
          const env = ExactFaults.attach(u)?.envAddress() ?? 0n;
          assert.notEqual(env, 0n, 'the env address is known (exact-fault layout proved)');
          se.native = NativeEntry.attach(nativeLibraryPath(), u, env);
        }
        const intr: number[] = [];
        let rec: SyncRecord | undefined;
        u.hookIntr((n) => {
          intr.push(n);
          if (rec === undefined) rec = se.takeFromHook(n);
          u.stop();
        });
        u.start(0x40000000n + BigInt(entry));
        assert.ok(rec, `an exception was taken (${intr.join(',')})`);
        results.push({ snap: snapshot(u), rec, intr });
      } finally {
        u.close();
      }
    }
    assert.deepEqual(results[1], results[0]);
    assert.equal(results[0]!.intr[0], intno);
    assert.equal(results[0]!.snap['elr'], 0x40000000n + BigInt(entry) + (intno === EXCP.SWI ? 4n : 0n));
  });
}
