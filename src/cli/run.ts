// `vpl011 run`: build a guest, start its vCPU in a worker thread, and be its console backend in this thread, with
// the console on the terminal (raw mode, Ctrl-] quits) or, when stdin is not a terminal, on plain pipes.
import { closeSync, createWriteStream, type WriteStream } from 'node:fs';
import { resolve } from 'node:path';
import { constants as osConstants } from 'node:os';
import { ConfigError, checkGuestConfig, defaultGuestConfig, loadConfig, type GuestConfig, type MmioPolicy } from '../toolstack/config.js';
import { OutputFileError, openOutputFile } from '../util/output-file.js';
import { printableLine } from '../util/quote.js';
import { BuildError } from '../toolstack/build.js';
import { ensureGuestImages, ensureUnicorn } from '../toolstack/fetch.js';
import { startGuest, type RunningGuest } from '../console/guest-session.js';

export interface RunOptions {
  config?: string;
  kernel?: string;
  initrd?: string;
  append?: string;
  memory?: number;
  bare?: boolean;
  mmioPolicy?: string;
  timeout?: number;
  log?: string;
}

const CTRL_RIGHT_BRACKET = 0x1d;
/** Every line we print may quote something untrusted (a path, a config value): escaped and capped. */
const say = (s: string) => {
  for (const line of s.split('\n')) process.stderr.write(`vpl011: ${printableLine(line)}\n`);
};

/**
 * Resolve the guest config: a file, or the default guest, with command-line overrides on top, checked with the
 * config file's own rules (checkGuestConfig): `--memory 1` is refused exactly as `memory = 1` is.
 */
export async function resolveGuestConfig(
  opts: RunOptions,
  // Only what is being fetched is worth a line; "already present" is not.
  log: (s: string) => void = (s) => {
    if (!/nothing to fetch|library present/.test(s)) process.stderr.write(s + '\n');
  },
): Promise<GuestConfig> {
  let config: GuestConfig;
  if (opts.config) {
    config = loadConfig(opts.config);
  } else if (opts.kernel) {
    config = { ...defaultGuestConfig({ kernel: resolve(opts.kernel), initrd: '' }), name: 'guest' };
    delete config.ramdisk;
  } else {
    config = defaultGuestConfig(await ensureGuestImages({ log }));
  }
  const origin: Partial<Record<keyof GuestConfig, string>> = {};
  if (opts.kernel) {
    config.kernel = resolve(opts.kernel);
    origin.kernel = '--kernel';
  }
  if (opts.initrd) {
    config.ramdisk = resolve(opts.initrd);
    origin.ramdisk = '--initrd';
  }
  if (opts.append !== undefined) {
    config.cmdline = opts.append;
    origin.cmdline = '--append';
  }
  if (opts.memory !== undefined) {
    config.memoryMiB = opts.memory;
    origin.memoryMiB = '--memory';
  }
  if (opts.bare) {
    config.kind = 'bare';
    origin.kind = '--bare';
  }
  if (opts.mmioPolicy !== undefined) {
    config.mmioPolicy = opts.mmioPolicy as MmioPolicy;
    origin.mmioPolicy = '--mmio-policy';
  }
  checkGuestConfig(config, origin);
  return config;
}

export async function runCommand(opts: RunOptions): Promise<number> {
  let guest: RunningGuest;
  let logFd: number | undefined;
  try {
    const config = await resolveGuestConfig(opts);
    // Every sink opens before the guest starts: one that cannot is an error now, not a crash later.
    if (opts.log !== undefined) logFd = openOutputFile(opts.log);
    await ensureUnicorn({ log: () => {} });
    guest = await startGuest(config, {
      report: say,
      // A person at a terminal types after seeing the prompt; a script's input is there from the start.
      holdInputUntilListening: !process.stdin.isTTY && config.kind === 'linux',
    });
  } catch (e) {
    if (logFd !== undefined) closeSync(logFd);
    if (e instanceof OutputFileError) {
      say(`--log ${e.message}`);
      return 2;
    }
    if (e instanceof ConfigError || e instanceof BuildError) {
      say(e.message);
      return 2;
    }
    say((e as Error).message);
    return 1;
  }

  const stdin = process.stdin;
  const tty = stdin.isTTY === true;
  let logStream: WriteStream | undefined;
  if (logFd !== undefined) {
    const stream = createWriteStream('', { fd: logFd });
    logStream = stream;
    const removeSink = guest.console.addSink(stream, { label: opts.log! });
    // A write that fails later (disk full) ends the logging, not the run.
    stream.once('error', (e) => {
      removeSink();
      say(`--log ${opts.log}: ${e.message}; no longer written`);
    });
  }
  guest.console.addSink(process.stdout, { label: 'stdout' });

  let userQuit = false;
  const onData = (chunk: Buffer) => {
    let data: Uint8Array = chunk;
    if (tty) {
      const i = chunk.indexOf(CTRL_RIGHT_BRACKET);
      if (i >= 0) {
        data = chunk.subarray(0, i);
        userQuit = true;
      }
    }
    if (data.length > 0 && !guest.console.queueInput(data)) stdin.pause();
    if (userQuit) void guest.stop();
  };
  guest.console.onInputSpace = () => stdin.resume();
  if (tty) stdin.setRawMode(true);
  stdin.on('data', onData);
  stdin.on('error', () => {});

  // SIGINT/SIGTERM/SIGHUP destroy the domain like Ctrl-] (output flushed, terminal restored), exit 128 + signal. A
  // second one while the stop is under way gets the signal's default action.
  let signalled: NodeJS.Signals | undefined;
  const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  const onSignal = (sig: NodeJS.Signals) => {
    if (signalled !== undefined) {
      for (const s of STOP_SIGNALS) process.removeAllListeners(s);
      if (tty) stdin.setRawMode(false);
      process.kill(process.pid, sig);
      return;
    }
    signalled = sig;
    void guest.stop();
  };
  for (const s of STOP_SIGNALS) process.on(s, onSignal);

  let timer: NodeJS.Timeout | undefined;
  let timedOut = false;
  if (opts.timeout !== undefined) {
    timer = setTimeout(() => {
      timedOut = true;
      void guest.stop();
    }, opts.timeout * 1000);
  }

  const exit = await guest.exited;
  if (timer) clearTimeout(timer);
  for (const s of STOP_SIGNALS) process.off(s, onSignal);
  stdin.off('data', onData);
  if (tty) stdin.setRawMode(false);
  stdin.pause();
  stdin.unref?.();
  await new Promise<void>((r) => (process.stdout.writableLength === 0 ? r() : process.stdout.once('drain', () => r())));
  if (logStream && !logStream.destroyed) await new Promise<void>((r) => logStream!.end(() => r()));

  if (tty) process.stderr.write('\r\n');
  if (signalled !== undefined) {
    say(`${signalled}; domain destroyed`);
    return 128 + (osConstants.signals[signalled] ?? 0);
  }
  if (timedOut) {
    say(`timed out after ${opts.timeout} s; domain destroyed`);
    return 124;
  }
  switch (exit.reason) {
    case 'poweroff':
      say('guest powered off');
      return 0;
    case 'reset':
      say('guest asked for a reset; the run ends here (no reboot)');
      return 0;
    case 'stopped':
      if (userQuit) say('console closed (Ctrl-]); domain destroyed');
      return 0;
    case 'crashed':
    default:
      say(`domain crashed: ${exit.message ?? 'no reason given'}`);
      return 1;
  }
}
