// `vpl011 trace NAME [-n N] [--follow] [--on|--off]`: switch a domain's access trace, or print its last accesses as
// a `vpl011 replay` script (src/device/trace-script.ts), then (--follow) new ones as they come, until interrupted or
// the domain instance is gone. Reads the insight region directly (src/daemon/device-stat.ts openInsight).
import { AccessTraceReader, setTraceEnabled } from '../device/access-trace.js';
import { TraceScript } from '../device/trace-script.js';
import { INSIGHT_BYTES, INSIGHT_TRACE_OFFSET, readInsight } from '../vmm/insight.js';
import { VUART_PFN_OFFSET, XEN_PAGE_SIZE } from '../xen/arch-arm.js';
import { XENCONS_IN_OFFSET, XENCONS_IN_SIZE } from '../xen/ring.js';
import { openInsight, ringIndices, StatError } from './device-stat.js';
import { defaultRunDir, runPaths } from './paths.js';
import { readRecord, type DomainRecord } from './records.js';
import { errorMessage } from '../util/errors.js';

export interface TraceOptions {
  runDir?: string;
  lines: number;
  follow?: boolean;
  on?: boolean;
  off?: boolean;
  /** How often --follow looks for new records (ms). */
  pollMs?: number;
}

/** Returns the exit code: 0 done, 1 nothing to read. */
export async function traceCommand(rec: DomainRecord, opts: TraceOptions, out: (line: string) => void, say: (line: string) => void): Promise<number> {
  const switching = opts.on === true || opts.off === true;
  let m: ReturnType<typeof openInsight>;
  try {
    m = openInsight(rec, switching);
  } catch (e) {
    if (!(e instanceof StatError)) throw e;
    say(e.message);
    return 1;
  }
  try {
    let reader: AccessTraceReader;
    try {
      reader = new AccessTraceReader(m.insight.buffer, INSIGHT_TRACE_OFFSET, INSIGHT_BYTES - INSIGHT_TRACE_OFFSET);
      if (switching) setTraceEnabled(m.insight.buffer, INSIGHT_TRACE_OFFSET, opts.on === true);
    } catch (e) {
      say(`${rec.name}: ${errorMessage(e)}`);
      return 1;
    }
    if (switching) {
      say(`${rec.name}: trace ${opts.on ? `on (the last ${reader.capacity} accesses are kept)` : 'off'}`);
      if (!opts.follow) return 0;
    }
    if (!reader.enabled && reader.head === 0) {
      say(`${rec.name}: the trace is off and has recorded nothing: \`vpl011 trace ${rec.name} --on\` starts recording`);
      return 1;
    }
    const profile = readInsight(m.insight.buffer)?.profile ?? 'sbsa';
    // Input the guest has not read is still in the live ring page while in_prod has not moved 1024 past it.
    const page = new Uint8Array(m.magic.buffer, VUART_PFN_OFFSET * XEN_PAGE_SIZE, XEN_PAGE_SIZE);
    const inByte = (pos: number): number | undefined => {
      const prod = ringIndices(m.magic.buffer).inProd;
      const back = (prod - pos) >>> 0;
      return back >= 1 && back <= XENCONS_IN_SIZE ? page[XENCONS_IN_OFFSET + (pos & (XENCONS_IN_SIZE - 1))] : undefined;
    };
    const script = new TraceScript({ profile, anchor: reader.anchor(), inByte });
    // One record more than asked: the first is the anchor whose state the prelude rebuilds.
    const head = reader.head;
    const first = reader.read((head - opts.lines - 1) >>> 0, opts.lines + 1);
    out(`# vpl011 trace of d${rec.domid} ${rec.name}: ${Math.max(0, first.records.length - 1)} accesses${reader.enabled ? '' : ' (recording is off now)'}; replay: vpl011 replay FILE`);
    for (const l of script.lines(first.records)) out(l);
    if (!opts.follow) return 0;

    const paths = runPaths(opts.runDir ?? defaultRunDir());
    let next = first.next;
    let stop = false;
    const onSignal = (): void => void (stop = true);
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      while (!stop) {
        await new Promise((r) => setTimeout(r, opts.pollMs ?? 100));
        const batch = reader.read(next, reader.capacity);
        next = batch.next;
        for (const l of script.gap(batch.lost)) out(l);
        for (const l of script.lines(batch.records)) out(l);
        if (batch.records.length === 0 && readRecord(paths.domainsDir, rec.domid)?.instance !== rec.instance) break;
      }
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    return 0;
  } finally {
    m.close();
  }
}
