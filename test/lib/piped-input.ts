// Input piped through a `vpl011 console` client into the `checksum` bare guest under a daemon, and the guest's
// answer that proves every byte was read exactly once (fnv1a32 and count): what the daemon's exactly-once tests
// (kill -9 of the daemon, a migration) check across their disruption.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Harness } from './daemon-harness.js';
import { vpl011Process, type ConsoleProcess } from './console-process.js';
import { fnv1a32 } from '../../src/vmm/bare-guests.js';

/**
 * Start the `checksum` guest `name` (reading `count` bytes), attach a console client, wait until the guest is ready,
 * and write `count` random printable bytes into the client's stdin. The client is ended here if a step after its
 * start fails; once returned, it is the test's to end.
 */
export async function pipeIntoChecksumGuest(h: Harness, name: string, count: number): Promise<{ client: ConsoleProcess; data: Buffer }> {
  await h.up(name, 'checksum', { COUNT: count });
  const client = vpl011Process(['console', name, '--run-dir', h.runDir]);
  try {
    // (The guest's "checksum ready" may have gone out before the client attached: the log has it.)
    await h.until(() => h.log(name).includes('checksum ready\n'), 'the guest ready');
  } catch (e) {
    await client.kill();
    throw e;
  }
  // Printable bytes (any value would do through a pipe), written as fast as the client takes them.
  const data = Buffer.from(randomBytes(count).map((b) => 0x20 + (b % 95)));
  client.child.stdin.write(data);
  return { client, data };
}

/** The guest's fnv1a32 line on the client's output: it read `data` exactly once. */
export async function expectReadOnce(client: ConsoleProcess, data: Buffer): Promise<void> {
  const hex = (n: number) => n.toString(16).padStart(8, '0');
  const want = `fnv1a32 ${hex(fnv1a32(data))} bytes ${hex(data.length)}\n`;
  await client.expect(/fnv1a32 [0-9a-f]{8} bytes [0-9a-f]{8}\n/, 300_000);
  assert.ok(client.out.includes(want), `the guest read the input exactly once: want ${want.trim()}, got ${client.out.slice(-60)}`);
}
