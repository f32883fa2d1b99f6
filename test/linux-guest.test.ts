// Integration: boot the default guest (Debian's Linux 6.1 arm64 + busybox) with `vpl011 run`, console on pipes, and
// use it as a person would. Pins these behaviours: earlycon before ttyAMA0, an IRQ-driven tty on SPI 32, no
// input lost under RX backpressure, a byte-exact output flood, poweroff ending the run with 0, and the
// crash-domain / abort policies for a refused MMIO access.
import { describe, before, after } from 'node:test';
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { ConsoleProcess, PROMPT, vpl011Process } from './lib/console-process.js';

const BOOT_MS = 60_000;
const md5 = (b: Buffer | string) => createHash('md5').update(b).digest('hex');

/** Run one shell command and return its output (between the echoed command line and the next prompt). */
async function sh(g: ConsoleProcess, cmd: string, timeoutMs = 30_000): Promise<string> {
  const start = g.out.length;
  g.type(cmd + '\n');
  const echoed = await g.expect(/\r?\n/, timeoutMs, start);
  const end = await g.expect(PROMPT, timeoutMs, echoed);
  const tail = g.out.slice(echoed, end);
  return tail.replace(PROMPT, '');
}

describe('default Linux guest on the vpl011 console', () => {
  let g: ConsoleProcess;
  before(async () => {
    g = vpl011Process(['run', '--timeout', '300']);
    await g.expect(PROMPT, BOOT_MS);
  });
  after(() => g.kill());

  test('earlycon prints through the vpl011 before the ttyAMA0 driver takes over (stdout-path + plain earlycon)', () => {
    const early = g.out.indexOf('earlycon: ');
    const amba = g.out.search(/22000000\.sbsa-pl011: ttyAMA0 at MMIO 0x22000000 .*is a SBSA/);
    const enabled = g.out.indexOf('printk: console [ttyAMA0] enabled');
    assert.ok(early >= 0, 'an earlycon line');
    assert.ok(g.out.slice(0, 2000).includes('Booting Linux'), 'the very first kernel lines come out (earlycon)');
    assert.ok(amba > early, 'the sbsa-uart driver binds after earlycon');
    assert.ok(enabled > amba, 'the ttyAMA0 console takes over');
  });

  test('uname -a runs in the busybox shell', async () => {
    const out = await sh(g, 'uname -a');
    assert.match(out, /Linux .* aarch64/);
  });

  test('/proc/interrupts: the uart is interrupt-driven on GIC SPI 32 (level)', async () => {
    const out = await sh(g, 'cat /proc/interrupts');
    const m = /^\s*\d+:\s+(\d+)\s+GIC-0\s+32 Level\s+uart-pl011/m.exec(out);
    assert.ok(m, `a uart-pl011 line on GIC 32 in:\n${out}`);
    assert.ok(Number(m[1]) > 0, 'interrupts were taken');
  });

  test('64 KiB pasted into `cat > /tmp/f` arrives intact (no input lost under RX backpressure)', async () => {
    // No echo: the pasted text must not be mistaken for a prompt, and the test measures input, not output.
    // One command line, so the shell reads no further input until cat is done; RE''ADY (echoed as typed) does not
    // match READY, which only the echo command prints, right before cat starts reading.
    const cmdAt = g.out.length;
    g.type("stty -echo; echo RE''ADY; cat > /tmp/f; stty echo\n");
    await g.expect(/READY\r?\n/, 10_000, cmdAt);
    // Printable text in 64-byte lines (a canonical-mode tty line holds at most 4095 bytes).
    const raw = randomBytes(64 * 1024);
    let text = '';
    for (let i = 0; i < raw.length; i++) text += i % 64 === 63 ? '\n' : String.fromCharCode(0x20 + (raw[i]! % 95));
    const pasted = g.out.length;
    g.type(text);
    g.type('\x04'); // ^D at the start of a line: EOF for cat
    await g.expect(PROMPT, 120_000, pasted);
    const out = await sh(g, 'md5sum /tmp/f; wc -c /tmp/f', 30_000);
    assert.match(out, new RegExp(md5(text)), `md5 of what the guest received:\n${out}`);
  });

  test('a 4 MiB cat to the console arrives byte-exact (output flood)', async () => {
    const line = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXY\n';
    const size = 4 * 1024 * 1024;
    const expected = line.repeat(Math.ceil(size / line.length)).slice(0, size);
    await sh(g, `yes ${line.trim()} | head -c ${size} > /tmp/big`, 60_000);
    const sum = await sh(g, 'md5sum /tmp/big');
    assert.match(sum, new RegExp(md5(expected)), 'the file in the guest is what we expect');
    const start = g.out.length;
    g.type('cat /tmp/big; echo FLOOD-END-7d1f\n');
    const begin = await g.expect(/\r?\n/, 10_000, start);
    const end = await g.expect(/FLOOD-END-7d1f\r\n/, 240_000, begin);
    const got = g.out.slice(begin, end - 'FLOOD-END-7d1f\r\n'.length);
    assert.ok(!/(^|[^\r])\n/.test(got), 'every LF went out as CR LF (onlcr)');
    assert.equal(got.replace(/\r\n/g, '\n'), expected, 'every byte, in order');
    await g.expect(PROMPT, 10_000, end);
  });

  test('poweroff -f ends the run with exit code 0', async () => {
    g.type('poweroff -f\n');
    const { code } = await g.exited;
    assert.equal(code, 0, g.stderr);
    assert.match(g.stderr, /powered off/);
  });
});

test('scripted: piped commands run and the run exits 0 at poweroff (stdin is not a TTY)', async () => {
  const g = vpl011Process(['run', '--timeout', '120']);
  try {
    g.type('echo scripted-$((6*7))\npoweroff -f\n');
    g.child.stdin.end();
    const { code } = await g.exited;
    assert.equal(code, 0, g.stderr);
    assert.match(g.out, /scripted-42/);
  } finally {
    await g.kill();
  }
});

// iomem=relaxed: Debian's kernel has IO_STRICT_DEVMEM, so /dev/mem refuses ranges a driver claimed (the uart).
const RELAXED = ['--append', 'console=ttyAMA0 earlycon iomem=relaxed'];

test('crash-domain policy: a refused MMIO access (ICR read) crashes the domain; the run ends non-zero with the reason', async () => {
  const g = vpl011Process(['run', '--mmio-policy', 'crash-domain', '--timeout', '120', ...RELAXED]);
  try {
    await g.expect(PROMPT, BOOT_MS);
    g.type('devmem 0x22000044 32\n');
    const { code } = await g.exited;
    assert.equal(code, 1);
    assert.match(g.stderr, /domain crashed: .*(0x22000044|ICR|refused)/i);
  } finally {
    await g.kill();
  }
});

test('abort policy (default): a refused MMIO access gives the guest a data abort; the process gets SIGBUS, the guest lives', async () => {
  const g = vpl011Process(['run', '--timeout', '120', ...RELAXED]);
  try {
    await g.expect(PROMPT, BOOT_MS);
    const fr = await sh(g, 'devmem 0x22000018 32');
    assert.match(fr, /0x000000[0-9A-F]0/i, 'FR reads fine through /dev/mem');
    const icr = await sh(g, 'devmem 0x22000044 32; echo rc=$?');
    assert.match(icr, /Bus error/, 'the refused ICR read became a bus error for the process');
    assert.match(icr, /rc=135/, 'killed by SIGBUS (128 + 7)');
    assert.match(await sh(g, 'echo alive'), /alive/);
  } finally {
    await g.kill();
  }
});

test('--timeout ends a run with exit code 124', async () => {
  const g = vpl011Process(['run', '--timeout', '1']);
  try {
    const { code } = await g.exited;
    assert.equal(code, 124, g.stderr);
  } finally {
    await g.kill();
  }
});

test('vuart = "pl011": Linux binds its AMBA PL011 driver (PeriphID/CellID, clocks) and the console works', async () => {
  const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { ensureGuestImages } = await import('../src/toolstack/fetch.js');
  const { kernel, initrd } = await ensureGuestImages({ log: () => {} });
  const dir = mkdtempSync(join(tmpdir(), 'vpl011-amba-'));
  const cfg = join(dir, 'amba.cfg');
  writeFileSync(cfg, `name = "amba"\nkernel = "${kernel}"\nramdisk = "${initrd}"\nextra = "console=ttyAMA0 earlycon"\nvuart = "pl011"\n`);
  const g = vpl011Process(['run', '--config', cfg, '--timeout', '120']);
  try {
    await g.expect(PROMPT, BOOT_MS);
    assert.match(g.out, /22000000\.pl011: ttyAMA0 at MMIO 0x22000000 .*is a PL011 rev3/);
    assert.match(await sh(g, 'echo amba-$((2*21))'), /amba-42/);
    const irq = await sh(g, 'cat /proc/interrupts');
    assert.match(irq, /^\s*\d+:\s+[1-9]\d*\s+GIC-0\s+32 Level\s+uart-pl011/m, 'interrupt-driven on SPI 32');
    g.type('poweroff -f\n');
    assert.equal((await g.exited).code, 0);
  } finally {
    await g.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});
