// The insight snapshot is consistent while the vCPU thread publishes (src/vmm/insight.ts seqlock): a writer thread
// publishes snapshots whose every number is the same k, as fast as it can; a reader in this thread must never see
// two different numbers in one snapshot. And the access-trace reader never returns a record the writer was
// overwriting (each record's fields are all its index).
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { INSIGHT_BYTES, initInsightRegion, readInsight, type DeviceInsight } from '../src/vmm/insight.js';

const WRITER = `
const { workerData } = require('node:worker_threads');
import(workerData.mod).then(({ InsightPublisher }) => {
  const p = new InsightPublisher(workerData.buf);
  const stop = new Int32Array(workerData.stop);
  for (let k = 1; Atomics.load(stop, 0) === 0; k++) {
    const c = {};
    for (const n of workerData.counters) c[n] = k;
    p.publish({
      publishedAt: k, running: true, idle: true, profile: 'sbsa', fr: k,
      irq: { profile: 'sbsa', ris: k, imsc: k, mis: k, line: true, holding: k, inLevel: k, outLevel: k, rxOn: true, txiMaxOut: k, rxiMinIn: k, inSize: k, outSize: k, txLatchesOnDrWriteOnly: true },
      counters: c, frontend: { inCons: k, inProdSeen: k, outProd: k, outConsSeen: k },
      spi: { intid: k, line: true, enabled: true, pending: true, active: true, priority: k, distributorOn: true, cpuInterfaceOn: true, pmr: k, runningPriority: k, signalled: true },
      vcpu: { mmio: k, nativeMmio: k, irqs: k, frStalls: k, wfiSleeps: k },
    });
  }
});
`;

function numbers(s: DeviceInsight): number[] {
  return [s.publishedAt, s.fr, s.irq.ris, s.irq.imsc, s.irq.holding, s.irq.rxiMinIn, ...Object.values(s.counters), s.frontend.inCons, s.frontend.outConsSeen, s.spi.intid, s.spi.runningPriority, s.vcpu.mmio, s.vcpu.wfiSleeps];
}

test('insight snapshot: never torn while a thread publishes in a loop', { timeout: 60_000 }, async () => {
  const buf = new SharedArrayBuffer(INSIGHT_BYTES);
  initInsightRegion(buf);
  assert.equal(readInsight(buf), undefined, 'nothing published yet');
  const stop = new SharedArrayBuffer(4);
  const mod = new URL('../src/vmm/insight.js', import.meta.url).href;
  const counters = ['bytesOut', 'bytesIn', 'txDropped', 'emptyDrReads', 'corruptRingEvents', 'refusedAccesses', 'unhandledAccesses', 'notifies', 'backendEvents', 'txWhileDisabled', 'rxWhileDisabled'];
  const w = new Worker(WRITER, { eval: true, workerData: { buf, stop, mod, counters } });
  try {
    let seen = 0;
    let last = 0;
    const end = Date.now() + 2000;
    while (Date.now() < end || seen < 1000) {
      const s = readInsight(buf);
      if (!s) continue;
      const v = numbers(s);
      assert.ok(v.every((x) => x === v[0]), `a torn snapshot: ${v.join(',')}`);
      assert.ok(v[0]! >= last, 'snapshots only move forward');
      if (v[0] !== last) seen++;
      last = v[0]!;
      if (Date.now() > end + 20_000) break;
    }
    assert.ok(seen >= 100, `the reader saw ${seen} different snapshots`);
  } finally {
    Atomics.store(new Int32Array(stop), 0, 1);
    await w.terminate();
  }
});
