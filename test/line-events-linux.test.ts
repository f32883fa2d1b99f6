// Line events reaching a real Linux guest (Debian's kernel + busybox) through the vpl011 (issue #10 §2): a BREAK is
// a 0x00 character with DR.BE, which Linux's amba-pl011 / sbsa-uart driver (pl011_fifo_to_tty -> uart_handle_break)
// turns into the magic SysRq prefix on a console port; a character with DR.FE is counted in /proc/tty/driver/ttyAMA.
// In process (startGuest: the vCPU in a worker thread, this thread the console backend), both vuart profiles; and
// once through a terminal (script(1)'s pty) with the user's keys: Ctrl-] b, then h.
import { test, within } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultGuestConfig, type GuestConfig } from '../src/toolstack/config.js';
import { guestPaths } from '../src/toolstack/fetch.js';
import { startGuest, type RunningGuest } from '../src/console/guest-session.js';
import { PROMPT } from './lib/console-process.js';
import { VPL011_BIN as CLI } from '../src/util/self.js';

const BOOT_MS = 120_000;
const CMDLINE = 'console=ttyAMA0 earlycon sysrq_always_enabled';

/** A booted guest with its console output gathered (latin1) and a way to wait for a pattern in it. */
async function boot(vuart: GuestConfig['vuart']): Promise<{ g: RunningGuest; out: () => string; expect: (re: RegExp, ms: number, from?: number) => Promise<number> }> {
  const cfg = { ...defaultGuestConfig(guestPaths()), cmdline: CMDLINE, vuart, name: `sysrq-${vuart}` };
  const g = await startGuest(cfg);
  let text = '';
  const waiters: (() => void)[] = [];
  g.console.onOutput = (chunk) => {
    text += Buffer.from(chunk).toString('latin1');
    for (const w of waiters.splice(0)) w();
  };
  let ended = false;
  void g.exited.then(() => {
    ended = true;
    for (const w of waiters.splice(0)) w();
  });
  const expect = async (re: RegExp, ms: number, from = 0): Promise<number> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const m = re.exec(text.slice(from));
      if (m) return from + m.index + m[0].length;
      if (ended) throw new Error(`guest ended before ${re}; last output:\n${text.slice(-1500)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${re}; last output:\n${text.slice(-1500)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 500));
        waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  };
  return { g, out: () => text, expect };
}

const type = (g: RunningGuest, s: string) => g.console.queueInput(Buffer.from(s, 'latin1'));

for (const vuart of ['sbsa_uart', 'pl011'] as const) {
  test(`${vuart}: BREAK then h prints the SysRq help; a framing error is counted (fe:1); BREAK then b resets (PSCI)`, { timeout: 400_000 }, async () => {
    const { g, out, expect } = await boot(vuart);
    try {
      await expect(PROMPT, BOOT_MS);
      // BREAK, then the SysRq command key within Linux's 5 s window.
      let from = out().length;
      assert.equal(g.console.queueLineEvent('break'), true);
      type(g, 'h');
      await expect(/sysrq: HELP : .*reboot\(b\)/, 30_000, from);
      assert.equal(g.console.lineCounters.sent, 1);

      // A character with a framing error, then the driver's counters.
      type(g, '\n');
      await expect(PROMPT, 30_000, from);
      assert.equal(g.console.queueLineEvent('framing'), true);
      from = out().length;
      type(g, '\ncat /proc/tty/driver/ttyAMA\n');
      const end = await expect(/\n0: uart:[^\n]*\n/, 30_000, from);
      const line = /0: uart:[^\n]*/.exec(out().slice(from, end))![0];
      assert.match(line, / fe:1\b/, line);
      assert.match(line, / brk:1\b/, `the BREAK before it was counted too: ${line}`);
      await expect(PROMPT, 30_000, end);

      // BREAK then b: emergency restart, PSCI SYSTEM_RESET ends the domain with reason 'reset'.
      assert.equal(g.console.queueLineEvent('break'), true);
      type(g, 'b');
      const exit = await within(g.exited, 60_000, 'the reset after BREAK b');
      assert.equal(exit.reason, 'reset', JSON.stringify(exit));
      assert.match(out(), /sysrq: Resetting/);
    } finally {
      await g.stop();
      await g.exited;
    }
  });
}

test('at a terminal: Ctrl-] b then h is the SysRq help; Ctrl-] ? lists the escapes; Ctrl-] x sends nothing; Ctrl-] . quits', { timeout: 300_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vpl011-sysrq-'));
  const p = guestPaths();
  const cfg = join(dir, 'sysrq.cfg');
  writeFileSync(cfg, `kernel = "${p.kernel}"\nramdisk = "${p.initrd}"\ncmdline = "${CMDLINE}"\n`);
  const cmd = `'${process.execPath}' '${CLI}' run --config '${cfg}' --timeout 250`;
  const child = spawn('script', ['-qfec', cmd, '/dev/null'], { stdio: 'pipe' });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString('latin1')));
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  const waitFor = async (re: RegExp, ms: number, from = 0): Promise<number> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const m = re.exec(out.slice(from));
      if (m) return from + m.index + m[0].length;
      if (child.exitCode !== null) throw new Error(`run ended before ${re}:\n${out.slice(-1500)}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${re}:\n${out.slice(-1500)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  try {
    let at = await waitFor(PROMPT, BOOT_MS);
    child.stdin.write('\x1d?');
    at = await waitFor(/b {7}send a BREAK/, 10_000, at);
    child.stdin.write('\x1dx');
    at = await waitFor(/Ctrl-\] x is not an escape \(nothing sent\)/, 10_000, at);
    child.stdin.write('\x1db');
    await new Promise((r) => setTimeout(r, 300)); // separate reads, as a person types
    child.stdin.write('h');
    at = await waitFor(/sysrq: HELP : /, 30_000, at);
    // The shell saw neither the x nor the h (SysRq took it): a command line typed now runs as typed.
    child.stdin.write('echo ok-$((40+2))\r');
    at = await waitFor(/ok-42/, 30_000, at);
    child.stdin.write('\x1d.');
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const code = await exited;
    clearTimeout(timer);
    assert.equal(code, 0, out.slice(-1500));
    assert.match(out, /console closed \(Ctrl-\] \.\); domain destroyed/);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
