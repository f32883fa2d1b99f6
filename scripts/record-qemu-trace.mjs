#!/usr/bin/env node
// Record a QEMU 7.2 pl011 trace of the default guest, for `vpl011 replay --qemu-trace`:
//   node scripts/record-qemu-trace.mjs TRACE_FILE ['shell command' ...]
// Boots Debian's kernel + our initramfs (from the cache, see scripts/setup.sh) on qemu-system-aarch64's virt board
// with `-trace pl011_* -D TRACE_FILE`, types each command at a prompt, then powers off. Needs a built tree.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..');
const [traceFile, ...commands] = process.argv.slice(2);
if (!traceFile) {
  process.stderr.write('usage: node scripts/record-qemu-trace.mjs TRACE_FILE [command ...]\n');
  process.exit(2);
}
const { guestPaths } = await import(join(root, 'dist/src/toolstack/fetch.js'));
const { recordQemuTrace } = await import(join(root, 'dist/test/lib/qemu-trace-recorder.js'));
const g = guestPaths();
try {
  await recordQemuTrace({ kernel: g.kernel, initrd: g.initrd, traceFile, commands });
  process.stderr.write(`trace written to ${traceFile}\n`);
} catch (e) {
  process.stderr.write(`record-qemu-trace: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
}
