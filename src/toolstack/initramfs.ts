// The initramfs: a cpio "newc" archive (Linux Documentation/driver-api/early-userspace/buffer-format.rst, the
// only format the kernel unpacks), gzip-compressed with node:zlib. The default one holds Debian's static busybox.
import { gzipSync } from 'node:zlib';

export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_IFCHR = 0o020000;

export interface CpioEntry {
  /** Path inside the archive, without a leading "/" (as `find . | cpio` would give, minus "./"). */
  name: string;
  /** File type bits (S_IF*) | permissions. */
  mode: number;
  /** File contents, or the target of a symlink. */
  data?: Uint8Array | string;
  uid?: number;
  gid?: number;
  mtime?: number;
  /** For device nodes. */
  rdevMajor?: number;
  rdevMinor?: number;
}

const NEWC_MAGIC = '070701';
const TRAILER = 'TRAILER!!!';

function field(v: number, what: string, name: string): string {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff_ffff) throw new RangeError(`cpio: ${what} ${v} of "${name}" does not fit 8 hex digits`);
  return v.toString(16).padStart(8, '0');
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

/** Writes the entries, in order, followed by the TRAILER!!! record. Directories must precede their contents. */
export function writeCpioNewc(entries: readonly CpioEntry[]): Uint8Array {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [];
  let total = 0;
  const push = (b: Uint8Array) => {
    parts.push(b);
    total += b.length;
  };
  const record = (e: CpioEntry, ino: number) => {
    const name = enc.encode(e.name + '\0');
    const data = typeof e.data === 'string' ? enc.encode(e.data) : (e.data ?? new Uint8Array(0));
    const type = e.mode & S_IFMT;
    if (data.length > 0 && type !== S_IFREG && type !== S_IFLNK) throw new Error(`cpio: "${e.name}" has data but is not a file or symlink`);
    const isDir = type === S_IFDIR;
    const header = NEWC_MAGIC
      + field(ino, 'ino', e.name)
      + field(e.mode, 'mode', e.name)
      + field(e.uid ?? 0, 'uid', e.name)
      + field(e.gid ?? 0, 'gid', e.name)
      + field(isDir ? 2 : 1, 'nlink', e.name)
      + field(e.mtime ?? 0, 'mtime', e.name)
      + field(data.length, 'filesize', e.name)
      + field(0, 'devmajor', e.name)
      + field(0, 'devminor', e.name)
      + field(e.rdevMajor ?? 0, 'rdevmajor', e.name)
      + field(e.rdevMinor ?? 0, 'rdevminor', e.name)
      + field(name.length, 'namesize', e.name)
      + field(0, 'check', e.name);
    push(enc.encode(header));
    push(name);
    // The name is padded so that header + name is a multiple of 4; the data likewise.
    push(new Uint8Array(pad4(header.length + name.length)));
    push(data);
    push(new Uint8Array(pad4(data.length)));
  };
  const seen = new Set<string>();
  entries.forEach((e, k) => {
    if (e.name === '' || e.name.startsWith('/') || e.name.split('/').includes('..')) throw new Error(`cpio: bad entry name "${e.name}"`);
    if (seen.has(e.name)) throw new Error(`cpio: duplicate entry "${e.name}"`);
    seen.add(e.name);
    record(e, k + 1);
  });
  record({ name: TRAILER, mode: 0 }, 0);
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** /init of the default guest: a busybox shell script (runs as PID 1 with only the kernel's /dev/console). */
export const DEFAULT_INIT = `#!/bin/busybox sh
# vpl011 default guest: Debian's busybox-static on the vpl011 console.
/bin/busybox --install -s
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo
echo "vpl011 guest: $(uname -sr) on $(cat /sys/class/tty/console/active 2>/dev/null), busybox $(busybox | head -n 1 | cut -d' ' -f2)"
echo "poweroff -f leaves the guest."
# A new session with the console tty as controlling terminal, so job control and ^C work (busybox cttyhack).
exec setsid cttyhack sh -l
`;

/** The default initramfs: busybox at /bin/busybox, /init, /dev/console (c 5 1) and the usual empty folders. */
export function buildDefaultInitramfs(busybox: Uint8Array, init: string = DEFAULT_INIT): Uint8Array {
  if (busybox.length < 4 || busybox[0] !== 0x7f || busybox[1] !== 0x45) throw new Error('initramfs: busybox is not an ELF executable');
  const dir = (name: string): CpioEntry => ({ name, mode: S_IFDIR | 0o755 });
  const entries: CpioEntry[] = [
    dir('bin'), dir('sbin'), dir('usr'), dir('usr/bin'), dir('usr/sbin'), dir('etc'),
    dir('proc'), dir('sys'), dir('dev'), dir('root'), { name: 'tmp', mode: S_IFDIR | 0o1777 },
    // The kernel opens /dev/console for init's stdio before init can mount devtmpfs.
    { name: 'dev/console', mode: S_IFCHR | 0o600, rdevMajor: 5, rdevMinor: 1 },
    { name: 'bin/busybox', mode: S_IFREG | 0o755, data: busybox },
    { name: 'bin/sh', mode: S_IFLNK | 0o777, data: 'busybox' },
    { name: 'init', mode: S_IFREG | 0o755, data: init },
  ];
  return gzipSync(writeCpioNewc(entries), { level: 6 });
}
