// Kernel and program loaders: the arm64 Linux Image header (Documentation/arch/arm64/booting.rst), ELF64 AArch64
// executables (PT_LOAD segments, for bare-metal guests) and raw binaries. Inputs are untrusted files: every
// offset and size is bounds-checked and errors say what is wrong.

import { hex } from '../util/hex.js';
import { Vpl011Error } from '../util/errors.js';

export class ImageError extends Vpl011Error<'EINVAL'> {
  constructor(message: string) {
    super('EINVAL', message);
  }
}

export interface Arm64ImageHeader {
  /** Offset from a 2 MiB-aligned base where the Image must be placed. */
  textOffset: number;
  /** Bytes the kernel occupies from its load address, bss included (effective: never less than the file). */
  imageSize: number;
  flags: bigint;
  /** flags bits 1-2: 0 unspecified, else 4K / 16K / 64K. */
  pageSize: 0 | 4096 | 16384 | 65536;
  /** flags bit 3: the 2 MiB base may be anywhere in RAM (else as low as possible). */
  physPlacementAnywhere: boolean;
  /** "MZ" at 0: an EFI stub is present (irrelevant when booting through the DT, noted for messages). */
  efiStub: boolean;
}

const ARM64_IMAGE_MAGIC = 0x644d5241; // "ARM\x64", little-endian at 0x38
const IMAGE_HEADER_SIZE = 64;

export function isArm64Image(buf: Uint8Array): boolean {
  return buf.length >= IMAGE_HEADER_SIZE && new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getUint32(0x38, true) === ARM64_IMAGE_MAGIC;
}

export function parseArm64ImageHeader(buf: Uint8Array): Arm64ImageHeader {
  if (buf.length < IMAGE_HEADER_SIZE) {
    throw new ImageError(`not an arm64 Linux Image: ${buf.length} bytes is shorter than the 64-byte header`);
  }
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (dv.getUint32(0x38, true) !== ARM64_IMAGE_MAGIC) {
    const hint = buf[0] === 0x1f && buf[1] === 0x8b ? ' (it is gzip-compressed: use the uncompressed Image)'
      : isElf(buf) ? ' (it is an ELF file: use kind = "bare", or the kernel\'s arch/arm64/boot/Image)' : '';
    throw new ImageError(`not an arm64 Linux Image: no "ARM\\x64" magic at offset 0x38${hint}`);
  }
  const textOffset = dv.getBigUint64(0x08, true);
  let imageSize = dv.getBigUint64(0x10, true);
  const flags = dv.getBigUint64(0x18, true);
  if (flags & 1n) throw new ImageError('arm64 Image is big-endian (flags bit 0); only little-endian kernels are supported');
  // booting.rst: "if image_size is zero, text_offset can be assumed to be 0x80000" (kernels before 3.17).
  let off = textOffset;
  if (imageSize === 0n) {
    off = 0x80000n;
    imageSize = BigInt(buf.length);
  }
  if (off >= 0x200000n || off % 4096n !== 0n) throw new ImageError(`arm64 Image text_offset 0x${off.toString(16)} is not a page-aligned value below 2 MiB`);
  if (imageSize > 1n << 32n) throw new ImageError(`arm64 Image image_size 0x${imageSize.toString(16)} is implausibly large`);
  const pageBits = Number((flags >> 1n) & 3n);
  return {
    textOffset: Number(off),
    imageSize: Math.max(Number(imageSize), buf.length),
    flags,
    pageSize: ([0, 4096, 16384, 65536] as const)[pageBits]!,
    physPlacementAnywhere: ((flags >> 3n) & 1n) === 1n,
    efiStub: buf[0] === 0x4d && buf[1] === 0x5a,
  };
}

export interface RamRange {
  base: number;
  size: number;
}

export interface LoadedSegment {
  addr: number;
  /** File bytes followed by zeros up to p_memsz. */
  data: Uint8Array;
}

export interface LoadedProgram {
  entry: number;
  segments: LoadedSegment[];
}

export function isElf(buf: Uint8Array): boolean {
  return buf.length >= 4 && buf[0] === 0x7f && buf[1] === 0x45 && buf[2] === 0x4c && buf[3] === 0x46;
}

const ELFCLASS64 = 2;
const ELFDATA2LSB = 1;
const ET_EXEC = 2;
const EM_AARCH64 = 183;
const PT_LOAD = 1;
const PF_X = 1;

function inRam(ram: RamRange, addr: number, size: number): boolean {
  return addr >= ram.base && size >= 0 && addr + size <= ram.base + ram.size;
}

/** Loads an ELF64 little-endian AArch64 executable at its physical addresses (p_paddr: the MMU is off at entry). */
export function loadElf64(buf: Uint8Array, ram: RamRange): LoadedProgram {
  if (!isElf(buf)) throw new ImageError('not an ELF file (no \\x7fELF magic)');
  if (buf.length < 64) throw new ImageError('ELF file truncated: shorter than the ELF64 header');
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf[4] !== ELFCLASS64) throw new ImageError('ELF file is not 64-bit (EI_CLASS)');
  if (buf[5] !== ELFDATA2LSB) throw new ImageError('ELF file is not little-endian (EI_DATA)');
  const type = dv.getUint16(16, true);
  const machine = dv.getUint16(18, true);
  if (machine !== EM_AARCH64) throw new ImageError(`ELF e_machine is ${machine}, not AArch64 (${EM_AARCH64})`);
  if (type !== ET_EXEC) throw new ImageError(`ELF e_type is ${type}: only statically linked executables (ET_EXEC) can be loaded`);
  const entry = dv.getBigUint64(24, true);
  const phoff = dv.getBigUint64(32, true);
  const phentsize = dv.getUint16(54, true);
  const phnum = dv.getUint16(56, true);
  if (phentsize < 56) throw new ImageError(`ELF e_phentsize ${phentsize} is smaller than an Elf64_Phdr`);
  if (phoff + BigInt(phentsize * phnum) > BigInt(buf.length)) throw new ImageError('ELF program headers lie outside the file');

  const segments: LoadedSegment[] = [];
  // e_entry is a virtual address; with the MMU off at entry the PC must be its physical twin (p_paddr side).
  let entryPhys: bigint | undefined;
  for (let k = 0; k < phnum; k++) {
    const ph = Number(phoff) + k * phentsize;
    if (dv.getUint32(ph, true) !== PT_LOAD) continue;
    const pflags = dv.getUint32(ph + 4, true);
    const offset = dv.getBigUint64(ph + 8, true);
    const vaddr = dv.getBigUint64(ph + 16, true);
    const paddr = dv.getBigUint64(ph + 24, true);
    const filesz = dv.getBigUint64(ph + 32, true);
    const memsz = dv.getBigUint64(ph + 40, true);
    if (memsz === 0n) continue;
    if (filesz > memsz) throw new ImageError(`ELF segment ${k}: p_filesz ${hex(filesz)} exceeds p_memsz ${hex(memsz)}`);
    if (offset + filesz > BigInt(buf.length)) throw new ImageError(`ELF segment ${k}: file bytes [${hex(offset)}, +${hex(filesz)}) lie outside the file`);
    if (paddr > BigInt(Number.MAX_SAFE_INTEGER) || memsz > BigInt(ram.size)) {
      throw new ImageError(`ELF segment ${k} at ${hex(paddr)} size ${hex(memsz)} is outside guest RAM [${hex(ram.base)}, ${hex(ram.base + ram.size)})`);
    }
    const addr = Number(paddr);
    const size = Number(memsz);
    if (!inRam(ram, addr, size)) {
      throw new ImageError(`ELF segment ${k} at ${hex(addr)} size ${hex(size)} is outside guest RAM [${hex(ram.base)}, ${hex(ram.base + ram.size)})`);
    }
    for (const s of segments) {
      if (addr < s.addr + s.data.length && s.addr < addr + size) throw new ImageError(`ELF segment ${k} at ${hex(addr)} overlaps another PT_LOAD segment`);
    }
    const data = new Uint8Array(size);
    data.set(buf.subarray(Number(offset), Number(offset + filesz)));
    segments.push({ addr, data });
    if ((pflags & PF_X) && entry >= vaddr && entry < vaddr + memsz) entryPhys = entry - vaddr + paddr;
  }
  if (segments.length === 0) throw new ImageError('ELF file has no PT_LOAD segment');
  if (entryPhys === undefined) throw new ImageError(`ELF entry point ${hex(entry)} is not inside an executable PT_LOAD segment`);
  return { entry: Number(entryPhys), segments };
}

/** A raw binary: copied to the RAM base and entered at its first byte. */
export function loadRaw(buf: Uint8Array, ram: RamRange): LoadedProgram {
  if (buf.length === 0) throw new ImageError('raw binary is empty');
  if (buf.length > ram.size) throw new ImageError(`raw binary of ${buf.length} bytes does not fit in ${ram.size} bytes of guest RAM`);
  return { entry: ram.base, segments: [{ addr: ram.base, data: buf.slice() }] };
}
