// The start-up self-test's verdict, remembered per library file: the test runs real guest code in a scratch
// engine (~90 ms of a ~2.5 s boot), and its verdict depends only on the library binary and on this code. A passing
// verdict is stored under a key made of the library's identity (realpath, device, inode, size, mtime and ctime in
// ns: replacing or rewriting the file changes ctime, which no user can set back) and a fingerprint of the self-test's
// own code (the compiled selftest/exception/timer/unicorn modules), so a changed library or a changed check runs the
// test again. Hashing the 20 MB library itself would cost more (~260 ms) than the test. Failures are never stored.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, realpathSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { UnicornLibrary } from './unicorn.js';
import { acceptSelfTestVerdict, ensureSelfTest, type SelfTestResult } from './selftest.js';
import { acceptFaultLayout, faultLayout, isFaultLayout } from './exact-fault.js';

/** The self-test's code, as compiled: any change to it invalidates every stored verdict. */
function codeFingerprint(): string {
  const h = createHash('sha256');
  for (const m of ['./selftest.js', './exception.js', './timer.js', './unicorn.js', './vcpu.js', './mmio-width.js', './host-memory.js', './exact-fault.js']) {
    h.update(readFileSync(fileURLToPath(new URL(m, import.meta.url))));
  }
  return h.digest('hex');
}

export function verdictKey(libraryPath: string): string {
  const real = realpathSync(libraryPath);
  const st = statSync(real, { bigint: true });
  const id = [real, st.dev, st.ino, st.size, st.mtimeNs, st.ctimeNs].join('\0');
  return createHash('sha256').update(id).update('\0').update(codeFingerprint()).digest('hex').slice(0, 32);
}

/**
 * ensureSelfTest, with the verdict kept in `dir` (created if missing). Returns the result and whether it came from
 * the store. Any problem with the store (unreadable, malformed, read-only) just runs the test.
 */
export function ensureSelfTestCached(lib: UnicornLibrary, dir: string): { result: SelfTestResult; cached: boolean } {
  let file: string | undefined;
  try {
    file = join(dir, `${verdictKey(lib.path)}.json`);
    const v = JSON.parse(readFileSync(file, 'utf8')) as Partial<SelfTestResult> & { faultLayout?: unknown };
    if (v.ok === true && v.version === lib.version && Number.isInteger(v.envOffset)) {
      const r: SelfTestResult = { ok: true, failures: [], version: lib.version, envOffset: v.envOffset!, ms: 0 };
      acceptSelfTestVerdict(lib, r);
      // The exact-fault layout proved with it (a scratch engine, ~10-30 ms per vCPU thread otherwise).
      if (isFaultLayout(v.faultLayout)) acceptFaultLayout(v.faultLayout);
      return { result: r, cached: true };
    }
  } catch {
    // no verdict yet (or an unusable one): run the test
  }
  const r = ensureSelfTest(lib); // throws on failure: nothing stored
  // Proved now, on its scratch engine (before this thread's vCPU engine exists); stored only when proved.
  const layout = faultLayout(lib);
  if (file) {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify({ ok: true, version: r.version, envOffset: r.envOffset, ...(layout ? { faultLayout: layout } : {}) }), { mode: 0o600 });
      renameSync(tmp, file);
    } catch {
      // a read-only cache only costs the test next time
    }
  }
  return { result: r, cached: false };
}
