// `vpl011 run a.cfg b.cfg ...` / `vpl011 run --dom0less`: several domains on this terminal with the vpl011
// backend in Xen (docs/DOM0LESS.md). The terminal is Xen's serial console: Ctrl-a three times moves the input
// focus, Ctrl-] (on a terminal) destroys every domain and ends the run, --timeout ends it with 124.
import { constants as osConstants } from 'node:os';
import { ConfigError, type GuestConfig } from '../toolstack/config.js';
import { BuildError } from '../toolstack/build.js';
import { ensureUnicorn } from '../toolstack/fetch.js';
import { printableLine } from '../util/quote.js';
import { CTRL_RIGHT_BRACKET } from '../util/self.js';
import { Dom0lessError, startDom0less, type Dom0lessRun } from '../console/dom0less.js';
import { resolveGuestConfig, type RunOptions } from './run.js';
import { errorMessage } from '../util/errors.js';

const say = (s: string) => {
  for (const line of s.split('\n')) process.stderr.write(`vpl011: ${printableLine(line)}\n`);
};

export interface Dom0lessRunOptions extends RunOptions {
  /** Config files, one per domain (domids 1, 2, ... in this order); none: one default guest. */
  configs: string[];
}

export async function runDom0lessCommand(opts: Dom0lessRunOptions): Promise<number> {
  const stdin = process.stdin;
  const tty = stdin.isTTY === true;
  let run: Dom0lessRun;
  try {
    if (opts.config !== undefined) throw new Dom0lessError('give the config files as arguments, not with --config, for several domains');
    if (opts.log !== undefined) throw new Dom0lessError('--log is not available with several domains (redirect standard output)');
    const configs: GuestConfig[] = [];
    const files = opts.configs.length > 0 ? opts.configs : [undefined];
    for (const f of files) {
      const c = await resolveGuestConfig({ ...opts, ...(f !== undefined ? { config: f } : {}) });
      configs.push({ ...c, name: c.name });
    }
    await ensureUnicorn({ log: () => {} });
    run = await startDom0less(configs, { sink: process.stdout, holdInputUntilListening: !tty });
  } catch (e) {
    say(errorMessage(e));
    return e instanceof ConfigError || e instanceof BuildError || e instanceof Dom0lessError ? 2 : 1;
  }
  const names = run.domains.map((d) => `DOM${d.domid} = ${d.name}`).join(', ');
  say(`dom0less: ${names}; Ctrl-a three times switches the input${tty ? ', Ctrl-] quits' : ''}`);

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
    if (data.length > 0 && !run.mux.input(data)) stdin.pause();
    if (userQuit) void run.stop();
  };
  run.mux.onInputSpace = () => stdin.resume();
  // Node's raw mode keeps the terminal's output processing (ONLCR): '\n' needs no translation.
  if (tty) stdin.setRawMode(true);
  // On one terminal, our own lines start on a line of their own, not after a guest's prompt.
  const sayOwnLine = (s: string) => {
    if (process.stdout.isTTY && process.stderr.isTTY) run.mux.endLine();
    say(s);
  };
  // Each domain's end is said when it happens (the others run on).
  let crashed = false;
  for (const d of run.domains) {
    void d.exited.then((e) => {
      if (e.reason === 'crashed') crashed = true;
      const what = e.reason === 'stopped' ? 'destroyed' : e.reason === 'crashed' ? `crashed: ${e.message ?? 'no reason given'}` : e.reason;
      sayOwnLine(`DOM${d.domid} (${d.name}): ${what}`);
    });
  }
  stdin.on('data', onData);
  stdin.on('error', () => {});

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
    void run.stop();
  };
  for (const s of STOP_SIGNALS) process.on(s, onSignal);
  let timer: NodeJS.Timeout | undefined;
  let timedOut = false;
  if (opts.timeout !== undefined) {
    timer = setTimeout(() => {
      timedOut = true;
      void run.stop();
    }, opts.timeout * 1000);
  }

  await run.exited;
  if (timer) clearTimeout(timer);
  for (const s of STOP_SIGNALS) process.off(s, onSignal);
  stdin.off('data', onData);
  if (tty) stdin.setRawMode(false);
  stdin.pause();
  stdin.unref?.();
  await new Promise<void>((r) => (process.stdout.writableLength === 0 ? r() : process.stdout.once('drain', () => r())));
  if (process.stdout.isTTY && process.stderr.isTTY) run.mux.endLine();

  const c = run.mux.counters;
  if (c.keysToXen + c.keysToDeadDomain > 0) {
    say(`input dropped: ${c.keysToXen} byte(s) typed while Xen had the focus, ${c.keysToDeadDomain} for a domain that had ended`);
  }
  if (signalled !== undefined) return 128 + (osConstants.signals[signalled] ?? 0);
  if (timedOut) {
    say(`timed out after ${opts.timeout} s; domains destroyed`);
    return 124;
  }
  if (userQuit) say('console closed (Ctrl-]); domains destroyed');
  return crashed ? 1 : 0;
}
