// `vpl011 daemon | up | list | destroy | console` (and the hidden `domain-host`): the console daemon and its
// clients (docs/DAEMON.md). Modules are imported lazily so `vpl011 list` never loads the toolstack or koffi's CPU.
import { Command, InvalidArgumentError, Option } from 'commander';
import { resolve } from 'node:path';
import type { Response } from '../daemon/protocol.js';
import { printable, printableLine } from '../util/quote.js';
import { errorMessage } from '../util/errors.js';

function runDirOf(opts: { runDir?: string }): Promise<string> {
  return import('../daemon/paths.js').then((m) => opts.runDir ?? m.defaultRunDir());
}

function ms(v: string): number {
  const n = Number(v);
  // Node timers hold at most 2^31-1 ms; a longer one would fire at once.
  if (v.trim() === '' || !Number.isFinite(n) || n < 0 || n > 2 ** 31 - 1) throw new InvalidArgumentError(`expected a number of milliseconds in 0..${2 ** 31 - 1}`);
  return n;
}

/** What we print may quote the daemon's answer or a record's text: escaped and capped, line by line. */
const say = (s: string) => {
  for (const line of s.split('\n')) process.stderr.write(`vpl011: ${printableLine(line)}\n`);
};

/**
 * One request to the daemon, started first if none answers (a daemon killed by -9 is started again by whoever asks
 * next). The answer when it is ok; otherwise undefined, the reason said, and the exit code set: `refusedExit` when
 * the daemon refused the request (the caller's mistake), 1 when the daemon could not be reached or did not answer.
 */
async function ask(runDir: string, req: { op: string; [k: string]: unknown }, refusedExit = 2): Promise<Extract<Response, { ok: true }> | undefined> {
  const { ensureDaemon, controlRequest } = await import('../client/client.js');
  try {
    await ensureDaemon(runDir);
    const res = await controlRequest(runDir, req);
    if (res.ok) return res;
    say(res.error);
    process.exitCode = refusedExit;
  } catch (e) {
    say(errorMessage(e));
    process.exitCode = 1;
  }
  return undefined;
}

export function registerDaemonCommands(program: Command): void {
  const runDirOpt = () => new Option('--run-dir <dir>', 'runtime directory (default $VPL011_RUN_DIR, $XDG_RUNTIME_DIR/vpl011, ...)');

  program
    .command('daemon')
    .description('run the console daemon (xenconsoled): serves the console of every domain started with `up`')
    .addOption(runDirOpt())
    .option('--foreground', 'stay in the foreground (default: start in the background and return)')
    .option('--log-dir <dir>', 'where guest-<name>-vuart0.log files go')
    .addOption(new Option('--timestamp <mode>', 'prefix each log line with the time').choices(['none', 'guest']).default('none'))
    .addOption(new Option('-o, --overflow <policy>', 'slow clients: keep (backpressure) or discard').choices(['keep', 'discard']).default('keep'))
    .option('--web <[host:]port>', 'also serve the web console there (loopback only unless --web-public); see web-url')
    .option('--web-public', 'allow --web on a non-loopback address (access still needs the token)')
    .action(async (opts: { runDir?: string; foreground?: boolean; logDir?: string; timestamp: string; overflow: string; web?: string; webPublic?: boolean }) => {
      const runDir = await runDirOf(opts);
      const { parseWebListen } = await import('../daemon/web-server.js');
      const web = opts.web === undefined ? undefined : parseWebListen(opts.web, opts.webPublic === true);
      if (typeof web === 'string') {
        say(web);
        process.exitCode = 2;
        return;
      }
      if (!opts.foreground) {
        const { ensureDaemon, controlRequest } = await import('../client/client.js');
        try {
          await ensureDaemon(runDir, { ...(opts.logDir ? { logDir: resolve(opts.logDir) } : {}), timestamp: opts.timestamp, overflow: opts.overflow });
          if (opts.web !== undefined) {
            const res = await controlRequest(runDir, { op: 'web', listen: opts.web, public: opts.webPublic === true });
            if (!res.ok) {
              say(res.error);
              process.exitCode = 2;
            }
          }
        } catch (e) {
          say(errorMessage(e));
          process.exitCode = 1;
        }
        return;
      }
      const { Daemon, DaemonRunning } = await import('../daemon/daemon.js');
      const d = new Daemon({
        runDir,
        ...(opts.logDir ? { logDir: resolve(opts.logDir) } : {}),
        timestamps: opts.timestamp as 'none' | 'guest',
        policy: opts.overflow as 'keep' | 'discard',
        ...(web ? { web } : {}),
      });
      try {
        await d.start();
      } catch (e) {
        say(errorMessage(e));
        process.exitCode = e instanceof DaemonRunning ? (await import('../client/client.js')).EXIT_DAEMON_RUNNING : 1;
        return;
      }
      process.on('SIGHUP', () => d.reopenLogs());
      const quit = () => void d.stop().then(() => process.exit(0));
      process.on('SIGTERM', quit);
      process.on('SIGINT', quit);
    });

  program
    .command('domain-host', { hidden: true })
    .argument('<spec>', 'domain spec written by the daemon')
    .action(async (spec: string) => {
      const { runDomainHost } = await import('../daemon/domain-host.js');
      try {
        process.exitCode = await runDomainHost(spec);
      } catch (e) {
        say(`domain-host: ${errorMessage(e)}`);
        process.exitCode = 1;
      }
      // Worker threads of the futex waiter must not keep us alive.
      setTimeout(() => process.exit(), 50).unref();
    });

  program
    .command('up')
    .description('start a domain in the background under the console daemon; prints its name')
    .argument('[config]', 'guest config file (default: the default guest of `vpl011 run`)')
    .addOption(runDirOpt())
    .option('-n, --name <name>', 'domain name')
    .option('--tcp <host:port>', 'also expose the console as raw TCP (loopback addresses only)')
    .action(async (config: string | undefined, opts: { runDir?: string; name?: string; tcp?: string }) => {
      const runDir = await runDirOf(opts);
      // A bad --tcp is the caller's mistake: said here, exit 2, without starting anything.
      if (opts.tcp !== undefined) {
        const { parseTcp } = await import('../daemon/protocol.js');
        const tcp = parseTcp(opts.tcp);
        if (!tcp.ok) {
          say(`--${tcp.error}`);
          process.exitCode = 2;
          return;
        }
      }
      const res = await ask(runDir, {
        op: 'up',
        ...(opts.name ? { name: opts.name } : {}),
        ...(config ? { config: resolve(config) } : {}),
        ...(opts.tcp ? { tcp: opts.tcp } : {}),
      });
      if (res) process.stdout.write(`${printable(res.name ?? '', 120)}\n`);
    });

  program
    .command('list')
    .description('list domains: id, name, state, console bytes in/out, clients')
    .addOption(runDirOpt())
    .option('--json', 'machine-readable output')
    .option('--secrets', "also show each TCP console's secrets (the first line a TCP client must send)")
    .action(async (opts: { runDir?: string; json?: boolean; secrets?: boolean }) => {
      const runDir = await runDirOf(opts);
      const res = await ask(runDir, { op: 'list', ...(opts.secrets ? { secrets: true } : {}) }, 1);
      if (!res) return;
      const doms = res.domains ?? [];
      if (opts.json) {
        // Each domain's device counters too, read from its insight region (docs/DAEMON.md "Insight").
        const { deviceSummaries } = await import('../daemon/device-stat.js');
        const dev = deviceSummaries(runDir);
        process.stdout.write(JSON.stringify(doms.map((d) => (dev.has(d.name) ? { ...d, device: dev.get(d.name) } : d))) + '\n');
        return;
      }
      const rows = [['ID', 'NAME', 'STATE', 'IN', 'OUT', 'CLIENTS', 'DROPPED']];
      for (const d of doms) {
        const row = [d.id, d.name, `${d.state}${d.reason ? ` (${d.reason})` : ''}`, d.bytesIn, d.bytesOut, d.clients, d.dropped].map((v) => String(v));
        rows.push(row.map((cell) => printable(cell, 120)));
      }
      const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
      for (const r of rows) process.stdout.write(r.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd() + '\n');
      if (opts.secrets) {
        const { formatSecrets } = await import('./secrets-table.js');
        process.stdout.write(formatSecrets(doms));
      }
    });

  program
    .command('web-url')
    .description('print a URL of the web console with its access token (starts the daemon and the web console if needed)')
    .addOption(runDirOpt())
    .option('-r, --read-only', 'a URL whose viewers can watch but not type')
    .option('--listen <[host:]port>', 'where to start the web console if it is not running (default 127.0.0.1:8011)')
    .option('--public', 'allow a non-loopback --listen address')
    .action(async (opts: { runDir?: string; readOnly?: boolean; listen?: string; public?: boolean }) => {
      const runDir = await runDirOf(opts);
      const res = await ask(runDir, { op: 'web', ...(opts.listen ? { listen: opts.listen } : {}), ...(opts.public ? { public: true } : {}) });
      if (res) process.stdout.write(`${opts.readOnly ? res.readOnlyUrl : res.url}\n`);
    });

  program
    .command('destroy')
    .description('stop a domain and free its resources')
    .argument('<domain>', 'name or id')
    .addOption(runDirOpt())
    .action(async (domain: string, opts: { runDir?: string }) => {
      const runDir = await runDirOf(opts);
      await ask(runDir, { op: 'destroy', domain });
    });

  program
    .command('send-break')
    .description("send a BREAK on a domain's console, after the input already sent (Linux: the next key is a SysRq command)")
    .argument('<domain>', 'name or id')
    .addOption(new Option('--error <kind>', 'send a character with this line error instead of a BREAK').choices(['framing', 'parity']))
    .addOption(runDirOpt())
    .action(async (domain: string, opts: { runDir?: string; error?: 'framing' | 'parity' }) => {
      const runDir = await runDirOf(opts);
      await ask(runDir, { op: 'line-event', domain, event: opts.error ?? 'break' });
    });

  program
    .command('save')
    .description('save a running domain to a file (docs/SAVE.md); it then ends unless --keep-running')
    .argument('<domain>', 'name or id')
    .argument('<file>', 'where to write the saved domain (mode 0600)')
    .option('--keep-running', 'leave the domain running (a snapshot)')
    .addOption(runDirOpt())
    .action(async (domain: string, file: string, opts: { runDir?: string; keepRunning?: boolean }) => {
      const runDir = await runDirOf(opts);
      const r = await ask(runDir, { op: 'save', domain, file: resolve(file), ...(opts.keepRunning ? { keepRunning: true } : {}) });
      if (r) say(`domain ${r.name ?? domain} saved to ${resolve(file)}${opts.keepRunning ? ' (still running)' : ''}`);
    });

  program
    .command('restore')
    .description('start a domain from a saved file (vpl011 save, run --save)')
    .argument('<file>', 'the saved domain')
    .option('--name <name>', 'the domain name (default: the name it was saved with)')
    .option('--tcp <host:port>', 'also expose its console on this loopback TCP address')
    .addOption(runDirOpt())
    .action(async (file: string, opts: { runDir?: string; name?: string; tcp?: string }) => {
      const runDir = await runDirOf(opts);
      const r = await ask(runDir, { op: 'restore', file: resolve(file), ...(opts.name !== undefined ? { name: opts.name } : {}), ...(opts.tcp !== undefined ? { tcp: opts.tcp } : {}) });
      if (r) say(`domain ${r.name} (d${r.domid}) restored from ${resolve(file)}`);
    });

  program
    .command('migrate')
    .description('move a running domain into a new domain host (save + restore, same name; consoles follow it)')
    .argument('<domain>', 'name or id')
    .addOption(runDirOpt())
    .action(async (domain: string, opts: { runDir?: string }) => {
      const runDir = await runDirOf(opts);
      const r = await ask(runDir, { op: 'migrate', domain });
      if (r) say(`domain ${r.name} migrated (now d${r.domid})`);
    });

  program
    .command('console')
    .description("attach to a domain's console (Ctrl-] . detaches, Ctrl-] b sends a BREAK, Ctrl-] ? lists the escapes; scriptable when stdin is not a terminal)")
    .argument('[domain]', 'name or id (not with --tcp)')
    .addOption(runDirOpt())
    .option('-r, --read-only', 'watch only: typing is not delivered')
    .option('--linger <ms>', 'with piped input: after it ends, wait until output is quiet this long', ms, 500)
    .option('--timeout <ms>', 'detach after this long', ms)
    .option('--tcp <host:port>', "a domain's TCP console instead (needs its secret: --secret-file or $VPL011_SECRET)")
    .option('--secret-file <file>', 'with --tcp: file whose first line is the console secret')
    .action(async (domain: string | undefined, opts: { runDir?: string; readOnly?: boolean; linger: number; timeout?: number; tcp?: string; secretFile?: string }) => {
      if (opts.tcp !== undefined || domain === undefined) {
        const { tcpConsoleCommand } = await import('./tcp-console-command.js');
        process.exitCode = await tcpConsoleCommand(domain, opts);
        return;
      }
      const runDir = await runDirOf(opts);
      const { ensureDaemon, RequestRefused } = await import('../client/client.js');
      const { attachConsole } = await import('../client/console-session.js');
      try {
        await ensureDaemon(runDir);
        process.exitCode = await attachConsole(runDir, domain, {
          readOnly: opts.readOnly === true,
          lingerMs: opts.linger,
          ...(opts.timeout !== undefined ? { timeoutMs: opts.timeout } : {}),
        });
      } catch (e) {
        say(errorMessage(e));
        // The daemon refused the request (no such domain, a bad name): the caller's mistake, like destroy's.
        process.exitCode = e instanceof RequestRefused ? 2 : 1;
      }
    });
}
