// An exclusive advisory lock on a file (flock(2) through koffi; Node has none): the kernel drops it when the holder
// dies, even by kill -9, so a crashed daemon never leaves a stale lock, and two daemons racing to start on one run
// dir cannot both win (a pid file or "does the socket answer?" check leaves a window between check and listen).
import { closeSync, openSync } from 'node:fs';
import koffi from 'koffi';
import { Vpl011Error } from '../util/errors.js';
import { libcFunction } from './libc.js';

const LOCK_EX = 2;
const LOCK_NB = 4;
const EWOULDBLOCK = 11;

let flockFn: ((fd: number, op: number) => number) | undefined;

function flock(fd: number, op: number): number {
  if (!flockFn) {
    const f = libcFunction('int flock(int fd, int op)');
    flockFn = (d, o) => f(d, o) as number;
  }
  return flockFn(fd, op);
}

export class LockHeld extends Vpl011Error<'EBUSY'> {
  constructor(message: string) {
    super('EBUSY', message);
  }
}

/**
 * Take the lock on `path` (created 0600 if missing) without waiting. Returns a release function; throws LockHeld if
 * another process holds it. The lock lives as long as the returned fd stays open (this process's lifetime).
 */
export function lockExclusive(path: string): () => void {
  const fd = openSync(path, 'a', 0o600);
  if (flock(fd, LOCK_EX | LOCK_NB) !== 0) {
    const errno = koffi.errno();
    closeSync(fd);
    if (errno === EWOULDBLOCK) throw new LockHeld(`${path} is locked by another process`);
    throw new Error(`flock ${path}: errno ${errno}`);
  }
  let held = true;
  return () => {
    if (held) closeSync(fd);
    held = false;
  };
}
