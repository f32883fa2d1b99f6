// A domain's TCP console needs its secret: loopback is reachable by every local user, so a
// connection gets no output and types nothing until its first line is one of the domain's secrets (read-write or
// read-only), shown only to the owner (`vpl011 list --secrets`, from 0600 files in the 0700 run dir). Wrong or
// missing secrets are answered with one line and closed, after a delay, counted; the secret line is bounded in
// length and time. The guest is a real bare-metal echo guest (guests/bare/hello.S on unicorn).
import { after, before } from 'node:test';
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { join } from 'node:path';
import { Harness, runCli } from './lib/daemon-harness.js';
import { runPaths } from '../src/daemon/paths.js';
import type { DomainInfo } from '../src/daemon/protocol.js';

const BANNER = 'hello from bare metal\n';
const h = new Harness();
const port = 20000 + Math.floor(Math.random() * 20000);
const sockets: Socket[] = [];
before(async () => {
  await h.startDaemon();
  await h.up('tcpdom', 'hello', undefined, { tcp: `127.0.0.1:${port}` });
});
after(async () => {
  for (const s of sockets) s.destroy();
  await h.cleanup();
});

interface Conn {
  sock: Socket;
  got: () => string;
  closed: Promise<number>;
}

/** A TCP connection to the console; `closed` resolves with the time (ms since connect) it was closed. */
async function connect(): Promise<Conn> {
  const sock = createConnection(port, '127.0.0.1');
  sockets.push(sock);
  let got = '';
  sock.on('data', (b: Buffer) => (got += b.toString('latin1')));
  sock.on('error', () => {}); // a reset is a refusal, seen through 'close'
  await new Promise<void>((res, rej) => {
    sock.once('connect', () => res());
    sock.once('error', rej);
  });
  const t0 = Date.now();
  // Bounded: a daemon that never closes the connection fails the test instead of hanging it.
  const closed = new Promise<number>((resolve, reject) => {
    const limit = setTimeout(() => reject(new Error(`connection still open after 30 s; received ${JSON.stringify(got.slice(0, 200))}`)), 30_000);
    sock.once('close', () => {
      clearTimeout(limit);
      resolve(Date.now() - t0);
    });
  });
  closed.catch(() => {}); // awaited by the caller when it matters; no unhandled rejection meanwhile
  return { sock, got: () => got, closed };
}

async function secrets(): Promise<DomainInfo> {
  const r = await runCli(['list', '--secrets', '--json', '--run-dir', h.runDir]);
  assert.equal(r.code, 0, r.stderr);
  const d = (JSON.parse(r.stdout) as DomainInfo[]).find((x) => x.name === 'tcpdom');
  assert.ok(d?.secret && d.readOnlySecret, `secrets listed: ${r.stdout}`);
  return d;
}

const info = async () => (await h.info('tcpdom'))!;

test('a wrong secret: one line, closed after a delay, counted; nothing reaches the guest, no output is seen', { timeout: 60_000 }, async () => {
  const before = await info();
  const c = await connect();
  c.sock.write(`${'0'.repeat(64)}\nrm -rf /\n`);
  // The owner types meanwhile: the guest's echo must not reach the unauthenticated connection.
  const owner = await h.attach('tcpdom');
  owner.sock.write('private\n');
  await h.until(() => owner.received().includes('private\n'), 'the owner sees the echo');
  owner.close();
  const t = await c.closed;
  assert.match(c.got(), /^vpl011: authentication failed: wrong secret \(the first line must be the console's secret; see `vpl011 list --secrets`\)\r\n$/);
  assert.ok(t >= 900, `answered after the failure delay (${t} ms)`);
  // A line that is not a secret is not console input either (a guessed command never reaches the guest).
  const c2 = await connect();
  c2.sock.write('echo pwned\n');
  await c2.closed;
  assert.match(c2.got(), /^vpl011: authentication failed: wrong secret/);
  const now = await info();
  assert.equal(now.bytesIn, before.bytesIn + 'private\n'.length, 'no byte of theirs reached the guest');
  assert.equal(now.authFailures, before.authFailures + 2);
  assert.ok(!h.log('tcpdom').toString().includes('pwned') && !h.log('tcpdom').toString().includes('rm -rf'));
  assert.match(h.daemonOutput, /tcp console: authentication failed from 127\.0\.0\.1:\d+ \(wrong secret\)/);
});

test('no secret line: closed after the first-line timeout; an over-long line is refused without waiting', { timeout: 60_000 }, async () => {
  const before = await info();
  const silent = await connect();
  const long = await connect();
  long.sock.write('a'.repeat(10_000));
  await long.closed;
  assert.match(long.got(), /^vpl011: authentication failed: secret line too long/);
  assert.equal(silent.sock.destroyed, false, 'the silent client is still waiting');
  const t = await silent.closed;
  assert.ok(t >= 9_000, `timed out after ~10 s (${t} ms)`);
  assert.match(silent.got(), /^vpl011: authentication failed: no secret line within 10 s/);
  assert.equal((await info()).authFailures, before.authFailures + 2);
  assert.equal((await info()).bytesIn, before.bytesIn);
});

test('the read-write secret types into the guest and sees its output; the read-only secret only watches', { timeout: 60_000 }, async () => {
  const s = await secrets();
  const before = await info();
  const rw = await connect();
  rw.sock.write(`${s.secret}\r\nover tcp\n`);
  await h.until(() => rw.got().includes('over tcp\n'), 'echo over tcp');
  assert.ok(!rw.got().includes('vpl011:'));
  const ro = await connect();
  ro.sock.write(`${s.readOnlySecret}\nsneaky\n`);
  await h.until(async () => (await info()).discardedInput === before.discardedInput + 7, "the watcher's input counted as discarded");
  rw.sock.write('second\n');
  await h.until(() => ro.got().includes('second\n') && rw.got().includes('second\n'), 'both see the echo');
  assert.ok(!ro.got().includes('sneaky') && !h.log('tcpdom').toString().includes('sneaky'), 'the watcher typed nothing');
  assert.equal((await info()).clients, 2);
  assert.equal((await info()).bytesIn, before.bytesIn + 'over tcp\nsecond\n'.length);
  assert.ok(h.log('tcpdom').toString().startsWith(`${BANNER}`));
  assert.ok(h.log('tcpdom').toString().includes('over tcp\nsecond\n'));
  rw.sock.destroy();
  ro.sock.destroy();
  await h.until(async () => (await info()).clients === 0, 'clients gone');
});

test('many parallel wrong guesses: bounded (pending cap, each answered after the delay), all counted; the owner is not locked out', { timeout: 60_000 }, async () => {
  const before = await info();
  const N = 24;
  const conns = await Promise.all(Array.from({ length: N }, () => connect()));
  for (const c of conns) c.sock.write(`${'f'.repeat(64)}\n`);
  const times = await Promise.all(conns.map((c) => c.closed));
  const failed = conns.filter((c) => /^vpl011: authentication failed: wrong secret/.test(c.got()));
  const refused = conns.filter((c) => /^vpl011: authentication refused: too many connections waiting to authenticate/.test(c.got()));
  assert.equal(failed.length + refused.length, N, conns.map((c) => c.got()).join(''));
  assert.ok(failed.length <= 16, `at most 16 guesses at once (${failed.length})`);
  assert.ok(refused.length >= N - 16);
  for (const [i, c] of conns.entries()) if (failed.includes(c)) assert.ok(times[i]! >= 900, `a guess is answered after the delay (${times[i]} ms)`);
  assert.equal((await info()).authFailures, before.authFailures + N);
  assert.equal((await info()).bytesIn, before.bytesIn);
  const s = await secrets();
  const rw = await connect();
  rw.sock.write(`${s.secret}\nstill works\n`);
  await h.until(() => rw.got().includes('still works\n'), 'the owner gets in');
  rw.sock.destroy();
});

test('`vpl011 console --tcp` sends the secret from a file: types and reads; a wrong or missing secret is a clear error', { timeout: 60_000 }, async () => {
  const s = await secrets();
  const before = await info();
  const good = join(h.runDir, 'good.secret');
  const bad = join(h.runDir, 'bad.secret');
  writeFileSync(good, `${s.secret}\n`, { mode: 0o600 });
  writeFileSync(bad, `${'a'.repeat(64)}\n`, { mode: 0o600 });
  const ok = await runCli(['console', '--tcp', `127.0.0.1:${port}`, '--secret-file', good, '--linger', '300'], 'via cli\n');
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stdout, 'via cli\n');
  const wrong = await runCli(['console', '--tcp', `127.0.0.1:${port}`, '--secret-file', bad], 'never typed\n');
  assert.equal(wrong.code, 1);
  assert.equal(wrong.stdout, '');
  assert.match(wrong.stderr, /^vpl011: authentication failed: wrong secret .*\n$/);
  const none = await runCli(['console', '--tcp', `127.0.0.1:${port}`], 'x\n');
  assert.equal(none.code, 2);
  assert.match(none.stderr, /^vpl011: a TCP console needs its secret: --secret-file FILE or \$VPL011_SECRET/);
  assert.equal((await info()).bytesIn, before.bytesIn + 'via cli\n'.length);
  assert.ok(!h.log('tcpdom').toString().includes('never typed'));
});

/** Run a script as another local user (nobody), as a hostile local user would; resolves with its stdout. */
function asNobody(code: string): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, ['--input-type=module', '-e', code], { uid: 65534, gid: 65534, cwd: '/', stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (b: Buffer) => (out += b.toString()));
    c.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const kill = setTimeout(() => c.kill('SIGKILL'), 30_000);
    c.on('close', (code) => {
      clearTimeout(kill);
      resolve({ code, out, err });
    });
  });
}

test('another local uid (nobody) can read no secret, cannot reach the control socket, and is refused on TCP', { timeout: 60_000, skip: process.getuid!() !== 0 && 'needs root to run a process as nobody' }, async () => {
  const before = await info();
  const secretsDir = runPaths(h.runDir).secretsDir;
  const file = join(secretsDir, readdirSync(secretsDir)[0]!);
  const r = await asNobody(`
    import { readFileSync } from 'node:fs';
    import { createConnection } from 'node:net';
    const tryRead = (p) => { try { readFileSync(p); return 'read'; } catch (e) { return e.code; } };
    const ctl = await new Promise((res) => { const s = createConnection(${JSON.stringify(runPaths(h.runDir).controlSocket)});
      s.on('connect', () => { s.destroy(); res('connected'); }); s.on('error', (e) => res(e.code)); });
    const tcp = await new Promise((res) => { const s = createConnection(${port}, '127.0.0.1'); let got = '';
      s.on('data', (b) => (got += b)); s.on('connect', () => s.write('id\\nwhoami\\n')); s.on('close', () => res(got)); s.on('error', () => {}); });
    process.stdout.write(JSON.stringify({ secrets: tryRead(${JSON.stringify(file)}), ctl, tcp }));`);
  assert.equal(r.code, 0, r.err);
  const got = JSON.parse(r.out) as { secrets: string; ctl: string; tcp: string };
  assert.equal(got.secrets, 'EACCES');
  assert.equal(got.ctl, 'EACCES');
  assert.match(got.tcp, /^vpl011: authentication failed: wrong secret/);
  const now = await info();
  assert.equal(now.bytesIn, before.bytesIn, "nobody's input never reached the guest");
  assert.equal(now.authFailures, before.authFailures + 1);
});

test('secrets: 0600 files in the private run dir, listed only on request, kept across a daemon restart', { timeout: 60_000 }, async () => {
  const s = await secrets();
  const dir = runPaths(h.runDir).secretsDir;
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  const files = readdirSync(dir);
  assert.equal(files.length, 1);
  assert.equal(statSync(join(dir, files[0]!)).mode & 0o777, 0o600);
  assert.match(s.secret!, /^[0-9a-f]{64}$/, '256 random bits');
  assert.notEqual(s.secret, s.readOnlySecret);
  const plain = await runCli(['list', '--json', '--run-dir', h.runDir]);
  assert.ok(!plain.stdout.includes(s.secret!) && !plain.stdout.includes(s.readOnlySecret!), 'plain list shows no secret');
  const table = await runCli(['list', '--secrets', '--run-dir', h.runDir]);
  assert.match(table.stdout, new RegExp(`tcpdom\\s+127\\.0\\.0\\.1:${port}\\s+read-write\\s+${s.secret}`));
  assert.match(table.stdout, new RegExp(`tcpdom\\s+127\\.0\\.0\\.1:${port}\\s+read-only\\s+${s.readOnlySecret}`));

  await h.killDaemon('SIGKILL');
  await h.startDaemon();
  assert.deepEqual([(await secrets()).secret, (await secrets()).readOnlySecret], [s.secret, s.readOnlySecret]);
  await h.until(async () => {
    const c = await connect().catch(() => undefined); // not listening yet: until() tries again
    if (!c) return false;
    c.sock.write(`${s.secret}\nafter restart\n`);
    await h.until(() => c.got().includes('after restart\n') || c.sock.destroyed, 'an answer', 10_000);
    c.sock.destroy();
    return c.got().includes('after restart\n');
  }, 'the same secret works after a restart', 30_000);
  // Destroying the domain removes its secrets.
  assert.equal((await h.request({ op: 'destroy', domain: 'tcpdom' })).ok, true);
  assert.deepEqual(readdirSync(dir), []);
});
