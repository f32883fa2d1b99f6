// A deterministic interleaving explorer for the shared-memory rules (what `loom` does for Rust), over the REAL code.
//
// Each actor of a scenario runs in its own worker thread (test/lib/interleave-actor.ts). There, the global Atomics
// methods are wrapped so that every atomic operation on a shared buffer of the scenario first announces itself and
// blocks until this scheduler grants the actor one step. Between two atomic operations an actor runs alone, so an
// execution is a sequence of atomic steps, and the scheduler decides its order. That is the sequentially consistent
// model the code is written for (every shared index, pending bit and doorbell is an Atomics access; plain data
// reads/writes are ordered by them), so the interleavings explored are exactly the ones the code must survive.
//
// The scheduler runs a stateless depth-first search over schedules: each schedule re-runs the scenario from a fresh
// initial state (init() rewrites the shared buffers), replays a prefix of choices and takes the next untried one.
// Like loom, it bounds the number of preemptions (switching away from an actor that could still run): bugs that need
// few preemptions are the common ones, and the bound keeps the search to seconds. bound = Infinity explores all.
//
// Atomics.wait is modelled, not run: when granted, the scheduler compares the word with the expected value (one
// atomic step, as the kernel does); if equal, the actor blocks until an Atomics.notify on that address (woken in
// FIFO order, up to the count) or until its timeout fires. A timeout fires only when no actor can run any more (the
// sleeper would otherwise hang), and if the word has changed since the sleeper compared it, somebody changed it
// without waking the sleeper: a LOST WAKEUP, recorded with the schedule. An infinite wait with nothing runnable is a
// deadlock. Nothing here can hang: every wait for a worker is bounded, and the workers are terminated in finally.
import { Worker } from 'node:worker_threads';

// ---- the control buffer shared with the actor workers (test/lib/interleave-actor.ts uses the same layout) --------
export const C_GEN = 0; // run generation: bumped to start a run; -1 tells the workers to exit
export const C_ACTOR_BASE = 16;
export const C_ACTOR_WORDS = 16;
// Word offsets inside one actor's slot.
export const S_SEQ = 0; // bumped (and notified) by the actor on every announcement
export const S_STATE = 1;
export const S_GRANT = 2; // set by the scheduler (and notified) to let the actor take its step
export const S_OP = 3;
export const S_BUF = 4; // index of the scenario buffer, or -1
export const S_ADDR = 5; // byte address inside that buffer
export const S_VALUE = 6; // the value a wait expects
export const S_FINITE = 7; // 1 if the wait has a finite timeout
export const S_RESULT = 8; // wait: 0 ok, 1 not-equal, 2 timed-out; notify: number woken
export const S_RESLEN = 9; // bytes of JSON in the actor's result area (its return value, or its error)
export const S_GEN = 10; // the generation the actor is running
export const ACTOR_STATE_PENDING = 1;
export const ACTOR_STATE_RUNNING = 2;
export const ACTOR_STATE_DONE = 3;
export const ACTOR_STATE_ERROR = 4;
export const RESULT_BYTES = 16384;
export const OPS = ['load', 'store', 'add', 'sub', 'and', 'or', 'xor', 'exchange', 'compareExchange', 'wait', 'notify'] as const;
export type OpName = (typeof OPS)[number];
const OP_WAIT = OPS.indexOf('wait');
const OP_NOTIFY = OPS.indexOf('notify');
export const WAIT_OK = 0;
export const WAIT_NOT_EQUAL = 1;
export const WAIT_TIMED_OUT = 2;

export function controlBytes(actors: number): number {
  return (C_ACTOR_BASE + actors * C_ACTOR_WORDS) * 4 + actors * RESULT_BYTES;
}

/**
 * A scenario, in a module that exports `scenarios: Record<string, (params) => Scenario>`: the module is loaded both
 * by the scheduler (init, check) and by each actor worker (its actor function), with the same params.
 */
export interface Scenario {
  /** Byte sizes of the shared buffers (SharedArrayBuffers, allocated once, rewritten by init before every run). */
  buffers: number[];
  /** Write the initial state into the buffers (runs in the scheduler's thread; zero-filled before). */
  init(pool: SharedArrayBuffer[]): void;
  /**
   * One function per actor. Called in the actor's worker with interception OFF (set-up: attach objects to the
   * buffers, read-only); it returns the body, which runs with every atomic op on a pool buffer a scheduled step.
   * The body's return value (JSON-serialisable) is passed to check().
   */
  actors: ((pool: SharedArrayBuffer[]) => () => unknown)[];
  /** Throw (e.g. assert) if the final state or results break a property. Runs in the scheduler's thread. */
  check(pool: SharedArrayBuffer[], results: unknown[]): void;
}

export interface ExploreOptions {
  /** URL of the compiled scenario module. */
  module: URL;
  scenario: string;
  params?: unknown;
  /** Most preemptions per schedule (loom's preemption_bound); Infinity = every interleaving. Default 2. */
  preemptionBound?: number;
  /** Give up (as a failure) after this many schedules. Default 200000. */
  maxSchedules?: number;
  /** Fail a schedule that takes more steps than this (a livelock). Default 10000. */
  maxSteps?: number;
  /** A worker that does not answer within this many ms fails the exploration (it never hangs). Default 20000. */
  stepTimeoutMs?: number;
  /** Stop at the first failing schedule (default true); false counts all failures. */
  stopAtFirstFailure?: boolean;
}

export interface StepRecord {
  actor: number;
  op: OpName | 'wake-by-timeout';
  buf: number;
  addr: number;
}

export interface Failure {
  kind: 'lost-wakeup' | 'deadlock' | 'check' | 'actor-error' | 'livelock';
  message: string;
  schedule: number;
  trace: string;
}

export interface ExploreReport {
  schedules: number;
  steps: number;
  ms: number;
  /** True when the search ended because the whole (bounded) space was explored. */
  complete: boolean;
  failures: Failure[];
  lostWakeups: number;
  /** Schedules in which some wait actually slept and was then woken by a notify. */
  sleptAndWoken: number;
}

interface Choice {
  options: number[]; // runnable actors, in the order tried (the current actor first: no preemption)
  taken: number; // index into options
  preemptionsBefore: number;
  current: number; // the actor that stepped last (-1 at the start)
}

export async function explore(opts: ExploreOptions): Promise<ExploreReport> {
  const mod = (await import(opts.module.href)) as { scenarios: Record<string, (p: unknown) => Scenario> };
  const make = mod.scenarios[opts.scenario];
  if (!make) throw new Error(`interleave: no scenario ${opts.scenario} in ${opts.module.href}`);
  const sc = make(opts.params);
  const n = sc.actors.length;
  const bound = opts.preemptionBound ?? 2;
  const maxSchedules = opts.maxSchedules ?? 200000;
  const maxSteps = opts.maxSteps ?? 10000;
  const stepTimeoutMs = opts.stepTimeoutMs ?? 20000;
  const stopAtFirst = opts.stopAtFirstFailure ?? true;

  const control = new SharedArrayBuffer(controlBytes(n));
  const C = new Int32Array(control, 0, C_ACTOR_BASE + n * C_ACTOR_WORDS);
  const resultArea = new Uint8Array(control, (C_ACTOR_BASE + n * C_ACTOR_WORDS) * 4);
  const pool = sc.buffers.map((b) => new SharedArrayBuffer(b));
  const poolWords = pool.map((b) => new Int32Array(b, 0, b.byteLength >> 2));
  const slot = (a: number, w: number): number => C_ACTOR_BASE + a * C_ACTOR_WORDS + w;

  const workers: Worker[] = [];
  const workerErrors: string[] = [];
  const report: ExploreReport = { schedules: 0, steps: 0, ms: 0, complete: false, failures: [], lostWakeups: 0, sleptAndWoken: 0 };
  const t0 = performance.now();
  try {
    for (let a = 0; a < n; a++) {
      const w = new Worker(new URL('./interleave-actor.js', import.meta.url), {
        workerData: { module: opts.module.href, scenario: opts.scenario, params: opts.params, actor: a, actors: n, control, pool },
      });
      w.on('error', (e) => workerErrors.push(`actor ${a}: ${e instanceof Error ? e.message : String(e)}`));
      workers.push(w);
    }

    // Wait (bounded) until the actor's announcement counter moves past `seq`.
    const awaitAnnounce = (a: number, seq: number): void => {
      const deadline = performance.now() + stepTimeoutMs;
      while (Atomics.load(C, slot(a, S_SEQ)) === seq) {
        const left = deadline - performance.now();
        if (left <= 0 || workerErrors.length > 0) {
          throw new Error(`interleave: actor ${a} did not answer within ${stepTimeoutMs} ms ${workerErrors.join('; ')}`);
        }
        Atomics.wait(C, slot(a, S_SEQ), seq, Math.min(left, 50));
      }
    };
    const readResult = (a: number): unknown => {
      const len = Atomics.load(C, slot(a, S_RESLEN));
      const text = Buffer.from(resultArea.subarray(a * RESULT_BYTES, a * RESULT_BYTES + len)).toString('utf8');
      return text === '' ? undefined : (JSON.parse(text) as unknown);
    };

    const stack: Choice[] = [];
    let gen = 0;
    for (;;) {
      if (report.schedules >= maxSchedules) break;
      report.schedules++;
      // ---- one run, from a fresh state ----
      for (const b of pool) new Uint8Array(b).fill(0);
      sc.init(pool);
      gen++;
      const seqs: number[] = [];
      for (let a = 0; a < n; a++) seqs.push(Atomics.load(C, slot(a, S_SEQ)));
      Atomics.store(C, C_GEN, gen);
      Atomics.notify(C, C_GEN);
      for (let a = 0; a < n; a++) {
        awaitAnnounce(a, seqs[a]!);
        seqs[a] = Atomics.load(C, slot(a, S_SEQ));
      }
      // Scheduler-side state of this run.
      const blocked: ({ buf: number; addr: number; value: number; finite: boolean; order: number } | null)[] = new Array(n).fill(null);
      const wakeResult: (number | null)[] = new Array(n).fill(null); // a result to hand to a blocked actor's grant
      let blockOrder = 0;
      let depth = 0;
      let current = -1;
      let preemptions = 0;
      let steps = 0;
      let slept = false;
      const trace: StepRecord[] = [];
      let failure: Omit<Failure, 'schedule' | 'trace'> | null = null;
      const state = (a: number): number => Atomics.load(C, slot(a, S_STATE));

      for (;;) {
        const runnable: number[] = [];
        let live = 0;
        for (let a = 0; a < n; a++) {
          const s = state(a);
          if (s === ACTOR_STATE_ERROR) {
            failure = { kind: 'actor-error', message: `actor ${a} threw: ${JSON.stringify(readResult(a))}` };
            break;
          }
          if (s === ACTOR_STATE_DONE) continue;
          live++;
          if (blocked[a] === null || wakeResult[a] !== null) runnable.push(a);
        }
        if (failure) break;
        if (live === 0) break;
        if (runnable.length === 0) {
          // Everything left sleeps: fire the finite timeouts (a lost wakeup if the word moved under the sleeper).
          let fired = 0;
          for (let a = 0; a < n; a++) {
            const b = blocked[a];
            if (!b || !b.finite) continue;
            fired++;
            wakeResult[a] = WAIT_TIMED_OUT;
            trace.push({ actor: a, op: 'wake-by-timeout', buf: b.buf, addr: b.addr });
            const now = Atomics.load(poolWords[b.buf]!, b.addr >> 2);
            if (now !== b.value && !failure) {
              report.lostWakeups++;
              failure = {
                kind: 'lost-wakeup',
                message: `actor ${a} slept on buffer ${b.buf} @${b.addr} expecting ${b.value}; the word became ${now} and no notify woke it`,
              };
            }
          }
          if (failure) break;
          if (fired === 0) {
            failure = { kind: 'deadlock', message: `every live actor waits forever: ${blocked.map((b, a) => (b ? `actor ${a} @${b.addr}` : '')).join(' ')}` };
            break;
          }
          continue;
        }
        // ---- choose (DFS): replay the recorded prefix, then the first option (no preemption) ----
        let choice = stack[depth];
        if (choice === undefined) {
          const options = runnable.includes(current) ? [current, ...runnable.filter((a) => a !== current)] : runnable;
          choice = { options, taken: 0, preemptionsBefore: preemptions, current };
          stack.push(choice);
        } else if (choice.options.join() !== (runnable.includes(current) ? [current, ...runnable.filter((a) => a !== current)] : runnable).join()) {
          throw new Error(`interleave: the scenario is not deterministic (schedule ${report.schedules}, depth ${depth})`);
        }
        const a = choice.options[choice.taken]!;
        if (current !== -1 && a !== current && runnable.includes(current)) preemptions++;
        current = a;
        depth++;
        if (++steps > maxSteps) {
          failure = { kind: 'livelock', message: `more than ${maxSteps} steps` };
          break;
        }
        // ---- grant one step to actor a ----
        const op = Atomics.load(C, slot(a, S_OP));
        const buf = Atomics.load(C, slot(a, S_BUF));
        const addr = Atomics.load(C, slot(a, S_ADDR));
        trace.push({ actor: a, op: OPS[op] ?? 'load', buf, addr });
        if (op === OP_WAIT && wakeResult[a] === null) {
          const value = Atomics.load(C, slot(a, S_VALUE));
          if (Atomics.load(poolWords[buf]!, addr >> 2) === value) {
            blocked[a] = { buf, addr, value, finite: Atomics.load(C, slot(a, S_FINITE)) === 1, order: blockOrder++ };
            continue; // asleep: this step was the compare; no grant
          }
          Atomics.store(C, slot(a, S_RESULT), WAIT_NOT_EQUAL);
        } else if (op === OP_WAIT) {
          if (wakeResult[a] === WAIT_OK) slept = true;
          Atomics.store(C, slot(a, S_RESULT), wakeResult[a]!);
          blocked[a] = null;
          wakeResult[a] = null;
        } else if (op === OP_NOTIFY) {
          const count = Atomics.load(C, slot(a, S_VALUE));
          const sleepers = blocked
            .map((b, i) => ({ b, i }))
            .filter(({ b, i }) => b !== null && wakeResult[i] === null && b.buf === buf && b.addr === addr)
            .sort((x, y) => x.b!.order - y.b!.order)
            .slice(0, count < 0 ? n : count);
          for (const { i } of sleepers) wakeResult[i] = WAIT_OK;
          Atomics.store(C, slot(a, S_RESULT), sleepers.length);
        }
        report.steps++;
        const seq = seqs[a]!;
        Atomics.store(C, slot(a, S_GRANT), 1);
        Atomics.notify(C, slot(a, S_GRANT));
        awaitAnnounce(a, seq);
        seqs[a] = Atomics.load(C, slot(a, S_SEQ));
      }

      // Let actors that are still parked (after a failure) finish their run as no-ops: the next generation restarts
      // them. They are parked at a step; leaving them there is fine, the worker re-checks the generation first.
      if (!failure) {
        const results: unknown[] = [];
        for (let a = 0; a < n; a++) results.push(readResult(a));
        try {
          sc.check(pool, results);
        } catch (e) {
          failure = { kind: 'check', message: e instanceof Error ? e.message : String(e) };
        }
      }
      if (slept) report.sleptAndWoken++;
      if (failure) {
        report.failures.push({
          ...failure,
          schedule: report.schedules,
          trace: trace.map((s) => `${s.actor}:${s.op}@${s.buf}:${s.addr}`).join(' '),
        });
        if (stopAtFirst) break;
      }
      if (stack.length > depth) stack.length = depth; // a failure cut the run short
      // Parked actors must restart from scratch for the next run: abort them (their step returns a sentinel).
      for (let a = 0; a < n; a++) {
        const s = state(a);
        if (s === ACTOR_STATE_PENDING) {
          Atomics.store(C, slot(a, S_RESULT), -1);
          const seq = seqs[a]!;
          Atomics.store(C, slot(a, S_GRANT), 2); // 2 = abort this run
          Atomics.notify(C, slot(a, S_GRANT));
          awaitAnnounce(a, seq);
        }
      }
      // ---- backtrack: the deepest choice with an untried option within the preemption bound ----
      let advanced = false;
      while (stack.length > 0) {
        const c = stack[stack.length - 1]!;
        while (c.taken + 1 < c.options.length) {
          c.taken++;
          const a = c.options[c.taken]!;
          const preempts = c.current !== -1 && a !== c.current && c.options.includes(c.current) ? 1 : 0;
          if (c.preemptionsBefore + preempts <= bound) {
            advanced = true;
            break;
          }
        }
        if (advanced) break;
        stack.pop();
      }
      if (!advanced) {
        report.complete = true;
        break;
      }
    }
  } finally {
    Atomics.store(C, C_GEN, -1);
    Atomics.notify(C, C_GEN);
    for (let a = 0; a < n; a++) {
      Atomics.store(C, slot(a, S_GRANT), 2);
      Atomics.notify(C, slot(a, S_GRANT));
    }
    await Promise.all(workers.map((w) => w.terminate()));
    report.ms = performance.now() - t0;
  }
  return report;
}

/** One line for logs and bench notes. */
export function describe(name: string, r: ExploreReport): string {
  return `${name}: ${r.schedules} interleavings, ${r.steps} steps, ${Math.round(r.ms)} ms, ${r.complete ? 'complete' : r.failures.length > 0 ? 'stopped at the first failure' : 'INCOMPLETE'}, ${r.failures.length} failing`;
}
