// The package's `vpl011/ring` entry: Xen's console ring ABI (xen/include/public/io/console.h: a 4 KiB page with a
// 1 KiB IN ring, a 2 KiB OUT ring, free-running indices and a connection byte) from both ends, and the event
// channels that signal across it (interdomain ports, a per-domain doorbell), in shared memory so that threads and
// processes can be the two ends.
//
//   import { ConsoleRing, ConsoleRingBackend } from 'vpl011/ring';
//   const page = new SharedArrayBuffer(4096);
//   new ConsoleRing(page).putOut(0x41);               // the guest's end: a byte into OUT
//   new ConsoleRingBackend(page).drainOut();          // the backend's end: Uint8Array [0x41]
export * from '../xen/ring.js';
export * from '../xen/evtchn.js';
