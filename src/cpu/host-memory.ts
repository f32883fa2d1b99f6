// Reading and patching this process's own memory through /proc/self/mem, for the few unicorn internals the vCPU has
// to find (exact-fault.ts, mmio-width.ts): a wrong pointer is an EIO/EFAULT here, never a crash.
import { closeSync, openSync, readSync, writeSync } from 'node:fs';

let memFd: number | undefined;
let writable = false;

function plausible(addr: bigint, len: number): boolean {
  return addr > 0n && addr + BigInt(len) <= 0x800000000000n;
}

/** `len` bytes at `addr`, or null when they cannot be read. */
export function peek(addr: bigint, len: number): Buffer | null {
  if (!plausible(addr, len)) return null;
  try {
    memFd ??= openSync('/proc/self/mem', 'r');
    const b = Buffer.alloc(len);
    return readSync(memFd, b, 0, len, Number(addr)) === len ? b : null;
  } catch {
    return null;
  }
}

/** Write `data` at `addr`; false when it cannot be written. */
export function poke(addr: bigint, data: Buffer): boolean {
  if (!plausible(addr, data.length)) return false;
  try {
    if (!writable) {
      if (memFd !== undefined) closeSync(memFd);
      memFd = openSync('/proc/self/mem', 'r+');
      writable = true;
    }
    return writeSync(memFd!, data, 0, data.length, Number(addr)) === data.length;
  } catch {
    return false;
  }
}

/** For tests: close the descriptor (reopened on the next use). */
export function closeHostMemory(): void {
  if (memFd !== undefined) closeSync(memFd);
  memFd = undefined;
  writable = false;
}
