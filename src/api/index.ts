// The package's main entry (`vpl011`): every reusable layer at once. The subpath entries load only their own layer:
// vpl011/device (the device core), vpl011/ring (the ring and event-channel ABI), vpl011/replay (the replay engine),
// vpl011/vmm (boot a guest, get its console as streams).
export * from './device.js';
export * from './ring.js';
export * from './replay.js';
export * from './vmm.js';
