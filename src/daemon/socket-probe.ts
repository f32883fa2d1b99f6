// Whether a daemon already listens on a control socket: shared by the daemon (refuse to start a second one) and
// its clients (start one only when none answers). Its own module so that a client loads only node:net and node:fs.
import { existsSync } from 'node:fs';
import { createConnection } from 'node:net';

/** Whether something accepts connections on a unix socket path. */
export function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    if (!existsSync(path)) return resolve(false);
    const c = createConnection(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    // Refused, absent or not a socket: nobody answers, which is all the caller asks.
    c.once('error', () => resolve(false));
  });
}
