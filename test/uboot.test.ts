// Debian's U-Boot for QEMU's virt board (u-boot-qemu, installed by scripts/setup.sh) on our UART, in the qemu-virt
// layout: its console session equals QEMU's for the same keys apart from the board facts BOARD_FACTS lists, and
// its `booti` hands our default Linux over on the same vpl011 (issue 10 §1).
import { describe, before, after } from 'node:test';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { test } from './lib/bounded.js';
import { ConsoleProcess, PROMPT, vpl011Process } from './lib/console-process.js';
import { QEMU, UBOOT_BIN, end, linuxConsoleLines, normaliseBoardFacts, qemuArgs, ubootSession } from './lib/uboot-session.js';
import { QEMU_VIRT_BOOT } from '../src/toolstack/guest-map.js';
import { Harness, runCli } from './lib/daemon-harness.js';

const MEMORY_MIB = 512;
const COMMANDS = ['version', 'echo hello', 'printenv', 'bdinfo'] as const;
const RUN_LIMIT_S = 240;

function ours(extra: string[] = []): ConsoleProcess {
  return vpl011Process(['run', '--firmware', UBOOT_BIN, '--memory', `${MEMORY_MIB}`, '--timeout', `${RUN_LIMIT_S}`, ...extra]);
}

/** The part of `t` from the line starting with `from` to the next prompt. */
function answer(t: string, cmd: string): string {
  const i = t.indexOf(`=> ${cmd}\n`);
  assert.ok(i >= 0, `no "${cmd}" in the transcript:\n${t}`);
  const end = t.indexOf('\n=> ', i + 3);
  return t.slice(i, end < 0 ? undefined : end);
}

describe('U-Boot (qemu_arm64) in the qemu-virt layout', () => {
  let skip: string | false = false;
  before(() => {
    if (!existsSync(UBOOT_BIN)) skip = `${UBOOT_BIN} missing (scripts/setup.sh installs u-boot-qemu)`;
  });

  test('boots to =>, takes a key to stop autoboot, answers version/echo/printenv/bdinfo as QEMU does', { timeout: 300_000 }, async (t) => {
    if (skip) return t.skip(skip);
    const us = ours();
    let mine: string;
    try {
      mine = await ubootSession(us, COMMANDS, 180_000);
    } finally {
      await end(us);
    }
    // What a user sees, independent of QEMU.
    assert.match(mine, /^U-Boot 2023\.01\S* \(.*\)\n/);
    assert.match(mine, /\nDRAM:  512 MiB\n/);
    assert.match(mine, /\nIn:    pl011@9000000\nOut:   pl011@9000000\nErr:   pl011@9000000\n/);
    assert.match(mine, /\nHit any key to stop autoboot:  2 [ \d\b]*\n=> version\n/);
    assert.doesNotMatch(mine, /starting USB|fw_cfg/, 'the key stopped autoboot before bootcmd ran');
    assert.match(answer(mine, 'version'), /\nU-Boot 2023\.01.*\n\naarch64-linux-gnu-gcc/);
    assert.match(answer(mine, 'echo hello'), /^=> echo hello\nhello$/);
    assert.match(answer(mine, 'printenv'), /\nstdout=pl011@9000000\n[^]*\nEnvironment size: \d+\/\d+ bytes$/);
    assert.match(answer(mine, 'bdinfo'), /\n-> start    = 0x0000000040000000\n-> size     = 0x0000000020000000\n/);

    if (!existsSync(`/usr/bin/${QEMU}`)) return t.skip(`${QEMU} missing (scripts/setup.sh installs qemu-system-arm)`);
    const q = new ConsoleProcess('qemu', QEMU, qemuArgs(MEMORY_MIB));
    let theirs: string;
    try {
      theirs = await ubootSession(q, COMMANDS, 180_000);
    } finally {
      await end(q);
    }
    assert.equal(normaliseBoardFacts(mine), normaliseBoardFacts(theirs));
  });

  test('autoboot with no key: every boot target fails as on a board with nothing attached, and U-Boot stops at =>', { timeout: 300_000 }, async (t) => {
    if (skip) return t.skip(skip);
    const us = ours();
    try {
      // What it probes and we do not model (docs/LAYOUTS.md) is absent from the DT: each probe fails cleanly.
      const at = await us.expect(/Hit any key to stop autoboot: /, 180_000);
      const prompt = await us.expect(/No ethernet found\.\r?\n=> $/, 180_000, at);
      const log = us.out.slice(at, prompt).replace(/\r\n/g, '\n');
      assert.match(log, /\nQEMU fw_cfg interface not found\n/);
      assert.match(log, /\nstarting USB\.\.\.\nNo working controllers found\n/);
      assert.match(log, /\nDevice 0: unknown device\n/);
      // Still alive and answering.
      us.type('echo still-here\r');
      await us.expect(/\nstill-here\r?\n=> $/, 60_000, prompt);
      assert.equal(us.child.exitCode, null);
    } finally {
      await end(us);
    }
  });

  test('booti of the default Linux Image and initramfs loaded by the toolstack reaches the busybox prompt on the same UART, as under QEMU', { timeout: 400_000 }, async (t) => {
    if (skip) return t.skip(skip);
    const { ensureGuestImages } = await import('../src/toolstack/fetch.js');
    const images = await ensureGuestImages({ log: () => {} });
    const size = statSync(images.initrd).size;
    // The same bootargs on both boards (QEMU's DT has none; ours has the config's), then the addresses U-Boot's
    // default env gives: where the toolstack loaded the payload (docs/LAYOUTS.md) and where QEMU's loader puts it.
    const script = ['setenv bootargs console=ttyAMA0 earlycon'];
    const booti = `booti \${kernel_addr_r} \${ramdisk_addr_r}:0x${size.toString(16)} \${fdt_addr}`;
    const bootToShell = async (c: ConsoleProcess): Promise<{ uboot: string; linux: string }> => {
      await ubootSession(c, script, 180_000);
      // vpl011 run tells a person at the prompt the booti to type: the one this test types on both boards.
      if (c === us) assert.ok(c.stderr.includes(`at U-Boot's prompt: ${booti}\n`), c.stderr);
      const at = c.out.length;
      c.type(`${booti}\r`);
      const started = await c.expect(/Starting kernel \.\.\.\r?\n/, 60_000, at);
      const prompt = await c.expect(PROMPT, 240_000, started);
      c.type('echo after-u-boot-$((6*7))\r');
      const end = await c.expect(/after-u-boot-42\r?\n/, 60_000, prompt);
      return { uboot: c.out.slice(at, started).replace(/\r\n/g, '\n'), linux: c.out.slice(started, end) };
    };

    const us = ours(['--kernel', images.kernel, '--initrd', images.initrd]);
    let mine: { uboot: string; linux: string };
    try {
      mine = await bootToShell(us);
    } finally {
      await end(us);
    }
    assert.match(mine.uboot, /## Flattened Device Tree blob at 40000000\n/);
    assert.match(mine.uboot, /Loading Ramdisk to [0-9a-f]+, end [0-9a-f]+ \.\.\. OK\n/);
    // Linux finds the UART from the DT U-Boot passed on: earlycon from /chosen/stdout-path, then the AMBA driver
    // binds the arm,pl011 node, and the shell answers on it.
    const lines = linuxConsoleLines(mine.linux);
    assert.ok(lines.includes("earlycon: pl11 at MMIO 0x0000000009000000 (options '')"), lines.join('\n'));
    assert.ok(lines.some((l) => /^9000000\.pl011: ttyAMA0 at MMIO 0x9000000 \(irq = <n>, base_baud = 0\) is a PL011/.test(l)), lines.join('\n'));
    assert.ok(lines.includes('printk: console [ttyAMA0] enabled'), lines.join('\n'));

    if (!existsSync(`/usr/bin/${QEMU}`)) return t.skip(`${QEMU} missing (scripts/setup.sh installs qemu-system-arm)`);
    const q = new ConsoleProcess('qemu', QEMU, qemuArgs(MEMORY_MIB, [
      '-device', `loader,file=${images.kernel},addr=${QEMU_VIRT_BOOT.kernelAddr},force-raw=on`,
      '-device', `loader,file=${images.initrd},addr=${QEMU_VIRT_BOOT.ramdiskAddr},force-raw=on`,
    ]));
    let theirs: { uboot: string; linux: string };
    try {
      theirs = await bootToShell(q);
    } finally {
      await end(q);
    }
    assert.equal(normaliseBoardFacts(mine.uboot), normaliseBoardFacts(theirs.uboot));
    assert.deepEqual(lines, linuxConsoleLines(theirs.linux));
  });
});

describe('U-Boot under the console daemon', () => {
  const h = new Harness();
  before(() => (existsSync(UBOOT_BIN) ? h.startDaemon() : undefined));
  after(() => h.cleanup());

  test('`vpl011 up` of a qemu-virt firmware config: U-Boot autoboots to => in the log and answers `vpl011 console`', { timeout: 300_000 }, async (t) => {
    if (!existsSync(UBOOT_BIN)) return t.skip(`${UBOOT_BIN} missing`);
    const cfg = join(h.runDir, 'uboot.cfg');
    writeFileSync(cfg, `name = "uboot"\nlayout = "qemu-virt"\nfirmware = "${UBOOT_BIN}"\n`);
    const up = await runCli(['up', cfg, '--run-dir', h.runDir]);
    assert.equal(up.code, 0, up.stderr);
    h.trackHosts();
    // Nobody attached: autoboot runs every boot target and stops at the prompt.
    await h.until(() => /No ethernet found\.\r?\n=> $/.test(h.log('uboot').toString('latin1')), 'the => prompt after autoboot', 180_000);
    const con = await runCli(['console', 'uboot', '--run-dir', h.runDir, '--linger', '1500'], 'version\r');
    assert.equal(con.code, 0, con.stderr);
    assert.match(con.stdout, /U-Boot 2023\.01[^\n]*\r?\n\r?\naarch64-linux-gnu-gcc/);
    const des = await runCli(['destroy', 'uboot', '--run-dir', h.runDir]);
    assert.equal(des.code, 0, des.stderr);
  });
});
