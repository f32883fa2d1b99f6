// The domain's worker-thread entry: builds the Machine on the SABs it is given, reports the vuart port, runs, and
// reports the exit and the stats. Nothing escapes: every error becomes a 'crashed' exit message.
import { parentPort, workerData } from 'node:worker_threads';
import { Machine } from './machine.js';
import { EventChannels } from '../xen/evtchn.js';
import { viewOf } from '../host/libc.js';
import { FutexWaker } from '../host/futex.js';
import { CONTROL_ENGINE, CONTROL_STOP, type WorkerInit } from './control.js';
import { pauseForSave, saveRequested } from './save-pause.js';
import { EngineCell } from '../cpu/remote-stop.js';

const init = workerData as WorkerInit;
const port = parentPort!;
const control = new Int32Array(init.control);
const engine = new EngineCell(init.control, CONTROL_ENGINE);
let machine: Machine | undefined;
try {
  const evtchn = init.evtchn instanceof SharedArrayBuffer
    ? EventChannels.attach(init.evtchn)
    : EventChannels.attach(viewOf(init.evtchn.address, init.evtchn.size), new FutexWaker(init.evtchn));
  const magicPages = init.magicPages instanceof SharedArrayBuffer ? init.magicPages : viewOf(init.magicPages.address, init.magicPages.size);
  machine = new Machine({
    domid: init.domid, name: init.name, image: init.image, policy: init.policy, evtchn, magicPages,
    ...(init.libraryPath ? { libraryPath: init.libraryPath } : {}),
    profile: init.profile,
    ...(init.sleepBounds ? { sleepBounds: init.sleepBounds } : {}),
    shouldStop: () => Atomics.load(control, CONTROL_STOP) !== 0,
    // Posted, not polled for: the starting thread learns at once that scripted input may flow.
    onReceiverListening: (on) => port.postMessage({ type: 'listening', on }),
    ...(init.restore ? { restore: init.restore } : {}),
    shouldPause: () => saveRequested(control),
    onPause: () => pauseForSave(control, machine!, (state, transfer) => port.postMessage({ type: 'saved', state }, transfer)),
  });
  // From here the controlling thread may stop the engine directly (a guest that reaches no safe point).
  engine.publish(machine.vcpu.uc);
  port.postMessage({ type: 'vuart', port: machine.vuartPort });
  const exit = machine.run();
  port.postMessage({ type: 'exit', exit, stats: machine.stats() });
} catch (e) {
  port.postMessage({ type: 'exit', exit: { reason: 'crashed', message: `d${init.domid}: ${(e as Error).message}` }, stats: machine?.stats() });
} finally {
  engine.retire(); // waits out a stop call in flight: uc_close must not run under it
  try { machine?.close(); } catch { /* closing after a failure: nothing more to report */ }
}
