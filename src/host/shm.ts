// POSIX shared memory objects (/dev/shm) mapped MAP_SHARED: what lets the console daemon, in its own process, see a
// domain's magic pages and the hypervisor-wide event-channel table exactly as the domain's vCPU thread does (Xen's
// xenforeignmemory_map of the vuart page). The view is a plain ArrayBuffer (koffi.view); Atomics load/store/add/
// compareExchange work on it and are visible to other processes. Atomics.wait/notify do not cross processes: use
// ./futex.ts for sleeping.
import { closeSync, fstatSync, ftruncateSync, openSync } from 'node:fs';
import { EACCES, EEXIST, ENOENT, MAP_SHARED, O_CREAT, O_EXCL, O_RDONLY, O_RDWR, PROT_READ, PROT_WRITE, addressOf, libc, viewOf } from './libc.js';
import { Vpl011Error } from '../util/errors.js';

export class ShmError extends Vpl011Error<'ENOENT' | 'EEXIST' | 'EINVAL' | 'EIO' | 'EPERM'> {}

export interface SharedMapping {
  /** The shm object's name, "/..." */
  readonly name: string;
  readonly size: number;
  /** The mapping; stays valid until close(). */
  readonly buffer: ArrayBuffer;
  /** Its address in this process (for futex and for unicorn's uc_mem_map_ptr). */
  readonly address: bigint;
  /** The raw pointer (koffi) for native calls that take void*. */
  readonly pointer: unknown;
  /** munmap (idempotent). Views of buffer must not be used afterwards. */
  close(): void;
  /** shm_unlink the name (idempotent; the mapping stays valid until close()). */
  unlink(): void;
}

export interface OpenOptions {
  /**
   * Create a new object (O_CREAT|O_EXCL), sized to `size` and zero-filled; EEXIST if the name exists. An existing
   * object is never adopted on create: /dev/shm is shared by every user, and another one may have planted it.
   */
  create?: boolean;
  /** For an existing object: the expected size (default: whatever it is, which must be > 0). */
  size?: number;
  /** Map an existing object read-only (O_RDONLY, PROT_READ): a store through the view faults. */
  readOnly?: boolean;
}

const NAME_RE = /^\/[A-Za-z0-9._-]{1,200}$/;

export function validShmName(name: string): boolean {
  return NAME_RE.test(name);
}

/** Open (or create) and map an shm object. Throws ShmError. */
export function openSharedMapping(name: string, opts: OpenOptions = {}): SharedMapping {
  if (!validShmName(name)) throw new ShmError('EINVAL', `shm: bad object name ${JSON.stringify(name)}`);
  const c = libc();
  const create = opts.create === true;
  if (create && (opts.size === undefined || !Number.isSafeInteger(opts.size) || opts.size <= 0)) {
    throw new ShmError('EINVAL', `shm ${name}: creating needs a positive size`);
  }
  const readOnly = opts.readOnly === true && !create;
  const flags = (readOnly ? O_RDONLY : O_RDWR) | (create ? O_CREAT | O_EXCL : 0);
  const fd = c.shm_open(name, flags, 0o600);
  if (fd < 0) {
    const e = c.errno();
    if (e === ENOENT) throw new ShmError('ENOENT', `shm ${name}: no such object`);
    if (e === EEXIST) throw new ShmError('EEXIST', `shm ${name}: already exists`);
    if (e === EACCES) throw new ShmError('EPERM', `shm ${name}: permission denied (another user's object?); refusing to use it`);
    throw new ShmError('EIO', `shm ${name}: shm_open failed (errno ${e})`);
  }
  let size: number;
  try {
    if (!create) verifyPrivate(name, fd);
    const current = c.fstat_size(fd);
    if (create) {
      if (c.ftruncate(fd, opts.size!) !== 0) throw new ShmError('EIO', `shm ${name}: ftruncate failed (errno ${c.errno()})`);
      size = opts.size!;
    } else {
      size = current;
      if (size <= 0) throw new ShmError('EINVAL', `shm ${name}: object is empty (being created?)`);
      if (opts.size !== undefined && size !== opts.size) {
        throw new ShmError('EINVAL', `shm ${name}: size ${size}, expected ${opts.size}`);
      }
    }
  } catch (e) {
    c.close(fd);
    throw e;
  }
  const ptr = c.mmap(null, size, readOnly ? PROT_READ : PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  c.close(fd); // the mapping keeps the object alive
  const address = addressOf(ptr);
  if (address === 0xffffffffffffffffn || address === 0n) {
    throw new ShmError('EIO', `shm ${name}: mmap failed (errno ${c.errno()})`);
  }
  const buffer = viewOf(ptr, size);
  let mapped = true;
  let linked = true;
  return {
    name,
    size,
    buffer,
    address,
    pointer: ptr,
    close() {
      if (!mapped) return;
      mapped = false;
      c.munmap(ptr, size);
    },
    unlink() {
      if (!linked) return;
      linked = false;
      c.shm_unlink(name);
    },
  };
}

/**
 * An existing object is only trusted if it is a regular file that we own and no one else can open: names in
 * /dev/shm can be seen (and, once unlinked, re-created) by any local user. fstat on the descriptor we will map,
 * so nothing can be swapped in between the check and the mmap.
 */
function verifyPrivate(name: string, fd: number): void {
  const st = fstatSync(fd);
  const uid = typeof process.geteuid === 'function' ? process.geteuid() : libc().getuid();
  const refuse = (why: string) => new ShmError('EPERM', `shm ${name}: ${why}; refusing to use it`);
  if (!st.isFile()) throw refuse('not a regular shared-memory object');
  if (st.uid !== uid) throw refuse(`owned by uid ${st.uid}, not by us (uid ${uid})`);
  if ((st.mode & 0o077) !== 0) throw refuse(`mode ${(st.mode & 0o777).toString(8).padStart(4, '0')} lets other users open it (expected 0600)`);
}

/** shm_unlink by name; true if it existed. */
export function unlinkShared(name: string): boolean {
  if (!validShmName(name)) return false;
  return libc().shm_unlink(name) === 0;
}

/** Whether an shm object exists (without mapping it). */
export function sharedExists(name: string): boolean {
  if (!validShmName(name)) return false;
  const c = libc();
  const fd = c.shm_open(name, O_RDWR, 0);
  if (fd < 0) return false;
  c.close(fd);
  return true;
}

export interface FileMapping {
  readonly path: string;
  readonly size: number;
  /** MAP_SHARED view of the file: stores are in the page cache at once and outlive this process (not a crash of the
   * machine), like a completed write(). */
  readonly buffer: ArrayBuffer;
  /** munmap (idempotent). */
  close(): void;
}

/** Map a regular file (created 0600 if missing, grown to `size` if smaller) read-write and shared. */
export function mapFile(path: string, size: number): FileMapping {
  if (!Number.isSafeInteger(size) || size <= 0) throw new ShmError('EINVAL', `map ${path}: bad size ${size}`);
  const c = libc();
  const fd = openSync(path, 'a+', 0o600);
  let ptr: unknown;
  try {
    if (fstatSync(fd).size < size) ftruncateSync(fd, size);
    ptr = c.mmap(null, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (ptr === null || addressOf(ptr) === 0xffffffffffffffffn) throw new ShmError('EIO', `map ${path}: mmap failed (errno ${c.errno()})`);
  } finally {
    closeSync(fd); // the mapping keeps the file
  }
  let mapped = true;
  return {
    path,
    size,
    buffer: viewOf(ptr, size),
    close() {
      if (mapped) {
        mapped = false;
        c.munmap(ptr, size);
      }
    },
  };
}
