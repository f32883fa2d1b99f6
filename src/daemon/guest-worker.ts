// The vCPU thread of a domain host running a test program (./guest-programs.ts): builds the domain over the shared
// magic pages and the hypervisor-wide event-channel table (both cross-process shared memory mapped by the host
// process; a worker shares its address space), runs domain_vpl011_init (XEN_DOMCTL_vuart_op) and the program, and
// unwinds with domain_vpl011_deinit whatever way the program ends.
import { parentPort, workerData } from 'node:worker_threads';
import { viewOf } from '../host/libc.js';
import { FutexWaker } from '../host/futex.js';
import { EventChannels } from '../xen/evtchn.js';
import { SpiLevels } from '../xen/spi-levels.js';
import { domainVpl011Deinit, domainVpl011Init } from '../xen/vuart.js';
import { GUEST_MAGIC_BASE, GUEST_VUART_GFN, NR_MAGIC_PAGES, XEN_PAGE_SIZE } from '../xen/arch-arm.js';
import { SharedPagesDomain } from './shared-domain.js';
import { runProgram, type ProgramArgs, type ProgramExit, type ProgramName } from './guest-programs.js';

export interface GuestWorkerData {
  domid: number;
  name: string;
  evtchnAddress: bigint;
  evtchnSize: number;
  magicAddress: bigint;
  program: ProgramName;
  args: ProgramArgs;
  /** Int32Array over it: [0] = 1 asks the vCPU to stop. */
  control: SharedArrayBuffer;
}

export type GuestWorkerMessage =
  | { type: 'port'; port: number }
  | { type: 'exit'; exit: ProgramExit }
  | { type: 'log'; message: string };

const data = workerData as GuestWorkerData;
const post = (m: GuestWorkerMessage) => parentPort!.postMessage(m);
const control = new Int32Array(data.control);
const evtchn = EventChannels.attach(viewOf(data.evtchnAddress, data.evtchnSize), new FutexWaker({ address: data.evtchnAddress }));
const magicSize = NR_MAGIC_PAGES * XEN_PAGE_SIZE;
const magicBuf = viewOf(data.magicAddress, magicSize);
const domain = new SharedPagesDomain({ domid: data.domid, name: data.name, vgic: new SpiLevels(), evtchn });
domain.addMemory({ name: 'magic', base: GUEST_MAGIC_BASE, size: magicSize, buffer: magicBuf, byteOffset: 0 });

let exit: ProgramExit;
try {
  const port = domainVpl011Init(domain, { consoleDomid: 0, gfn: GUEST_VUART_GFN }, { log: (m) => post({ type: 'log', message: m }) });
  post({ type: 'port', port });
  exit = runProgram(
    {
      domain,
      magic: new Uint8Array(magicBuf),
      stopping: () => Atomics.load(control, 0) !== 0,
      idle: () => {
        // WFI: the wakeup rule. Read the doorbell, run the vpl011's event handler, sleep only if nothing moved.
        const seen = evtchn.doorbell(data.domid);
        if (evtchn.dispatch(data.domid) > 0) return;
        if (Atomics.load(control, 0) !== 0) return;
        evtchn.waitSync(data.domid, seen, 1000);
      },
    },
    data.program,
    data.args,
  );
} catch (e) {
  exit = { reason: 'crashed', message: (e as Error).message };
}
domainVpl011Deinit(domain);
post({ type: 'exit', exit });
