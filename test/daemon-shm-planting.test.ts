// Shared-memory objects cannot be planted. /dev/shm is shared by every local user: an object that
// another user created under a name the daemon uses (mode 0666, or owned by someone else) must never be mapped.
// The daemon creates with O_CREAT|O_EXCL under unguessable names, and whenever it adopts an existing object after a
// restart (the event-channel table, a running domain's magic pages) it verifies owner and mode and refuses with a
// reason. The tests plant objects as the attacker would (at the name they can predict or see in /dev/shm), here as
// root: mode 0666, or mode 0600 chowned to another uid.
import { after } from 'node:test';
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { closeSync, fchmodSync, fchownSync, ftruncateSync, openSync, readdirSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { Harness } from './lib/daemon-harness.js';
import { EVTCHN_GEOMETRY, runPaths } from '../src/daemon/paths.js';
import { readRecord } from '../src/daemon/records.js';
import { openSharedMapping, ShmError } from '../src/host/shm.js';
import { EventChannels } from '../src/xen/evtchn.js';
import { NR_MAGIC_PAGES, XEN_PAGE_SIZE } from '../src/xen/arch-arm.js';

const TABLE_SIZE = EventChannels.byteLength(EVTCHN_GEOMETRY);
const NOBODY = 65534;
const uid = process.getuid!();
const harnesses: Harness[] = [];
after(async () => {
  for (const h of harnesses) await h.cleanup();
});

function harness(): Harness {
  const h = new Harness();
  harnesses.push(h);
  return h;
}

/** What any local user can compute: "vpl011-<uid>-<FNV-1a of the run dir>" starts every object of that run dir. */
function predictablePrefix(runDir: string): string {
  let x = 0x811c9dc5;
  for (let i = 0; i < runDir.length; i++) x = Math.imul(x ^ runDir.charCodeAt(i), 0x01000193) >>> 0;
  return `vpl011-${uid}-${x.toString(16).padStart(8, '0')}`;
}

/** Create /dev/shm/<file> O_EXCL, as the attacker: size, mode, owner. */
function plant(file: string, size: number, mode: number, owner = uid): void {
  const fd = openSync(`/dev/shm/${file}`, 'wx', mode);
  try {
    fchmodSync(fd, mode);
    if (owner !== uid) fchownSync(fd, owner, owner);
    ftruncateSync(fd, size);
  } finally {
    closeSync(fd);
  }
}

const untouched = (file: string) => readFileSync(`/dev/shm/${file}`).every((b) => b === 0);

test('openSharedMapping refuses an existing object that is world-accessible or not ours, and never adopts on create', () => {
  const file = `${predictablePrefix('/nonexistent-unit')}-unit-${process.pid}`;
  try {
    plant(file, 4096, 0o666);
    assert.throws(() => openSharedMapping(`/${file}`), (e: unknown) => e instanceof ShmError && e.code === 'EPERM' && /mode 0666 lets other users open it/.test(e.message));
    assert.throws(() => openSharedMapping(`/${file}`, { create: true, size: 4096 }), (e: unknown) => e instanceof ShmError && e.code === 'EEXIST');
    unlinkSync(`/dev/shm/${file}`);
    plant(file, 4096, 0o600, NOBODY);
    assert.throws(() => openSharedMapping(`/${file}`), (e: unknown) => e instanceof ShmError && e.code === 'EPERM' && new RegExp(`owned by uid ${NOBODY}, not by us`).test(e.message));
    unlinkSync(`/dev/shm/${file}`);
    plant(file, 4096, 0o600);
    openSharedMapping(`/${file}`).close();
  } finally {
    try {
      unlinkSync(`/dev/shm/${file}`);
    } catch {
      // not created
    }
  }
});

test('an event-channel table planted at the predictable name is never adopted; the daemon\'s objects are 0600 and ours', { timeout: 120_000 }, async () => {
  const h = harness();
  const prefix = predictablePrefix(h.runDir);
  const planted = `${prefix}-evtchn`;
  plant(planted, TABLE_SIZE, 0o666);
  await h.startDaemon();
  await h.up('victim', 'hello');
  const c = await h.attach('victim');
  try {
    c.sock.write('still mine\n');
    await h.until(() => c.received().includes('still mine\n'), 'echo');
  } finally {
    c.close();
  }
  assert.ok(untouched(planted), 'the planted object was never written (not mapped by the daemon or the domain)');
  const ours = readdirSync('/dev/shm').filter((f) => f.startsWith(prefix) && f !== planted);
  assert.ok(ours.length >= 2, `the table and the magic pages: ${ours.join(' ')}`);
  for (const f of ours) {
    const st = statSync(`/dev/shm/${f}`);
    assert.equal(st.uid, uid, f);
    assert.equal(st.mode & 0o777, 0o600, f);
    assert.ok(f.length > planted.length + 16, `${f} has a random part`);
  }
});

for (const variant of [
  { what: 'mode 0666', mode: 0o666, owner: uid, why: /mode 0666 lets other users open it \(expected 0600\); refusing to use it/ },
  { what: 'another owner', mode: 0o600, owner: NOBODY, why: new RegExp(`owned by uid ${NOBODY}, not by us \\(uid ${uid}\\); refusing to use it`) },
]) {
  test(`after kill -9, an event-channel table re-created by someone else (${variant.what}) is refused with the reason`, { timeout: 120_000 }, async () => {
    const h = harness();
    const prefix = predictablePrefix(h.runDir);
    await h.startDaemon();
    await h.up('victim', 'hello');
    const table = readdirSync('/dev/shm').find((f) => f.startsWith(`${prefix}-evtchn`));
    assert.ok(table, 'the daemon created its table');
    await h.killDaemon('SIGKILL');
    // The attacker saw the name in /dev/shm; once the object is gone they create their own under it.
    unlinkSync(`/dev/shm/${table}`);
    plant(table, TABLE_SIZE, variant.mode, variant.owner);
    await assert.rejects(h.startDaemon(), (e: Error) => variant.why.test(e.message) && e.message.includes(`/${table}`));
    assert.match(h.daemonOutput, /^vpl011: event-channel table: shm \/\S+: .*; refusing to use it\. If no domain is running, remove \S+evtchn\.shm to start with a new table\n$/m);
    assert.ok(untouched(table), 'the planted table was not written');
  });
}

test('after kill -9, magic pages re-created by someone else (mode 0666) are refused for that domain with the reason', { timeout: 120_000 }, async () => {
  const h = harness();
  await h.startDaemon();
  const id = await h.up('victim', 'hello');
  const rec = readRecord(runPaths(h.runDir).domainsDir, id);
  assert.ok(rec);
  await h.killDaemon('SIGKILL');
  const file = rec.magicShm.slice(1);
  unlinkSync(`/dev/shm/${file}`);
  plant(file, NR_MAGIC_PAGES * XEN_PAGE_SIZE, 0o666);
  await h.startDaemon();
  await h.until(() => /d\d+ \(victim\): cannot serve its console: shm \S+: mode 0666 lets other users open it \(expected 0600\); refusing to use it/.test(h.daemonOutput), 'the refusal in the daemon log', 20_000);
  assert.ok(untouched(file), 'the planted pages were never written (no connection byte, no log recovery)');
  await assert.rejects(h.attach('victim'), /no running console/);
  // Reported once, not on every scan.
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(h.daemonOutput.match(/cannot serve its console/g)?.length, 1, h.daemonOutput);
});
