// Whole 8-byte MMIO accesses on unicorn 2.1.1 (issue 7 §3).
//
// unicorn's uc_mmio_map leaves its MemoryRegionOps' impl.max_access_size at 0, which QEMU's
// access_with_adjusted_size treats as 4: a 64-bit load or store reaches the callback as two 32-bit halves, low word
// first (unicorn #2074). Xen refuses a 64-bit access to the vpl011 as a whole (vreg_reg32 width check), but a
// device that sees two halves accepts the first (a byte in the ring, an input byte consumed) before it sees that
// the access was 64 bits wide. Setting impl.max_access_size to 8 makes QEMU hand over the access in one call of
// size 8 (the region's `valid` bounds stay 0 = any width), so the device refuses it whole at that instruction.
//
// The ops live in unicorn's `mmio_cbs` (include/uc_priv.h: read, user_data_read, write, user_data_write, then the
// MemoryRegionOps), reached through `uc_struct.mapped_blocks` -> MemoryRegion.opaque. Nothing is assumed blindly:
// mapped_blocks is found by matching a region's four callback words (function pointers and user data this process
// gave uc_mmio_map) in the region's opaque, whose ops pointer must point right after them; the ops' other fields
// must hold what memory_map_io put there; and proveWholeMmio (part of the self-test) checks on a scratch engine that
// a 64-bit store and load then arrive as one call each with the whole value. Memory goes through /proc/self/mem.
import koffi from 'koffi';
import { xreg, type Uc, type UnicornLibrary } from './unicorn.js';
import { peek, poke } from './host-memory.js';
import { SCRATCH_RAM, scratchEngine } from './scratch-engine.js';

/** mmio_cbs: read, user_data_read, write, user_data_write (8 bytes each), then MemoryRegionOps. */
const CBS_OPS = 32;
/** MemoryRegionOps (QEMU 5.0 as in unicorn 2.1.1, x86-64): read 0, write 8, read/write_with_attrs 16/24, endianness 32, valid 40..63 (accepts at 56), impl.min_access_size 64, impl.max_access_size 68. */
const OPS_READ = 0;
const OPS_WRITE = 8;
const OPS_READ_ATTRS = 16;
const OPS_WRITE_ATTRS = 24;
const OPS_ENDIANNESS = 32;
const OPS_VALID_MAX = 44;
const OPS_ACCEPTS = 56;
const OPS_IMPL_MIN = 64;
const OPS_IMPL_MAX = 68;
const OPS_SIZE = 80;
/** MemoryRegion: bools, ram_block 8, ops 16, opaque 24. */
const MR_OPS = 16;
const MR_OPAQUE = 24;
/** uc_struct up to mapped_blocks is ~2 KiB in 2.1.1; search generously. */
const UC_STRUCT_SEARCH = 8192;
const MAX_BLOCKS = 4096;

interface CallbackWords {
  read: bigint;
  userRead: bigint;
  write: bigint;
  userWrite: bigint;
}

const addr = (p: unknown): bigint => (p === null || p === undefined ? 0n : BigInt(koffi.address(p as never)));

function wordsOf(u: Uc, base: number): CallbackWords | null {
  const c = u.mmioCallbacks.get(base);
  return c ? { read: addr(c.read), userRead: addr(c.userRead), write: addr(c.write), userWrite: addr(c.userWrite) } : null;
}

/** The ops of a MemoryRegion, if it is an MMIO region mapped with exactly these callback words. */
function opsIfMatching(mr: bigint, want: CallbackWords): bigint | null {
  const h = peek(mr + BigInt(MR_OPS), MR_OPAQUE + 8 - MR_OPS);
  if (!h) return null;
  const ops = h.readBigUInt64LE(0);
  const opaque = h.readBigUInt64LE(MR_OPAQUE - MR_OPS);
  if (ops !== opaque + BigInt(CBS_OPS)) return null;
  const c = peek(opaque, CBS_OPS);
  if (!c) return null;
  const same = c.readBigUInt64LE(0) === want.read && c.readBigUInt64LE(8) === want.userRead &&
    c.readBigUInt64LE(16) === want.write && c.readBigUInt64LE(24) === want.userWrite;
  return same ? ops : null;
}

/** uc_struct.mapped_blocks and its count, read from a slot offset. */
function blocksAt(uc: bigint, off: number): bigint[] | null {
  const s = peek(uc + BigInt(off), 12);
  if (!s) return null;
  const p = s.readBigUInt64LE(0);
  const n = s.readUInt32LE(8);
  if ((p & 7n) !== 0n || n === 0 || n > MAX_BLOCKS) return null;
  const a = peek(p, 8 * n);
  if (!a) return null;
  const out: bigint[] = [];
  for (let i = 0; i < n; i++) out.push(a.readBigUInt64LE(8 * i));
  return out;
}

let blocksOffset: number | undefined;

/** The offset of mapped_blocks in uc_struct: the slot whose array holds the region mapped with `want`. */
function findBlocksOffset(uc: bigint, want: CallbackWords): number | null {
  if (blocksOffset !== undefined) return blocksOffset;
  const s = peek(uc, UC_STRUCT_SEARCH);
  if (!s) return null;
  for (let o = 0; o + 12 <= s.length; o += 8) {
    const n = s.readUInt32LE(o + 8);
    if (n === 0 || n > MAX_BLOCKS || (s.readBigUInt64LE(o) & 7n) !== 0n) continue;
    const blocks = blocksAt(uc, o);
    if (blocks?.some((mr) => opsIfMatching(mr, want) !== null)) return (blocksOffset = o);
  }
  return null;
}

/** Check that `ops` holds what memory_map_io wrote (so the layout is the one assumed), then set impl.max to 8. */
function widenOps(ops: bigint): string | null {
  const o = peek(ops, OPS_SIZE);
  if (!o) return 'ops unreadable';
  const fine = o.readBigUInt64LE(OPS_READ) !== 0n && o.readBigUInt64LE(OPS_WRITE) !== 0n &&
    o.readBigUInt64LE(OPS_READ_ATTRS) === 0n && o.readBigUInt64LE(OPS_WRITE_ATTRS) === 0n &&
    o.readUInt32LE(OPS_ENDIANNESS) === 0 && o.readUInt32LE(OPS_VALID_MAX) === 0 && o.readBigUInt64LE(OPS_ACCEPTS) === 0n &&
    o.readUInt32LE(OPS_IMPL_MIN) === 0;
  const max = o.readUInt32LE(OPS_IMPL_MAX);
  if (!fine || (max !== 0 && max !== 8)) return 'MemoryRegionOps not as expected';
  if (max === 8) return null;
  const eight = Buffer.alloc(4);
  eight.writeUInt32LE(8, 0);
  return poke(ops + BigInt(OPS_IMPL_MAX), eight) ? null : 'ops not writable';
}

/**
 * Make the MMIO regions mapped at `bases` (through this Uc) take 8-byte accesses whole. Returns null, or why not
 * (nothing was changed for the regions not reached).
 */
export function widenMmio(u: Uc, bases: readonly number[]): string | null {
  if (bases.length === 0) return null;
  const want = bases.map((b) => wordsOf(u, b));
  if (want.some((w) => w === null)) return 'region not mapped through this engine';
  const uc = addr(u.handle);
  const off = findBlocksOffset(uc, want[0]!);
  if (off === null) return 'uc_struct.mapped_blocks not found';
  const blocks = blocksAt(uc, off) ?? [];
  for (const w of want) {
    let ops: bigint | null = null;
    for (const mr of blocks) if ((ops = opsIfMatching(mr, w!)) !== null) break;
    if (ops === null) return 'region not among mapped_blocks';
    const why = widenOps(ops);
    if (why) return why;
  }
  return null;
}

const SCRATCH_MMIO = 0x09000000;
// str x1, [x2]; ldr x3, [x2, #8]; hvc #0
const SCRATCH_CODE = [0xf9000041, 0xf9400443, 0xd4000002];
const STORED = 0x8877665544332211n;
const LOADED = 0xfedcba9876543210n;

/**
 * On a scratch engine: after widenMmio, a 64-bit store arrives as one write of size 8 with the whole value, and a
 * 64-bit load as one read of size 8 whose whole value lands in the register. Null, or what failed. (`widen` false:
 * unicorn's own behaviour, for the test that shows the check can fail.)
 */
export function proveWholeMmio(lib: UnicornLibrary, widen = true): string | null {
  const u = scratchEngine(lib, SCRATCH_CODE);
  try {
    const calls: string[] = [];
    u.mmioMap(SCRATCH_MMIO, 0x1000, (off, size) => {
      calls.push(`r${size}@${off}`);
      return LOADED;
    }, (off, size, lo, hi) => {
      calls.push(`w${size}@${off}=${((BigInt(hi) << 32n) | BigInt(lo)).toString(16)}`);
    });
    const why = widen ? widenMmio(u, [SCRATCH_MMIO]) : null;
    if (why) return why;
    u.setReg(xreg(1), STORED);
    u.setReg(xreg(2), SCRATCH_MMIO);
    u.hookIntr(() => u.stop());
    const e = u.start(BigInt(SCRATCH_RAM));
    if (e !== 0) return `scratch run: ${u.strerror(e)}`;
    const want = [`w8@0=${STORED.toString(16)}`, 'r8@8'];
    if (calls.join() !== want.join()) return `callbacks ${calls.join(' ') || 'none'}, want ${want.join(' ')}`;
    const x3 = u.reg(xreg(3));
    if (x3 !== LOADED) return `64-bit load gave 0x${x3.toString(16)}, want 0x${LOADED.toString(16)}`;
    return null;
  } finally {
    u.close();
  }
}

/** For tests: forget the found layout. */
export function forgetMmioLayout(): void {
  blocksOffset = undefined;
}


