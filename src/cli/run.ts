// `vpl011 run`: build a guest, start its vCPU in a worker thread, and be its console backend in this thread, with
// the console on the terminal (raw mode, Ctrl-] escapes: src/console/escape.ts) or, when stdin is not a terminal,
// on plain pipes.
import { hop } from '../util/hop-trace.js';
import { closeSync, createWriteStream, type WriteStream } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError, checkGuestConfig, defaultGuestConfig, inputWaitsForListener, loadConfig, type GuestConfig, type MmioPolicy } from '../toolstack/config.js';
import { OutputFileError, openOutputFile } from '../util/output-file.js';
import { printableLine } from '../util/quote.js';
import { BuildError, firmwarePayloadHint } from '../toolstack/build.js';
import { ensureGuestImages, ensureUnicorn } from '../toolstack/fetch.js';
import { startGuest, type RunningGuest } from '../console/guest-session.js';
import { SavedFileError, readSavedFile, type LoadedSave } from '../vmm/saved-file.js';
import { errorMessage } from '../util/errors.js';
import { stopOnSignals } from './stop-signals.js';
import { EscapeReader, escapeHelp, keyName } from '../console/escape.js';

export interface RunOptions {
  config?: string;
  kernel?: string;
  initrd?: string;
  append?: string;
  memory?: number;
  bare?: boolean;
  firmware?: string;
  mmioPolicy?: string;
  timeout?: number;
  log?: string;
  /** Boot from a saved domain (docs/SAVE.md) instead of a config. */
  restore?: string;
  /** SIGUSR1 saves the domain to this file and ends the run. */
  save?: string;
}

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
  } else if (opts.firmware !== undefined) {
    // Firmware alone: no payload unless --kernel/--initrd give one (they are applied below).
    config = { ...defaultGuestConfig({ kernel: '', initrd: '' }), name: 'firmware', vuart: 'pl011' };
    delete config.ramdisk;
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
  if (opts.firmware !== undefined) {
    // --firmware means QEMU's virt board: its layout and its PL011 (docs/LAYOUTS.md).
    config.firmware = resolve(opts.firmware);
    config.layout = 'qemu-virt';
    config.vuart = 'pl011';
    origin.firmware = '--firmware';
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
    let restore: LoadedSave | undefined;
    if (opts.restore !== undefined) {
      // The guest comes from the file: options that would build another one are a mistake, not an override.
      const clash = (['config', 'kernel', 'initrd', 'append', 'memory', 'bare', 'mmioPolicy'] as const).find((k) => opts[k] !== undefined);
      if (clash) {
        say(`--restore takes the guest from the saved file; --${clash.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} cannot be used with it`);
        return 2;
      }
      restore = readSavedFile(opts.restore);
    }
    const config = restore ? restore.config : await resolveGuestConfig(opts);
    // Every sink opens before the guest starts: one that cannot is an error now, not a crash later.
    if (opts.log !== undefined) logFd = openOutputFile(opts.log);
    await ensureUnicorn({ log: () => {} });
    const hint = firmwarePayloadHint(config);
    if (hint !== undefined) say(hint);
    guest = await startGuest(config, {
      report: say,
      // A person at a terminal types after seeing the prompt; a script's input is there from the start.
      holdInputUntilListening: !process.stdin.isTTY && inputWaitsForListener(config),
      ...(restore ? { restore: restore.machine } : {}),
    });
  } catch (e) {
    if (logFd !== undefined) closeSync(logFd);
    if (e instanceof OutputFileError) {
      say(`--log ${e.message}`);
      return 2;
    }
    if (e instanceof ConfigError || e instanceof BuildError || e instanceof SavedFileError) {
      say(e.message);
      return 2;
    }
    say(errorMessage(e));
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
  const escapes = new EscapeReader();
  const note = (text: string) => process.stderr.write(`\n${text}\n`); // raw mode keeps ONLCR
  const onData = (chunk: Buffer) => {
    hop('in', chunk.length);
    if (userQuit) return;
    const actions = tty ? escapes.feed(chunk) : [{ kind: 'data' as const, bytes: chunk as Uint8Array }];
    for (const a of actions) {
      switch (a.kind) {
        case 'data':
          if (a.bytes.length > 0 && !guest.console.queueInput(a.bytes)) stdin.pause();
          break;
        case 'break':
          // In order with what was typed before it; a console full of queued BREAKs refuses more (counted).
          if (!guest.console.queueLineEvent('break')) note('vpl011: BREAK not sent: too many line events waiting for the guest');
          break;
        case 'help':
          note(escapeHelp('quit (the domain is destroyed)'));
          break;
        case 'unknown':
          note(`vpl011: Ctrl-] ${keyName(a.key)} is not an escape (nothing sent); Ctrl-] ? lists them`);
          break;
        case 'quit':
          userQuit = true;
          void guest.stop();
          return;
      }
    }
  };
  guest.console.onInputSpace = () => stdin.resume();
  if (tty) stdin.setRawMode(true);
  stdin.on('data', onData);
  stdin.on('error', () => {}); // input gone (a closed pipe): the guest keeps running, output still flows

  const signals = stopOnSignals(() => void guest.stop(), () => {
    if (tty) stdin.setRawMode(false);
  });

  // --save: SIGUSR1 saves the domain and ends the run (a failed save says why; the guest runs on).
  let savedTo: string | undefined;
  let saving = false;
  const onSave = () => {
    if (saving || opts.save === undefined) return;
    saving = true;
    const file = opts.save;
    guest.save(file).then(
      () => { savedTo = file; },
      (e: Error) => { saving = false; say(`save: ${e.message}`); },
    );
  };
  if (opts.save !== undefined) process.on('SIGUSR1', onSave);

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
  signals.dispose();
  process.off('SIGUSR1', onSave);
  stdin.off('data', onData);
  if (tty) stdin.setRawMode(false);
  stdin.pause();
  stdin.unref?.();
  await new Promise<void>((r) => (process.stdout.writableLength === 0 ? r() : process.stdout.once('drain', () => r())));
  if (logStream && !logStream.destroyed) await new Promise<void>((r) => logStream!.end(() => r()));

  if (tty) process.stderr.write('\r\n');
  const signalExit = signals.exitCode();
  if (signalExit !== undefined) {
    say(`${signals.signalled}; domain destroyed`);
    return signalExit;
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
      if (savedTo !== undefined) say(`domain saved to ${savedTo}; restore it with: vpl011 run --restore ${savedTo}`);
      else if (userQuit) say('console closed (Ctrl-] .); domain destroyed');
      return 0;
    case 'crashed':
    default:
      say(`domain crashed: ${exit.message ?? 'no reason given'}`);
      return 1;
  }
}
