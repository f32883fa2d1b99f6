// The `vpl011` command line: thin front ends over the layers below. Each command imports its module lazily, so
// `vpl011 replay` never loads the CPU library and `vpl011 list` never loads the toolstack.
import { Command, InvalidArgumentError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { registerDaemonCommands } from './daemon-commands.js';

function positiveSeconds(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number of seconds');
  return n;
}

function mebibytes(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a whole number of MiB');
  return n;
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('vpl011')
    .description("Xen's virtual PL011 / SBSA UART and its console path, running unmodified arm64 guests")
    .showHelpAfterError();

  program
    .command('run')
    .description('boot a guest (default: Debian Linux + busybox) with its console on this terminal; Ctrl-] quits')
    .option('-c, --config <file>', 'guest config file (xl.cfg-like)')
    .option('-k, --kernel <file>', 'kernel Image, ELF or raw binary')
    .option('-i, --initrd <file>', 'initramfs')
    .option('-a, --append <cmdline>', 'kernel command line')
    .option('-m, --memory <MiB>', 'guest memory in MiB', mebibytes)
    .option('--bare', 'the kernel is a bare-metal program (ELF or raw), not a Linux Image')
    .option('--mmio-policy <policy>', 'what a refused MMIO access does: abort | crash-domain')
    .option('-t, --timeout <seconds>', 'end the run after this long (exit code 124)', positiveSeconds)
    .option('--log <file>', 'also write the guest console output to this file')
    .action(async (opts) => {
      const { runCommand } = await import('./run.js');
      process.exitCode = await runCommand(opts);
    });

  program
    .command('replay')
    .description('run a register-access script (or a QEMU pl011 trace) against a fresh vpl011 and print one line per step')
    .argument('<file>', 'script file, or with --qemu-trace a QEMU `-trace pl011_*` log (- for standard input)')
    .option('--qemu-trace', "the file is QEMU's pl011 trace: replay it and print where our reads differ from QEMU's")
    .addOption(new Option('--profile <profile>', 'with --qemu-trace: the vpl011 profile').choices(['pl011', 'sbsa']).default('pl011'))
    .option('--irq', "with --qemu-trace: also compare the interrupt line at QEMU's irq_state events")
    .action(async (file: string, opts: { qemuTrace?: boolean; profile: 'pl011' | 'sbsa'; irq?: boolean }) => {
      const { runReplay } = await import('./replay.js');
      let text: string;
      try {
        text = readFileSync(file === '-' ? 0 : file, 'utf8');
      } catch (e) {
        process.stderr.write(`vpl011 replay: cannot read ${file}: ${(e as Error).message}\n`);
        process.exitCode = 2;
        return;
      }
      if (!opts.qemuTrace) {
        process.exitCode = runReplay(text, (line) => process.stdout.write(line + '\n'));
        return;
      }
      const { runQemuTrace } = await import('./qemu-trace-replay.js');
      process.exitCode = runQemuTrace(text, { profile: opts.profile, irq: opts.irq === true }, (line) => process.stdout.write(line + '\n'), (line) => process.stderr.write(line + '\n'));
    });

  registerDaemonCommands(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  await buildProgram().parseAsync(argv);
}
