// Start-up without copying the guest image (issue 7 §4, boot): a kernel file is read into one buffer of its own
// (no chunk copies, no Node pool), and its large segments are moved, not cloned, to the vCPU's thread.
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import { randomBytes } from 'node:crypto';
import { readRegularFile } from '../src/util/bounded-read.js';
import { imageTransferList } from '../src/vmm/domain-thread.js';
import type { GuestImage } from '../src/toolstack/guest-image.js';

const T = { timeout: 30_000 };

test('a regular file is read whole into a buffer that owns its memory (transferable), bytes equal', T, () => {
  const dir = mkdtempSync(join(tmpdir(), 'vpl011-read-'));
  try {
    for (const size of [0, 1, 4095, 3 * 1024 * 1024 + 7]) {
      const data = randomBytes(size);
      const f = join(dir, `f${size}`);
      writeFileSync(f, data);
      const b = readRegularFile(f, 8 * 1024 * 1024);
      assert.ok(b.equals(data), `content of ${size} bytes`);
      assert.equal(b.byteOffset, 0, 'not a slice of a pool');
      assert.equal(b.buffer.byteLength, size, 'its own ArrayBuffer');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('imageTransferList names the big segments only; posting with it moves them (the sender\'s views detach)', T, async () => {
  const kernel = new Uint8Array(2 * 1024 * 1024).fill(7);
  const dtb = Buffer.from('small, maybe pooled');
  const image: GuestImage = { ramBase: 0x40000000, ramSize: 64 << 20, entry: 0x40000000, x0: 0, segments: [
    { addr: 0x40000000, data: kernel, what: 'kernel' }, { addr: 0x43e00000, data: dtb, what: 'dtb' },
  ] };
  const list = imageTransferList(image);
  assert.deepEqual(list, [kernel.buffer]);
  const { port1, port2 } = new MessageChannel();
  try {
    const got = new Promise<GuestImage>((r) => port2.once('message', r));
    port1.postMessage(image, list);
    const img = await got;
    assert.equal(kernel.byteLength, 0, 'moved, not copied');
    assert.equal(img.segments[0]!.data.length, 2 * 1024 * 1024);
    assert.equal(img.segments[0]!.data[12345], 7);
    assert.equal(Buffer.from(img.segments[1]!.data).toString(), 'small, maybe pooled');
    assert.equal(dtb.toString(), 'small, maybe pooled', 'small segments stay usable here');
  } finally {
    port1.close();
    port2.close();
  }
});
