// The vCPU thread of test/lib/insight-rig.ts: a Machine with an insight region, as src/vmm/worker.ts builds one.
import { parentPort, workerData } from 'node:worker_threads';
import { Machine } from '../../src/vmm/machine.js';
import { EventChannels } from '../../src/xen/evtchn.js';
import type { GuestImage } from '../../src/toolstack/guest-image.js';
import { errorMessage } from '../../src/util/errors.js';

interface Init { image: GuestImage; evtchn: SharedArrayBuffer; magicPages: SharedArrayBuffer; insight: SharedArrayBuffer; trace: boolean; profile: 'sbsa' | 'pl011' }
const init = workerData as Init;
let m: Machine | undefined;
try {
  m = new Machine({
    domid: 1, name: 'insight', image: init.image, evtchn: EventChannels.attach(init.evtchn), magicPages: init.magicPages,
    insight: init.insight, trace: init.trace, profile: init.profile,
  });
  parentPort!.postMessage({ type: 'vuart', port: m.vuartPort });
  parentPort!.postMessage({ type: 'exit', exit: m.run() });
} catch (e) {
  parentPort!.postMessage({ type: 'exit', exit: { reason: 'crashed', message: errorMessage(e) } });
} finally {
  m?.close();
}
