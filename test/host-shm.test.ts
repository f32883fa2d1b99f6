// Cross-process shared memory and futex wakeups (src/host/): what the daemon and domain hosts rely on. A MAP_SHARED
// mapping is visible to another process; FUTEX_WAIT (non-private) sleeps until another process changes the word and
// wakes it, and returns at once when the word already differs (the evtchn wakeup rule across processes).
import { test, within } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach } from 'node:test';
import { openSharedMapping, ShmError, sharedExists } from '../src/host/shm.js';
import { futexWait, futexWake, FutexWaker } from '../src/host/futex.js';
import { EventChannels } from '../src/xen/evtchn.js';

const name = `/vpl011-test-${process.pid}-shm`;
const shmUrl = new URL('../src/host/shm.js', import.meta.url).href;
const futexUrl = new URL('../src/host/futex.js', import.meta.url).href;

// Children still running when a test ends (it failed before awaiting them) are killed: none outlives its test.
const children = new Set<ChildProcess>();
afterEach(() => {
  for (const c of children) c.kill('SIGKILL');
  children.clear();
});

function child(code: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(c);
    c.on('exit', () => children.delete(c));
    let out = '';
    let err = '';
    c.stdout.on('data', (b: Buffer) => (out += b.toString()));
    c.stderr.on('data', (b: Buffer) => (err += b.toString()));
    c.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`child failed (${code}): ${err}`))));
  });
}

test('a MAP_SHARED mapping is shared with another process; exclusive create refuses an existing name', async () => {
  const m = openSharedMapping(name, { create: true, size: 4096 });
  try {
    assert.ok(sharedExists(name));
    assert.throws(() => openSharedMapping(name, { create: true, size: 4096 }), (e: unknown) => e instanceof ShmError && e.code === 'EEXIST');
    assert.throws(() => openSharedMapping(name, { size: 8192 }), ShmError);
    const w = new Int32Array(m.buffer);
    Atomics.store(w, 1, 1234);
    const out = await child(`
      import { openSharedMapping } from '${shmUrl}';
      const m = openSharedMapping('${name}', { size: 4096 });
      const w = new Int32Array(m.buffer);
      process.stdout.write(String(Atomics.load(w, 1)));
      Atomics.store(w, 2, 5678);
      m.close();`);
    assert.equal(out, '1234');
    assert.equal(Atomics.load(w, 2), 5678);
  } finally {
    m.unlink();
    m.close();
  }
  assert.equal(sharedExists(name), false);
  assert.throws(() => openSharedMapping(name), (e: unknown) => e instanceof ShmError && e.code === 'ENOENT');
});

test('futex: a sleeper in another process is woken by a change + wake; a stale value returns at once', async () => {
  const m = openSharedMapping(name, { create: true, size: 4096 });
  try {
    const w = new Int32Array(m.buffer);
    assert.equal(futexWait(m.address, 1, 1000), 'not-equal', 'word is 0, not 1: no sleep');
    assert.equal(futexWait(m.address, 0, 10), 'timed-out');
    const sleeper = child(`
      import { openSharedMapping } from '${shmUrl}';
      import { futexWait } from '${futexUrl}';
      const m = openSharedMapping('${name}', { size: 4096 });
      const w = new Int32Array(m.buffer);
      Atomics.store(w, 1, 1); // ready
      let r;
      while (Atomics.load(w, 0) === 0) r = futexWait(m.address, 0, 30000);
      process.stdout.write(r + ' ' + Atomics.load(w, 0));`);
    while (Atomics.load(w, 1) !== 1) await new Promise((r) => setTimeout(r, 5));
    Atomics.store(w, 0, 7);
    futexWake(m.address);
    const out = await sleeper;
    assert.match(out, /^(ok|not-equal) 7$/);
  } finally {
    m.unlink();
    m.close();
  }
});

test('event channels in shared memory: a notify from another process wakes waitAsync (FutexWaker)', async () => {
  const geometry = { maxDomains: 4, portsPerDomain: 8 };
  const m = openSharedMapping(name, { create: true, size: EventChannels.byteLength(geometry) });
  // The waiter thread's poll is far longer than this test waits: only the child's FUTEX_WAKE can deliver the event.
  const waker = new FutexWaker(m, 120_000);
  try {
    const ev = EventChannels.createIn(m.buffer, geometry, waker);
    const guestPort = ev.allocUnbound(1, 0);
    let ran = 0;
    const local = ev.bindInterdomain(0, 1, guestPort, () => ran++);
    const seen = ev.doorbell(0);
    const woken = within(ev.waitAsync(0, seen, 120_000), 30_000, 'the wake from the other process');
    await child(`
      import { openSharedMapping } from '${shmUrl}';
      import { FutexWaker } from '${futexUrl}';
      import { EventChannels } from '${new URL('../src/xen/evtchn.js', import.meta.url).href}';
      const m = openSharedMapping('${name}');
      const ev = EventChannels.attach(m.buffer, new FutexWaker(m));
      ev.notify(1, ${guestPort});
      ev.notify(1, ${guestPort}); // coalesced
      m.close();`);
    assert.equal(await woken, 'ok');
    assert.equal(ev.dispatch(0), 1);
    assert.equal(ran, 1, 'two notifies before dispatch coalesce into one event');
    assert.equal(ev.isPending(0, local), false);
    // createIn over an existing table attaches to it (a restarted daemon keeps the bindings).
    const again = EventChannels.createIn(m.buffer, geometry, waker);
    assert.deepEqual(again.peer(0, local), { domid: 1, port: guestPort });
  } finally {
    await waker.close();
    m.unlink();
    m.close();
  }
});
