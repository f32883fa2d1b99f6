// Guest config parsing (src/toolstack/config.ts): xl.cfg(5)-like syntax, validation, and errors that name the
// field and file:line, all of them collected.
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, DEFAULT_CMDLINE, MAX_ISSUES, MEMORY_MAX_MIB, defaultGuestConfig, loadConfig, parseConfig } from '../src/toolstack/config.js';

// dist/test/x.js -> the source fixtures folder (fixtures are not compiled).
const fixtures = resolve(fileURLToPath(import.meta.url), '../../../test/fixtures/configs');

function issuesOf(fn: () => unknown): ConfigError['issues'] {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${String(e)}`);
    return e.issues;
  }
  assert.fail('expected a ConfigError');
}

test('a complete config parses; relative kernel/ramdisk paths resolve against the config file folder', () => {
  const c = loadConfig(join(fixtures, 'good.cfg'));
  assert.equal(c.name, 'demo');
  assert.equal(c.kind, 'linux');
  assert.equal(c.kernel, join(fixtures, 'kernel.bin'));
  assert.equal(c.ramdisk, join(fixtures, 'initrd.bin'));
  assert.equal(c.cmdline, 'console=ttyAMA0 earlycon loglevel=8');
  assert.equal(c.memoryMiB, 256);
  assert.equal(c.vcpus, 1);
  assert.equal(c.vuart, 'sbsa_uart');
  assert.equal(c.mmioPolicy, 'crash-domain');
  assert.equal(c.source, join(fixtures, 'good.cfg'));
});

test('every problem is reported, each naming its field and file:line', () => {
  const file = join(fixtures, 'bad.cfg');
  const issues = issuesOf(() => loadConfig(file));
  const byField = new Map(issues.map((i) => [i.field, i]));
  const expect: Array<[string, number, RegExp]> = [
    ['name', 1, /must be 1-64 characters/],
    ['kernel', 2, /missing-kernel: no such file/],
    ['memory', 3, /8 MiB is outside 16\.\./],
    ['vcpus', 4, /only 1 vCPU is supported \(got 2\)/],
    ['vuart', 5, /"16550" is not one of "sbsa_uart", "pl011"/],
    ['mmio_policy', 6, /"ignore" is not one of "abort", "crash-domain"/],
    ['colour', 7, /unknown key \(known keys: name, kind, kernel, ramdisk, extra, cmdline, memory, vcpus, vuart, mmio_policy, layout, firmware, rx_overrun\)/],
    ['kind', 8, /expects a quoted string, got the integer 3/],
    ['extra', 9, /expects a quoted string, got a list/],
  ];
  for (const [field, line, re] of expect) {
    const i = byField.get(field);
    assert.ok(i, `no issue for ${field}; got ${issues.map((x) => x.field).join(',')}`);
    assert.equal(i.line, line, field);
    assert.equal(i.file, file);
    assert.match(i.message, re);
  }
  assert.equal(issues.length, expect.length);
  // The error text is one "file:line: field: message" per problem.
  const err = (() => { try { loadConfig(file); } catch (e) { return e as Error; } return undefined; })();
  assert.match(err!.message, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:4: vcpus: `, 'm'));
});

test('syntax errors name the key and line and do not stop the scan', () => {
  const issues = issuesOf(() => loadConfig(join(fixtures, 'syntax.cfg')));
  const got = issues.map((i) => `${i.line}:${i.field}`);
  assert.deepEqual(got, ['3:memory', '4:vuart', '5:cmdline', '6:extra']);
  assert.match(issues[0]!.message, /expected "=" after the key/);
  assert.match(issues[1]!.message, /unterminated string/);
  assert.match(issues[2]!.message, /not a quoted string, an integer or a list/);
  assert.match(issues[3]!.message, /unexpected text after the value/);
});

test('xl syntax: comments, both quote styles, hex integers, multi-line lists, ";" separators', () => {
  const text = [
    '# comment', 'kernel = "/k" # trailing comment', "name='x1'", 'memory = 0x100;', 'cmdline = "a # not a comment"',
  ].join('\n');
  const c = parseConfig(text, '/cfg/x.cfg', { checkFiles: false });
  assert.equal(c.name, 'x1');
  assert.equal(c.memoryMiB, 256);
  assert.equal(c.cmdline, 'a # not a comment');
  // A list spanning lines is parsed (then refused by type, at the line where the key starts).
  const issues = issuesOf(() => parseConfig('kernel = "/k"\nextra = [ "a",\n  "b" ]\nvuart = "nope"\n', '/c.cfg', { checkFiles: false }));
  assert.deepEqual(issues.map((i) => `${i.line}:${i.field}`), ['2:extra', '4:vuart']);
});

test('defaults: cmdline, memory, vuart, policy and a name from the file name; kernel is required', () => {
  const c = parseConfig('kernel = "/boot/Image"\n', '/guests/my-guest.cfg', { checkFiles: false });
  assert.equal(c.name, 'my-guest');
  assert.equal(c.cmdline, DEFAULT_CMDLINE);
  assert.equal(c.memoryMiB, 512);
  assert.equal(c.vuart, 'sbsa_uart');
  assert.equal(c.mmioPolicy, 'abort');
  assert.equal(c.ramdisk, undefined);
  const issues = issuesOf(() => parseConfig('memory = 64\n', '/g.cfg', { checkFiles: false }));
  assert.deepEqual(issues.map((i) => [i.field, i.message]), [['kernel', 'is required']]);
});

test('bounds and combinations: memory range, cmdline vs extra, ramdisk with bare, pl011 profile accepted', () => {
  const one = (t: string) => issuesOf(() => parseConfig(`kernel = "/k"\n${t}\n`, '/g.cfg', { checkFiles: false }));
  assert.equal(one(`memory = ${MEMORY_MAX_MIB + 1}`)[0]!.field, 'memory');
  assert.equal(parseConfig(`kernel = "/k"\nmemory = ${MEMORY_MAX_MIB}\n`, '/g.cfg', { checkFiles: false }).memoryMiB, MEMORY_MAX_MIB);
  assert.deepEqual(one('extra = "a"\ncmdline = "b"').map((i) => i.field), ['cmdline']);
  assert.deepEqual(one('kind = "bare"\nramdisk = "/r"').map((i) => i.field), ['ramdisk']);
  assert.deepEqual(one('memory = 64\nmemory = 128').map((i) => [i.field, i.line]), [['memory', 3]]);
  assert.equal(parseConfig('kernel = "/k"\nvuart = "pl011"\n', '/g.cfg', { checkFiles: false }).vuart, 'pl011');
  assert.equal(parseConfig('kernel = "/k"\nkind = "bare"\n', '/g.cfg', { checkFiles: false }).cmdline, '');
});

test('the built-in default guest: Debian kernel + busybox initramfs, console=ttyAMA0 earlycon, 512 MiB, sbsa_uart', () => {
  const c = defaultGuestConfig({ kernel: '/c/Image', initrd: '/c/initramfs.cpio.gz' });
  assert.deepEqual(
    [c.kernel, c.ramdisk, c.cmdline, c.memoryMiB, c.vuart, c.kind, c.vcpus],
    ['/c/Image', '/c/initramfs.cpio.gz', 'console=ttyAMA0 earlycon', 512, 'sbsa_uart', 'linux', 1],
  );
});

test('a file of garbage: the scan stops after MAX_ISSUES problems, the message shows 20 and a count, in linear time', { timeout: 20_000 }, () => {
  // 300,000 bad lines: the old scanner copied the rest of the text for each one (quadratic) and listed them all.
  const text = 'x\n'.repeat(300_000);
  const t = Date.now();
  let err: ConfigError | undefined;
  try {
    parseConfig(text, '/junk.cfg', { checkFiles: false });
  } catch (e) {
    err = e as ConfigError;
  }
  assert.ok(err instanceof ConfigError);
  assert.ok(err.issues.length <= MAX_ISSUES + 2, `${err.issues.length} issues`);
  assert.ok(err.issues.some((i) => /too many problems; stopped reading at line/.test(i.message)));
  const lines = err.message.split('\n');
  assert.equal(lines.length, 21);
  assert.match(lines[20]!, /^\(\d+ more problems not shown\)$/);
  assert.ok(Date.now() - t < 5000, `took ${Date.now() - t} ms`);
});
