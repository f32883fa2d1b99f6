// Issue 7 §1: a guest can always be stopped. Real guests that never reach a safe point (guests/bare/spin.S: `b .`,
// or a loop on a RAM flag; Linux with console=hvc0, which panics and loops in mdelay with interrupts off) are ended
// by --timeout, SIGINT/SIGTERM, Ctrl-] . through a pty, DomainThread.stop() and the daemon's destroy. The bound is
// generous (a loaded 2-core machine); the typical figure is in docs/CPU.md. Before the fix each of these ran forever
// (or 10 s for destroy, through SIGKILL).
import { after } from 'node:test';
import { vuartBackend } from './lib/vuart-backend.js';
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConsoleProcess, vpl011Process } from './lib/console-process.js';
import { VPL011_BIN as CLI } from '../src/util/self.js';
import { Harness } from './lib/daemon-harness.js';
import { buildBareGuestFile, buildBareGuest, BARE_LOAD_ADDR } from '../src/vmm/bare-guests.js';
import { startDomainThread } from '../src/vmm/domain-thread.js';

/** "It ended", not "it was fast": today's failure is forever (or 10 s); the goal is 200 ms. */
const STOP_BOUND_MS = 2000;
const SPIN = buildBareGuestFile('spin');
const SPIN_RAM = buildBareGuestFile('spin', { defines: { RAMFLAG: 1 } });
const tmp = mkdtempSync(join(tmpdir(), 'vpl011-stop-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** The process's exit (at most `ms`: ConsoleProcess.exitWithin) and how long it took from now. */
async function exitWithin(p: ConsoleProcess, ms: number): Promise<{ code: number | null; ms: number }> {
  const t0 = performance.now();
  const e = await p.exitWithin(ms);
  return { code: e.code, ms: performance.now() - t0 };
}

for (const [what, kernel] of [['b .', SPIN], ['a loop on a RAM flag', SPIN_RAM]] as const) {
  test(`run --timeout 1 ends a guest in ${what} with exit 124`, { timeout: 30_000 }, async () => {
    const p = vpl011Process(['run', '--bare', '--kernel', kernel, '--timeout', '1']);
    try {
      await p.expect(/spinning\n/, 20_000);
      const t0 = performance.now();
      const e = await exitWithin(p, 1000 + STOP_BOUND_MS + 5000);
      const sinceOutput = performance.now() - t0;
      assert.equal(e.code, 124, p.stderr);
      assert.match(p.stderr, /timed out after 1 s; domain destroyed/);
      // The timer started before the guest printed: the whole run from its output is at most 1 s plus the bound.
      assert.ok(sinceOutput < 1000 + STOP_BOUND_MS, `ended ${sinceOutput.toFixed(0)} ms after the guest's output`);
    } finally {
      await p.kill();
    }
  });
}

for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  test(`${sig} ends a guest in b . at once: output flushed to the log, exit ${code}`, { timeout: 30_000 }, async () => {
    const log = join(tmp, `${sig}.log`);
    const p = vpl011Process(['run', '--bare', '--kernel', SPIN, '--log', log]);
    try {
      await p.expect(/spinning\n/, 20_000);
      p.child.kill(sig);
      const e = await exitWithin(p, STOP_BOUND_MS + 5000);
      assert.equal(e.code, code, `exit ${e.code}; stderr: ${p.stderr}`);
      assert.ok(e.ms < STOP_BOUND_MS, `took ${e.ms.toFixed(0)} ms`);
      assert.match(p.stderr, new RegExp(`${sig}; domain destroyed`));
      assert.equal(readFileSync(log, 'latin1'), 'spinning\n');
    } finally {
      await p.kill();
    }
  });
}

test('Ctrl-] . at a terminal (a pty through script(1)) ends a guest in b .', { timeout: 30_000 }, async () => {
  const cmd = `'${process.execPath}' '${CLI}' run --bare --kernel '${SPIN}'`;
  const child = spawn('script', ['-qfec', cmd, '/dev/null'], { stdio: 'pipe' });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString('latin1')));
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  try {
    const deadline = Date.now() + 20_000;
    while (!out.includes('spinning') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.ok(out.includes('spinning'), `no guest output: ${out}`);
    const t0 = performance.now();
    child.stdin.write('\x1d.');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_BOUND_MS + 5000);
    const code = await exited;
    clearTimeout(timer);
    const ms = performance.now() - t0;
    assert.equal(code, 0, out);
    assert.match(out, /console closed \(Ctrl-\] \.\); domain destroyed/);
    assert.ok(ms < STOP_BOUND_MS, `took ${ms.toFixed(0)} ms`);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});

test('DomainThread.stop() ends guests in b . and on a RAM flag with "stopped"', { timeout: 30_000 }, async () => {
  for (const name of [undefined, 'RAMFLAG'] as const) {
    const data = buildBareGuest('spin', name ? { defines: { RAMFLAG: 1 } } : {});
    const dom = startDomainThread({
      domid: 1, name: 'spin',
      image: { ramBase: BARE_LOAD_ADDR, ramSize: 0x200000, segments: [{ addr: BARE_LOAD_ADDR, data, what: 'spin' }], entry: BARE_LOAD_ADDR, x0: 0 },
    });
    // Drain the ring once the guest has written its line: then it is in its loop.
    const port = await dom.vuartPort;
    const { ring } = vuartBackend(dom, port);
    let out = '';
    const buf = new Uint8Array(64);
    const deadline = Date.now() + 20_000;
    while (!out.includes('\n') && Date.now() < deadline) {
      for (let n; (n = ring.readOut(buf)) > 0; ) out += Buffer.from(buf.subarray(0, n)).toString('latin1');
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(out, 'spinning\n');
    await new Promise((r) => setTimeout(r, 100));
    const t0 = performance.now();
    await dom.stop();
    const ms = performance.now() - t0;
    const exit = await dom.exited;
    assert.equal(exit.reason, 'stopped', exit.message);
    assert.ok(ms < STOP_BOUND_MS, `${name ?? 'b .'}: took ${ms.toFixed(0)} ms`);
  }
});

test('destroy under the daemon ends a guest in b . quickly (was 10 s, through SIGKILL)', { timeout: 60_000 }, async (t) => {
  const h = new Harness();
  try {
    await h.startDaemon();
    await h.up('spinner', 'spin');
    await h.until(() => h.log('spinner').toString('latin1') === 'spinning\n', 'the guest in its loop', 30_000);
    const t0 = performance.now();
    const r = await h.request({ op: 'destroy', domain: 'spinner' });
    const ms = performance.now() - t0;
    assert.equal(r.ok, true);
    t.diagnostic(`destroy took ${ms.toFixed(0)} ms`);
    assert.ok(ms < STOP_BOUND_MS, `destroy took ${ms.toFixed(0)} ms`);
    assert.match(h.log('spinner').toString(), /shut down \(stopped\)\]\n$/);
  } finally {
    await h.cleanup();
  }
});

test('Linux with console=hvc0 (no console: init dies, the kernel panics and loops with interrupts off) is ended by SIGTERM; --timeout is the backstop', { timeout: 200_000 }, async (t) => {
  // earlycon stays the console (hvc0 never registers), so the panic is visible and the test knows where the guest is.
  // The stop is the one --timeout uses (guest.stop()); a signal is sent once the panic is seen because boot time on a
  // loaded machine varies too much for a fixed timeout to land in the panic loop. Before the fix neither ended it.
  const p = vpl011Process(['run', '--append', 'console=hvc0 earlycon', '--timeout', '150']);
  try {
    await p.expect(/end Kernel panic/, 140_000);
    await new Promise((r) => setTimeout(r, 300)); // well inside the loop
    p.child.kill('SIGTERM');
    const e = await exitWithin(p, STOP_BOUND_MS + 5000);
    t.diagnostic(`stopped ${e.ms.toFixed(0)} ms after SIGTERM`);
    assert.equal(e.code, 143, p.stderr);
    assert.ok(e.ms < STOP_BOUND_MS, `took ${e.ms.toFixed(0)} ms`);
  } finally {
    await p.kill();
  }
});
