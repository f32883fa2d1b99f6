// The qemu-virt layout (src/toolstack/guest-map.ts, docs/LAYOUTS.md): its config keys and their errors, the DT it
// writes (checked with dtc), where the toolstack puts firmware and payload, the read-only flash bank, and the CLI's
// --firmware errors. The real-U-Boot runs are in uboot.test.ts.
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, parseConfig, type GuestConfig } from '../src/toolstack/config.js';
import { buildGuestDt } from '../src/toolstack/guest-dt.js';
import { BuildError, buildGuest } from '../src/toolstack/build.js';
import { QEMU_VIRT_BOOT, QEMU_VIRT_LAYOUT, XEN_LAYOUT } from '../src/toolstack/guest-map.js';
import { FlashBank } from '../src/vmm/flash-bank.js';
import { MMIO_DONE } from '../src/xen/mmio.js';
import { cli } from './lib/cli-process.js';

const MiB = 1024 * 1024;

function withWork<T>(fn: (dir: string) => Promise<T> | T): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'vpl011-qv-'));
  return Promise.resolve().then(() => fn(dir)).finally(() => rmSync(dir, { recursive: true, force: true }));
}

function issues(text: string): string[] {
  try {
    parseConfig(text, '/cfg/g.cfg', { checkFiles: false });
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.issues.map((i) => `${i.field}: ${i.message}`);
  }
  return [];
}

function dts(dtb: Uint8Array): string {
  return withDtc(dtb);
}

function withDtc(dtb: Uint8Array): string {
  const dir = mkdtempSync(join(tmpdir(), 'vpl011-qv-dtc-'));
  try {
    writeFileSync(join(dir, 'g.dtb'), dtb);
    // No -q: dtc's checks (unit addresses, reg formats, interrupt cells, phandles) must have nothing to say.
    const r = spawnSync('dtc', ['-I', 'dtb', '-O', 'dts', join(dir, 'g.dtb')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '', 'dtc warned');
    return r.stdout;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('config: layout = "qemu-virt" with firmware parses, defaults to the pl011 profile and needs no kernel', () => {
  const c = parseConfig('layout = "qemu-virt"\nfirmware = "u-boot.bin"\nramdisk = "initrd"\n', '/cfg/g.cfg', { checkFiles: false });
  assert.equal(c.layout, 'qemu-virt');
  assert.equal(c.firmware, '/cfg/u-boot.bin');
  assert.equal(c.kernel, '');
  assert.equal(c.ramdisk, '/cfg/initrd');
  assert.equal(c.vuart, 'pl011');
  // The Xen layout stays the default: no layout key, no layout field.
  const x = parseConfig('kernel = "Image"\n', '/cfg/g.cfg', { checkFiles: false });
  assert.equal(x.layout, undefined);
  assert.equal(x.vuart, 'sbsa_uart');
});

test('config: firmware outside qemu-virt, the SBSA profile in qemu-virt, an unknown layout and no kernel nor firmware are errors', () => {
  assert.deepEqual(issues('firmware = "u-boot.bin"\n'), ['firmware: needs layout = "qemu-virt" (firmware runs from that layout\'s flash; got "xen")']);
  assert.deepEqual(issues('layout = "qemu-virt"\nfirmware = "f"\nvuart = "sbsa_uart"\n'), ['vuart: layout "qemu-virt" has a PL011 (vuart = "pl011"), not "sbsa_uart"']);
  assert.deepEqual(issues('layout = "virt"\nkernel = "k"\n'), ['layout: "virt" is not one of "xen", "qemu-virt"']);
  assert.deepEqual(issues('layout = "qemu-virt"\n'), ['kernel: is required']);
  assert.deepEqual(issues('layout = "qemu-virt"\nkind = "bare"\nfirmware = "f"\n'), ['firmware: not supported with kind = "bare" (the firmware is the program)']);
});

test('DT in the qemu-virt layout: QEMU virt addresses and SPI, the PL011 as U-Boot and Linux bind it, nothing we do not model; dtc-clean', () => {
  const text = dts(buildGuestDt({ ramBase: 0x40000000, ramSize: 512 * MiB, bootargs: 'console=ttyAMA0 earlycon', vuart: 'pl011', layout: QEMU_VIRT_LAYOUT,
    initrd: { start: 0x44000000, end: 0x44100000 } }));
  assert.match(text, /compatible = "linux,dummy-virt";/);
  assert.match(text, /stdout-path = "\/pl011@9000000";/);
  assert.match(text, /linux,initrd-start = <0x00 0x44000000>;\s*linux,initrd-end = <0x00 0x44100000>;/);
  assert.match(text, /memory@40000000 \{\s*device_type = "memory";\s*reg = <0x00 0x40000000 0x00 0x20000000>;/);
  assert.match(text, /interrupt-controller@8000000 \{[^}]*reg = <0x00 0x8000000 0x00 0x1000 0x00 0x8010000 0x00 0x2000>;/);
  // QEMU's a15irqmap: the UART on SPI 1 (INTID 33), level-high.
  assert.match(text, /pl011@9000000 \{\s*compatible = "arm,pl011\\0arm,primecell";\s*reg = <0x00 0x9000000 0x00 0x1000>;\s*interrupts = <0x00 0x01 0xf04>;\s*clocks = <0x02 0x02>;\s*clock-names = "uartclk\\0apb_pclk";/);
  assert.match(text, /method = "hvc";/);
  // Absent because unmodelled: U-Boot would probe them (fw_cfg, virtio-mmio, PCIe, CFI flash, RTC, GPIO).
  assert.doesNotMatch(text, /fw-cfg|virtio|pcie|flash|pl031|pl061|sbsa/);
  // The default layout is Xen's, byte for byte.
  const opts = { ramBase: 0x40000000, ramSize: 512 * MiB, bootargs: 'x', vuart: 'pl011' as const };
  assert.deepEqual(buildGuestDt(opts), buildGuestDt({ ...opts, layout: XEN_LAYOUT }));
  assert.match(dts(buildGuestDt(opts)), /pl011@22000000 \{[^}]*interrupts = <0x00 0x00 0xf04>;/);
});

test('firmware build: the file at flash 0 entered with x0 = 0, the DTB at the RAM base, payload at U-Boot\'s default addresses', async () => {
  await withWork(async (dir) => {
    const fw = join(dir, 'fw.bin');
    const k = join(dir, 'Image');
    const r = join(dir, 'initrd');
    writeFileSync(fw, Buffer.from([0x0a, 0x00, 0x00, 0x14]));
    writeFileSync(k, Buffer.alloc(3 * MiB, 1));
    writeFileSync(r, Buffer.alloc(MiB + 5, 2));
    const config: GuestConfig = { name: 'g', kind: 'linux', kernel: k, ramdisk: r, cmdline: 'console=ttyAMA0', memoryMiB: 128, vcpus: 1,
      vuart: 'pl011', mmioPolicy: 'abort', layout: 'qemu-virt', firmware: fw };
    const img = await buildGuest(config);
    assert.equal(img.layout?.name, 'qemu-virt');
    assert.equal(img.entry, 0);
    assert.equal(img.x0, 0);
    assert.deepEqual(img.flash?.map((f) => [f.bank, f.data.length]), [[0, 4]]);
    const at = Object.fromEntries(img.segments.map((s) => [s.what, [s.addr, s.data.length]]));
    assert.deepEqual(at.kernel, [QEMU_VIRT_BOOT.kernelAddr, 3 * MiB]);
    assert.deepEqual(at.ramdisk, [QEMU_VIRT_BOOT.ramdiskAddr, MiB + 5]);
    assert.equal(at.dtb![0], 0x40000000);
    const text = dts(img.segments.find((s) => s.what === 'dtb')!.data);
    assert.match(text, /linux,initrd-end = <0x00 0x44100005>;/);
    // A payload that does not fit: an error naming it, not a guest that overwrites its own DT or kernel.
    writeFileSync(r, Buffer.alloc(127 * MiB));
    await assert.rejects(buildGuest(config), (e: Error) => e instanceof BuildError && /^ramdisk: \d+ bytes do not fit at 0x44000000/.test(e.message));
    writeFileSync(fw, '');
    await assert.rejects(buildGuest(config), (e: Error) => e instanceof BuildError && e.message === `firmware: ${fw} is empty`);
    writeFileSync(fw, Buffer.from([0x0a, 0x00, 0x00, 0x14]));
    writeFileSync(k, Buffer.alloc(61 * MiB));
    await assert.rejects(buildGuest({ ...config, ramdisk: undefined as never }), (e: Error) => e instanceof BuildError && /^kernel: .* do not fit at 0x40400000/.test(e.message));
  });
});

test('flash bank: reads the file then erased 0xff, little-endian at every width; writes are ignored and counted', () => {
  const b = new FlashBank(64 * 1024, new Uint8Array([0x11, 0x22, 0x33]));
  assert.equal(b.read(0, 4), 0xff332211);
  assert.equal(b.read(1, 2), 0x3322);
  assert.equal(b.read(3, 1), 0xff);
  assert.equal(b.read(0x8000, 8), 0xffffffff);
  assert.equal(b.write(0, 4, 0), MMIO_DONE);
  assert.equal(b.read(0, 4), 0xff332211);
  assert.equal(b.ignoredWrites, 1);
  assert.throws(() => new FlashBank(2, new Uint8Array(3)), RangeError);
});

test('CLI: --firmware with a missing file or with --bare is one line and exit 2', async () => {
  const missing = await cli(['run', '--firmware', '/nonexistent/u-boot.bin']);
  assert.equal(missing.code, 2);
  assert.equal(missing.stderr, 'vpl011: --firmware: /nonexistent/u-boot.bin: no such file\n');
  const bare = await cli(['run', '--firmware', '/etc/hostname', '--bare']);
  assert.equal(bare.code, 2);
  assert.match(bare.stderr, /^vpl011: --firmware: not supported with kind = "bare" \(the firmware is the program\)\n$/);
});

test('Linux booted directly in the qemu-virt layout takes its UART interrupts on INTID 33 (QEMU\'s SPI 1)', { timeout: 200_000 }, async () => {
  const { ensureGuestImages } = await import('../src/toolstack/fetch.js');
  const images = await ensureGuestImages({ log: () => {} });
  await withWork(async (dir) => {
    const cfg = join(dir, 'g.cfg');
    writeFileSync(cfg, `layout = "qemu-virt"\nkernel = "${images.kernel}"\nramdisk = "${images.initrd}"\n`);
    const r = await cli(['run', '--config', cfg, '--timeout', '150'], { input: 'grep pl011 /proc/interrupts\npoweroff -f\n', limitMs: 180_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Machine model: vpl011 \(QEMU virt board layout, Unicorn vCPU\)/);
    // The shell's input came in by interrupt: a non-zero count on the GIC's INTID 33.
    const m = /^\s*\d+:\s+(\d+)\s+GIC-0\s+33 Level\s+uart-pl011/m.exec(r.stdout);
    assert.ok(m, r.stdout.slice(-1500));
    assert.ok(Number(m[1]) > 0);
  });
});
