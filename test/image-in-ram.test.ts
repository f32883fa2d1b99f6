// Start-up (issue 7 §4): a Linux guest's kernel and initrd are read straight into guest RAM (GuestImage.ram, a
// SharedArrayBuffer the vCPU's thread maps in place), at the addresses the layout gives them; errors are the same
// one-line BuildErrors as before (a `vpl011 run` with them exits 2: test/cli-bad-input.test.ts).
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BuildError, buildGuest, layoutLinux } from '../src/toolstack/build.js';
import type { GuestConfig } from '../src/toolstack/config.js';
import { vpl011Process } from './lib/console-process.js';

const MiB = 1 << 20;
const RAM_BASE = 0x40000000;
const T = { timeout: 60_000 };

/** A synthetic arm64 Image (booting.rst header) with random contents after the header. */
function fakeImage(textOffset: bigint, length: number, imageSize = BigInt(length + MiB)): Uint8Array {
  const b = new Uint8Array(randomBytes(length));
  b.fill(0, 0, 64);
  const v = new DataView(b.buffer);
  b[0] = 0x4d;
  b[1] = 0x5a;
  v.setBigUint64(0x08, textOffset, true);
  v.setBigUint64(0x10, imageSize, true);
  v.setBigUint64(0x18, 0b1010n, true);
  v.setUint32(0x38, 0x644d5241, true);
  return b;
}

function config(kernel: string, over: Partial<GuestConfig> = {}): GuestConfig {
  return { name: 't', kind: 'linux', kernel, cmdline: 'console=ttyAMA0', memoryMiB: 64, vcpus: 1, vuart: 'sbsa_uart', mmioPolicy: 'abort', ...over };
}

async function withFiles(files: Record<string, Uint8Array>, f: (paths: Record<string, string>) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vpl011-inram-'));
  try {
    const paths: Record<string, string> = {};
    for (const [name, data] of Object.entries(files)) writeFileSync((paths[name] = join(dir, name)), data);
    await f(paths);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

for (const textOffset of [0n, 0x80000n]) {
  test(`the kernel (text_offset ${textOffset}) and initrd are in guest RAM at the layout's addresses, the rest of RAM zero`, T, async () => {
    const kernel = fakeImage(textOffset, 3 * MiB + 123);
    const initrd = new Uint8Array(randomBytes(MiB + 7));
    await withFiles({ Image: kernel, initrd }, async (p) => {
      const c = config(p.Image!, { ramdisk: p.initrd! });
      const img = await buildGuest(c);
      assert.ok(img.ram instanceof SharedArrayBuffer && img.ram.byteLength === 64 * MiB, 'RAM is a SharedArrayBuffer of the guest size');
      const want = layoutLinux(c, kernel, initrd, RAM_BASE, 64 * MiB); // the pure layout from buffers of their own
      assert.deepEqual(img.segments.map((s) => [s.what, s.addr, s.data.length]), want.segments.map((s) => [s.what, s.addr, s.data.length]));
      assert.equal(img.entry, want.entry);
      const ram = new Uint8Array(img.ram);
      for (const [what, data] of [['kernel', kernel], ['initrd', initrd]] as const) {
        const seg = img.segments.find((s) => s.what === what)!;
        assert.equal(seg.data.buffer, img.ram, `${what}: a view of guest RAM`);
        assert.equal(seg.data.byteOffset, seg.addr - RAM_BASE, `${what}: at its own address`);
        assert.ok(Buffer.from(ram.subarray(seg.addr - RAM_BASE, seg.addr - RAM_BASE + data.length)).equals(data), `${what}: bytes equal`);
      }
      // Below the kernel (where a non-zero text_offset first had it) and between the pieces: zero, as unicorn's RAM.
      const k = img.segments.find((s) => s.what === 'kernel')!;
      const rd = img.segments.find((s) => s.what === 'initrd')!;
      assert.ok(ram.subarray(0, k.addr - RAM_BASE).every((b) => b === 0), 'zero below the kernel');
      assert.ok(ram.subarray(k.addr - RAM_BASE + kernel.length, rd.addr - RAM_BASE).every((b) => b === 0), 'zero between kernel and initrd');
    });
  });
}

test('an initrd that does not fit is refused (memory too small) before it is read; a bad kernel is named', T, async () => {
  const kernel = fakeImage(0n, 2 * MiB, BigInt(62 * MiB));
  await withFiles({ Image: kernel, initrd: new Uint8Array(MiB), notimage: new TextEncoder().encode('hello') }, async (p) => {
    await assert.rejects(buildGuest(config(p.Image!, { ramdisk: p.initrd! })), (e: Error) => {
      assert.ok(e instanceof BuildError);
      assert.match(e.message, /^memory: 64 MiB is too small for this kernel \(62 MiB with bss\) and initrd \(1 MiB\) plus the DTB; use at least \d+ MiB$/);
      return true;
    });
    await assert.rejects(buildGuest(config(p.notimage!)), /^BuildError: kernel .*notimage: .*not an arm64 Linux Image/);
    await assert.rejects(buildGuest(config(p.Image!, { ramdisk: join(p.Image!, '..', 'nope') })), /^BuildError: ramdisk: .*nope: no such file$/);
  });
});

test('vpl011 run with an initrd that does not fit: one line, exit 2, no domain started', T, async () => {
  const kernel = fakeImage(0n, 2 * MiB, BigInt(62 * MiB));
  await withFiles({ Image: kernel, initrd: new Uint8Array(MiB) }, async (p) => {
    const v = vpl011Process(['run', '--kernel', p.Image!, '--initrd', p.initrd!, '--memory', '64', '--timeout', '20']);
    try {
      const e = await v.exitWithin(30_000);
      assert.equal(e.code, 2, v.stderr);
      assert.match(v.stderr, /^vpl011: memory: 64 MiB is too small for this kernel \(62 MiB with bss\) and initrd \(1 MiB\) plus the DTB; use at least \d+ MiB\n$/);
    } finally {
      await v.kill();
    }
  });
});
