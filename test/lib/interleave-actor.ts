// One actor of an interleaving exploration (test/lib/interleave.ts), in its own worker thread. The global Atomics
// methods are replaced, in this thread only, by versions that announce the operation in the control buffer and
// block until the scheduler grants the step; then the real operation runs (wait and notify are resolved by the
// scheduler, which models the sleep). Operations on buffers outside the scenario's pool are thread-private and run
// directly. Each run: wait for a new generation, set up (unscheduled), run the body, publish its result.
import { workerData } from 'node:worker_threads';
import {
  ACTOR_STATE_DONE,
  ACTOR_STATE_ERROR,
  ACTOR_STATE_PENDING,
  ACTOR_STATE_RUNNING,
  C_ACTOR_BASE,
  C_ACTOR_WORDS,
  C_GEN,
  OPS,
  RESULT_BYTES,
  S_ADDR,
  S_BUF,
  S_FINITE,
  S_GEN,
  S_GRANT,
  S_OP,
  S_RESLEN,
  S_RESULT,
  S_SEQ,
  S_STATE,
  S_VALUE,
  WAIT_NOT_EQUAL,
  WAIT_OK,
  type Scenario,
} from './interleave.js';

interface ActorData {
  module: string;
  scenario: string;
  params: unknown;
  actor: number;
  actors: number;
  control: SharedArrayBuffer;
  pool: SharedArrayBuffer[];
}
const data = workerData as ActorData;
const C = new Int32Array(data.control, 0, C_ACTOR_BASE + data.actors * C_ACTOR_WORDS);
const resultArea = new Uint8Array(data.control, (C_ACTOR_BASE + data.actors * C_ACTOR_WORDS) * 4);
const base = C_ACTOR_BASE + data.actor * C_ACTOR_WORDS;
const poolIndex = new Map<ArrayBufferLike, number>(data.pool.map((b, i) => [b, i]));

/** Thrown into the actor's body when the scheduler abandons the run (another actor failed). */
class AbortRun extends Error {}

// The real operations, captured before the wrap.
const real = {
  load: Atomics.load.bind(Atomics),
  store: Atomics.store.bind(Atomics),
  add: Atomics.add.bind(Atomics),
  sub: Atomics.sub.bind(Atomics),
  and: Atomics.and.bind(Atomics),
  or: Atomics.or.bind(Atomics),
  xor: Atomics.xor.bind(Atomics),
  exchange: Atomics.exchange.bind(Atomics),
  compareExchange: Atomics.compareExchange.bind(Atomics),
  wait: Atomics.wait.bind(Atomics),
  notify: Atomics.notify.bind(Atomics),
};

let intercepting = false;
let aborting = false;

function announce(state: number): void {
  real.store(C, base + S_STATE, state);
  real.add(C, base + S_SEQ, 1);
  real.notify(C, base + S_SEQ);
}

/** Announce an operation on a pool buffer and block until granted; returns the scheduler's result word. */
function step(op: number, bufId: number, addr: number, value: number, finite: boolean): number {
  if (aborting) throw new AbortRun('run abandoned');
  real.store(C, base + S_OP, op);
  real.store(C, base + S_BUF, bufId);
  real.store(C, base + S_ADDR, addr);
  real.store(C, base + S_VALUE, value);
  real.store(C, base + S_FINITE, finite ? 1 : 0);
  real.store(C, base + S_GRANT, 0);
  announce(ACTOR_STATE_PENDING);
  while (real.load(C, base + S_GRANT) === 0) real.wait(C, base + S_GRANT, 0, 1000);
  const grant = real.load(C, base + S_GRANT);
  real.store(C, base + S_GRANT, 0);
  if (grant === 2) {
    aborting = true;
    throw new AbortRun('run abandoned');
  }
  real.store(C, base + S_STATE, ACTOR_STATE_RUNNING);
  return real.load(C, base + S_RESULT);
}

type TA = Int32Array | Uint32Array | Int16Array | Uint16Array | Int8Array | Uint8Array | BigInt64Array | BigUint64Array;

/** The pool buffer and byte address of ta[index], or undefined for a thread-private buffer (not a step). */
function where(ta: TA, index: number): [number, number] | undefined {
  if (!intercepting) return undefined;
  const id = poolIndex.get(ta.buffer);
  if (id === undefined) return undefined;
  return [id, ta.byteOffset + index * ta.BYTES_PER_ELEMENT];
}

function wrap(name: 'load' | 'store' | 'add' | 'sub' | 'and' | 'or' | 'xor' | 'exchange' | 'compareExchange'): void {
  const op = OPS.indexOf(name);
  const fn = real[name] as (...args: unknown[]) => unknown;
  (Atomics as unknown as Record<string, unknown>)[name] = (ta: TA, index: number, ...rest: unknown[]): unknown => {
    const w = where(ta, index);
    if (w) step(op, w[0], w[1], 0, false);
    return fn(ta, index, ...rest);
  };
}
for (const name of ['load', 'store', 'add', 'sub', 'and', 'or', 'xor', 'exchange', 'compareExchange'] as const) wrap(name);

(Atomics as unknown as Record<string, unknown>).wait = (ta: Int32Array, index: number, value: number, timeout?: number): string => {
  const w = where(ta, index);
  if (!w) return real.wait(ta as Int32Array<SharedArrayBuffer>, index, value, timeout);
  if (!(ta instanceof Int32Array)) throw new TypeError('interleave: only Int32Array waits are modelled');
  const finite = timeout !== undefined && Number.isFinite(timeout);
  const r = step(OPS.indexOf('wait'), w[0], w[1], value | 0, finite);
  return r === WAIT_OK ? 'ok' : r === WAIT_NOT_EQUAL ? 'not-equal' : 'timed-out';
};
(Atomics as unknown as Record<string, unknown>).notify = (ta: Int32Array, index: number, count?: number): number => {
  const w = where(ta, index);
  if (!w) return real.notify(ta, index, count);
  const c = count === undefined || !Number.isFinite(count) ? -1 : Math.max(0, Math.trunc(count));
  return step(OPS.indexOf('notify'), w[0], w[1], c, false);
};
(Atomics as unknown as Record<string, unknown>).waitAsync = (): never => {
  throw new Error('interleave: Atomics.waitAsync is not modelled; use a synchronous wait in a scenario');
};

function publish(state: number, value: unknown): void {
  let bytes = Buffer.from(JSON.stringify(value ?? null), 'utf8');
  if (bytes.length > RESULT_BYTES) bytes = Buffer.from(JSON.stringify('result too large'), 'utf8');
  resultArea.set(bytes, data.actor * RESULT_BYTES);
  real.store(C, base + S_RESLEN, bytes.length);
  announce(state);
}

const mod = (await import(data.module)) as { scenarios: Record<string, (p: unknown) => Scenario> };
const scenario = mod.scenarios[data.scenario]!(data.params);
const actor = scenario.actors[data.actor]!;

let gen = 0;
for (;;) {
  while (real.load(C, C_GEN) === gen) real.wait(C, C_GEN, gen, 1000);
  gen = real.load(C, C_GEN);
  if (gen < 0) break;
  real.store(C, base + S_GEN, gen);
  aborting = false;
  try {
    const body = actor(data.pool);
    intercepting = true;
    const result = body();
    intercepting = false;
    publish(ACTOR_STATE_DONE, result);
  } catch (e) {
    intercepting = false;
    if (e instanceof AbortRun || aborting) publish(ACTOR_STATE_DONE, null);
    else publish(ACTOR_STATE_ERROR, e instanceof Error ? `${e.message}\n${e.stack ?? ''}` : String(e));
  }
}
