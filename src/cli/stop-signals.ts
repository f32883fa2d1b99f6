// SIGINT/SIGTERM/SIGHUP end a foreground run (`vpl011 run`, one domain or several) like Ctrl-] . does: the domains
// are destroyed, output flushed, the terminal restored, and the exit code is 128 + the signal. A second signal while
// that stop is under way gets the signal's default action (a stuck stop must not trap the user).
import { constants as osConstants } from 'node:os';

const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export interface StopSignals {
  /** The first stop signal received, if any. */
  readonly signalled: NodeJS.Signals | undefined;
  /** 128 + the signal's number once one was received (the shell's convention), else undefined. */
  exitCode(): number | undefined;
  /** Stop listening (the run is over). */
  dispose(): void;
}

export function stopOnSignals(stop: () => void, restoreTerminal: () => void): StopSignals {
  let signalled: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (signalled !== undefined) {
      for (const s of STOP_SIGNALS) process.removeAllListeners(s);
      restoreTerminal();
      process.kill(process.pid, sig);
      return;
    }
    signalled = sig;
    stop();
  };
  for (const s of STOP_SIGNALS) process.on(s, onSignal);
  return {
    get signalled() {
      return signalled;
    },
    exitCode: () => (signalled === undefined ? undefined : 128 + (osConstants.signals[signalled] ?? 0)),
    dispose: () => {
      for (const s of STOP_SIGNALS) process.off(s, onSignal);
    },
  };
}
