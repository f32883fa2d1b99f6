// A scratch unicorn engine for the start-up proofs (exact-fault.ts, mmio-width.ts): a few instructions run at EL1 as
// the vCPU runs them (the same SCR_EL3/HCR_EL2 set-up), on a private engine thrown away afterwards, so a layout or a
// behaviour of the library is proven before the real vCPU relies on it.
import { SYS, Uc, type UnicornLibrary } from './unicorn.js';
import { HCR_EL2_BASE, SCR_EL3_VALUE } from './el-registers.js';

/** Where the scratch program is loaded (64 KiB of RAM mapped there). */
export const SCRATCH_RAM = 0x40000000;

/** A new engine set up as the vCPU's, with `code` (A64 instruction words) at SCRATCH_RAM. The caller closes it. */
export function scratchEngine(lib: UnicornLibrary, code: readonly number[]): Uc {
  const u = new Uc(lib);
  try {
    u.setSys(SYS.SCR_EL3, SCR_EL3_VALUE);
    u.setSys(SYS.HCR_EL2, HCR_EL2_BASE);
    u.memMap(SCRATCH_RAM, 0x10000);
    const bytes = Buffer.alloc(code.length * 4);
    code.forEach((w, i) => bytes.writeUInt32LE(w, i * 4));
    u.memWrite(SCRATCH_RAM, bytes);
    return u;
  } catch (e) {
    u.close();
    throw e;
  }
}
