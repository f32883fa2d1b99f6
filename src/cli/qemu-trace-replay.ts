// `vpl011 replay --qemu-trace`: import the trace (qemu-trace.ts), replay it on a fresh vpl011 (replay.ts) printing
// only the differences, each explained, then a summary of what was compared.
import { explainRead, importQemuTrace, registerName, TraceError } from './qemu-trace.js';
import { runReplay } from './replay.js';

/** Exit code: 0 no difference, 1 differences, 2 not a usable trace. */
export function runQemuTrace(text: string, opts: { profile: 'pl011' | 'sbsa'; irq: boolean }, out: (l: string) => void, err: (l: string) => void): number {
  let t;
  try {
    t = importQemuTrace(text, opts);
  } catch (e) {
    if (!(e instanceof TraceError)) throw e;
    err(`vpl011 replay: ${e.message}`);
    return 2;
  }
  const byRegister = new Map<string, number>();
  const code = runReplay(t.script, out, {
    mismatchesOnly: true,
    explain: (m) => {
      const reg = registerName(m.off);
      byRegister.set(reg, (byRegister.get(reg) ?? 0) + 1);
      return explainRead(m.off, m.ours, m.expected, t.context.get(m.line));
    },
    explainLine: (line) => {
      const c = t.context.get(line);
      return c ? `trace line ${c.traceLine}` : undefined;
    },
  });
  const c = t.counts;
  out(
    `compared ${c.reads} reads, ${c.writes} writes (${c.transmitted} characters transmitted), ${c.received} characters received` +
      `${opts.irq ? `, ${c.irqs} interrupt levels` : ''} against the ${opts.profile} profile; ${c.skipped} QEMU-internal events skipped`,
  );
  out(byRegister.size === 0 ? 'reads: no difference from QEMU' : `reads that differ, by register: ${[...byRegister].map(([r, n]) => `${r} ${n}`).join(', ')}`);
  return code;
}
