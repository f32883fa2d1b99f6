// Line events under the daemon (issue #10 §2): `vpl011 send-break NAME` (the control request scripts use) and the
// `vpl011 console` escape Ctrl-] b at a terminal (script(1)'s pty) reach a Linux guest started with `vpl011 up` as a
// BREAK: the next key is a SysRq command (h = help in the console log). Bad requests are refused with one line.
import { after, before } from 'node:test';
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, Harness, runCli } from './lib/daemon-harness.js';
import { guestPaths } from '../src/toolstack/fetch.js';

const h = new Harness();
before(() => h.startDaemon());
after(() => h.cleanup());

const helps = () => (h.log('sysrq').toString('latin1').match(/sysrq: HELP : /g) ?? []).length;

test('send-break NAME, then a key: SysRq help in the log; Ctrl-] b at a console terminal does the same; bad requests refused', { timeout: 300_000 }, async () => {
  const p = guestPaths();
  const cfg = join(h.runDir, 'sysrq.cfg');
  writeFileSync(cfg, `name = "sysrq"\nkernel = "${p.kernel}"\nramdisk = "${p.initrd}"\ncmdline = "console=ttyAMA0 earlycon sysrq_always_enabled"\n`);
  const up = await runCli(['up', cfg, '--run-dir', h.runDir]);
  assert.equal(up.code, 0, up.stderr);
  h.trackHosts();
  await h.until(() => /\/ # /.test(h.log('sysrq').toString('latin1')), 'the shell prompt', 180_000);

  // A script: the control request, then the key through a piped console.
  const br = await runCli(['send-break', 'sysrq', '--run-dir', h.runDir]);
  assert.equal(br.code, 0, br.stderr);
  const con = await runCli(['console', 'sysrq', '--run-dir', h.runDir, '--linger', '500'], 'h');
  assert.equal(con.code, 0, con.stderr);
  await h.until(() => helps() === 1, 'the SysRq help after send-break + h', 30_000);

  // A framing error, counted by the driver.
  const fe = await runCli(['send-break', 'sysrq', '--error', 'framing', '--run-dir', h.runDir]);
  assert.equal(fe.code, 0, fe.stderr);
  const cat = await runCli(['console', 'sysrq', '--run-dir', h.runDir, '--linger', '1500'], '\ncat /proc/tty/driver/ttyAMA\n');
  assert.match(cat.stdout, /0: uart:.* fe:1/, cat.stdout);

  // A person at a terminal: Ctrl-] b, then h; Ctrl-] . detaches and the domain keeps running.
  const child = spawn('script', ['-qfec', `'${process.execPath}' '${BIN}' console sysrq --run-dir '${h.runDir}'`, '/dev/null'], { stdio: 'pipe' });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString('latin1')));
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  try {
    await new Promise((r) => setTimeout(r, 1500)); // attached (the pty is in raw mode)
    child.stdin.write('\x1db');
    await new Promise((r) => setTimeout(r, 300));
    child.stdin.write('h');
    await h.until(() => helps() === 2, `the SysRq help after Ctrl-] b h (terminal saw: ${JSON.stringify(out.slice(-300))})`, 30_000);
    child.stdin.write('\x1d.');
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    assert.equal(await exited, 0, out.slice(-500));
    clearTimeout(timer);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
  assert.equal((await h.info('sysrq'))?.state, 'running', 'detaching leaves the domain running');

  // Refused, one line each, exit 2.
  const none = await runCli(['send-break', 'nosuch', '--run-dir', h.runDir]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /^vpl011: domain: no running console nosuch\n$/);
  const bad = await h.request({ op: 'line-event', domain: 'sysrq', event: 'smoke' });
  assert.deepEqual(bad, { ok: false, error: 'event: expected one of break, framing, parity' });
  const extra = await h.request({ op: 'line-event', domain: 'sysrq', event: 'break', bits: 15 });
  assert.equal(extra.ok, false);
  const wrongArg = await runCli(['send-break', 'sysrq', '--error', 'overrun', '--run-dir', h.runDir]);
  assert.equal(wrongArg.code, 2);
});

test('rx_overrun = "strict" under the daemon: input that finds a non-reading guest\'s IN full is lost and counted in list; the default keeps it', { timeout: 120_000 }, async () => {
  for (const strict of [true, false]) {
    const name = strict ? 'strict' : 'keeps';
    const cfg = h.bareConfig(name, 'spin');
    if (strict) writeFileSync(cfg, readFileSync(cfg, 'utf8') + 'rx_overrun = "strict"\n');
    const res = await h.request({ op: 'up', name, config: cfg });
    assert.equal(res.ok, true, JSON.stringify(res));
    h.trackHosts();
    // The spin guest never reads its UART: 1024 bytes fill IN, the rest meets a full "FIFO".
    const con = runCli(['console', name, '--run-dir', h.runDir, '--linger', '300', '--timeout', strict ? '20000' : '2000'], Buffer.alloc(1300, 0x61));
    if (strict) assert.equal((await con).code, 0);
    await h.until(async () => ((await h.info(name))?.bytesIn ?? 0) >= 1024, 'IN full', 30_000);
    if (strict) await h.until(async () => (await h.info(name))?.rxOverrun === 276, 'the loss counted', 30_000);
    else {
      await con;
      const d = await h.info(name);
      assert.equal(d?.rxOverrun, 0, 'backpressure: nothing lost');
      assert.equal(d?.bytesIn, 1024, 'the rest waits');
    }
    const des = await runCli(['destroy', name, '--run-dir', h.runDir]);
    assert.equal(des.code, 0, des.stderr);
  }
});
