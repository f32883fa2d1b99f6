// The domain's worker-thread entry: builds the Machine on the memory it is given, reports the vuart port, runs,
// answers requests at the vCPU's safe points, and reports the exit and the stats. Nothing escapes: every error
// becomes a 'crashed' exit message. Closing the machine is domain_vpl011_deinit's teardown (Machine.close).
import { parentPort, receiveMessageOnPort } from 'node:worker_threads';
import { Machine } from './machine.js';
import { EventChannels } from '../xen/evtchn.js';
import { viewOf } from '../host/libc.js';
import { FutexWaker } from '../host/futex.js';
import {
  CONTROL_ENGINE, CONTROL_REQUESTS, CONTROL_STOP, CONTROL_UNPAUSED,
  type DomainEvent, type DomainRequest, type DomainRequests, type DomainRequestType, type WorkerInit,
} from './control.js';
import { EngineCell } from '../cpu/remote-stop.js';
import { pauseForSave, saveRequested } from './save-pause.js';
import { errorMessage } from '../util/errors.js';

// The domain comes as the first message (startDomainWorker): the thread may have been started before the domain was
// built (spare-worker.ts), its modules loading meanwhile.
// null: no domain for it (spare-worker.ts discard()): end now, loaded, never terminated mid-call.
const first = await new Promise<WorkerInit | null>((resolve) => parentPort!.once('message', resolve));
if (first === null) process.exit(0);
const init: WorkerInit = first;
const port = parentPort!;
const post = (m: DomainEvent): void => port.postMessage(m);
const control = new Int32Array(init.control);
const engine = new EngineCell(init.control, CONTROL_ENGINE);

/** One handler per request (control.ts DomainRequests); each runs on the vCPU's thread at a safe point. */
const handlers: { [K in DomainRequestType]: (m: Machine, args: DomainRequests[K]['args']) => DomainRequests[K]['reply'] } = {
  stats: (m) => m.stats(),
};

let requestsSeen = 0;
/** Answer every request posted since the last call (cheap when none: one atomic load). */
function serveRequests(m: Machine): void {
  if (Atomics.load(control, CONTROL_REQUESTS) === requestsSeen) return;
  for (let got = receiveMessageOnPort(init.requests); got !== undefined; got = receiveMessageOnPort(init.requests)) {
    requestsSeen++;
    const req = got.message as DomainRequest;
    try {
      const handler = handlers[req.type] as (m: Machine, args: unknown) => DomainRequests[DomainRequestType]['reply'];
      post({ type: 'reply', id: req.id, ok: true, reply: handler(m, req.args) });
    } catch (e) {
      post({ type: 'reply', id: req.id, ok: false, error: errorMessage(e) });
    }
  }
}

let machine: Machine | undefined;
try {
  const evtchn = init.evtchn instanceof SharedArrayBuffer
    ? EventChannels.attach(init.evtchn)
    : EventChannels.attach(viewOf(init.evtchn.address, init.evtchn.size), new FutexWaker(init.evtchn));
  const magicPages = init.magicPages instanceof SharedArrayBuffer ? init.magicPages : viewOf(init.magicPages.address, init.magicPages.size);
  const insight = init.insight === undefined || init.insight instanceof SharedArrayBuffer ? init.insight : viewOf(init.insight.address, init.insight.size);
  const m: Machine = new Machine({
    domid: init.domid, name: init.name, image: init.image, policy: init.policy, evtchn, magicPages,
    ...(init.libraryPath ? { libraryPath: init.libraryPath } : {}),
    profile: init.profile,
    ...(init.sleepBounds ? { sleepBounds: init.sleepBounds } : {}),
    ...(insight ? { insight, trace: init.trace === true } : {}),
    ...(init.xenConsole ? { xenConsole: init.xenConsole } : {}),
    // The machine polls this at its safe points (and whenever the doorbell moves, which a request's kick does):
    // requests are served there, before the stop flag is read.
    shouldStop: () => {
      serveRequests(m);
      return Atomics.load(control, CONTROL_STOP) !== 0;
    },
    // Posted, not polled for: the starting thread learns at once that scripted input may flow.
    onReceiverListening: (on) => post({ type: 'listening', on }),
    ...(init.restore ? { restore: init.restore } : {}),
    // A save (docs/SAVE.md): paused between runs, the state posted (its RAM transferred, not copied).
    shouldPause: () => saveRequested(control),
    onPause: () => pauseForSave(control, m, (state, transfer) => port.postMessage({ type: 'saved', state } satisfies DomainEvent, transfer)),
  });
  machine = m;
  // From here the controlling thread may stop the engine directly (a guest that reaches no safe point).
  engine.publish(m.vcpu.uc);
  post({ type: 'vuart', port: m.vuartPort });
  // Created paused: run once the console is connected; a stop while waiting ends the run at its first safe point.
  if (init.createPaused) {
    while (Atomics.load(control, CONTROL_UNPAUSED) === 0 && Atomics.load(control, CONTROL_STOP) === 0) {
      Atomics.wait(control, CONTROL_UNPAUSED, 0, 50);
    }
  }
  const exit = m.run();
  post({ type: 'exit', exit, stats: m.stats() });
} catch (e) {
  const stats = machine?.stats();
  post({ type: 'exit', exit: { reason: 'crashed', message: `d${init.domid}: ${errorMessage(e)}` }, ...(stats ? { stats } : {}) });
} finally {
  engine.retire(); // waits out a stop call in flight: uc_close must not run under it
  try { machine?.close(); } catch { /* closing after a failure: nothing more to report */ }
  init.requests.close(); // requests still queued are answered by the main thread (the domain has exited)
}
