// `vpl011 console --tcp HOST:PORT [--secret-file FILE]`: attach to a domain's TCP console with its secret
// (src/console/tcp-console.ts). Bad arguments exit 2; an unreachable console or a refused secret exits 1.
import { parseTcp } from '../daemon/protocol.js';
import { errorMessage } from '../util/errors.js';

const say = (s: string) => process.stderr.write(`vpl011: ${s}\n`);

export async function tcpConsoleCommand(
  domain: string | undefined,
  opts: { readOnly?: boolean; linger: number; timeout?: number; tcp?: string; secretFile?: string },
): Promise<number> {
  if (opts.tcp === undefined) return say('console: name a domain, or give --tcp HOST:PORT'), 2;
  if (domain !== undefined) return say('console: give a domain or --tcp, not both'), 2;
  const parsed = parseTcp(opts.tcp);
  if (!parsed.ok) return say(parsed.error), 2;
  const ep = parsed.value;
  const { readSecret, connectTcpConsole, AuthFailureFilter, TcpConsoleError } = await import('../console/tcp-console.js');
  const { attachRawConsole } = await import('../client/client.js');
  let secret: string;
  try {
    secret = readSecret(opts.secretFile);
  } catch (e) {
    return say(errorMessage(e)), 2;
  }
  try {
    const sock = await connectTcpConsole(ep.host, ep.port, secret);
    const output = new AuthFailureFilter(process.stdout);
    const code = await attachRawConsole(sock, {
      output,
      readOnly: opts.readOnly === true,
      // A refused secret is answered after the daemon's 1 s failure delay: stay long enough to hear it.
      lingerMs: Math.max(opts.linger, 1500),
      ...(opts.timeout !== undefined ? { timeoutMs: opts.timeout } : {}),
    });
    output.flushHeld();
    if (output.failure !== undefined) return say(output.failure.replace(/^vpl011: /, '')), 1;
    return code;
  } catch (e) {
    if (e instanceof TcpConsoleError) return say(e.message), 1;
    throw e;
  }
}
