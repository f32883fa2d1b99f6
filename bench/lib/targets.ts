// The two VMMs the guest benchmark compares, each started with the guest console on its stdin/stdout pipes:
// QEMU 7.2 (its own PL011 at 0x09000000) and ours (`node bin/vpl011.js run`, the vpl011 at 0x22000000).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const QEMU = 'qemu-system-aarch64';

/**
 * The QEMU machine. `-nographic` would also put QEMU's monitor on stdio (multiplexed, Ctrl-A escapes), and
 * together with `-serial stdio` QEMU 7.2 refuses to start ("cannot use stdio by multiple character devices"), so
 * the same effect is spelt out: no display, no monitor, the PL011 alone on stdio.
 */
export const QEMU_MACHINE = ['-M', 'virt', '-cpu', 'cortex-a57', '-m', '512', '-nic', 'none', '-display', 'none', '-monitor', 'none'];

/** The QEMU command line for the Linux guest (console on stdio). */
export function qemuLinuxArgs(kernel: string, initrd: string): string[] {
  return [...QEMU_MACHINE, '-serial', 'stdio', '-kernel', kernel, '-initrd', initrd, '-append', 'console=ttyAMA0 earlycon=pl011,0x9000000'];
}

/** The QEMU command line for a bare-metal ELF, UART on stdio (a pipe to us) or into a file (e.g. /dev/null). */
export function qemuBareArgs(elf: string, serial: 'stdio' | `file:${string}`): string[] {
  return [...QEMU_MACHINE, '-serial', serial, '-kernel', elf];
}

/** The repository root: dist/bench/lib/ -> ../../.. when compiled, bench/lib/ -> ../.. if run from source. */
export function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(d, 'package.json'))) return d;
    d = dirname(d);
  }
  return resolve('.');
}

/** The node flags the launcher (./vpl011) runs the VMM with: bin/node-flags, one per line, '#' comments. */
export function vpl011NodeFlags(root = repoRoot()): string[] {
  const file = join(root, 'bin', 'node-flags');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').replace(/#.*$/gm, '').split(/\s+/).filter((f) => f !== '');
}

/** `node <bin/node-flags> bin/vpl011.js`, as ./vpl011 runs it, or undefined while the CLI entry is not in the tree yet. */
export function vpl011Command(): { cmd: string; args: string[]; cwd: string } | undefined {
  const root = repoRoot();
  const bin = join(root, 'bin', 'vpl011.js');
  if (!existsSync(bin)) return undefined;
  return { cmd: process.execPath, args: [...vpl011NodeFlags(root), bin], cwd: root };
}

/** Our default guest (Debian kernel + busybox initramfs, `console=ttyAMA0 earlycon`), bounded by --timeout. */
export function vpl011LinuxArgs(timeoutS: number): string[] {
  return ['run', '--timeout', String(timeoutS)];
}

export function vpl011BareArgs(elf: string, timeoutS: number): string[] {
  return ['run', '--bare', '--kernel', elf, '--timeout', String(timeoutS)];
}
