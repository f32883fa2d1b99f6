// `vpl011 stat NAME [--why-irq] [--json]` and `vpl011 trace NAME [-n N] [--follow] [--on|--off]`: insight into a
// running domain's vpl011 (docs/DAEMON.md "Insight"). Both read the domain's insight region directly (mapped
// read-only; only --on/--off map it writable to flip the trace switch), so neither needs the daemon nor disturbs the
// guest. Modules are imported lazily, as everywhere in the CLI.
import { Command, InvalidArgumentError, Option } from 'commander';
import type { DomainRecord } from '../daemon/records.js';
import { printableLine } from '../util/quote.js';

const say = (s: string): void => void process.stderr.write(`vpl011: ${printableLine(s)}\n`);

function count(v: string): number {
  const n = Number(v);
  if (!/^[0-9]+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < 1 || n > 1 << 20) throw new InvalidArgumentError('expected a count in 1..1048576');
  return n;
}

/** The record of a domain by name or id, or undefined (said, exit 2). */
async function findDomain(runDir: string | undefined, domain: string): Promise<DomainRecord | undefined> {
  const { defaultRunDir, runPaths } = await import('../daemon/paths.js');
  const { listRecords } = await import('../daemon/records.js');
  const recs = listRecords(runPaths(runDir ?? defaultRunDir()).domainsDir);
  const rec = recs.find((r) => r.name === domain) ?? (/^[0-9]+$/.test(domain) ? recs.find((r) => r.domid === Number(domain)) : undefined);
  if (!rec) {
    say(`no domain ${domain}${recs.length ? ` (domains: ${recs.map((r) => r.name).join(', ')})` : ' (none is running)'}`);
    process.exitCode = 2;
  }
  return rec;
}

export function registerInsightCommands(program: Command): void {
  const runDirOpt = () => new Option('--run-dir <dir>', 'runtime directory (default $VPL011_RUN_DIR, $XDG_RUNTIME_DIR/vpl011, ...)');

  program
    .command('stat')
    .description("a domain's vpl011: registers decoded, ring indices, the SPI in the GIC, the device's counters")
    .argument('<domain>', 'name or id')
    .addOption(runDirOpt())
    .option('--why-irq', 'one sentence per interrupt source: why it is high or low right now')
    .option('--json', 'machine-readable output (fields: docs/DAEMON.md)')
    .action(async (domain: string, opts: { runDir?: string; whyIrq?: boolean; json?: boolean }) => {
      const rec = await findDomain(opts.runDir, domain);
      if (!rec) return;
      const { readDeviceStat, formatStat, StatError } = await import('../daemon/device-stat.js');
      let s;
      try {
        s = readDeviceStat(rec);
      } catch (e) {
        if (!(e instanceof StatError)) throw e;
        say(e.message);
        process.exitCode = 1;
        return;
      }
      if (opts.json) process.stdout.write(JSON.stringify(s) + '\n');
      else process.stdout.write((opts.whyIrq ? s.whyIrq : formatStat(s)).join('\n') + '\n');
    });

  program
    .command('trace')
    .description("a running domain's last vpl011 register accesses, as a `vpl011 replay` script (switch on with --on)")
    .argument('<domain>', 'name or id')
    .addOption(runDirOpt())
    .option('-n, --lines <n>', 'how many of the last accesses', count, 64)
    .option('-f, --follow', 'then keep printing new accesses until interrupted or the domain ends')
    .option('--on', 'start recording (costs the vCPU time per access: docs/DAEMON.md)')
    .option('--off', 'stop recording')
    .action(async (domain: string, opts: { runDir?: string; lines: number; follow?: boolean; on?: boolean; off?: boolean }) => {
      if (opts.on && opts.off) {
        say('--on and --off together');
        process.exitCode = 2;
        return;
      }
      const rec = await findDomain(opts.runDir, domain);
      if (!rec) return;
      const { traceCommand } = await import('../daemon/trace-follow.js');
      process.exitCode = await traceCommand(rec, opts, (l) => process.stdout.write(l + '\n'), say);
    });
}
