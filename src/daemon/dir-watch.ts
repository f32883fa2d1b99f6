// Waiting for a condition on the files of a directory without polling: checked on every change fs.watch reports
// (inotify on Linux), with a slow periodic check as the backstop for a change it cannot report (no inotify, an
// overflowed queue).
import { watch, type FSWatcher } from 'node:fs';

/** The backstop check's period. */
const BACKSTOP_MS = 500;

/** Resolves true once `done()` holds, or false when `timeoutMs` has passed first. */
export function waitForDirectory(dir: string, done: () => boolean, timeoutMs: number): Promise<boolean> {
  if (done()) return Promise.resolve(true);
  return new Promise((resolve) => {
    let watcher: FSWatcher | undefined;
    const finish = (ok: boolean) => {
      watcher?.close();
      clearInterval(backstop);
      clearTimeout(deadline);
      resolve(ok);
    };
    const check = () => {
      if (done()) finish(true);
    };
    const backstop = setInterval(check, BACKSTOP_MS);
    const deadline = setTimeout(() => finish(done()), timeoutMs);
    try {
      watcher = watch(dir, check);
      watcher.on('error', () => {}); // the backstop still checks
    } catch {
      // no fs.watch here: the backstop alone
    }
    check(); // a change between the first check and the watch
  });
}
