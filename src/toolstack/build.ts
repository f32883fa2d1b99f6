// Domain build: lays a guest out in RAM (libxl/xc_dom's job) and returns what the VMM loads.
// Linux (Documentation/arch/arm64/booting.rst): the Image at a 2 MiB-aligned base + text_offset, the DTB 8-byte
// aligned and at most 2 MiB, x0 = DTB address, MMU off. We put the kernel at the RAM base, the DTB in the top
// 2 MiB of RAM and the initrd just below it, so the kernel's image_size (bss included) has the rest.
import type { GuestConfig } from './config.js';
import { FileReadError, readRegularFile } from '../util/bounded-read.js';
import type { GuestImage, GuestSegment } from './guest-image.js';
import { buildGuestDt } from './guest-dt.js';
import { GUEST_RAM_BASE } from './guest-map.js';
import { ImageError, isElf, loadElf64, loadRaw, parseArm64ImageHeader } from './image.js';

const MiB = 1024 * 1024;
const SZ_2M = 2 * MiB;
const DTB_MAX = SZ_2M;
const PAGE = 4096;

const alignDown = (v: number, a: number) => Math.floor(v / a) * a;
const alignUp = (v: number, a: number) => Math.ceil(v / a) * a;
const hex = (v: number) => `0x${v.toString(16)}`;

export class BuildError extends Error {
  override name = 'BuildError';
}

/** A kernel or ramdisk: a regular file no larger than the guest's RAM (a bigger one cannot be loaded anyway). */
function readInput(path: string, what: string, ramSize: number): Uint8Array {
  try {
    const b = readRegularFile(path, ramSize);
    return new Uint8Array(b.buffer, b.byteOffset, b.length); // a view: new Uint8Array(b) would copy 33 MB again
  } catch (e) {
    if (e instanceof FileReadError) throw new BuildError(`${what}: ${e.message}${/limit/.test(e.reason) ? " (the guest's memory)" : ''}`);
    throw e;
  }
}

export async function buildGuest(config: GuestConfig): Promise<GuestImage> {
  const ramBase = GUEST_RAM_BASE;
  const ramSize = config.memoryMiB * MiB;
  const kernel = readInput(config.kernel, 'kernel', ramSize);
  const initrd = config.ramdisk !== undefined ? readInput(config.ramdisk, 'ramdisk', ramSize) : undefined;
  try {
    return config.kind === 'linux' ? layoutLinux(config, kernel, initrd, ramBase, ramSize) : layoutBare(config, kernel, ramBase, ramSize);
  } catch (e) {
    if (e instanceof ImageError) throw new BuildError(`kernel ${config.kernel}: ${e.message}`);
    throw e;
  }
}

/** Pure layout of a Linux guest, exported for tests. */
export function layoutLinux(config: GuestConfig, kernel: Uint8Array, initrd: Uint8Array | undefined, ramBase: number, ramSize: number): GuestImage {
  const hdr = parseArm64ImageHeader(kernel);
  const kernelAddr = alignUp(ramBase, SZ_2M) + hdr.textOffset;
  const kernelEnd = kernelAddr + hdr.imageSize;
  const ramEnd = ramBase + ramSize;
  const dtbAddr = alignDown(ramEnd - DTB_MAX, SZ_2M);
  let initrdRange: { start: number; end: number } | undefined;
  if (initrd) {
    const start = alignDown(dtbAddr - initrd.length, PAGE);
    initrdRange = { start, end: start + initrd.length };
  }
  const lowestAbove = initrdRange?.start ?? dtbAddr;
  if (kernelEnd > lowestAbove) {
    const need = Math.ceil((kernelEnd - ramBase + (initrd?.length ?? 0) + DTB_MAX + SZ_2M) / MiB);
    throw new BuildError(`memory: ${config.memoryMiB} MiB is too small for this kernel (${Math.ceil(hdr.imageSize / MiB)} MiB with bss)`
      + `${initrd ? ` and initrd (${Math.ceil(initrd.length / MiB)} MiB)` : ''} plus the DTB; use at least ${need} MiB`);
  }
  const dtb = buildGuestDt({ ramBase, ramSize, bootargs: config.cmdline, vuart: config.vuart, ...(initrdRange ? { initrd: initrdRange } : {}) });
  if (dtb.length > DTB_MAX) throw new BuildError(`DTB is ${dtb.length} bytes; the arm64 boot protocol allows at most 2 MiB`);
  const segments: GuestSegment[] = [{ addr: kernelAddr, data: kernel, what: 'kernel' }];
  if (initrd && initrdRange) segments.push({ addr: initrdRange.start, data: initrd, what: 'initrd' });
  segments.push({ addr: dtbAddr, data: dtb, what: 'dtb' });
  return { ramBase, ramSize, segments, entry: kernelAddr, x0: dtbAddr };
}

/**
 * Bare-metal: an ELF where its program headers say, or a raw binary at the RAM base. A DTB describing the same
 * machine goes in the top 2 MiB and its address in x0, for programs that want it (others ignore x0).
 */
export function layoutBare(config: GuestConfig, program: Uint8Array, ramBase: number, ramSize: number): GuestImage {
  const ram = { base: ramBase, size: ramSize };
  const loaded = isElf(program) ? loadElf64(program, ram) : loadRaw(program, ram);
  const dtbAddr = alignDown(ramBase + ramSize - DTB_MAX, SZ_2M);
  const dtb = buildGuestDt({ ramBase, ramSize, bootargs: config.cmdline, vuart: config.vuart });
  const segments: GuestSegment[] = loaded.segments.map((s, k) => ({ addr: s.addr, data: s.data, what: `program segment ${k}` }));
  const clash = segments.find((s) => s.addr < dtbAddr + dtb.length && dtbAddr < s.addr + s.data.length);
  if (clash) {
    throw new BuildError(`${clash.what} [${hex(clash.addr)}, +${hex(clash.data.length)}) overlaps the DTB at ${hex(dtbAddr)}; increase memory`);
  }
  segments.push({ addr: dtbAddr, data: dtb, what: 'dtb' });
  return { ramBase, ramSize, segments, entry: loaded.entry, x0: dtbAddr };
}
