// `vpl011 run a.cfg b.cfg ...` / `vpl011 run --dom0less`: several domains on this terminal with the vpl011
// backend in Xen (docs/DOM0LESS.md). The terminal is Xen's serial console: Ctrl-a three times moves the input
// focus, Ctrl-] . (on a terminal; the escapes of src/console/escape.ts) destroys every domain and ends the run,
// --timeout ends it with 124.
import { ConfigError, type GuestConfig } from '../toolstack/config.js';
import { BuildError } from '../toolstack/build.js';
import { ensureUnicorn } from '../toolstack/fetch.js';
import { printableLine } from '../util/quote.js';
import { Dom0lessError, startDom0less, type Dom0lessRun } from '../console/dom0less.js';
import { resolveGuestConfig, type RunOptions } from './run.js';
import { errorMessage } from '../util/errors.js';
import { stopOnSignals } from './stop-signals.js';
import { EscapeReader, escapeHelp, keyName } from '../console/escape.js';
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
  say(`dom0less: ${names}; Ctrl-a three times switches the input${tty ? ', Ctrl-] . quits, Ctrl-] ? lists the escapes' : ''}`);

  let userQuit = false;
  const escapes = new EscapeReader();
  // On its own lines, not after a guest's prompt (as sayOwnLine below).
  const note = (text: string) => {
    if (process.stdout.isTTY && process.stderr.isTTY) run.mux.endLine();
    process.stderr.write(`${text}\n`);
  };
  const onData = (chunk: Buffer) => {
    if (userQuit) return;
    const actions = tty ? escapes.feed(chunk) : [{ kind: 'data' as const, bytes: chunk as Uint8Array }];
    for (const a of actions) {
      if (a.kind === 'data') {
        if (a.bytes.length > 0 && !run.mux.input(a.bytes)) stdin.pause();
      } else if (a.kind === 'quit') {
        userQuit = true;
        void run.stop();
        return;
      } else if (a.kind === 'help') note(escapeHelp('quit (every domain is destroyed)'));
      // Xen's own console (the dom0less backend) carries bytes only: no line events to its domains.
      else if (a.kind === 'break') note('vpl011: no BREAK on the dom0less console (Xen-backed consoles carry bytes only)');
      else note(`vpl011: Ctrl-] ${keyName(a.key)} is not an escape (nothing sent); Ctrl-] ? lists them`);
    }
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

  const signals = stopOnSignals(() => void run.stop(), () => {
    if (tty) stdin.setRawMode(false);
  });
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
  signals.dispose();
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
  const signalExit = signals.exitCode();
  if (signalExit !== undefined) return signalExit;
  if (timedOut) {
    say(`timed out after ${opts.timeout} s; domains destroyed`);
    return 124;
  }
  if (userQuit) say('console closed (Ctrl-] .); domains destroyed');
  return crashed ? 1 : 0;
}
