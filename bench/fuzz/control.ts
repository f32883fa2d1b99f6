// Control-socket campaign: random requests to a real `vpl011 daemon --foreground` (a child process with a private
// run directory), over several connections at once, each carrying a pipelined burst of lines sent in random pieces:
// random bytes, malformed and truncated JSON, wrong types, unknown operations (including Object.prototype's names),
// deep JSON nesting, lines just under and over the 64 KiB limit, valid-looking requests with hostile fields,
// `up` with random config files (bench/fuzz/config-gen.ts) and hostile paths, `destroy` of random references,
// and `attach` (to nothing, or to a real echo domain, followed by random console input).
// Checked for every connection: exactly one well-formed response line ({ok: boolean, error: string when false})
// per non-blank request line, in bounded time (RESPONSE_LIMIT_MS); an over-long line gets its error and the
// connection is closed. The daemon must never exit: a crash is recorded with the lines in flight and the daemon is
// restarted so that the campaign can go on and report every kind it finds. At the end the daemon answers ping and
// list, and the echo domain still echoes.
// Not sent (known limits of the config loader, and able to take the shared machine down): configs that are not
// regular files that end (/dev/zero, a FIFO), and `up` without a config (it boots the default Linux guest).
import { createConnection, type Socket } from 'node:net';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Harness, sleep } from '../../test/lib/daemon-harness.js';
import { runPaths } from '../../src/daemon/paths.js';
import { buildBareGuestFile } from '../../src/vmm/bare-guests.js';
import { generateConfig } from './config-gen.js';
import { Prng } from './prng.js';

export interface ControlCampaignOptions {
  seed: number;
  requests: number;
  /** Connections in flight at once. */
  concurrency?: number;
  /** Give up (fail) after this long. */
  limitMs?: number;
}

export interface DaemonCrash {
  /** Request lines in flight when it died (shortened), and the daemon's last output. */
  inFlight: string[];
  output: string;
}

export interface ControlCampaignResult {
  seed: number;
  /** Request lines sent (non-blank), and responses received. */
  requests: number;
  responses: number;
  connections: number;
  byKind: Record<string, number>;
  overlongLines: number;
  attaches: number;
  attachedToEcho: number;
  configFilesSent: number;
  domainsStarted: number;
  maxResponseMs: number;
  crashes: DaemonCrash[];
  /** The daemon answered ping and list at the end and the echo domain echoed. */
  aliveAtEnd: boolean;
  seconds: number;
  failure?: string;
}

/** A connection's responses must all arrive within this (a loaded machine: generous). */
export const RESPONSE_LIMIT_MS = 30_000;
const MAX_LINE = 64 * 1024;
const ECHO = 'fz-echo';
const PROTO_NAMES = ['toString', '__proto__', 'constructor', 'hasOwnProperty', 'valueOf', 'isPrototypeOf', '__defineGetter__', 'propertyIsEnumerable', 'toLocaleString'];

interface Line {
  bytes: Buffer;
  kind: string;
}

class Failure extends Error {}

function hostileValue(rng: Prng, depth = 0): unknown {
  switch (rng.int(depth > 2 ? 9 : 11)) {
    case 0:
      return rng.u32();
    case 1:
      return rng.pick([-1, 0, 1.5, 2 ** 53, -(2 ** 63), 1e308, Number.MIN_VALUE]);
    case 2:
      return Buffer.from(rng.bytes(rng.int(40))).toString('latin1');
    case 3:
      return rng.pick(['', ' ', '..', '/', '/etc/passwd', 'a'.repeat(65), 'a'.repeat(4097), '\u0000', '\u202e', '\x1b]0;x\x07', '127.0.0.1:99999', '[::1]:0', 'localhost:22', '0.0.0.0:1', '1', '0', '-1', '00', '9'.repeat(30)]);
    case 4:
      return null;
    case 5:
      return rng.chance(0.5);
    case 6:
      return 'x'.repeat(rng.int(2000));
    case 7:
      return rng.pick(PROTO_NAMES);
    case 8:
      return 'ab' + rng.u32().toString(36);
    case 9:
      return [hostileValue(rng, depth + 1), hostileValue(rng, depth + 1)];
    default:
      return { op: hostileValue(rng, depth + 1), [rng.pick(PROTO_NAMES)]: hostileValue(rng, depth + 1) };
  }
}

export async function runControlCampaign(opts: ControlCampaignOptions): Promise<ControlCampaignResult> {
  const rng = new Prng(opts.seed);
  const limitMs = opts.limitMs ?? 1_800_000;
  const concurrency = opts.concurrency ?? 6;
  const res: ControlCampaignResult = {
    seed: opts.seed, requests: 0, responses: 0, connections: 0, byKind: {}, overlongLines: 0, attaches: 0, attachedToEcho: 0,
    configFilesSent: 0, domainsStarted: 0, maxResponseMs: 0, crashes: [], aliveAtEnd: false, seconds: 0,
  };
  const started = performance.now();
  const h = new Harness();
  const cfgDir = join(h.runDir, 'fuzz-configs');
  mkdirSync(cfgDir, { recursive: true });
  const inFlight = new Set<Line[]>();
  let daemonGone = false;
  let stopping = false;
  let echoId = 0;

  const watchDaemon = (): void => {
    const d = h.daemon!;
    d.once('exit', (code, signal) => {
      if (h.daemon !== d || stopping) return;
      daemonGone = true;
      const lines = [...inFlight].flat().map((l) => `${l.kind}: ${l.bytes.toString('latin1').slice(0, 200)}`).slice(0, 40);
      res.crashes.push({ inFlight: lines, output: `exit ${code ?? signal}: ${h.daemonOutput.slice(-1500)}` });
    });
  };
  // One restart at a time, whoever notices first; the others wait for it.
  let restarting: Promise<void> | undefined;
  const restart = (): Promise<void> =>
    (restarting ??= (async () => {
      h.daemon = undefined;
      h.daemonOutput = '';
      await h.startDaemon();
      watchDaemon();
      daemonGone = false;
      restarting = undefined;
    })());

  // Mutations of a valid config name a kernel that does not exist (rejected after parsing, like most files);
  // validButOdd() is a config that passes every check with odd but legal values: it starts a domain (bare metal,
  // destroyed right after), a few dozen times per 10^5 requests, not hundreds of guests on a shared machine.
  const realKernel = buildBareGuestFile('hello');
  const validText = (): string => `name = "fz-valid"\nkind = "bare"\nkernel = "${join(cfgDir, 'no-such-kernel')}"\nmemory = 16\n`;
  const validButOdd = (): string =>
    `name = "fzv${rng.u32().toString(36)}"\nkind = 'bare'\nkernel = "${realKernel}" ; \n` +
    `memory = ${rng.pick(['16', '17', '0x20', '64'])}\nvuart = "${rng.pick(['sbsa_uart', 'pl011'])}"\n` +
    `mmio_policy = "${rng.pick(['abort', 'crash-domain'])}"\ncmdline = "${'x'.repeat(rng.int(2049)).replace(/x/g, () => String.fromCharCode(0x20 + rng.int(95)).replace(/["']/, '.'))}"\n`;
  const valid = (kind: string, obj: unknown): Line => ({ bytes: Buffer.from(JSON.stringify(obj) + '\n'), kind });
  const domainRef = (): unknown => {
    // Random references, never the echo domain (its survival is checked at the end).
    for (;;) {
      const v = rng.chance(0.6) ? hostileValue(rng) : rng.chance(0.5) ? rng.int(70) : String(rng.int(70));
      if (v === ECHO || v === echoId || v === String(echoId)) continue;
      return v;
    }
  };
  let slot = 0;
  const configPath = (): string => {
    const r = rng.int(20);
    if (r < 14) {
      const text = rng.chance(0.005) ? validButOdd() : generateConfig(rng, { valid: validText(), maxHuge: 200_000, deepNesting: 0.01 }).text;
      const file = join(cfgDir, `c${slot++ % 64}.cfg`);
      writeFileSync(file, text, 'latin1');
      res.configFilesSent++;
      return file;
    }
    return rng.pick(['/nonexistent/fz.cfg', cfgDir, '/dev/null', '/proc/self/status', '/etc/hostname', 'relative.cfg', '/', '/tmp/../tmp', join(cfgDir, '\u00e9\n.cfg')]);
  };

  const genLine = (): Line => {
    const r = rng.int(100);
    if (r < 10) {
      // Random bytes (they may hold newlines: several lines, counted as the daemon splits them).
      return { bytes: Buffer.concat([Buffer.from(rng.bytes(rng.int(300))), Buffer.from('\n')]), kind: 'random-bytes' };
    }
    if (r < 14) return valid('ping', { op: 'ping' });
    if (r < 17) return valid('list', { op: 'list' });
    if (r < 27) {
      // Unknown operations, Object.prototype's names among them.
      const op = rng.chance(0.6) ? rng.pick(PROTO_NAMES) : hostileValue(rng);
      const o: Record<string, unknown> = { op };
      if (rng.chance(0.4)) o[rng.pick(['domain', 'name', 'x', '__proto__', 'constructor'])] = hostileValue(rng);
      return valid('unknown-op', o);
    }
    if (r < 47) {
      // Known operations with hostile fields.
      const op = rng.pick(['ping', 'list', 'up', 'destroy', 'attach-shaped']);
      const o: Record<string, unknown> = { op: op === 'attach-shaped' ? 'destroy' : op };
      const fields = ['name', 'config', 'tcp', 'domain', 'readOnly', 'op', ...PROTO_NAMES.slice(0, 3)];
      const n = 1 + rng.int(3);
      for (let i = 0; i < n; i++) {
        const f = rng.pick(fields);
        o[f] = f === 'domain' ? domainRef() : hostileValue(rng);
      }
      if (o.op === 'attach' || o.op === 'up') o.op = 'list'; // attach only at the end of a connection; up below
      if (typeof o.domain !== 'undefined' && (o.domain === ECHO || o.domain === echoId || o.domain === String(echoId))) o.domain = 'nosuch';
      return valid('hostile-fields', o);
    }
    if (r < 62) {
      // up with a random config file or a hostile path, and sometimes a name / tcp.
      const o: Record<string, unknown> = { op: 'up', config: configPath() };
      if (rng.chance(0.5)) o.name = rng.chance(0.5) ? 'fz' + rng.int(1000) : hostileValue(rng);
      if (rng.chance(0.2)) o.tcp = rng.chance(0.5) ? `127.0.0.1:${rng.int(70000)}` : hostileValue(rng);
      if (o.name === ECHO) o.name = 'fz-other';
      return valid('up', o);
    }
    if (r < 72) return valid('destroy', { op: 'destroy', domain: domainRef() });
    if (r < 84) {
      // Malformed JSON: a valid request truncated, with a byte changed, or wrapped oddly.
      let t = JSON.stringify({ op: rng.pick(['ping', 'list', 'destroy']), domain: 'nosuch' });
      const at = rng.int(t.length);
      switch (rng.int(4)) {
        case 0:
          t = t.slice(0, at);
          break;
        case 1:
          t = t.slice(0, at) + String.fromCharCode(rng.int(256)) + t.slice(at + 1);
          break;
        case 2:
          t = rng.pick(['[', '{"op":', '"', '{}{}', 'null', '[]', '1', '"ping"', '{"op":"ping",}', "{'op':'ping'}"]) + t;
          break;
        default:
          t = t + rng.pick([',', '}', ']', '{', ' trailing']);
      }
      return { bytes: Buffer.from(t.replace(/\n/g, ' ') + '\n', 'latin1'), kind: 'malformed-json' };
    }
    if (r < 90) {
      // Deep nesting, under the line limit.
      const depth = rng.range(1000, 30_000);
      const t = rng.chance(0.5) ? '['.repeat(depth) + ']'.repeat(depth) : '{"op":"ping","x":' + '['.repeat(depth);
      return { bytes: Buffer.from(t + '\n'), kind: 'deep-json' };
    }
    if (r < 95) {
      // Just under the line limit: a valid-looking request with a huge field.
      const pad = MAX_LINE - 40 - rng.int(200);
      return valid('near-limit', { op: rng.pick(['destroy', 'ping']), domain: 'x'.repeat(pad) });
    }
    return { bytes: Buffer.from(' \t\r'.repeat(rng.int(3)) + '\n'), kind: 'blank' };
  };

  /** How many response lines a payload earns, and whether it ends in an over-long line (as LineReader splits). */
  const expected = (payload: Buffer): { responses: number; overflow: boolean } => {
    let responses = 0;
    let at = 0;
    for (;;) {
      const i = payload.indexOf(0x0a, at);
      if (i < 0) return { responses, overflow: payload.length - at > MAX_LINE };
      if (i - at > MAX_LINE) return { responses: responses + 1, overflow: true };
      if (payload.subarray(at, i).toString('utf8').trim() !== '') responses++;
      at = i + 1;
    }
  };

  const connect = (): Promise<Socket> =>
    new Promise((resolve, reject) => {
      const s = createConnection(runPaths(h.runDir).controlSocket);
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    });

  /** One connection: a burst of lines, the responses counted and checked, maybe an attach at the end. */
  const session = async (): Promise<void> => {
    const lines: Line[] = [];
    const n = 1 + rng.int(40);
    for (let i = 0; i < n; i++) lines.push(genLine());
    const overlong = rng.chance(0.02);
    if (overlong) lines.push({ bytes: Buffer.concat([Buffer.alloc(MAX_LINE + 1 + rng.int(100_000), 0x41), Buffer.from('\n')]), kind: 'over-limit' });
    let attach: Line | undefined;
    let attachEcho = false;
    if (!overlong && rng.chance(0.1)) {
      attachEcho = echoId > 0 && rng.chance(0.5);
      attach = valid('attach', { op: 'attach', domain: attachEcho ? ECHO : domainRef(), readOnly: rng.chance(0.3) });
      lines.push(attach);
    }
    // Otherwise a ping ends the burst: the connection must still answer, and correctly, after whatever came before.
    const finalPing = !overlong && !attach;
    if (finalPing) lines.push(valid('final-ping', { op: 'ping' }));
    for (const l of lines) res.byKind[l.kind] = (res.byKind[l.kind] ?? 0) + 1;
    const payload = Buffer.concat(lines.map((l) => l.bytes));
    const want = expected(payload);
    if (want.overflow) res.overlongLines++;
    res.requests += want.responses;
    const consoleInput = attach ? Buffer.from(rng.bytes(rng.int(2000)).map((b) => (b === 4 ? 5 : b))) : undefined;
    const pieces: Buffer[] = [];
    for (let at = 0; at < payload.length; ) {
      const len = rng.chance(0.3) ? 1 + rng.int(64) : payload.length;
      pieces.push(payload.subarray(at, at + len));
      at += len;
    }
    inFlight.add(lines);
    res.connections++;
    const sock = await connect();
    const t0 = performance.now();
    try {
      await new Promise<void>((resolve, reject) => {
        let buf = Buffer.alloc(0);
        let got = 0;
        let attached = false;
        const timer = setTimeout(() => reject(new Failure(`no answer within ${RESPONSE_LIMIT_MS} ms (${got}/${want.responses} responses; ${lines.map((l) => l.kind).join(' ')}; attached ${attached}; last ${lines.at(-1)!.bytes.toString('latin1').slice(0, 120)})`)), RESPONSE_LIMIT_MS);
        const finish = (e?: Error) => {
          clearTimeout(timer);
          if (e) reject(e);
          else resolve();
        };
        sock.on('error', () => {}); // a reset after an over-long line is the daemon's right
        sock.on('data', (c: Buffer) => {
          if (attached) return;
          buf = Buffer.concat([buf, c]);
          for (;;) {
            const i = buf.indexOf(0x0a);
            if (i < 0) break;
            const text = buf.subarray(0, i).toString('utf8');
            buf = buf.subarray(i + 1);
            got++;
            res.responses++;
            let r: { ok?: unknown; error?: unknown; domid?: unknown };
            try {
              r = JSON.parse(text) as typeof r;
            } catch {
              return finish(new Failure(`a response is not JSON: ${text.slice(0, 200)}`));
            }
            if (typeof r.ok !== 'boolean' || (r.ok === false && typeof r.error !== 'string')) return finish(new Failure(`a malformed response: ${text.slice(0, 200)}`));
            if (r.ok === true && typeof r.domid === 'number' && got <= want.responses && !(attach && got === want.responses)) {
              // A random config was valid: a domain started. Count it and destroy it after this connection.
              res.domainsStarted++;
              started_.push(r.domid);
            }
            if (got > want.responses) return finish(new Failure(`more responses (${got}) than requests (${want.responses})`));
            if (got === want.responses && finalPing && (r.ok !== true || !('pid' in r))) {
              return finish(new Failure(`the ping after a burst was answered ${text.slice(0, 200)}`));
            }
            if (got === want.responses) {
              if (attach && r.ok === true) {
                attached = true;
                res.attachedToEcho += attachEcho ? 1 : 0;
                sock.write(consoleInput!);
                setTimeout(() => finish(), rng.int(50));
                return;
              }
              // A refused attach (bad field or no such domain) is an ordinary answer; the daemon may close or not.
              if (!want.overflow) return finish();
            }
          }
        });
        sock.on('close', () => {
          if (attached) return;
          if (got === want.responses) finish();
          else if (daemonGone) finish(new Failure('the daemon died'));
          else finish(new Failure(`the connection closed after ${got}/${want.responses} responses`));
        });
        (async () => {
          for (const p of pieces) {
            if (sock.destroyed) return;
            if (!sock.write(p)) await new Promise((r) => sock.once('drain', r));
          }
        })().catch(() => {}); // the daemon may close a flooding client: that is the behaviour under test
      });
      if (attach) res.attaches++;
    } finally {
      const ms = performance.now() - t0;
      if (ms > res.maxResponseMs) res.maxResponseMs = ms;
      sock.destroy();
      inFlight.delete(lines);
    }
  };
  const started_: number[] = [];

  try {
    await h.startDaemon();
    watchDaemon();
    echoId = await h.up(ECHO, 'hello');
    let failure: Error | undefined;
    const pool = async (): Promise<void> => {
      while (!failure && res.requests < opts.requests) {
        if (performance.now() - started > limitMs) {
          failure = new Failure(`the campaign did not finish in ${limitMs} ms`);
          break;
        }
        if (restarting) await restarting;
        try {
          await session();
        } catch (e) {
          // A connection that failed because the daemon died: recorded by watchDaemon (the exit event may come just
          // after the socket's close); go on with a new daemon (the echo domain's host survives a daemon restart).
          await sleep(300);
          if (daemonGone || restarting) await restart();
          else failure = e instanceof Error ? e : new Error(String(e));
        }
        while (started_.length > 0) {
          const id = started_.pop()!;
          await h.request({ op: 'destroy', domain: String(id) }).catch(() => undefined); // cleanup: already gone is fine
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, pool));
    if (failure) throw failure;
    if (daemonGone) await restart();
    // Alive and answering, and the echo domain is intact.
    const ping = await h.request({ op: 'ping' });
    const list = await h.request({ op: 'list' });
    if (!ping.ok || !list.ok) throw new Failure('the daemon does not answer ping/list at the end');
    const echo = await h.attach(ECHO);
    const probe = `alive-${opts.seed}\n`;
    echo.sock.write(probe);
    await h.until(() => echo.received().toString('latin1').includes(probe), 'the echo domain echoes', 30_000);
    echo.close();
    res.aliveAtEnd = h.daemon?.exitCode === null;
    if (res.crashes.length > 0) throw new Failure(`the daemon died ${res.crashes.length} time(s)`);
  } catch (e) {
    res.failure = e instanceof Failure ? e.message : `unexpected: ${(e as Error).stack ?? String(e)}`;
  } finally {
    stopping = true;
    await h.cleanup();
  }
  res.seconds = (performance.now() - started) / 1000;
  return res;
}
