// Opening a file a user named for output (`run --log FILE`), before anything depends on it: a directory that does
// not exist, a read-only place, or a FIFO nobody reads must be one clear error up front, not an 'error' event on a
// stream after the guest started (an unhandled one kills the process with a stack trace and leaves its worker).
import { closeSync, constants, fstatSync, openSync } from 'node:fs';
import { describeFileType } from './bounded-read.js';
import { Vpl011Error, errnoOf, errorMessage } from './errors.js';

export class OutputFileError extends Vpl011Error<'EINVAL'> {
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super('EINVAL', `${file}: ${reason}`);
  }
}

function whyOpenFailed(e: unknown): string {
  switch (errnoOf(e)) {
    case 'ENOENT':
      return 'cannot create it: the folder does not exist';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'is a directory';
    case 'ENOTDIR':
      return 'a part of the path is not a directory';
    case 'EROFS':
      return 'read-only file system';
    case 'ENXIO':
      return 'is a FIFO or device with no reader';
    default:
      return `cannot open (${errnoOf(e) ?? errorMessage(e)})`;
  }
}

/**
 * A descriptor open for writing on `path` (created 0644, truncated when a regular file). A FIFO must already have
 * a reader (we never wait for one); a directory, socket or block device is refused. Throws OutputFileError.
 */
export function openOutputFile(path: string): number {
  let fd: number;
  try {
    // O_NONBLOCK for the open only: a FIFO without a reader fails with ENXIO instead of blocking forever.
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NONBLOCK | constants.O_NOCTTY, 0o644);
  } catch (e) {
    throw new OutputFileError(path, whyOpenFailed(e));
  }
  const st = fstatSync(fd);
  if (st.isFile()) return fd; // O_NONBLOCK changes nothing for a regular file
  if (!st.isFIFO() && !st.isCharacterDevice()) {
    closeSync(fd);
    throw new OutputFileError(path, `is ${describeFileType(st)}`);
  }
  // A FIFO with a reader, or a terminal / /dev/null: open again without O_NONBLOCK (writes must block, not fail
  // with EAGAIN); this cannot wait, the reader is there.
  try {
    return openSync(path, constants.O_WRONLY | constants.O_NOCTTY);
  } catch (e) {
    throw new OutputFileError(path, whyOpenFailed(e));
  } finally {
    closeSync(fd);
  }
}
