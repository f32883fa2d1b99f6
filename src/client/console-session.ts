// `vpl011 console`: a terminal or pipes attached to a domain's console (xenconsole's job), resumable across a daemon
// that dies (the daemon's side is src/daemon/resume.ts). The client keeps two cursors:
//  - output: the log offset of the last byte it showed (every output frame carries it); after reconnecting it asks
//    for the output from there, so nothing is shown twice and nothing is skipped;
//  - input: what it typed and the daemon has not acknowledged (bytes are acknowledged once they are in the guest's
//    IN ring). It keeps at most UNACKED_LIMIT of them (then it stops reading its input until acknowledgements come)
//    and re-sends them from the count the new daemon reports, so each byte reaches the guest once.
// When the connection drops without the daemon's end frame, the daemon died: it says "reconnecting..." on stderr,
// starts a daemon if none answers (as every client command does) and attaches again, with backoff.
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { runPaths } from '../daemon/paths.js';
import { FrameError, FrameReader } from '../daemon/frames.js';
import { RequestRefused, answerTimeoutMs, connect, controlRequest, ensureDaemon, isTerminal, readResponse, releaseInput, type ConsoleInput } from './client.js';
import { errorMessage } from '../util/errors.js';
import { EscapeReader, escapeHelp, keyName, type EscapeAction } from '../console/escape.js';

/** Typed input not yet acknowledged that the client keeps (and would re-send); past it, input is paused. */
export const UNACKED_LIMIT = 1 << 20;
/** Backoff between reconnection attempts, and how long to keep trying before giving up. */
const BACKOFF_FIRST_MS = 100;
const BACKOFF_MAX_MS = 2_000;
const RECONNECT_LIMIT_MS = 60_000;

export interface AttachOptions {
  readOnly?: boolean;
  input?: ConsoleInput;
  output?: NodeJS.WritableStream;
  /** Where "reconnecting..." and other notes go (default: stderr). */
  notes?: NodeJS.WritableStream;
  /** With non-TTY input: after input ends (and is all acknowledged), stay until output has been quiet this long (ms). */
  lingerMs?: number;
  /** Detach after this long (ms) in any case. */
  timeoutMs?: number;
}

/**
 * Attach to a domain's console. TTY input: raw mode, Ctrl-] escapes (src/console/escape.ts: . detaches, b sends a
 * BREAK after everything typed before it has reached the guest). Pipe input: stays until the input ends, is
 * acknowledged, and output has been quiet for lingerMs (or the domain ends, or timeoutMs). Resolves with an exit code.
 */
export async function attachConsole(runDir: string, domain: string, opts: AttachOptions = {}): Promise<number> {
  const input = opts.input ?? process.stdin;
  const output = opts.output ?? process.stdout;
  const notes = opts.notes ?? process.stderr;
  const readOnly = opts.readOnly === true;
  const tty = isTerminal(input);
  const linger = opts.lingerMs ?? 500;
  const session = randomBytes(16).toString('hex');
  const controlSocket = runPaths(runDir).controlSocket;

  let instance: string | undefined;
  let offset: number | undefined;
  let acked = 0;
  const unacked: Buffer[] = [];
  let unackedBytes = 0;

  /** Attach once; resolves with the attached socket and what came after the response line. */
  const attachOnce = async (): Promise<{ sock: Socket; leftover: Buffer }> => {
    const s = await connect(controlSocket);
    const req = {
      op: 'attach',
      domain,
      readOnly,
      session,
      ...(instance !== undefined ? { instance, offset, inputAcked: acked } : {}),
    };
    s.write(JSON.stringify(req) + '\n');
    let r;
    try {
      r = await readResponse(s, answerTimeoutMs('attach'), controlSocket);
    } catch (e) {
      s.destroy();
      throw e;
    }
    if (!r.res.ok) {
      s.destroy();
      throw new RequestRefused(r.res.error);
    }
    // The daemon answers with the instance it attached us to: ours, or after a migration the one it moved to.
    instance = r.res.instance ?? instance;
    if (r.res.offset !== undefined) offset = r.res.offset;
    takeAck(r.res.inputAcked ?? 0);
    return { sock: s, leftover: r.leftover };
  };

  /** The daemon says `total` bytes of this session are in the ring: forget them. */
  const takeAck = (total: number) => {
    let drop = Math.min(total - acked, unackedBytes);
    if (drop <= 0) return;
    acked += drop;
    unackedBytes -= drop;
    while (drop > 0) {
      const head = unacked[0]!;
      if (head.length <= drop) {
        unacked.shift();
        drop -= head.length;
      } else {
        unacked[0] = head.subarray(drop);
        drop = 0;
      }
    }
  };

  const first = await attachOnce();

  return new Promise<number>((resolve) => {
    let sock: Socket | undefined;
    let done = false;
    let inputEnded = false;
    let sockBlocked = false;
    let lingerTimer: NodeJS.Timeout | undefined;
    /** The daemon said the domain is migrating: the coming close is not an end; reattach to the new instance. */
    let following = false;

    const finish = (code: number) => {
      if (done) return;
      done = true;
      if (lingerTimer) clearTimeout(lingerTimer);
      if (timeout) clearTimeout(timeout);
      releaseInput(input, onInput, onEnd);
      if (sock) {
        sock.end();
        sock.destroy();
      }
      resolve(code);
    };

    const armLinger = () => {
      if (!inputEnded || done) return;
      if (lingerTimer) clearTimeout(lingerTimer);
      // Typed input still unacknowledged (or no daemon right now) keeps us here: it may have to be re-sent.
      lingerTimer = setTimeout(() => (unackedBytes === 0 && sock ? finish(0) : armLinger()), linger);
    };

    const maybeResumeInput = () => {
      if (!done && !inputEnded && !sockBlocked && unackedBytes < UNACKED_LIMIT) input.resume();
    };

    const use = (s: Socket, leftover: Buffer) => {
      sock = s;
      sockBlocked = false;
      const reader = new FrameReader();
      const onFrames = (chunk: Buffer) => {
        reader.push(chunk);
        try {
          for (let f = reader.next(); f; f = reader.next()) {
            if (f.type === 'output') {
              offset = f.endOffset;
              if (!output.write(f.data)) {
                s.pause();
                output.once('drain', () => s.resume());
              }
              armLinger();
            } else if (f.type === 'marker') {
              output.write(f.text);
            } else if (f.type === 'ack') {
              takeAck(f.total);
              maybeResumeInput();
              armLinger();
            } else if (f.type === 'follow') {
              // `vpl011 migrate`: the same domain in a new instance soon; reattach with the same cursors.
              notes.write(Buffer.from(f.text).toString('utf8').replace(/^\r\n/, '').replace(/\r\n$/, '\n'));
              following = true;
              // Closed at once, not half-closed: input the old instance no longer reads would hold a graceful close.
              s.destroy();
              return;
            } else {
              output.write(f.text);
              return finish(0); // the domain is gone: the end, not a dropped daemon
            }
          }
        } catch (e) {
          if (!(e instanceof FrameError)) throw e;
          notes.write(`vpl011: console: ${e.message}\n`);
          finish(1);
        }
      };
      s.on('data', onFrames);
      s.on('error', () => {}); // 'close' follows: the reconnect logic there decides what a dropped daemon means
      s.on('close', () => {
        if (sock !== s || done) return;
        sock = undefined;
        void reconnect();
      });
      // Input the previous daemon had not acknowledged goes again, before anything new.
      for (const b of unacked) s.write(b);
      s.resume();
      if (leftover.length > 0) onFrames(leftover);
      maybeResumeInput();
    };

    const reconnect = async () => {
      if (!following) notes.write('vpl011: console: the daemon went away; reconnecting...\n');
      const giveUpAt = Date.now() + RECONNECT_LIMIT_MS;
      let delay = BACKOFF_FIRST_MS;
      let lastError = '';
      while (!done) {
        await new Promise((r) => setTimeout(r, delay));
        if (done) return;
        try {
          await ensureDaemon(runDir);
          const { sock: s, leftover } = await attachOnce();
          if (done) {
            s.destroy();
            return;
          }
          notes.write(following ? 'vpl011: console: following the migrated domain\n' : 'vpl011: console: reconnected\n');
          following = false;
          use(s, leftover);
          return;
        } catch (e) {
          lastError = errorMessage(e);
          // The domain is gone and the daemon has nothing left to give us: the end.
          if (/no running console/.test(lastError)) break;
        }
        if (Date.now() > giveUpAt) break;
        delay = Math.min(delay * 2, BACKOFF_MAX_MS);
      }
      if (!done) {
        notes.write(`vpl011: console: cannot reattach${lastError ? `: ${lastError}` : ''}\n`);
        finish(1);
      }
    };

    const send = (b: Buffer) => {
      unacked.push(b);
      unackedBytes += b.length;
      if (sock && !sock.write(b)) {
        sockBlocked = true;
        input.pause();
        const s = sock;
        s.once('drain', () => {
          if (sock === s) sockBlocked = false;
          maybeResumeInput();
        });
      }
      if (unackedBytes >= UNACKED_LIMIT) input.pause();
    };

    // Terminal input, in order: data, and escape commands. A BREAK goes by a control request once what was typed
    // before it is acknowledged (in the guest's ring), and what is typed after it waits for the answer: so the
    // guest sees the keys and the BREAK in the order they were typed (Linux: BREAK, then the SysRq key).
    const escapes = new EscapeReader();
    const todo: EscapeAction[] = [];
    let busy = false;
    const note = (text: string) => notes.write(`\n${text}\n`); // raw mode keeps ONLCR
    const sendBreak = async () => {
      const deadline = Date.now() + 30_000;
      while (!done && unackedBytes > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      if (done) return;
      try {
        const res = await controlRequest(runDir, { op: 'line-event', domain, event: 'break' });
        if (!res.ok) note(`vpl011: BREAK not sent: ${res.error}`);
      } catch (e) {
        note(`vpl011: BREAK not sent: ${errorMessage(e)}`);
      }
    };
    const work = async () => {
      if (busy) return;
      busy = true;
      while (!done && todo.length > 0) {
        const a = todo.shift()!;
        switch (a.kind) {
          case 'data':
            if (!readOnly) send(Buffer.from(a.bytes)); // a watcher's keystrokes go nowhere (the daemon drops them too)
            break;
          case 'quit':
            busy = false;
            return finish(0);
          case 'help':
            note(escapeHelp('detach (the domain keeps running)'));
            break;
          case 'unknown':
            note(`vpl011: Ctrl-] ${keyName(a.key)} is not an escape (nothing sent); Ctrl-] ? lists them`);
            break;
          case 'break':
            if (readOnly) note('vpl011: read-only: no BREAK');
            else await sendBreak();
            break;
        }
      }
      busy = false;
    };
    const onInput = (chunk: Buffer | string) => {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk);
      if (!tty) {
        if (!readOnly) send(b);
        return;
      }
      todo.push(...escapes.feed(b));
      void work();
    };
    const onEnd = () => {
      inputEnded = true;
      armLinger();
    };

    if (tty) input.setRawMode!(true);
    input.on('data', onInput);
    input.on('end', onEnd);
    use(first.sock, first.leftover);
    input.resume();
    const timeout = opts.timeoutMs !== undefined ? setTimeout(() => finish(0), opts.timeoutMs) : undefined;
  });
}
