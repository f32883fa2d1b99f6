// Coverage of the ring states a property test must reach to mean anything: OUT full, IN full,
// the 16-byte thresholds (TXI off: fewer than 16 bytes of OUT free; RXI: IN at size-16 or more), the data
// buffers' wrap (a byte at the last slot followed by one at slot 0), and the free-running u32 indices' wrap.
// A property observes the page after every step; at the end it asserts that each event was reached in at least a
// stated fraction of its runs, so a generator that stops reaching them (as fast-check 4's default size did) fails.
import assert from 'node:assert/strict';

export const RING_EVENTS = ['out-full', 'in-full', 'tx-threshold', 'rx-threshold', 'out-buffer-wrap', 'in-buffer-wrap', 'index-wrap'] as const;
export type RingEvent = (typeof RING_EVENTS)[number];

const OUT = 2048;
const IN = 1024;
const THRESHOLD = 16;

export class RingCoverage {
  private runs = 0;
  private readonly hits = new Map<RingEvent, number>();
  private current = new Set<RingEvent>();
  private startIn = 0;
  private startOut = 0;

  constructor(readonly family: string) {}

  /** A run starts: the indices as they are now are its origin. */
  startRun(page: DataView): void {
    this.endRun();
    this.runs++;
    this.startIn = page.getUint32(0xc04, true);
    this.startOut = page.getUint32(0xc0c, true);
  }

  /** After each step: which events hold now (levels from the page itself, not from the code under test). */
  observe(page: DataView): void {
    const inProd = page.getUint32(0xc04, true);
    const outProd = page.getUint32(0xc0c, true);
    const inL = (inProd - page.getUint32(0xc00, true)) >>> 0;
    const outL = (outProd - page.getUint32(0xc08, true)) >>> 0;
    if (outL === OUT) this.current.add('out-full');
    if (inL === IN) this.current.add('in-full');
    if (outL > OUT - THRESHOLD && outL <= OUT) this.current.add('tx-threshold');
    if (inL >= IN - THRESHOLD && inL <= IN) this.current.add('rx-threshold');
    if (((outProd - this.startOut) >>> 0) > OUT - (this.startOut % OUT) && ((outProd - this.startOut) >>> 0) < 2 ** 31) {
      this.current.add('out-buffer-wrap');
    }
    if (((inProd - this.startIn) >>> 0) > IN - (this.startIn % IN) && ((inProd - this.startIn) >>> 0) < 2 ** 31) {
      this.current.add('in-buffer-wrap');
    }
    if ((outProd < this.startOut && this.startOut - outProd > 2 ** 31) || (inProd < this.startIn && this.startIn - inProd > 2 ** 31)) {
      this.current.add('index-wrap');
    }
  }

  private endRun(): void {
    for (const e of this.current) this.hits.set(e, (this.hits.get(e) ?? 0) + 1);
    this.current = new Set();
  }

  /** Runs (fraction) that reached each event. */
  table(): Record<string, string> {
    this.endRun();
    const t: Record<string, string> = {};
    for (const e of RING_EVENTS) t[e] = `${this.hits.get(e) ?? 0}/${this.runs}`;
    return t;
  }

  /** Every event in `events` was reached in at least `minFraction` of the runs. */
  assertReached(minFraction: number, events: readonly RingEvent[] = RING_EVENTS): void {
    this.endRun();
    assert.ok(this.runs > 0, `${this.family}: no runs`);
    for (const e of events) {
      const n = this.hits.get(e) ?? 0;
      assert.ok(n >= minFraction * this.runs, `${this.family}: ${e} reached in ${n} of ${this.runs} runs (want >= ${minFraction * 100}%): ${JSON.stringify(this.table())}`);
    }
  }
}
