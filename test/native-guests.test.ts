// Guests under both vCPU paths: the native fast path (src/cpu/native/fastpath.c) and the pure-TypeScript one
// (VPL011_NATIVE=0). Bare metal: a 1 MiB polled TX stream (byte-exact, pattern), 256 KiB polled RX (checksum), and
// the hello banner + echo; Linux: a byte-exact `cat` flood through the IRQ-driven tty and a paste, via `vpl011 run`.
// Each run also says which path served the UART (MachineStats.nativeMmio), so a silent fallback fails the test.
import { vuartBackend } from './lib/vuart-backend.js';
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { startDomainThread, type DomainThread } from '../src/vmm/domain-thread.js';
import { buildBareGuest, BARE_LOAD_ADDR, fnv1a32, streamPattern, type BareGuest } from '../src/vmm/bare-guests.js';
import type { GuestImage } from '../src/toolstack/guest-image.js';
import { nativeLibraryPath } from '../src/cpu/native.js';
import { PROMPT, vpl011Process } from './lib/console-process.js';

const built = existsSync(nativeLibraryPath());
const PATHS = [
  { name: 'native', env: '1', skip: !built && 'native library not built' },
  { name: 'TypeScript', env: '0', skip: false },
] as const;

function image(name: BareGuest, defines?: Record<string, number>): GuestImage {
  const data = buildBareGuest(name, defines ? { defines } : {});
  return { ramBase: BARE_LOAD_ADDR, ramSize: 0x200000, segments: [{ addr: BARE_LOAD_ADDR, data, what: name }], entry: BARE_LOAD_ADDR, x0: 0 };
}

/** Start a domain thread with VPL011_NATIVE set for its worker (a worker copies the environment when it starts). */
function start(env: string, name: BareGuest, defines?: Record<string, number>): DomainThread {
  const before = process.env.VPL011_NATIVE;
  process.env.VPL011_NATIVE = env;
  try {
    return startDomainThread({ domid: 1, name, image: image(name, defines) });
  } finally {
    if (before === undefined) delete process.env.VPL011_NATIVE;
    else process.env.VPL011_NATIVE = before;
  }
}

/** A console backend in the test: drains OUT into a buffer, feeds IN, notifies after each batch as xenconsoled. */
async function serve(dom: DomainThread, input: Uint8Array): Promise<{ out: () => Buffer; stop: () => void }> {
  const port = await dom.vuartPort;
  const { ev, local, ring } = vuartBackend(dom, port);
  const chunks: Buffer[] = [];
  let fed = 0;
  let running = true;
  const buf = new Uint8Array(2048);
  void (async () => {
    while (running) {
      const seen = ev.doorbell(0);
      ev.clearPending(0, local);
      let moved = false;
      for (let n; (n = ring.readOut(buf)) > 0; ) {
        chunks.push(Buffer.from(buf.subarray(0, n)));
        moved = true;
      }
      if (fed < input.length && ring.inFree() > 0) {
        fed += ring.writeIn(input.subarray(fed));
        moved = true;
      }
      if (moved) ev.notify(0, local);
      else await ev.waitAsync(0, seen, 20);
    }
  })();
  return { out: () => Buffer.concat(chunks), stop: () => void (running = false) };
}

async function runBare(env: string, name: BareGuest, input: Uint8Array, defines?: Record<string, number>) {
  const dom = start(env, name, defines);
  try {
    const be = await serve(dom, input);
    const exit = await dom.exited;
    await new Promise((r) => setTimeout(r, 50)); // the last batch
    be.stop();
    return { exit, out: be.out() };
  } finally {
    await dom.stop();
  }
}

function checkPath(path: (typeof PATHS)[number], nativeMmio: number | undefined): void {
  if (path.env === '1') assert.ok((nativeMmio ?? 0) > 0, 'the native path served UART accesses');
  else assert.equal(nativeMmio ?? 0, 0, 'VPL011_NATIVE=0: no access served natively');
}

for (const path of PATHS) {
  test(`bare metal, ${path.name} path: 1 MiB polled TX byte-exact, 256 KiB polled RX checksum, hello echo`, { skip: path.skip, timeout: 180_000 }, async () => {
    const tx = await runBare(path.env, 'stream', new Uint8Array(0), { COUNT: 1 << 20 });
    assert.equal(tx.exit.reason, 'poweroff', tx.exit.message);
    assert.ok(tx.out.equals(streamPattern(1 << 20)), `TX stream byte-exact (${tx.out.length} bytes)`);
    checkPath(path, tx.exit.stats?.nativeMmio);
    // The machine's periodic checks (a stop that did not kick, the trace switch, insight) come every 1024th UART
    // access whichever path serves them: the native path once made them every 1024th of its trips into JS (~1 M).
    const { mmio, periodicChecks } = tx.exit.stats!;
    assert.ok(periodicChecks >= Math.floor(mmio / 2048), `periodic checks ${periodicChecks} for ${mmio} accesses`);

    const data = Buffer.from(Array.from({ length: 256 * 1024 }, (_, i) => (i * 131 + (i >> 8)) & 0xff));
    const rx = await runBare(path.env, 'checksum', data, { COUNT: data.length });
    assert.equal(rx.exit.reason, 'poweroff', rx.exit.message);
    const want = `fnv1a32 ${fnv1a32(data).toString(16).padStart(8, '0')} bytes ${data.length.toString(16).padStart(8, '0')}`;
    assert.ok(rx.out.toString('latin1').includes(want), `RX checksum: want "${want}" in ${JSON.stringify(rx.out.toString('latin1'))}`);
    checkPath(path, rx.exit.stats?.nativeMmio);

    const hello = await runBare(path.env, 'hello', new TextEncoder().encode('abc\x04'));
    assert.equal(hello.exit.reason, 'poweroff', hello.exit.message);
    assert.equal(hello.out.toString('latin1'), 'hello from bare metal\nabc');
  });
}

const md5 = (b: Buffer | string) => createHash('md5').update(b).digest('hex');

for (const path of PATHS) {
  test(`Linux, ${path.name} path: a 1 MiB cat arrives byte-exact, 16 KiB pasted arrive md5-equal, poweroff`, { skip: path.skip, timeout: 300_000 }, async () => {
    const g = vpl011Process(['run', '--timeout', '280'], { VPL011_NATIVE: path.env });
    try {
      await g.expect(PROMPT, 120_000);
      const line = 'the quick brown fox jumps over the lazy dog 0123456789\n';
      const size = 1 << 20;
      const expected = line.repeat(Math.ceil(size / line.length)).slice(0, size);
      let at = g.out.length;
      g.type(`yes ${line.trim()} | head -c ${size} > /tmp/big; echo MA''DE-1\n`);
      at = await g.expect(/MADE-1\r\n/, 60_000, at);
      at = await g.expect(PROMPT, 10_000, at);
      g.type("cat /tmp/big; echo FLOOD-''END-2c4e\n");
      const begin = await g.expect(/FLOOD-''END-2c4e\r?\n/, 10_000, at); // the end of the echoed command line
      const end = await g.expect(/FLOOD-END-2c4e\r\n/, 200_000, begin);
      const got = g.out.slice(begin, end - 'FLOOD-END-2c4e\r\n'.length);
      assert.equal(got.replace(/\r\n/g, '\n'), expected, 'every byte of the cat, in order');

      let text = '';
      for (let i = 0; i < 16 * 1024; i++) text += i % 64 === 63 ? '\n' : String.fromCharCode(0x21 + ((i * 7) % 90));
      at = g.out.length;
      g.type("stty -echo; echo RE''ADY; cat > /tmp/f; stty echo\n");
      await g.expect(/READY\r?\n/, 10_000, at);
      const pasted = g.out.length;
      g.type(text + '\x04');
      await g.expect(PROMPT, 120_000, pasted);
      at = g.out.length;
      g.type('md5sum /tmp/f\n');
      await g.expect(new RegExp(md5(text)), 30_000, at);
      g.type('poweroff -f\n');
      const { code } = await g.exited;
      assert.equal(code, 0, g.stderr);
      if (path.env === '0') assert.ok(!/native console fast path/.test(g.stderr), 'no hint when TypeScript is chosen');
    } finally {
      await g.kill();
    }
  });
}
