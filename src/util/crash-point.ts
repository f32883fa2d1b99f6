// Crash-point injection for the exactly-once log: a test names one step of the console daemon's batch
// protocol and the process kills itself with SIGKILL the n-th time it reaches that step, so every state a kill -9
// can leave behind is produced on purpose, not by chance.
//
//   VPL011_CRASH_AT=<point>:<n>   (n >= 1; e.g. "log:3" dies at the third batch, after its log write)
//
// Points (in batch order, src/daemon/durable-log.ts and src/console/console.ts):
//   journal           the journal entry is sealed; the log write has not begun
//   log-partial       part of the batch's log bytes are written (the first half, at least one byte)
//   log               the log write is complete; out_cons is not yet published
//   publish           out_cons is published (the batch is done)
//   recover-truncate  recovery cut a partial batch off the log; the journal still holds the entry
//   recover-publish   recovery published out_cons for a batch already in the log; the journal still holds the entry
//
// Zero cost when unset: the variable is read once at load and each call site tests a module constant first.
// A bad value is a startup error (a test that asks for a crash must not silently run without one).

import { writeSync } from 'node:fs';

export const CRASH_POINTS = ['journal', 'log-partial', 'log', 'publish', 'recover-truncate', 'recover-publish'] as const;
export type CrashPoint = (typeof CRASH_POINTS)[number];

interface Armed {
  point: CrashPoint;
  remaining: number;
}

function parse(spec: string | undefined): Armed | undefined {
  if (spec === undefined || spec === '') return undefined;
  const m = /^([a-z-]+):([1-9][0-9]{0,8})$/.exec(spec);
  if (!m || !(CRASH_POINTS as readonly string[]).includes(m[1]!)) {
    throw new Error(`VPL011_CRASH_AT: expected <point>:<n> with point one of ${CRASH_POINTS.join(', ')}; got "${spec}"`);
  }
  return { point: m[1] as CrashPoint, remaining: Number(m[2]) };
}

const armed = parse(process.env.VPL011_CRASH_AT);

/** True when a crash point is armed in this process (call sites test this before calling crashPoint). */
export const CRASH_ARMED = armed !== undefined;

/** Die by SIGKILL if `point` is the armed one and this is its n-th arrival. */
export function crashPoint(point: CrashPoint): void {
  if (armed === undefined || armed.point !== point) return;
  if (--armed.remaining > 0) return;
  // Said on stderr first so the test can tell this death from any other.
  writeSync(2, `vpl011: crash point ${point} reached: SIGKILL\n`);
  process.kill(process.pid, 'SIGKILL');
}
