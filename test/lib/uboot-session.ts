// Drive U-Boot's console in any process (ours or QEMU's) with the same scripted input, and compare transcripts.
// Used by test/uboot.test.ts.
import { ConsoleProcess } from './console-process.js';

export const UBOOT_BIN = '/usr/lib/u-boot/qemu_arm64/u-boot.bin';
export const QEMU = 'qemu-system-aarch64';

/** Ends a console process (by its own pid) and waits until it is gone. */
export async function end(c: ConsoleProcess): Promise<void> {
  c.kill();
  await c.exited;
}

/**
 * Interrupt autoboot with a key, then run each command, waiting for the prompt after each. Returns the transcript
 * from the banner to the last prompt, with CRLF as LF.
 */
export async function ubootSession(c: ConsoleProcess, commands: readonly string[], timeoutMs: number): Promise<string> {
  const start = Date.now();
  const left = () => Math.max(1, timeoutMs - (Date.now() - start));
  let at = await c.expect(/Hit any key to stop autoboot: /, left());
  c.type(' ');
  at = await c.expect(/\n=> /, left(), at);
  for (const cmd of commands) {
    const before = c.out.length;
    c.type(`${cmd}\r`);
    at = await c.expect(/\n=> /, left(), Math.max(at, before));
  }
  const from = c.out.indexOf('U-Boot ');
  return c.out.slice(from, at).replace(/\r\n/g, '\n');
}

/**
 * The board facts in a transcript, each replaced by a placeholder; everything else must be equal. Each rule says
 * why that line differs between QEMU's virt board and ours.
 */
export const BOARD_FACTS: readonly { why: string; re: RegExp; by: string }[] = [
  // Not a board fact but the one timing fact: a key that is already waiting when the countdown starts ends it with
  // "\b\b\b 0" (common/autoboot.c checks tstc() once before its loop), one that comes in the loop with "\b\b\b 0 "
  // after the digits it waited through.
  { why: 'when the key arrived in the autoboot countdown', re: /^Hit any key to stop autoboot: [ \d\b]*$/gm, by: 'Hit any key to stop autoboot: <countdown>' },
  // Our DT describes fewer devices (no virtio-mmio, PCIe, fw_cfg, pl031, pl061, flash): fewer devices bound.
  { why: 'devices bound from the DT', re: /^Core: .*$/gm, by: 'Core: <devices>' },
  // QEMU's DT has a CFI flash node (pflash_cfi01); we model no CFI command set and describe none.
  { why: 'CFI flash probed from the DT', re: /^Flash: .*$/gm, by: 'Flash: <flash>' },
  { why: 'flash size bdinfo reports', re: /^flashsize( +)= 0x[0-9a-f]+$/gm, by: 'flashsize$1= <flash>' },
  // QEMU's DTB is a 1 MiB blob (hw/arm/virt.c create_fdt); ours is as long as its contents.
  { why: 'DTB size', re: /^fdt_size( +)= 0x[0-9a-f]+$/gm, by: 'fdt_size$1= <size>' },
  // Where U-Boot puts its copy of the DT, and its stack below it: the copy's size is the DTB's.
  { why: 'FDT-copy and stack addresses', re: /^(fdt_blob|new_fdt|irq_sp|sp start)( +)= 0x[0-9a-f]+$/gm, by: '$1$2= <addr>' },
  { why: 'lmb reservations (U-Boot\'s own memory)', re: /^( reserved\[\d+\]\t)\[0x[0-9a-f]+-0x[0-9a-f]+\], 0x[0-9a-f]+ bytes/gm, by: '$1<range>' },
  { why: 'early malloc use while binding devices', re: /^Early malloc usage: .*$/gm, by: 'Early malloc usage: <bytes>' },
  { why: 'the relocated FDT copy', re: /^fdtcontroladdr=[0-9a-f]+$/gm, by: 'fdtcontroladdr=<addr>' },
  // booti copies the ramdisk and the DT below U-Boot's own memory (above): their addresses follow from it.
  { why: 'where booti copies the ramdisk and DT', re: /^( +Loading (?:Ramdisk|Device Tree) to )[0-9a-f]+, end [0-9a-f]+/gm, by: '$1<range>' },
  { why: 'the DT copy booti hands over', re: /^Working FDT set to (?!40000000$)[0-9a-f]+$/gm, by: 'Working FDT set to <addr>' },
];

export function normaliseBoardFacts(transcript: string): string {
  let t = transcript;
  for (const r of BOARD_FACTS) t = t.replace(r.re, r.by);
  return t;
}

/** QEMU's virt board with U-Boot as -bios and the same RAM, nothing attached: the reference. */
export function qemuArgs(memoryMiB: number, extra: string[] = []): string[] {
  return ['-M', 'virt', '-cpu', 'cortex-a57', '-m', `${memoryMiB}`, '-nographic', '-monitor', 'none', '-serial', 'stdio',
    '-nic', 'none', '-bios', UBOOT_BIN, ...extra];
}

/**
 * The lines of a Linux boot log that are about its console (earlycon, the PL011 driver, the console hand-over, init
 * and the shell), without timestamps, with the board facts in them replaced: the Linux IRQ number (Linux numbers its
 * interrupts in probe order, and QEMU's board has more devices) and the PrimeCell revision (PeriphID2: our vpl011
 * reports the r1p5 TRM's revision 3, QEMU's pl011 revision 1; docs/DEVICE.md).
 */
export function linuxConsoleLines(log: string): string[] {
  return log.replace(/\r\n/g, '\n').split('\n')
    .map((l) => l.replace(/^\[ *\d+\.\d+\] /, '').replace(/\x1b\[6n/g, '').trimEnd())
    // "Machine model:" is the DT's model string (ours says what runs the guest; QEMU's is "linux,dummy-virt").
    .filter((l) => /pl011|pl11|ttyAMA|console|Kernel command line|Run \/init|BusyBox|^vpl011 guest|^\/ #/.test(l) && !l.startsWith('Machine model:'))
    .map((l) => l.replace(/\(irq = \d+,/, '(irq = <n>,').replace(/is a PL011 rev\d+/, 'is a PL011 rev<n>'));
}
