// The package's `vpl011/replay` entry: the replay engine behind `vpl011 replay`. A script of register accesses and
// backend steps runs against a fresh vpl011 (built as a guest gets it: vuart init in a domain, a real event channel
// to a backend domain 0); each step prints one line; expectations (`expect`, `irq`, `expect-out`) that differ are
// mismatches. Returns the exit code: 0 all met, 1 a mismatch, 2 a bad script (docs/DEVICE.md has the syntax).
//
//   import { runReplay } from 'vpl011/replay';
//   const lines = [];
//   runReplay('expect 0x18 0x90\nwrite 0x00 0x41\nexpect-out "A"\n', (l) => lines.push(l)); // 0
export { runReplay, quoteBytes, type ReplayOptions, type ReadMismatch } from '../cli/replay.js';
