// The web console with a real browser: Debian's Chromium, headless, driven by playwright-core. A real daemon serves
// a real Linux guest (the default guest, `up` with no config) and a bare-metal streamer; the page lists them, a
// terminal attaches, typing reaches the guest and its answer comes back; a read-only token's keystrokes never reach
// it (the daemon enforces it, whatever the page sends); a wrong or missing token gets 401 and nothing else; a
// stalled viewer neither stops the guest's log nor makes the daemon buffer without bound.
import { before, after } from 'node:test';
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import WebSocket from 'ws';
import { Harness, runCli, sleep } from './lib/daemon-harness.js';
import type { DomainInfo } from '../src/daemon/protocol.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
const PROMPT = /\/ # /;

const h = new Harness();
let browser: Browser | undefined;
let url = '';
let roUrl = '';

before(async () => {
  await h.startDaemon(['--web', '127.0.0.1:0']);
  const rw = await runCli(['web-url', '--run-dir', h.runDir]);
  assert.equal(rw.code, 0, rw.stderr);
  url = rw.stdout.trim();
  const ro = await runCli(['web-url', '--read-only', '--run-dir', h.runDir]);
  roUrl = ro.stdout.trim();
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/\?t=[A-Za-z0-9_-]{43}$/);
  assert.notEqual(url, roUrl, 'a separate read-only token');
  const up = await runCli(['up', '--run-dir', h.runDir]);
  assert.equal(up.code, 0, up.stderr);
  h.trackHosts();
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
});

after(async () => {
  await browser?.close();
  await h.cleanup();
});

test('web-url: the token file is private to the owner; the URL works only with its token', { timeout: 30_000 }, async () => {
  const st = statSync(join(h.runDir, 'web.json'));
  assert.equal(st.mode & 0o777, 0o600);
  const base = url.replace(/\?t=.*$/, '');
  for (const bad of [base, `${base}?t=`, `${base}?t=${'A'.repeat(43)}`, `${base}api/domains`, `${base}api/stat?domain=debian`, `${base}assets/xterm.js`, `${url}x`]) {
    const r = await fetch(bad);
    assert.equal(r.status, 401, bad);
    assert.doesNotMatch(await r.text(), /debian|xterm|<html/i, 'a refusal says nothing else');
  }
  const ok = await fetch(url.replace('/?', '/api/domains?'));
  assert.equal(ok.status, 200);
  const doms = (await ok.json()) as DomainInfo[];
  assert.ok(doms.some((d) => d.name === 'debian'));
  // The device panel's data: `vpl011 stat` and --why-irq for a domain (issue 11 §2).
  const stq = await fetch(url.replace('/?', '/api/stat?domain=debian&'));
  assert.equal(stq.status, 200);
  const sj = (await stq.json()) as { stat: { name: string; registers: Record<string, number> }; lines: string[]; whyIrq: string[] };
  assert.equal(sj.stat.name, 'debian');
  assert.equal(typeof sj.stat.registers.IMSC, 'number');
  assert.match(sj.whyIrq[0]!, /^RX: /);
  assert.equal((await fetch(url.replace('/?', '/api/stat?domain=nosuch&'))).status, 404);
  // A WebSocket without the token is refused before any console byte.
  const ws = new WebSocket(`${base.replace('http', 'ws')}ws?domain=debian&t=nope`);
  const status = await new Promise<number>((resolve) => {
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.on('open', () => resolve(101));
    ws.on('error', () => {}); // a refused upgrade is reported through 'unexpected-response'
  });
  ws.terminate();
  assert.equal(status, 401);
});

test('a browser opens the page, sees the domain, attaches and runs `uname -m` in the Linux guest', { timeout: 240_000 }, async () => {
  await h.until(() => PROMPT.test(h.log('debian').toString('latin1')), 'the shell prompt', 180_000);
  const page = await browser!.newPage({ viewport: { width: 1280, height: 720 } });
  try {
    await page.goto(url);
    const row = page.locator('tr.domain', { hasText: 'debian' });
    await row.waitFor({ timeout: 10_000 });
    assert.match((await row.innerText()).replace(/\s+/g, ' '), /debian running/);
    await row.click();
    await page.locator('.term.active .xterm-rows', { hasText: '/ #' }).waitFor({ timeout: 20_000 });
    // The open domain's vpl011 beside the list: registers and why the line is where it is.
    await page.locator('#device', { hasText: 'why the interrupt line is where it is' }).waitFor({ timeout: 10_000 });
    assert.match(await page.locator('#device').innerText(), /IMSC\s+0x0[0-9a-f]{2}/);
    await page.locator('.term.active .xterm-helper-textarea').focus();
    await page.keyboard.type('uname -m\n');
    await page.locator('.term.active .xterm-rows', { hasText: 'aarch64' }).waitFor({ timeout: 30_000 });
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'web-console.png') });
    assert.ok(existsSync(join(ARTIFACTS, 'web-console.png')));
    const text = await page.locator('.term.active .xterm-rows').innerText();
    assert.match(text, /uname -m\s*\n\s*aarch64/);
    const log = h.log('debian').toString('latin1');
    assert.match(log, /uname -m\r?\r?\naarch64/, 'the command ran in the guest (its log has it)');
  } finally {
    await page.close();
  }
});

test('the scrollback replays the boot to a late viewer, then live output with no gap and no duplicate', { timeout: 120_000 }, async () => {
  await h.until(() => PROMPT.test(h.log('debian').toString('latin1')), 'the shell prompt', 180_000);
  const base = url.replace(/^http/, 'ws').replace(/\/\?t=/, '/ws?domain=debian&t=');
  const ws = new WebSocket(base);
  const got: Buffer[] = [];
  ws.on('message', (m: Buffer) => got.push(Buffer.from(m)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  try {
    const marker = `web-${Date.now()}`;
    ws.send(Buffer.from(`echo ${marker}-$((6*7))\n`));
    await h.until(() => Buffer.concat(got).toString('latin1').includes(`${marker}-42`), 'the answer on the socket', 30_000);
    await sleep(300);
    const seen = Buffer.concat(got);
    const log = h.log('debian');
    assert.ok(seen.toString('latin1').includes('Booting Linux'), 'the boot came first (scrollback)');
    // What the viewer saw is exactly the log's last bytes: the scrollback, then every live byte once.
    assert.ok(seen.length <= log.length);
    assert.ok(log.subarray(log.length - seen.length).equals(seen), 'the viewer saw a suffix of the log, byte for byte');
  } finally {
    ws.terminate();
  }
});

test('a read-only token: the page says so and the daemon drops what it types', { timeout: 120_000 }, async () => {
  await h.until(() => PROMPT.test(h.log('debian').toString('latin1')), 'the shell prompt', 180_000);
  const before = (await h.info('debian'))!;
  const page = await browser!.newPage();
  try {
    await page.goto(roUrl);
    await page.locator('h1', { hasText: 'read-only' }).waitFor({ timeout: 10_000 });
    await page.locator('tr.domain', { hasText: 'debian' }).click();
    await page.locator('.term.active .xterm-rows', { hasText: '/ #' }).waitFor({ timeout: 20_000 });
    // The page does not send; a hostile page would: send through a raw socket with the read-only token.
    const ws = new WebSocket(roUrl.replace(/^http/, 'ws').replace(/\/\?t=/, '/ws?domain=debian&t='));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    ws.send(Buffer.from('echo ro-$((2*21))-typed\n'));
    await sleep(2000);
    ws.terminate();
    const after = (await h.info('debian'))!;
    assert.equal(after.bytesIn, before.bytesIn, 'no byte reached the guest');
    assert.ok(after.discardedInput > before.discardedInput, 'the daemon counted the dropped keystrokes');
    assert.doesNotMatch(h.log('debian').toString('latin1'), /ro-42-typed/);
  } finally {
    await page.close();
  }
});

/** A WebSocket client that completes the handshake and then never reads again: the socket's buffers fill. */
async function stalledViewer(wsUrl: string): Promise<Socket> {
  const u = new URL(wsUrl);
  const sock = connect(Number(u.port), u.hostname);
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', () => resolve());
    sock.once('error', reject);
  });
  sock.write(
    `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  const head = await new Promise<string>((resolve) => sock.once('data', (b: Buffer) => resolve(b.toString('latin1'))));
  assert.match(head, /^HTTP\/1\.1 101 /);
  sock.pause();
  return sock;
}

test('stalled viewers (a page whose JavaScript is paused, a socket nobody reads) do not stop the guest or its log', { timeout: 240_000 }, async () => {
  const total = 16 * 1024 * 1024;
  await h.up('streamer', 'stream', { COUNT: total });
  const page = await browser!.newPage();
  const stalled = await stalledViewer(roUrl.replace(/^http/, 'ws').replace(/\/\?t=/, '/ws?domain=streamer&t='));
  try {
    await page.goto(roUrl);
    await page.locator('tr.domain', { hasText: 'streamer' }).click();
    await sleep(300);
    // Pause the page's JavaScript: nothing in the page consumes its socket any more.
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Debugger.enable');
    await cdp.send('Debugger.pause');
    await h.until(() => h.log('streamer').length >= total, 'the whole stream in the log', 200_000);
    await cdp.send('Debugger.resume').catch(() => {}); // the page may have gone with the test's end: nothing to resume
    // The stalled socket now reads what the daemon kept for it: bounded, and ending with the marker that says how
    // much it missed (the console closed with the guest while it was still behind).
    let got = Buffer.alloc(0);
    stalled.on('data', (b: Buffer) => (got = Buffer.concat([got, b])));
    stalled.resume();
    await new Promise<void>((resolve) => {
      stalled.once('close', () => resolve());
      setTimeout(resolve, 20_000).unref();
    });
    assert.ok(got.length < total / 2, `the daemon did not buffer the stream for the stalled viewer (${got.length} bytes)`);
    assert.match(got.toString('latin1'), /\[vpl011: \d+ bytes of output dropped for read-only web viewer/);
  } finally {
    stalled.destroy();
    await page.close();
  }
});
