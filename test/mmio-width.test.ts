// Issue 7 §3: unicorn 2.1.1 splits an 8-byte MMIO access into two 4-byte callbacks (so a device accepts the first
// half of an access it refuses as a whole); src/cpu/mmio-width.ts makes a region take it whole. These check the
// scratch proof the self-test runs, and that it does fail on unicorn's own behaviour.
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { loadUnicorn, Uc } from '../src/cpu/unicorn.js';
import { unicornLibraryPath } from '../src/toolstack/cache.js';
import { proveWholeMmio, widenMmio } from '../src/cpu/mmio-width.js';

const T = { timeout: 30_000 };

test('a widened region gets a 64-bit store and load as one call each, with the whole value', T, () => {
  assert.equal(proveWholeMmio(loadUnicorn(unicornLibraryPath())), null);
});

test('without widening, unicorn hands the same accesses over in 4-byte halves: the proof fails and says so', T, () => {
  const why = proveWholeMmio(loadUnicorn(unicornLibraryPath()), false);
  assert.match(why ?? '', /^callbacks w4@0=44332211 w4@4=88776655 r4@8 r4@12, want w8@0=8877665544332211 r8@8$/);
});

test('widening a region this engine did not map is refused with a reason; widening twice is harmless', T, () => {
  const u = new Uc(loadUnicorn(unicornLibraryPath()));
  try {
    assert.equal(widenMmio(u, [0x1000]), 'region not mapped through this engine');
    u.mmioMap(0x1000, 0x1000, () => 0, () => {});
    assert.equal(widenMmio(u, [0x1000]), null);
    assert.equal(widenMmio(u, [0x1000]), null);
  } finally {
    u.close();
  }
});
