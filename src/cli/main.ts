// The `vpl011` command line: thin front ends over the layers below. Each command imports its module lazily, so
// `vpl011 replay` never loads the CPU library and `vpl011 list` never loads the toolstack.
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { registerDaemonCommands } from './daemon-commands.js';
import { registerInsightCommands } from './insight-commands.js';
import { FileReadError, READ_CAP, readAtMost, readRegularFile } from '../util/bounded-read.js';
import { printableLine } from '../util/quote.js';
import type { SpareWorker } from '../vmm/spare-worker.js';

/** `replay --qemu-trace` reads at most this much (about a million trace lines). */
const QEMU_TRACE_CAP = 64 * 1024 * 1024;

/** Node timers hold at most 2^31-1 ms; a longer one fires after 1 ms (with only a warning), so refuse it. */
const MAX_TIMER_SECONDS = Math.floor((2 ** 31 - 1) / 1000);

function positiveSeconds(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n <= 0 || n > MAX_TIMER_SECONDS) throw new InvalidArgumentError(`expected a number of seconds in 0..${MAX_TIMER_SECONDS}`);
  return n;
}

/** Only the type is checked here; the range is the config's rule (checkGuestConfig), one source of truth. */
function mebibytes(v: string): number {
  const n = Number(v);
  if (!/^\s*-?\d+\s*$/.test(v) || !Number.isSafeInteger(n)) throw new InvalidArgumentError('expected a whole number of MiB');
  return n;
}

/** `spare`: the vCPU's worker for `run`, if the caller started one already (bin/vpl011.js does). */
const exitCodeOf = (err: CommanderError): number => (err.exitCode === 0 ? 0 : 2);

export function buildProgram(spare?: SpareWorker): Command {
  const program = new Command();
  program
    .name('vpl011')
    .description("Xen's virtual PL011 / SBSA UART and its console path, running unmodified arm64 guests")
    // A bad argument is one line and exit 2, like a bad config. The argument is echoed escaped: it can hold ESC.
    // Set before the subcommands are added: they inherit both.
    .configureOutput({
      outputError: (str, write) => write(`vpl011: ${printableLine(str.trim().replace(/^error: /, ''))} (--help lists the options)\n`),
    })
    // With a spare worker loading (`run`), not process.exit: that would end its thread mid-load, and koffi aborts
    // the process when its thread is terminated inside a call. main() sets the exit code and lets the worker end.
    .exitOverride((err) => {
      if (spare === undefined) process.exit(exitCodeOf(err));
      throw err;
    });

  program
    .command('run')
    .description('boot a guest (default: Debian Linux + busybox) with its console on this terminal; Ctrl-] . quits, Ctrl-] ? lists the escapes (Ctrl-] b = BREAK)')
    .option('-c, --config <file>', 'guest config file (xl.cfg-like)')
    .option('-k, --kernel <file>', 'kernel Image, ELF or raw binary')
    .option('-i, --initrd <file>', 'initramfs')
    .option('-a, --append <cmdline>', 'kernel command line')
    .option('-m, --memory <MiB>', 'guest memory in MiB', mebibytes)
    .option('--bare', 'the kernel is a bare-metal program (ELF or raw), not a Linux Image')
    .option('--firmware <file>', "firmware for QEMU's virt board (e.g. U-Boot's u-boot.bin), booted in the qemu-virt layout")
    .option('--mmio-policy <policy>', 'what a refused MMIO access does: abort | crash-domain')
    .option('-t, --timeout <seconds>', 'end the run after this long (exit code 124)', positiveSeconds)
    .option('--log <file>', 'also write the guest console output to this file')
    .option('--restore <file>', 'start from a saved domain (vpl011 save, or run --save) instead of booting')
    .option('--save <file>', 'on SIGUSR1, save the domain to this file and end the run')
    .argument('[configs...]', 'config files; two or more boot that many domains on this terminal (dom0less)')
    .option('--dom0less', "the vpl011 backend is Xen's console (docs/DOM0LESS.md): DOMn-prefixed lines, Ctrl-a x3 switches input")
    .action(async (configs: string[], opts) => {
      // One positional config is `--config`; two or more (or --dom0less) are domains 1, 2, ... with Xen's console.
      if (configs.length >= 2 || opts.dom0less === true) {
        const { runDom0lessCommand } = await import('./run-dom0less.js');
        process.exitCode = await runDom0lessCommand({ ...opts, configs });
        return;
      }
      if (configs.length === 1) {
        if (opts.config !== undefined) {
          process.stderr.write('vpl011: give the config once (as an argument or with --config)\n');
          process.exitCode = 2;
          return;
        }
        opts.config = configs[0];
      }
      // The vCPU's thread starts first and loads its modules while this one loads the rest and builds the guest.
      const worker = spare ?? new (await import('../vmm/spare-worker.js')).SpareWorker();
      try {
        const { runCommand } = await import('./run.js');
        process.exitCode = await runCommand(opts, worker);
      } finally {
        worker.discard(); // unused when the run ended before its domain was built (a bad argument or config)
      }
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
        // Bounded: `replay /dev/zero` (or `- < /dev/zero`) is an error, not a process eating all memory.
        // A QEMU trace of a Linux boot is a few MB (one line per access); a script is small.
        const cap = opts.qemuTrace ? QEMU_TRACE_CAP : READ_CAP;
        text = (file === '-' ? readAtMost(0, 'standard input', cap) : readRegularFile(file, cap)).toString('utf8');
      } catch (e) {
        if (!(e instanceof FileReadError)) throw e;
        process.stderr.write(`vpl011 replay: ${printableLine(e.message)}\n`);
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
  registerInsightCommands(program);
  return program;
}

/**
 * Standard output or error going away (`vpl011 replay x | head -1`, a closed terminal) is an 'error' event on the
 * stream; unhandled, it is a stack trace. A reader that left wants no more: end quietly, as Unix filters do.
 */
function endQuietlyWhenOutputCloses(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE' && stream !== process.stderr) process.stderr.write(`vpl011: standard output: ${printableLine(e.message)}\n`);
      process.exit(e.code === 'EPIPE' ? 0 : 1);
    });
  }
}

/** `spare`: a worker started for `run` before this module loaded (bin/vpl011.js); ended here if nothing used it. */
export async function main(argv: string[], spare?: SpareWorker): Promise<void> {
  endQuietlyWhenOutputCloses();
  try {
    await buildProgram(spare).parseAsync(argv);
  } catch (e) {
    if (!(e instanceof CommanderError)) throw e;
    process.exitCode = exitCodeOf(e); // a bad argument (its line already printed) or --help, with a spare loading
  } finally {
    spare?.discard(); // no domain took it (dom0less builds its own; a bad argument builds none)
  }
}
