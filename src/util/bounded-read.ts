// Reading a file a user named, bounded: the path may be /dev/zero (endless), a FIFO (open blocks until a writer
// comes), a directory, or a 10 GB file. Open without blocking, check what was opened (fstat on the descriptor, so
// a rename between check and read cannot swap the file), and read at most a cap. Every failure is one sentence.
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { Vpl011Error, errnoOf, errorMessage } from './errors.js';

/** The default cap: far above any config or script we read, far below what hurts. */
export const READ_CAP = 1024 * 1024;

export class FileReadError extends Vpl011Error<'EINVAL' | 'EIO'> {
  constructor(
    readonly file: string,
    /** Why, without the file name: "no such file", "is a directory", ... */
    readonly reason: string,
    code: 'EINVAL' | 'EIO' = 'EINVAL',
  ) {
    super(code, `${file}: ${reason}`);
  }
}

function whyOpenFailed(e: unknown): string {
  switch (errnoOf(e)) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ENOTDIR':
      return 'a part of the path is not a directory';
    case 'ELOOP':
      return 'too many symbolic links';
    case 'ENAMETOOLONG':
      return 'the path is too long';
    case 'ENXIO':
      return 'not a regular file (no device or reader behind it)';
    default:
      return `cannot open (${errnoOf(e) ?? errorMessage(e)})`;
  }
}

export function describeFileType(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

function formatSize(n: number): string {
  return n >= 1024 * 1024 ? `${(n / (1024 * 1024)).toFixed(n % (1024 * 1024) === 0 ? 0 : 1)} MiB` : `${n} bytes`;
}

/**
 * The contents of the regular file at `path`, at most `cap` bytes (more is an error, not a truncation).
 * Throws FileReadError with a one-line reason for anything else.
 */
export function readRegularFile(path: string, cap: number = READ_CAP): Buffer {
  const { fd, size } = openRegular(path, cap);
  try {
    const out = Buffer.allocUnsafeSlow(size);
    return readWhole(fd, path, out) ? out : readAtMost(fd, path, cap);
  } finally {
    closeSync(fd);
  }
}

/**
 * The regular file at `path` (at most `cap` bytes) read straight into memory the caller places by its size:
 * `place(size)` returns a view of exactly `size` bytes, or throws (e.g. "does not fit"). A guest kernel goes into
 * guest RAM this way, with no buffer of its own to copy from. A file that changes size while read is an error.
 */
export function readRegularFileInto(path: string, cap: number, place: (size: number) => Uint8Array): Uint8Array {
  const { fd, size } = openRegular(path, cap);
  try {
    const out = place(size);
    if (!readWhole(fd, path, out)) throw new FileReadError(path, 'changed size while being read');
    return out;
  } finally {
    closeSync(fd);
  }
}

/** A descriptor of the regular file at `path` and its size, no larger than `cap` (checked on the descriptor). */
function openRegular(path: string, cap: number): { fd: number; size: number } {
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO must not wait for a writer. It changes nothing for a regular file.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (e) {
    throw new FileReadError(path, whyOpenFailed(e));
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new FileReadError(path, `is ${describeFileType(st)}, not a regular file`);
    if (st.size > cap) throw new FileReadError(path, `is ${formatSize(st.size)}; the limit is ${formatSize(cap)}`);
    return { fd, size: st.size };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/**
 * A regular file of `out.length` bytes read straight into `out`, e.g. one buffer of its own (a guest kernel is ~33 MB: reading it in
 * 64 KiB chunks and joining them copied it twice; its own ArrayBuffer, never Node's pool, can be transferred to the
 * vCPU's thread) or guest RAM. Positional reads, so false (the file changed size while read) lets the caller read it
 * again from the start.
 */
function readWhole(fd: number, name: string, out: Uint8Array): boolean {
  const size = out.length;
  let got = 0;
  try {
    while (got < size) {
      const n = readSync(fd, out, got, size - got, got);
      if (n === 0) return false; // shrank
      got += n;
    }
    if (readSync(fd, Buffer.alloc(1), 0, 1, size) !== 0) return false; // grew
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EISDIR') throw new FileReadError(name, 'is a directory, not a regular file');
    throw new FileReadError(name, `cannot read (${code ?? errorMessage(e)})`);
  }
  return true;
}

/**
 * Up to `cap` bytes from an open descriptor until end of file (standard input, or a file that grows while read,
 * or one whose size fstat does not know, like /proc files). More than cap is an error.
 */
export function readAtMost(fd: number, name: string, cap: number = READ_CAP): Buffer {
  const buf = Buffer.alloc(Math.min(cap + 1, 64 * 1024));
  let chunks: Buffer[] = [];
  let total = 0;
  const nap = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    let n: number;
    try {
      n = readSync(fd, buf, 0, buf.length, null);
    } catch (e) {
      const code = errnoOf(e);
      // A non-blocking pipe with nothing yet: wait a little, synchronously (this is a CLI read, not the daemon's).
      if (code === 'EAGAIN') {
        Atomics.wait(nap, 0, 0, 10);
        continue;
      }
      if (code === 'EISDIR') throw new FileReadError(name, 'is a directory, not a regular file');
      throw new FileReadError(name, `cannot read (${code ?? errorMessage(e)})`);
    }
    if (n === 0) break;
    total += n;
    if (total > cap) throw new FileReadError(name, `is more than ${formatSize(cap)}; the limit is ${formatSize(cap)}`);
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  const out = Buffer.concat(chunks, total);
  chunks = [];
  return out;
}
