// Domain build: lays a guest out in RAM (libxl/xc_dom's job) and returns what the VMM loads.
// Linux (Documentation/arch/arm64/booting.rst): the Image at a 2 MiB-aligned base + text_offset, the DTB 8-byte
// aligned and at most 2 MiB, x0 = DTB address, MMU off. We put the kernel at the RAM base, the DTB in the top
// 2 MiB of RAM and the initrd just below it, so the kernel's image_size (bss included) has the rest.
import type { GuestConfig } from './config.js';
import { statSync } from 'node:fs';
import { FileReadError, readRegularFile, readRegularFileInto } from '../util/bounded-read.js';
import type { GuestImage, GuestSegment } from './guest-image.js';
import { buildGuestDt } from './guest-dt.js';
import { GUEST_RAM_BASE, QEMU_VIRT_BOOT, guestLayout } from './guest-map.js';
import { ImageError, isElf, loadElf64, loadRaw, parseArm64ImageHeader, type Arm64ImageHeader } from './image.js';
import { hex } from '../util/hex.js';
import { Vpl011Error } from '../util/errors.js';

const MiB = 1024 * 1024;
const SZ_2M = 2 * MiB;
const DTB_MAX = SZ_2M;
const PAGE = 4096;

const alignDown = (v: number, a: number) => Math.floor(v / a) * a;
const alignUp = (v: number, a: number) => Math.ceil(v / a) * a;

export class BuildError extends Vpl011Error<'EINVAL'> {
  constructor(message: string) {
    super('EINVAL', message);
  }
}

/**
 * A kernel, ramdisk or firmware: a regular file no larger than where it goes (a bigger one cannot be loaded anyway),
 * into a buffer of its own, or with `place` straight into the memory it returns for the file's size (guest RAM).
 */
function readInput(path: string, what: string, limit: number, limitIs = "the guest's memory", place?: (size: number) => Uint8Array): Uint8Array {
  try {
    if (place) return readRegularFileInto(path, limit, place);
    const b = readRegularFile(path, limit);
    return new Uint8Array(b.buffer, b.byteOffset, b.length); // a view: new Uint8Array(b) would copy 33 MB again
  } catch (e) {
    if (e instanceof FileReadError) throw new BuildError(`${what}: ${e.message}${/limit/.test(e.reason) ? ` (${limitIs})` : ''}`);
    throw e;
  }
}

export async function buildGuest(config: GuestConfig): Promise<GuestImage> {
  const ramBase = GUEST_RAM_BASE;
  const ramSize = config.memoryMiB * MiB;
  if (config.firmware !== undefined) return buildFirmwareGuest(config, ramSize);
  if (config.kind === 'linux') return buildLinuxInRam(config, ramBase, ramSize);
  const kernel = readInput(config.kernel, 'kernel', ramSize);
  // A bare program takes no ramdisk; one named is still read, so a missing file is reported as before.
  if (config.ramdisk !== undefined) readInput(config.ramdisk, 'ramdisk', ramSize);
  try {
    return layoutBare(config, kernel, ramBase, ramSize);
  } catch (e) {
    if (e instanceof ImageError) throw new BuildError(`kernel ${config.kernel}: ${e.message}`);
    throw e;
  }
}

/**
 * Linux with its kernel and initrd read straight into guest RAM: a SharedArrayBuffer the vCPU's thread maps in place
 * (GuestImage.ram), so the ~34 MB are neither copied into a buffer of their own nor into the guest by the VMM.
 */
function buildLinuxInRam(config: GuestConfig, ramBase: number, ramSize: number): GuestImage {
  const ram = new SharedArrayBuffer(ramSize);
  const at = (addr: number, size: number) => new Uint8Array(ram, addr - ramBase, size);
  // The Image goes to the 2 MiB-aligned base first; its header then says how far above that it runs (text_offset,
  // 0 since Linux 5.8), and it is moved there if not 0.
  const base = alignUp(ramBase, SZ_2M);
  let kernel = readInput(config.kernel, 'kernel', ramBase + ramSize - base, undefined, (size) => at(base, size));
  let hdr: Arm64ImageHeader;
  try {
    hdr = parseArm64ImageHeader(kernel);
  } catch (e) {
    if (e instanceof ImageError) throw new BuildError(`kernel ${config.kernel}: ${e.message}`);
    throw e;
  }
  if (hdr.textOffset !== 0) {
    // Moved past the end of RAM: linuxPlacement throws the BuildError that says how much memory it needs (its
    // image_size, bss included, is at least the file's length).
    if (base + hdr.textOffset + kernel.length > ramBase + ramSize) linuxPlacement(config, hdr, undefined, ramBase, ramSize);
    const all = new Uint8Array(ram);
    all.copyWithin(base + hdr.textOffset - ramBase, base - ramBase, base - ramBase + kernel.length);
    all.fill(0, base - ramBase, base - ramBase + Math.min(hdr.textOffset, kernel.length)); // RAM below the kernel reads as before: zero
    kernel = at(base + hdr.textOffset, kernel.length);
  }
  // The initrd's place depends on its size (just below the DTB); one that does not fit is refused before it is read.
  const initrd = config.ramdisk !== undefined
    ? readInput(config.ramdisk, 'ramdisk', ramSize, undefined, (size) => at(linuxPlacement(config, hdr, size, ramBase, ramSize).initrd!.start, size))
    : undefined;
  return { ...layoutLinux(config, kernel, initrd, ramBase, ramSize), ram };
}

/** Where a Linux guest's pieces go (booting.rst), or the BuildError that says how much memory it needs. */
function linuxPlacement(config: GuestConfig, hdr: Arm64ImageHeader, initrdLength: number | undefined, ramBase: number, ramSize: number) {
  const kernelAddr = alignUp(ramBase, SZ_2M) + hdr.textOffset;
  const kernelEnd = kernelAddr + hdr.imageSize;
  const ramEnd = ramBase + ramSize;
  const dtbAddr = alignDown(ramEnd - DTB_MAX, SZ_2M);
  let initrd: { start: number; end: number } | undefined;
  if (initrdLength !== undefined) {
    const start = alignDown(dtbAddr - initrdLength, PAGE);
    initrd = { start, end: start + initrdLength };
  }
  const lowestAbove = initrd?.start ?? dtbAddr;
  if (kernelEnd > lowestAbove) {
    const need = Math.ceil((kernelEnd - ramBase + (initrdLength ?? 0) + DTB_MAX + SZ_2M) / MiB);
    throw new BuildError(`memory: ${config.memoryMiB} MiB is too small for this kernel (${Math.ceil(hdr.imageSize / MiB)} MiB with bss)`
      + `${initrdLength !== undefined ? ` and initrd (${Math.ceil(initrdLength / MiB)} MiB)` : ''} plus the DTB; use at least ${need} MiB`);
  }
  return { kernelAddr, dtbAddr, initrd };
}

/** Pure layout of a Linux guest, exported for tests. */
export function layoutLinux(config: GuestConfig, kernel: Uint8Array, initrd: Uint8Array | undefined, ramBase: number, ramSize: number): GuestImage {
  const hdr = parseArm64ImageHeader(kernel);
  const { kernelAddr, dtbAddr, initrd: initrdRange } = linuxPlacement(config, hdr, initrd?.length, ramBase, ramSize);
  const layout = guestLayout(config.layout ?? 'xen');
  const dtb = buildGuestDt({ ramBase, ramSize, bootargs: config.cmdline, vuart: config.vuart, layout, ...(initrdRange ? { initrd: initrdRange } : {}) });
  if (dtb.length > DTB_MAX) throw new BuildError(`DTB is ${dtb.length} bytes; the arm64 boot protocol allows at most 2 MiB`);
  const segments: GuestSegment[] = [{ addr: kernelAddr, data: kernel, what: 'kernel' }];
  if (initrd && initrdRange) segments.push({ addr: initrdRange.start, data: initrd, what: 'initrd' });
  segments.push({ addr: dtbAddr, data: dtb, what: 'dtb' });
  return { layout, ramBase, ramSize, segments, entry: kernelAddr, x0: dtbAddr };
}

/**
 * Bare-metal: an ELF where its program headers say, or a raw binary at the RAM base. A DTB describing the same
 * machine goes in the top 2 MiB and its address in x0, for programs that want it (others ignore x0).
 */
export function layoutBare(config: GuestConfig, program: Uint8Array, ramBase: number, ramSize: number): GuestImage {
  const ram = { base: ramBase, size: ramSize };
  const loaded = isElf(program) ? loadElf64(program, ram) : loadRaw(program, ram);
  const dtbAddr = alignDown(ramBase + ramSize - DTB_MAX, SZ_2M);
  const layout = guestLayout(config.layout ?? 'xen');
  const dtb = buildGuestDt({ ramBase, ramSize, bootargs: config.cmdline, vuart: config.vuart, layout });
  const segments: GuestSegment[] = loaded.segments.map((s, k) => ({ addr: s.addr, data: s.data, what: `program segment ${k}` }));
  const clash = segments.find((s) => s.addr < dtbAddr + dtb.length && dtbAddr < s.addr + s.data.length);
  if (clash) {
    throw new BuildError(`${clash.what} [${hex(clash.addr)}, +${hex(clash.data.length)}) overlaps the DTB at ${hex(dtbAddr)}; increase memory`);
  }
  segments.push({ addr: dtbAddr, data: dtb, what: 'dtb' });
  return { layout, ramBase, ramSize, segments, entry: loaded.entry, x0: dtbAddr };
}

/**
 * Firmware for QEMU's virt board (qemu-virt layout), laid out as QEMU 7.2 does for `-bios FILE` (hw/arm/boot.c,
 * firmware boot): FILE at the start of flash bank 0, the vCPU entered there with every register 0, the DTB at the
 * start of RAM (where U-Boot's qemu-arm board code reads it: board_fdt_blob_setup returns the RAM base). A kernel and
 * ramdisk from the config go where U-Boot's default env points (QEMU_VIRT_BOOT), for `booti`; the DT's /chosen
 * names the ramdisk too, so `booti ${kernel_addr_r} - ${fdt_addr}` also finds it.
 */
export function buildFirmwareGuest(config: GuestConfig, ramSize: number): GuestImage {
  const layout = guestLayout(config.layout ?? 'qemu-virt');
  const bank0 = layout.flash[0];
  if (bank0 === undefined) throw new BuildError(`firmware: layout "${layout.name}" has no flash to load it into`);
  const firmware = readInput(config.firmware!, 'firmware', bank0.size, 'flash bank 0');
  // An empty file would leave the vCPU executing erased flash: say so now instead of crashing on its first fetch.
  if (firmware.length === 0) throw new BuildError(`firmware: ${config.firmware} is empty`);
  const ramBase = layout.ramBase;
  const ramEnd = ramBase + ramSize;
  const segments: GuestSegment[] = [];
  const place = (what: string, addr: number, data: Uint8Array, room: number) => {
    if (data.length > room || addr + data.length > ramEnd) {
      throw new BuildError(`${what}: ${data.length} bytes do not fit at ${hex(addr)} (${hex(Math.min(room, Math.max(0, ramEnd - addr)))} bytes there`
        + ` before the next payload or the end of ${config.memoryMiB} MiB of RAM)`);
    }
    segments.push({ addr, data, what });
  };
  let initrdRange: { start: number; end: number } | undefined;
  if (config.kernel !== '') {
    const kernel = readInput(config.kernel, 'kernel', ramSize);
    place('kernel', QEMU_VIRT_BOOT.kernelAddr, kernel, QEMU_VIRT_BOOT.ramdiskAddr - QEMU_VIRT_BOOT.kernelAddr);
  }
  if (config.ramdisk !== undefined) {
    const initrd = readInput(config.ramdisk, 'ramdisk', ramSize);
    place('ramdisk', QEMU_VIRT_BOOT.ramdiskAddr, initrd, ramEnd - QEMU_VIRT_BOOT.ramdiskAddr);
    initrdRange = { start: QEMU_VIRT_BOOT.ramdiskAddr, end: QEMU_VIRT_BOOT.ramdiskAddr + initrd.length };
  }
  const dtb = buildGuestDt({ ramBase, ramSize, bootargs: config.cmdline, vuart: config.vuart, layout, ...(initrdRange ? { initrd: initrdRange } : {}) });
  place('dtb', QEMU_VIRT_BOOT.fdtAddr, dtb, QEMU_VIRT_BOOT.kernelAddr - QEMU_VIRT_BOOT.fdtAddr);
  return { layout, flash: [{ bank: 0, data: firmware, what: 'firmware' }], ramBase, ramSize, segments, entry: bank0.base, x0: 0 };
}

/**
 * For a person at U-Boot's prompt: where the toolstack put the firmware's payload and the `booti` that starts it
 * (U-Boot's default env names the addresses; the ramdisk's size is the one thing to type). undefined: no payload.
 */
export function firmwarePayloadHint(config: GuestConfig): string | undefined {
  if (config.firmware === undefined || config.kernel === '') return undefined;
  const k = `kernel at ${hex(QEMU_VIRT_BOOT.kernelAddr)}`;
  if (config.ramdisk === undefined) return `payload: ${k}; at U-Boot's prompt: booti \${kernel_addr_r} - \${fdt_addr}`;
  const size = statSync(config.ramdisk).size;
  return `payload: ${k}, ramdisk at ${hex(QEMU_VIRT_BOOT.ramdiskAddr)} (${size} bytes); at U-Boot's prompt: `
    + `booti \${kernel_addr_r} \${ramdisk_addr_r}:${hex(size)} \${fdt_addr}`;
}
