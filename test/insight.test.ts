// `vpl011 stat` / `vpl011 trace` at the machine level: a real Machine (unicorn, the native fast path when built) runs
// guests/bare/insight-probe.S, a known access sequence, with an insight region; the console backend drains and feeds
// it. The snapshot must show exact register and counter values, the trace must hold exactly the guest's accesses
// (whichever path served them), and the trace as a replay script must replay with identical read values.
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { startInsightRig, type InsightRig } from './lib/insight-rig.js';
import { readInsight, INSIGHT_BYTES, INSIGHT_TRACE_OFFSET, type DeviceInsight } from '../src/vmm/insight.js';
import { AccessTraceReader, setTraceEnabled, TraceKind, type TraceRecord } from '../src/device/access-trace.js';
import { TraceScript } from '../src/device/trace-script.js';
import { runReplay } from '../src/cli/replay.js';
import { whyIrq } from '../src/device/why-irq.js';
import { nativeLibraryPath } from '../src/cpu/native.js';
import { existsSync } from 'node:fs';

async function until<T>(what: string, f: () => T | undefined | false, ms = 60_000, show?: () => string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms${show ? `: ${show()}` : ''}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function snap(r: InsightRig): DeviceInsight {
  const s = readInsight(r.insight);
  assert.ok(s, 'a snapshot was published');
  return s;
}

const reader = (r: InsightRig) => new AccessTraceReader(r.insight, INSIGHT_TRACE_OFFSET, INSIGHT_BYTES - INSIGHT_TRACE_OFFSET);
// FR's TXFE after a DR write depends on whether the backend drained before the device reloaded out_cons: masked.
const accesses = (recs: TraceRecord[]) =>
  recs
    .filter((x) => x.kind === TraceKind.Access)
    .map((x) => `${x.write ? 'w' : 'r'} ${x.offset.toString(16)} ${x.width} ${(x.offset === 0x18 ? x.value & 0x7f : x.value).toString(16)}${x.aborted ? ' abort' : ''}`);

test('stat: the snapshot shows the known sequence exactly (registers, counters, SPI), idle and after input', async () => {
  const r = await startInsightRig('insight-probe');
  try {
    await until('OK from the guest', () => r.output() === 'OK\n');
    // Idle in WFI with OUT drained: the snapshot is exact.
    // FR keeps TXFE clear until the next data event (the backend does not notify after a small drain).
    const s = await until('an idle snapshot', () => {
      const x = snap(r);
      return x.counters.bytesOut === 3 && x.vcpu.wfiSleeps > 0 ? x : undefined;
    }, 60_000, () => JSON.stringify(snap(r)));
    assert.equal(s.fr & 0x7f, 0x10, 'RXFE, not TXFF, not BUSY');
    assert.equal(s.profile, 'sbsa');
    assert.equal(s.irq.imsc, 0x50);
    assert.equal(s.irq.mis, 0, 'no input: RX/RT do not hold; TX is not unmasked');
    assert.equal(s.irq.line, false);
    assert.equal(s.counters.bytesIn, 0);
    assert.equal(s.counters.unhandledAccesses, 1, 'the read of 0x800');
    assert.equal(s.counters.refusedAccesses, 0);
    assert.equal(s.counters.emptyDrReads, 0);
    assert.equal(s.counters.txDropped, 0);
    assert.equal(s.frontend.outProd, 3);
    assert.equal(s.frontend.inCons, 0);
    assert.equal(s.spi.intid, 32);
    assert.equal(s.spi.line, false);
    assert.equal(s.spi.enabled, false, 'the probe never enables the GIC');
    assert.equal(s.running, true);
    assert.equal(s.idle, true, 'published as the vCPU went to sleep');
    assert.equal(s.pl011, undefined);
    const why = whyIrq(s.irq, s.spi);
    assert.equal(why.find((l) => l.startsWith('RX:')), 'RX: low: 0 bytes in IN < 1,008 (the RX trigger level) (IMSC.RXIM=1)');
    assert.equal(why.find((l) => l.startsWith('RT:')), 'RT: low: IN is empty (IMSC.RTIM=1)');

    r.input('xy');
    const t = await until('the echo and an idle snapshot', () => {
      const x = snap(r);
      return r.output() === 'OK\nxy' && x.counters.bytesIn === 2 && x.counters.bytesOut === 5 && (x.fr & 0x10) !== 0 ? x : undefined;
    }, 60_000, () => JSON.stringify(snap(r)));
    assert.equal(t.frontend.inCons, 2);
    assert.equal(t.frontend.inProdSeen, 2);
    assert.equal(t.counters.emptyDrReads, 0);
    assert.ok(t.counters.backendEvents > 0);
    r.input('\x04');
    assert.equal(await r.exited, 'poweroff');
    const last = snap(r);
    assert.equal(last.running, false, 'the last snapshot says the vCPU stopped');
    assert.equal(last.counters.bytesIn, 3);
  } finally {
    await r.close();
  }
});

for (const typescript of [false, true]) test(`trace (${typescript ? 'TypeScript path' : 'native fast path when built'}): every access in order; off records nothing; the script replays identically`, async () => {
  const r = await startInsightRig('insight-probe', { trace: true, typescript });
  try {
    await until('OK from the guest', () => r.output() === 'OK\n' && snap(r).vcpu.wfiSleeps > 0);
    if (typescript) assert.equal(snap(r).vcpu.nativeMmio, 0, 'every access went through TypeScript');
    else if (existsSync(nativeLibraryPath())) assert.ok(snap(r).vcpu.nativeMmio > 0, 'the C path served (and recorded) some of them');
    const first = reader(r).read(0, 1 << 20);
    assert.equal(first.lost, 0);
    // The known prefix: IMSC, three polled DR writes, RIS, MIS, ICR, the unhandled read, then the first FR poll.
    assert.deepEqual(accesses(first.records).slice(0, 12), [
      'w 38 4 50',
      'r 18 4 10', 'w 0 4 4f',
      'r 18 4 10', 'w 0 4 4b',
      'r 18 4 10', 'w 0 4 a',
      'r 3c 4 20', 'r 40 4 0',
      'w 44 4 20',
      'r 800 4 0',
      'r 18 4 10',
    ]);
    // Input arrives, is echoed; the trace gets the backend's notifications and the reads.
    r.input('hi');
    await until('the echo', () => r.output() === 'OK\nhi');
    // Switched off: nothing more is recorded (the switch takes effect at the vCPU's next safe point).
    setTraceEnabled(r.insight, INSIGHT_TRACE_OFFSET, false);
    await new Promise((res) => setTimeout(res, 300));
    const head = reader(r).head;
    r.input('!');
    await until('the echo', () => r.output() === 'OK\nhi!');
    await new Promise((res) => setTimeout(res, 200));
    assert.equal(reader(r).head, head, 'nothing recorded while off');

    const all = reader(r).read(0, 1 << 20).records;
    assert.ok(all.some((x) => x.kind === TraceKind.Notify), 'backend notifications are recorded');
    const reads = all.filter((x) => x.kind === TraceKind.Access && !x.write && x.offset === 0 && !x.aborted).map((x) => x.value);
    assert.deepEqual(reads, [0x68, 0x69], 'the DR reads returned the input');
    // Replay from the second record (the first is the anchor) and from a later one: identical read values.
    for (const from of [0, 5, 20]) {
      const script = new TraceScript({ profile: 'sbsa', anchor: reader(r).anchor() });
      const text = script.lines(all.slice(from)).join('\n');
      const lines: string[] = [];
      const code = runReplay(text, (l) => lines.push(l), { mismatchesOnly: true });
      assert.equal(code, 0, `replay from record ${from}:\n${lines.join('\n')}\n--- script:\n${text}`);
      assert.match(text, /^expect 0x018 0x000000[0-9a-f]{2} 4 # t=\d+\.\d{6} s$/m, 'reads carry the guest time');
    }
    r.input('\x04');
    assert.equal(await r.exited, 'poweroff');
  } finally {
    await r.close();
  }
});
