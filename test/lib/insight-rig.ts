// A bare-metal guest on a real Machine in a worker thread with an insight region (src/vmm/insight.ts), drained and
// fed by the real console backend in this thread: what the daemon's domain host does, without the daemon, for tests
// of `vpl011 stat` / `vpl011 trace` at the machine level (the native fast path included when it is built).
import { Worker } from 'node:worker_threads';
import { buildBareGuest, BARE_LOAD_ADDR, type BareGuest } from '../../src/vmm/bare-guests.js';
import { EventChannels } from '../../src/xen/evtchn.js';
import { ConsoleRingBackend } from '../../src/xen/ring.js';
import { NR_MAGIC_PAGES, VUART_PFN_OFFSET, XEN_PAGE_SIZE } from '../../src/xen/arch-arm.js';
import { Console } from '../../src/console/console.js';
import { ConsoleBackend } from '../../src/console/backend.js';
import { INSIGHT_BYTES } from '../../src/vmm/insight.js';

export interface InsightRig {
  insight: SharedArrayBuffer;
  magicPages: SharedArrayBuffer;
  output(): string;
  input(s: string): void;
  exited: Promise<string>;
  close(): Promise<void>;
}

/** `typescript`: the native fast path off (VPL011_NATIVE=0), so every access goes through the TypeScript device. */
export async function startInsightRig(guest: BareGuest, opts: { trace?: boolean; profile?: 'sbsa' | 'pl011'; typescript?: boolean } = {}): Promise<InsightRig> {
  const data = buildBareGuest(guest);
  const evtchnSab = EventChannels.create().buffer as SharedArrayBuffer;
  const magicPages = new SharedArrayBuffer(NR_MAGIC_PAGES * XEN_PAGE_SIZE);
  const insight = new SharedArrayBuffer(INSIGHT_BYTES);
  const image = { ramBase: BARE_LOAD_ADDR, ramSize: 0x200000, segments: [{ addr: BARE_LOAD_ADDR, data, what: guest }], entry: BARE_LOAD_ADDR, x0: 0 };
  const w = new Worker(new URL('./insight-worker.js', import.meta.url), {
    workerData: { image, evtchn: evtchnSab, magicPages, insight, trace: opts.trace === true, profile: opts.profile ?? 'sbsa' },
    env: { ...process.env, ...(opts.typescript ? { VPL011_NATIVE: '0' } : {}) },
  });
  const evtchn = EventChannels.attach(evtchnSab);
  let out = '';
  let con: Console | undefined;
  let detach: (() => void) | undefined;
  const backend = new ConsoleBackend(0);
  let resolveExit!: (s: string) => void;
  const exited = new Promise<string>((r) => (resolveExit = r));
  const ready = new Promise<void>((resolve, reject) => {
    w.on('message', (m: { type: string; port?: number; exit?: { reason: string; message?: string } }) => {
      if (m.type === 'vuart') {
        const localPort = evtchn.bindInterdomain(0, 1, m.port!);
        const ring = new ConsoleRingBackend(magicPages, VUART_PFN_OFFSET * XEN_PAGE_SIZE);
        con = new Console({ name: guest, domid: 1, ring, evtchn, backendDomid: 0, localPort });
        con.onOutput = (c) => void (out += Buffer.from(c).toString('latin1'));
        detach = backend.add(con, evtchn, localPort);
        void backend.start();
        resolve();
      } else if (m.type === 'exit') resolveExit(`${m.exit?.reason}${m.exit?.message ? `: ${m.exit.message}` : ''}`);
    });
    w.on('error', (e) => {
      reject(e);
      resolveExit(`error: ${e.message}`);
    });
    w.on('exit', () => resolveExit('worker exit'));
  });
  await ready;
  return {
    insight,
    magicPages,
    output: () => out,
    input: (s) => void con?.queueInput(Buffer.from(s, 'latin1')),
    exited,
    async close() {
      await w.terminate();
      detach?.();
      await backend.stop();
      con?.close();
    },
  };
}
