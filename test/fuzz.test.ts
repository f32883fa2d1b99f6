// A small, fixed-seed slice of each fuzz campaign of `npm run fuzz` (bench/fuzz/), so that a regression a campaign
// would find is caught by `npm test`. Each slice is a few seconds; the full counts and figures are in
// bench/RESULTS.md. The checkers are shown to bite: a device sabotaged in a way a real bug would look makes the MMIO
// campaign fail.
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { runMmioCampaign } from '../bench/fuzz/mmio.js';
import { runRingCampaign } from '../bench/fuzz/ring.js';
import { runConfigCampaign } from '../bench/fuzz/config.js';
import { runControlCampaign } from '../bench/fuzz/control.js';
import { Prng, parseSeed, subSeed } from '../bench/fuzz/prng.js';
import { Vpl011 } from '../src/device/vpl011.js';
import { MMIO_ABORT, MMIO_DONE } from '../src/device/ports.js';
import { ConfigError, parseConfig } from '../src/toolstack/config.js';

const SEED = 0x5eed0008;

test('prng: a seed fixes the sequence; sub-seeds differ; seeds parse as decimal or hex', { timeout: 5_000 }, () => {
  const a = new Prng(42);
  const b = new Prng(42);
  const xs = Array.from({ length: 100 }, () => a.u32());
  assert.deepEqual(xs, Array.from({ length: 100 }, () => b.u32()));
  assert.ok(new Set(xs).size > 95, 'not constant');
  assert.notEqual(subSeed(1, 0), subSeed(1, 1));
  assert.equal(parseSeed('0x10'), 16);
  assert.equal(parseSeed('4294967295'), 0xffffffff);
  assert.throws(() => parseSeed('-1'), RangeError);
  assert.throws(() => parseSeed('0x100000000'), RangeError);
  for (let i = 0; i < 1000; i++) {
    const v = a.int(7);
    assert.ok(Number.isInteger(v) && v >= 0 && v < 7);
  }
});

for (const profile of ['sbsa', 'pl011'] as const) {
  test(`MMIO campaign slice (${profile}): 150,000 random operations, invariants after each`, { timeout: 120_000 }, () => {
    const r = runMmioCampaign({ profile, seed: SEED, ops: 150_000 });
    assert.equal(r.failure, undefined, r.failure);
    assert.equal(r.ops, 150_000);
    // The slice reaches the states it claims to check.
    assert.ok(r.reached.outFull > 0 && r.reached.outEmpty > 0 && r.reached.inFull > 0 && r.reached.inEmpty > 0, JSON.stringify(r.reached));
    assert.ok(r.exactChecks > r.ops / 2, `exact checks ${r.exactChecks}`);
    assert.ok(r.corruptNotifications > 0 && r.corruptRingEvents >= r.corruptNotifications);
    // Replays exactly.
    const again = runMmioCampaign({ profile, seed: SEED, ops: 20_000 });
    const first = runMmioCampaign({ profile, seed: SEED, ops: 20_000 });
    assert.deepEqual({ ...again, seconds: 0 }, { ...first, seconds: 0 });
  });
}

test('MMIO campaign bites: a device whose FR misses TXFF when OUT is full, or whose line lags MIS, is caught', { timeout: 60_000 }, () => {
  const proto = Vpl011.prototype as unknown as { read: Vpl011['read']; write: Vpl011['write'] };
  const read = proto.read;
  const write = proto.write;
  try {
    proto.read = function (this: Vpl011, offset, width) {
      const v = read.call(this, offset, width);
      return offset === 0x18 && v !== MMIO_ABORT ? v & ~0x28 : v; // FR without TXFF/BUSY
    };
    const r = runMmioCampaign({ profile: 'sbsa', seed: SEED, ops: 150_000 });
    assert.match(r.failure ?? '', /TXFF|BUSY/, 'the FR checker caught it');
    assert.match(r.failure ?? '', /last operations:/, 'with the operations that led there');
    proto.read = read;
    // IMSC writes that do not re-derive the line (a lost interrupt).
    proto.write = function (this: Vpl011, offset, width, value) {
      if (offset === 0x38 && width === 4) {
        (this as unknown as { uartimsc: number }).uartimsc = value >>> 0;
        return MMIO_DONE;
      }
      return write.call(this, offset, width, value);
    };
    const s = runMmioCampaign({ profile: 'pl011', seed: SEED, ops: 150_000 });
    assert.match(s.failure ?? '', /line|MIS/, 'the line checker caught it');
  } finally {
    proto.read = read;
    proto.write = write;
  }
});

test('hostile-ring campaign slice: 20,000 mutations from another thread; the healthy console is exact', { timeout: 120_000 }, async () => {
  for (const victimProfile of ['sbsa', 'pl011'] as const) {
    const r = await runRingCampaign({ seed: SEED, mutations: 10_000, victimProfile, limitMs: 90_000 });
    assert.equal(r.failure, undefined, r.failure);
    assert.ok(r.mutations >= 10_000);
    assert.ok(r.healthyBytesOut > 0 && r.healthyBytesIn > 0, 'the healthy console moved data both ways');
    assert.ok(r.victimCorruptDevice > 0, 'corruption was counted');
  }
});

test('config campaign slice: 3,000 random files end in a config or a ConfigError with file:line', { timeout: 120_000 }, () => {
  const valid = 'name = "fz"\nkind = "bare"\nkernel = "/etc/hostname"\nmemory = 16\n';
  const r = runConfigCampaign({ seed: SEED, files: 3000, valid, file: '/tmp/vpl011-fuzz/fz.cfg' });
  assert.deepEqual(r.defects, []);
  assert.equal(r.valid + r.rejected, 3000);
  assert.ok(r.valid > 0, 'some mutated configs stay valid, so the checks after the syntax run');
});

test('a config nested 200,000 levels deep is a ConfigError naming file:line', { timeout: 30_000 }, () => {
  const text = `kernel = ${'['.repeat(200_000)}\n`;
  assert.throws(() => parseConfig(text, '/fz/deep.cfg', { checkFiles: false }), (e: unknown) => e instanceof ConfigError && /deep\.cfg:1/.test(e.message));
});

test('control-socket campaign slice: 1,500 hostile requests to a real daemon, which answers every one and stays up', { timeout: 180_000 }, async () => {
  const r = await runControlCampaign({ seed: SEED, requests: 1500, limitMs: 150_000 });
  assert.deepEqual(r.crashes.map((c) => c.output), []);
  assert.equal(r.failure, undefined, r.failure);
  assert.ok(r.requests >= 1500);
  assert.equal(r.responses, r.requests, 'one response per request');
  assert.equal(r.aliveAtEnd, true);
  // The slice includes the kinds that found defects: Object.prototype names as ops, config files via up.
  assert.ok((r.byKind['unknown-op'] ?? 0) > 0 && r.configFilesSent > 0);
});
