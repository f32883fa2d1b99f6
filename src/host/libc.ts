// libc through koffi: the few POSIX calls the cross-process console path needs (shm_open/mmap for shared pages,
// futex for sleeping on a word another process changes). Bound lazily so modules that only need types, and
// `vpl011 run` (which shares memory between threads only), never bind them; libcFunction() is the one loader of
// libc for these and for the single-call bindings beside them.
//
// Fixed prototypes only: a variadic koffi call costs ~6 µs where a fixed one costs ~0.9 µs (measured on the target
// machine), so syscall() is declared with the six futex arguments.
import koffi, { type LibraryHandle } from 'koffi';

export interface Libc {
  shm_open(name: string, oflag: number, mode: number): number;
  shm_unlink(name: string): number;
  ftruncate(fd: number, len: number): number;
  fstat_size(fd: number): number;
  mmap(addr: null, len: number, prot: number, flags: number, fd: number, off: number): unknown;
  munmap(addr: unknown, len: number): number;
  close(fd: number): number;
  futex(addr: bigint, op: number, val: number, timeout: Buffer | null): number;
  getuid(): number;
  errno(): number;
}

// Linux x86-64 / arm64 values (asm-generic / bits/fcntl-linux.h).
export const O_RDONLY = 0o0;
export const O_RDWR = 0o2;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const MAP_SHARED = 1;
export const FUTEX_WAIT = 0; // not FUTEX_PRIVATE_FLAG: waiters and wakers are in different processes
export const FUTEX_WAKE = 1;
export const EAGAIN = 11;
export const EINTR = 4;
export const ETIMEDOUT = 110;
export const ENOENT = 2;
export const EEXIST = 17;
export const EACCES = 13;

const SYS_FUTEX: Record<string, number> = { x64: 202, arm64: 98 };

let cached: Libc | undefined;
let library: LibraryHandle | undefined;

/**
 * One function of Linux's libc, by its C prototype: the one place libc is loaded (once), for the calls here and
 * for the single-call bindings beside them (flock.ts, cpu-yield.ts).
 */
export function libcFunction(prototype: string): ReturnType<LibraryHandle['func']> {
  library ??= koffi.load('libc.so.6');
  return library.func(prototype);
}

export function libc(): Libc {
  if (cached) return cached;
  if (process.platform !== 'linux') throw new Error('host: cross-process shared memory needs Linux (shm_open, futex)');
  const nr = SYS_FUTEX[process.arch];
  if (nr === undefined) throw new Error(`host: no futex syscall number for ${process.arch}`);
  const shmOpen = libcFunction('int shm_open(const char *name, int oflag, uint32_t mode)');
  const shmUnlink = libcFunction('int shm_unlink(const char *name)');
  const ftruncate = libcFunction('int ftruncate(int fd, int64_t len)');
  const lseek = libcFunction('int64_t lseek(int fd, int64_t off, int whence)');
  const mmap = libcFunction('void *mmap(void *addr, size_t len, int prot, int flags, int fd, int64_t off)');
  const munmap = libcFunction('int munmap(void *addr, size_t len)');
  const close = libcFunction('int close(int fd)');
  const syscall = libcFunction('long syscall(long nr, uint64_t addr, int op, int val, void *ts, void *a2, int v3)');
  const getuid = libcFunction('uint32_t getuid()');
  cached = {
    shm_open: (name, oflag, mode) => shmOpen(name, oflag, mode) as number,
    shm_unlink: (name) => shmUnlink(name) as number,
    ftruncate: (fd, len) => ftruncate(fd, len) as number,
    // SEEK_END gives the object's size without a struct stat layout.
    fstat_size: (fd) => Number(lseek(fd, 0, 2)),
    mmap: (addr, len, prot, flags, fd, off) => mmap(addr, len, prot, flags, fd, off),
    munmap: (addr, len) => munmap(addr, len) as number,
    close: (fd) => close(fd) as number,
    futex: (addr, op, val, timeout) => Number(syscall(nr, addr, op, val, timeout, null, 0)),
    getuid: () => getuid() as number,
    errno: () => koffi.errno(),
  };
  return cached;
}

/** A struct timespec for a relative futex timeout, or null for "forever". */
export function timespec(ms: number): Buffer | null {
  if (!Number.isFinite(ms)) return null;
  const t = Math.max(0, ms);
  const b = Buffer.alloc(16);
  const sec = Math.floor(t / 1000);
  b.writeBigInt64LE(BigInt(sec), 0);
  b.writeBigInt64LE(BigInt(Math.round((t - sec * 1000) * 1e6)), 8);
  return b;
}

/** koffi's pointer for a raw address (for koffi.view in a thread that did not map it). */
export function viewOf(ptrOrAddress: unknown, length: number): ArrayBuffer {
  return koffi.view(ptrOrAddress, length);
}

export function addressOf(ptr: unknown): bigint {
  return BigInt(koffi.address(ptr));
}
