// The initramfs writer (src/toolstack/initramfs.ts): cpio "newc" as Linux's
// Documentation/driver-api/early-userspace/buffer-format.rst defines it, read back by our own reader and by GNU cpio.
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { gunzipSync } from 'node:zlib';
import fc from 'fast-check';
import { DEFAULT_INIT, S_IFCHR, S_IFDIR, S_IFLNK, S_IFREG, buildDefaultInitramfs, writeCpioNewc, type CpioEntry } from '../src/toolstack/initramfs.js';

interface ReadEntry {
  name: string;
  mode: number;
  nlink: number;
  rdevMajor: number;
  rdevMinor: number;
  data: Uint8Array;
}

/** An independent newc reader: 110-byte ASCII header, name padded to 4 with the header, data padded to 4. */
function readNewc(buf: Uint8Array): ReadEntry[] {
  const out: ReadEntry[] = [];
  let off = 0;
  const text = (a: number, n: number) => Buffer.from(buf.subarray(a, a + n)).toString('latin1');
  for (;;) {
    assert.equal(text(off, 6), '070701', `magic at ${off}`);
    const f = (i: number) => parseInt(text(off + 6 + i * 8, 8), 16);
    const namesize = f(11);
    const filesize = f(6);
    const name = text(off + 110, namesize - 1);
    assert.equal(buf[off + 110 + namesize - 1], 0, 'name is NUL-terminated');
    let p = off + 110 + namesize;
    p += (4 - (p % 4)) % 4;
    if (name === 'TRAILER!!!') {
      assert.equal(p, buf.length, 'nothing after the trailer');
      return out;
    }
    out.push({ name, mode: f(1), nlink: f(4), rdevMajor: f(9), rdevMinor: f(10), data: new Uint8Array(buf.subarray(p, p + filesize)) });
    p += filesize;
    p += (4 - (p % 4)) % 4;
    off = p;
  }
}

const fakeBusybox = () => {
  const b = new Uint8Array(5001);
  b.set([0x7f, 0x45, 0x4c, 0x46]);
  b[5000] = 0xaa;
  return b;
};

test('the default initramfs: busybox, /init, /dev/console c 5 1 and the folders the init script mounts on', () => {
  const entries = readNewc(gunzipSync(buildDefaultInitramfs(fakeBusybox())));
  const by = new Map(entries.map((e) => [e.name, e]));
  const console = by.get('dev/console')!;
  assert.equal(console.mode, S_IFCHR | 0o600);
  assert.deepEqual([console.rdevMajor, console.rdevMinor], [5, 1]);
  const bb = by.get('bin/busybox')!;
  assert.equal(bb.mode, S_IFREG | 0o755);
  assert.deepEqual(bb.data, fakeBusybox());
  assert.equal(by.get('bin/sh')!.mode & 0o170000, S_IFLNK);
  assert.equal(Buffer.from(by.get('bin/sh')!.data).toString(), 'busybox');
  const init = by.get('init')!;
  assert.equal(init.mode, S_IFREG | 0o755);
  assert.equal(Buffer.from(init.data).toString(), DEFAULT_INIT);
  for (const d of ['proc', 'sys', 'dev', 'tmp', 'root', 'bin', 'sbin', 'usr/bin']) assert.equal(by.get(d)!.mode & 0o170000, S_IFDIR, d);
  assert.equal(by.get('tmp')!.mode & 0o7777, 0o1777);
  // Parents come before children, as the kernel's unpacker needs (it does not create missing folders).
  const names = entries.map((e) => e.name);
  for (const [i, n] of names.entries()) {
    const parent = n.split('/').slice(0, -1).join('/');
    if (parent) assert.ok(names.indexOf(parent) >= 0 && names.indexOf(parent) < i, `${parent} before ${n}`);
  }
});

test('the /init script mounts proc, sys and devtmpfs and starts a job-control shell on the console', () => {
  assert.match(DEFAULT_INIT, /^#!\/bin\/busybox sh\n/);
  for (const m of ['mount -t proc proc /proc', 'mount -t sysfs sysfs /sys', 'mount -t devtmpfs devtmpfs /dev', '/bin/busybox --install -s']) {
    assert.ok(DEFAULT_INIT.includes(m), m);
  }
  assert.match(DEFAULT_INIT, /\nexec setsid cttyhack sh/);
});

test('GNU cpio lists and extracts what we wrote (an independent reader)', (t) => {
  if (spawnSync('sh', ['-c', 'command -v cpio']).status !== 0) {
    t.skip('cpio not installed');
    return;
  }
  const r = spawnSync('cpio', ['-itv', '--quiet'], { input: gunzipSync(buildDefaultInitramfs(fakeBusybox())) });
  assert.equal(r.status, 0, r.stderr.toString());
  const lines = r.stdout.toString().trim().split('\n');
  assert.ok(lines.some((l) => /^crw------- .* 5,\s+1 .* dev\/console$/.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => /^-rwxr-xr-x .* 5001 .* bin\/busybox$/.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => /^lrwxrwxrwx .* bin\/sh -> busybox$/.test(l)), lines.join('\n'));
});

test('random archives round-trip: names, modes and contents survive, padding keeps every header 4-aligned', () => {
  const name = fc.stringMatching(/^[a-z0-9._-]{1,30}$/).filter((s) => s !== '.' && s !== '..');
  fc.assert(
    fc.property(fc.uniqueArray(fc.record({ name, data: fc.uint8Array({ maxLength: 70 }) }), { selector: (e) => e.name, maxLength: 8 }), (files) => {
      const entries: CpioEntry[] = files.map((f) => ({ name: f.name, mode: S_IFREG | 0o644, data: f.data }));
      const back = readNewc(writeCpioNewc(entries));
      assert.deepEqual(back.map((e) => [e.name, e.mode, [...e.data]]), entries.map((e) => [e.name, e.mode, [...(e.data as Uint8Array)]]));
    }),
    { numRuns: 60 },
  );
});

test('the writer refuses absolute, dot-dot, duplicate names and data on non-files', () => {
  assert.throws(() => writeCpioNewc([{ name: '/etc', mode: S_IFDIR | 0o755 }]), /bad entry name/);
  assert.throws(() => writeCpioNewc([{ name: 'a/../b', mode: S_IFDIR | 0o755 }]), /bad entry name/);
  assert.throws(() => writeCpioNewc([{ name: 'a', mode: S_IFDIR }, { name: 'a', mode: S_IFDIR }]), /duplicate/);
  assert.throws(() => writeCpioNewc([{ name: 'd', mode: S_IFDIR, data: 'x' }]), /has data/);
  assert.throws(() => buildDefaultInitramfs(new Uint8Array(10)), /not an ELF/);
});
