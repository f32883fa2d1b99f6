// Kernel/program loaders (src/toolstack/image.ts) and the domain build (src/toolstack/build.ts), against
// Documentation/arch/arm64/booting.rst (Image header, placement, DTB rules) and the ELF64 spec (PT_LOAD).
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { BuildError, buildGuest, layoutBare, layoutLinux } from '../src/toolstack/build.js';
import { defaultGuestConfig, type GuestConfig } from '../src/toolstack/config.js';
import { guestPaths } from '../src/toolstack/fetch.js';
import { ImageError, loadElf64, loadRaw, parseArm64ImageHeader } from '../src/toolstack/image.js';

const work = mkdtempSync(join(tmpdir(), 'vpl011-image-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
const MiB = 1 << 20;
const RAM = { base: 0x40000000, size: 64 * MiB };

/** A synthetic arm64 Image: header fields per booting.rst, "MZ" EFI stub marker, then filler. */
function fakeImage(o: { textOffset?: bigint; imageSize?: bigint; flags?: bigint; length?: number } = {}): Uint8Array {
  const b = new Uint8Array(o.length ?? 0x10000);
  const v = new DataView(b.buffer);
  b[0] = 0x4d;
  b[1] = 0x5a;
  v.setBigUint64(0x08, o.textOffset ?? 0n, true);
  v.setBigUint64(0x10, o.imageSize ?? 0x300000n, true);
  v.setBigUint64(0x18, o.flags ?? 0b1010n, true); // LE, 4K pages, placement anywhere
  v.setUint32(0x38, 0x644d5241, true);
  return b;
}

function config(over: Partial<GuestConfig> = {}): GuestConfig {
  return { name: 't', kind: 'linux', kernel: '/k', cmdline: 'console=ttyAMA0 earlycon', memoryMiB: 64, vcpus: 1, vuart: 'sbsa_uart', mmioPolicy: 'abort', ...over };
}

test('Image header: text_offset, image_size, page size and placement flags decoded (booting.rst)', () => {
  const h = parseArm64ImageHeader(fakeImage({ textOffset: 0x80000n, imageSize: 0x1234000n, flags: 0b1010n }));
  assert.equal(h.textOffset, 0x80000);
  assert.equal(h.imageSize, 0x1234000);
  assert.equal(h.pageSize, 4096);
  assert.equal(h.physPlacementAnywhere, true);
  assert.equal(h.efiStub, true);
  const h2 = parseArm64ImageHeader(fakeImage({ flags: 0b0100n }));
  assert.equal(h2.pageSize, 16384);
  assert.equal(h2.physPlacementAnywhere, false);
});

test('Image header: image_size 0 means a pre-3.17 kernel with text_offset 0x80000 (booting.rst)', () => {
  const h = parseArm64ImageHeader(fakeImage({ textOffset: 0n, imageSize: 0n, length: 0x20000 }));
  assert.equal(h.textOffset, 0x80000);
  assert.equal(h.imageSize, 0x20000);
});

test('Image header: non-Images are refused with a message saying why', () => {
  assert.throws(() => parseArm64ImageHeader(new Uint8Array(10)), /shorter than the 64-byte header/);
  assert.throws(() => parseArm64ImageHeader(new Uint8Array(4096)), /no "ARM\\x64" magic at offset 0x38$/);
  assert.throws(() => parseArm64ImageHeader(gzipSync(fakeImage())), /gzip-compressed/);
  const elf = new Uint8Array(4096);
  elf.set([0x7f, 0x45, 0x4c, 0x46]);
  assert.throws(() => parseArm64ImageHeader(elf), /ELF file/);
  assert.throws(() => parseArm64ImageHeader(fakeImage({ flags: 1n })), /big-endian/);
  assert.throws(() => parseArm64ImageHeader(fakeImage({ textOffset: 0x200000n })), /text_offset/);
});

test('Image header of the real Debian kernel in the cache (skipped when not fetched yet)', (t) => {
  const kernel = guestPaths().kernel;
  if (!existsSync(kernel)) {
    t.skip(`no ${kernel}: run scripts/setup.sh`);
    return;
  }
  const buf = new Uint8Array(readFileSync(kernel));
  const h = parseArm64ImageHeader(buf);
  // Debian 12's 6.1 kernel: EFI stub, text_offset 0 since 5.x, image_size covers bss beyond the file.
  assert.equal(h.efiStub, true);
  assert.equal(h.textOffset, 0);
  assert.ok(h.imageSize > buf.length, `image_size ${h.imageSize} should exceed the file (${buf.length}) by the bss`);
  assert.equal(h.pageSize, 4096);
});

/** Builds a bare-metal ELF with binutils for aarch64 linked at `textAddr`. */
function buildElf(textAddr: number, name: string): Uint8Array {
  const src = join(work, `${name}.S`);
  writeFileSync(src, [
    '.section .text', '.global _start', '_start:', '  ldr x0, =msg', '1: wfi', '  b 1b',
    '.section .data', 'msg: .asciz "hello"', '.section .bss', 'buf: .space 0x2000', '',
  ].join('\n'));
  const obj = join(work, `${name}.o`);
  const elf = join(work, `${name}.elf`);
  let r = spawnSync('aarch64-linux-gnu-as', ['-o', obj, src]);
  assert.equal(r.status, 0, r.stderr?.toString());
  r = spawnSync('aarch64-linux-gnu-ld', ['-static', '-nostdlib', `-Ttext=0x${textAddr.toString(16)}`, '-o', elf, obj]);
  assert.equal(r.status, 0, r.stderr?.toString());
  return new Uint8Array(readFileSync(elf));
}

test('ELF64 AArch64: PT_LOAD segments at their physical addresses, bss zero-filled, entry = _start', () => {
  const elf = buildElf(0x40080000, 'ok');
  const p = loadElf64(elf, RAM);
  assert.equal(p.entry, 0x40080000);
  // ld's first PT_LOAD also maps the ELF headers, from the page below -Ttext; _start is inside it.
  const text = p.segments.find((s) => s.addr <= 0x40080000 && 0x40080000 < s.addr + s.data.length);
  assert.ok(text, `segments: ${p.segments.map((s) => s.addr.toString(16))}`);
  // The first instruction is "ldr x0, =msg" (LDR literal: top byte 0x58).
  assert.equal(text.data[0x40080000 - text.addr + 3], 0x58);
  const all = p.segments.map((s) => Buffer.from(s.data).toString('latin1')).join('');
  assert.ok(all.includes('hello\0'));
  const total = p.segments.reduce((n, s) => n + s.data.length, 0);
  assert.ok(total >= 0x2000, 'bss is part of the loaded size');
});

test('ELF64: segments outside RAM, wrong machine and truncated files are refused', () => {
  assert.throws(() => loadElf64(buildElf(0x1000, 'low'), RAM), /outside guest RAM \[0x40000000, 0x44000000\)/);
  const elf = buildElf(0x40080000, 'arch');
  const wrong = elf.slice();
  new DataView(wrong.buffer).setUint16(18, 62, true); // EM_X86_64
  assert.throws(() => loadElf64(wrong, RAM), /not AArch64/);
  assert.throws(() => loadElf64(elf.subarray(0, 40), RAM), /truncated/);
  const badPh = elf.slice();
  new DataView(badPh.buffer).setBigUint64(32, BigInt(elf.length), true); // e_phoff past the end
  assert.throws(() => loadElf64(badPh, RAM), /program headers lie outside the file/);
  assert.throws(() => loadElf64(new Uint8Array(100), RAM), ImageError);
});

test('raw binary: copied to the RAM base and entered there; too big is refused', () => {
  const p = loadRaw(new Uint8Array([1, 2, 3, 4]), RAM);
  assert.equal(p.entry, RAM.base);
  assert.deepEqual([...p.segments[0]!.data], [1, 2, 3, 4]);
  assert.throws(() => loadRaw(new Uint8Array(RAM.size + 1), RAM), /does not fit/);
});

test('Linux layout: kernel at a 2 MiB base + text_offset, DTB 8-aligned in the top 2 MiB, initrd below it, x0 = DTB', () => {
  const kernel = fakeImage({ textOffset: 0x80000n, imageSize: 0x400000n });
  const initrd = new Uint8Array(300_000).fill(7);
  const img = layoutLinux(config(), kernel, initrd, RAM.base, RAM.size);
  const seg = (w: string) => img.segments.find((s) => s.what === w)!;
  assert.equal(seg('kernel').addr, 0x40080000);
  assert.equal(img.entry, 0x40080000);
  assert.equal(seg('dtb').addr, RAM.base + RAM.size - 2 * MiB);
  assert.equal(img.x0, seg('dtb').addr);
  assert.equal(seg('dtb').addr % 8, 0);
  const rd = seg('initrd');
  assert.equal(rd.addr % 4096, 0);
  assert.ok(rd.addr + rd.data.length <= seg('dtb').addr);
  assert.ok(rd.addr >= 0x40080000 + 0x400000, 'initrd above the kernel image including bss');
  // The DTB tells the kernel where the initrd is.
  const dtbFile = join(work, 'layout.dtb');
  writeFileSync(dtbFile, seg('dtb').data);
  const text = spawnSync('dtc', ['-q', '-I', 'dtb', '-O', 'dts', dtbFile]).stdout.toString();
  assert.match(text, new RegExp(`linux,initrd-start = <0x00 0x${rd.addr.toString(16)}>;`));
  assert.match(text, new RegExp(`linux,initrd-end = <0x00 0x${(rd.addr + initrd.length).toString(16)}>;`));
  assert.match(text, /bootargs = "console=ttyAMA0 earlycon";/);
});

test('Linux layout: too little memory is an error naming "memory" and the size needed', () => {
  const kernel = fakeImage({ imageSize: BigInt(62 * MiB) });
  assert.throws(() => layoutLinux(config(), kernel, new Uint8Array(MiB), RAM.base, RAM.size), (e: Error) => {
    assert.ok(e instanceof BuildError);
    assert.match(e.message, /^memory: 64 MiB is too small for this kernel \(62 MiB with bss\) and initrd \(1 MiB\) plus the DTB; use at least \d+ MiB$/);
    return true;
  });
});

test('bare layout: ELF where it says, DTB in x0; a program overlapping the DTB is refused', () => {
  const elf = buildElf(0x40080000, 'bare');
  const img = layoutBare(config({ kind: 'bare' }), elf, RAM.base, RAM.size);
  assert.equal(img.entry, 0x40080000);
  assert.equal(img.x0, RAM.base + RAM.size - 2 * MiB);
  const top = buildElf(RAM.base + RAM.size - 2 * MiB + 0x1000, 'top');
  assert.throws(() => layoutBare(config({ kind: 'bare' }), top, RAM.base, RAM.size), /overlaps the DTB/);
});

test('buildGuest reads the files named in the config and reports unreadable ones by role', async () => {
  const k = join(work, 'Image');
  writeFileSync(k, fakeImage());
  const img = await buildGuest(config({ kernel: k }));
  assert.equal(img.ramSize, 64 * MiB);
  assert.equal(img.segments.map((s) => s.what).join(','), 'kernel,dtb');
  await assert.rejects(buildGuest(config({ kernel: join(work, 'nope') })), /^BuildError: kernel: .*nope: no such file$/);
  writeFileSync(join(work, 'notimage'), 'hello');
  await assert.rejects(buildGuest(config({ kernel: join(work, 'notimage') })), /not an arm64 Linux Image/);
});

test('the default guest (cached Debian kernel + initramfs, 512 MiB) lays out: kernel at the RAM base, initrd and DTB above its bss', async (t) => {
  const p = guestPaths();
  if (!existsSync(p.kernel) || !existsSync(p.initrd)) {
    t.skip('guest images not fetched yet (run scripts/setup.sh)');
    return;
  }
  const img = await buildGuest(defaultGuestConfig({ kernel: p.kernel, initrd: p.initrd }));
  const seg = (w: string) => img.segments.find((s) => s.what === w)!;
  assert.equal(seg('kernel').addr, 0x40000000, 'Debian 6.1: text_offset 0');
  const hdr = parseArm64ImageHeader(seg('kernel').data);
  assert.ok(seg('initrd').addr >= 0x40000000 + hdr.imageSize);
  assert.equal(img.x0, 0x40000000 + 512 * MiB - 2 * MiB);
  for (const s of img.segments) assert.ok(s.addr >= img.ramBase && s.addr + s.data.length <= img.ramBase + img.ramSize, s.what);
});
