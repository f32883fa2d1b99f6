// The FDT writer (src/toolstack/fdt.ts) and the guest tree (src/toolstack/guest-dt.ts), checked with dtc, the
// reference implementation (Devicetree Specification v0.4 ch. 5; libxl's make_vpl011_uart_node for the UART node).
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { Fdt, type FdtNode } from '../src/toolstack/fdt.js';
import { buildGuestDt } from '../src/toolstack/guest-dt.js';

const work = mkdtempSync(join(tmpdir(), 'vpl011-fdt-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
let seq = 0;

function dtc(input: Uint8Array | string, from: 'dtb' | 'dts', to: 'dts' | 'dtb'): Buffer {
  const file = join(work, `in-${seq++}.${from}`);
  writeFileSync(file, input);
  const r = spawnSync('dtc', ['-q', '-I', from, '-O', to, file]);
  assert.equal(r.status, 0, `dtc -I ${from} failed: ${r.stderr?.toString()}`);
  return r.stdout;
}

function dts(dtb: Uint8Array): string {
  return dtc(dtb, 'dtb', 'dts').toString();
}

/** A DTS string literal, escaped as dtc's lexer reads it. */
function dtsString(v: string): string {
  return '"' + [...v].map((ch) => {
    const c = ch.charCodeAt(0);
    if (ch === '"' || ch === '\\') return '\\' + ch;
    return c < 0x20 || c > 0x7e ? `\\x${c.toString(16).padStart(2, '0')}` : ch;
  }).join('') + '"';
}

test('header: DTB v17 magic, version, offsets and sizes that add up (spec 5.2)', () => {
  const fdt = new Fdt();
  fdt.root.u32('#address-cells', 2).string('model', 'x');
  fdt.reservations.push({ address: 0x48000000, size: 0x1000 });
  const b = fdt.serialize();
  const v = new DataView(b.buffer);
  const [magic, total, offStruct, offStrings, offRsv, version, lastComp, , sizeStrings, sizeStruct] =
    Array.from({ length: 10 }, (_, i) => v.getUint32(i * 4));
  assert.equal(magic, 0xd00dfeed);
  assert.equal(total, b.length);
  assert.equal(version, 17);
  assert.equal(lastComp, 16);
  assert.equal(offRsv % 8, 0);
  assert.equal(offStruct, offRsv + 2 * 16, 'one reservation plus the terminating pair');
  assert.equal(offStrings, offStruct + sizeStruct!);
  assert.equal(offStrings! + sizeStrings!, total);
  assert.equal(v.getBigUint64(offRsv!), 0x48000000n);
  assert.match(dtc(b, 'dtb', 'dts').toString(), /\/memreserve\/\s+0x(0+)?48000000 0x(0+)?1000;/);
});

test('strings block: a property name used by many nodes is stored once (dedup)', () => {
  const fdt = new Fdt();
  for (let i = 0; i < 5; i++) fdt.root.child(`n${i}`).string('compatible', `c${i}`);
  fdt.root.string('compatible', 'root');
  const b = fdt.serialize();
  const v = new DataView(b.buffer);
  const strings = Buffer.from(b.subarray(v.getUint32(12), v.getUint32(12) + v.getUint32(32))).toString('latin1');
  assert.equal(strings, 'compatible\0');
  assert.equal((dts(b).match(/compatible = /g) ?? []).length, 6);
});

test('phandles: allocated once per node, unique, written as a "phandle" property dtc resolves', () => {
  const fdt = new Fdt();
  const a = fdt.root.child('a');
  const b = fdt.root.child('b');
  const pa = fdt.phandle(a);
  assert.equal(fdt.phandle(a), pa);
  const pb = fdt.phandle(b);
  assert.notEqual(pa, pb);
  fdt.root.u32('interrupt-parent', pb);
  const text = dts(fdt.serialize());
  assert.match(text, new RegExp(`b \\{\\s+phandle = <0x0?${pb.toString(16)}>;`));
});

test('the writer refuses what the spec forbids: duplicate names, bad characters, out-of-range cells, NUL in strings', () => {
  const fdt = new Fdt();
  fdt.root.child('x');
  assert.throws(() => fdt.root.child('x'), /duplicate node/);
  fdt.root.u32('p', 1);
  assert.throws(() => fdt.root.u32('p', 2), /duplicate property/);
  assert.throws(() => fdt.root.child('bad name'), /bad node name/);
  assert.throws(() => fdt.root.u32('bad name', 1), /bad property name/);
  assert.throws(() => fdt.root.u32('q', 2 ** 32), /out of range/);
  assert.throws(() => fdt.root.u64('q', -1), /out of range/);
  assert.throws(() => fdt.root.string('q', 'a\0b'), /NUL/);
});

test('random trees round-trip through dtc byte for byte (our DTB and dtc\'s compile of the same tree decompile alike)', () => {
  const nodeName = fc.stringMatching(/^[a-z][a-z0-9,._+-]{0,12}(@[0-9a-f]{1,8})?$/).map((s) => `n${s}`);
  const propName = fc.stringMatching(/^[a-z][a-z0-9,._+#-]{0,12}$/).map((s) => `p${s}`);
  type Prop = { name: string; kind: 'u32' | 'u64' | 'str' | 'strs' | 'bytes' | 'empty'; v: unknown };
  const prop: fc.Arbitrary<Prop> = fc.oneof(
    fc.record({ name: propName, kind: fc.constant('u32' as const), v: fc.array(fc.nat({ max: 0xffffffff }), { minLength: 1, maxLength: 6 }) }),
    fc.record({ name: propName, kind: fc.constant('u64' as const), v: fc.array(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), { minLength: 1, maxLength: 3 }) }),
    fc.record({ name: propName, kind: fc.constant('str' as const), v: fc.string({ unit: 'grapheme-ascii', maxLength: 20 }).filter((s) => !s.includes('\0')) }),
    fc.record({ name: propName, kind: fc.constant('strs' as const), v: fc.array(fc.stringMatching(/^[ -~]{0,10}$/), { minLength: 1, maxLength: 4 }) }),
    fc.record({ name: propName, kind: fc.constant('bytes' as const), v: fc.uint8Array({ minLength: 1, maxLength: 24 }) }),
    fc.record({ name: propName, kind: fc.constant('empty' as const), v: fc.constant(null) }),
  );
  type Tree = { props: Prop[]; children: Array<{ name: string; tree: Tree }> };
  // Depth-bounded recursion: at most 3 levels below the root.
  const treeAt = (depth: number): fc.Arbitrary<Tree> => fc.record({
    props: fc.uniqueArray(prop, { selector: (p) => p.name, maxLength: 5 }),
    children: depth === 0 ? fc.constant([]) : fc.uniqueArray(fc.record({ name: nodeName, tree: treeAt(depth - 1) }), { selector: (c) => c.name, maxLength: 3 }),
  });
  const tree = treeAt(3);
  const build = (node: FdtNode, t: Tree, fdt: Fdt, phandles: boolean) => {
    for (const p of t.props) {
      if (p.kind === 'u32') node.u32(p.name, ...(p.v as number[]));
      else if (p.kind === 'u64') node.u64(p.name, ...(p.v as bigint[]));
      else if (p.kind === 'str') node.string(p.name, p.v as string);
      else if (p.kind === 'strs') node.strings(p.name, ...(p.v as string[]));
      else if (p.kind === 'bytes') node.bytes(p.name, p.v as Uint8Array);
      else node.empty(p.name);
    }
    if (phandles) fdt.phandle(node);
    for (const c of t.children) build(node.child(c.name), c.tree, fdt, phandles);
  };
  /** The same tree written as DTS source, in dtc's own value syntax: a check of our value encoders too. */
  let nextPh = 1;
  const render = (t: Tree, indent: string, phandles: boolean): string => {
    const lines: string[] = [];
    for (const p of t.props) {
      const v = p.v;
      let value = '';
      if (p.kind === 'u32') value = `<${(v as number[]).map((x) => `0x${x.toString(16)}`).join(' ')}>`;
      else if (p.kind === 'u64') value = `/bits/ 64 <${(v as bigint[]).map((x) => `0x${x.toString(16)}`).join(' ')}>`;
      else if (p.kind === 'str') value = dtsString(v as string);
      else if (p.kind === 'strs') value = (v as string[]).map(dtsString).join(', ');
      else if (p.kind === 'bytes') value = `[${[...(v as Uint8Array)].map((b) => b.toString(16).padStart(2, '0')).join(' ')}]`;
      lines.push(p.kind === 'empty' ? `${indent}${p.name};` : `${indent}${p.name} = ${value};`);
    }
    if (phandles) lines.push(`${indent}phandle = <${nextPh++}>;`);
    for (const c of t.children) lines.push(`${indent}${c.name} {`, render(c.tree, indent + '  ', phandles), `${indent}};`);
    return lines.join('\n');
  };
  fc.assert(
    fc.property(tree, fc.boolean(), (t, phandles) => {
      const fdt = new Fdt();
      build(fdt.root, t, fdt, phandles);
      const ours = dts(fdt.serialize());
      nextPh = 1;
      const reference = dts(dtc(`/dts-v1/;\n/ {\n${render(t, '  ', phandles)}\n};\n`, 'dts', 'dtb'));
      assert.equal(ours, reference);
    }),
    { numRuns: 40 },
  );
});

test('guest DT: libxl\'s sbsa-pl011 node exactly, with stdout-path pointing at it', () => {
  const text = dts(buildGuestDt({ ramBase: 0x40000000, ramSize: 512 << 20, bootargs: 'console=ttyAMA0 earlycon', vuart: 'sbsa_uart' }));
  const node = /\n\tsbsa-pl011 \{\n([^}]*)\};/.exec(text);
  assert.ok(node, text);
  assert.deepEqual(node[1]!.trim().split('\n').map((l) => l.trim()), [
    'compatible = "arm,sbsa-uart";',
    'reg = <0x00 0x22000000 0x00 0x1000>;',
    'interrupts = <0x00 0x00 0xf04>;',
    'current-speed = <0x1c200>;',
  ]);
  assert.match(text, /chosen \{\s+bootargs = "console=ttyAMA0 earlycon";\s+stdout-path = "\/sbsa-pl011";/);
  assert.doesNotMatch(text, /linux,initrd/);
});

test('guest DT: root, cpus/psci, memory, GICv2, timer and initrd as the arm64 boot protocol and libxl need them', () => {
  const text = dts(buildGuestDt({ ramBase: 0x40000000, ramSize: 256 << 20, bootargs: 'x', vuart: 'sbsa_uart', initrd: { start: 0x4e000000, end: 0x4e123456 } }));
  assert.match(text, /compatible = "xen,xenvm-4.20\\0xen,xenvm";/);
  assert.match(text, /#address-cells = <0x02>;\s+#size-cells = <0x02>;\s+interrupt-parent = <0x01>;/);
  assert.match(text, /linux,initrd-start = <0x00 0x4e000000>;\s+linux,initrd-end = <0x00 0x4e123456>;/);
  assert.match(text, /cpu@0 \{\s+device_type = "cpu";\s+compatible = "arm,armv8";\s+reg = <0x00>;\s+enable-method = "psci";/);
  assert.match(text, /psci \{\s+compatible = "arm,psci-1.0\\0arm,psci-0.2";\s+method = "hvc";/);
  assert.match(text, /memory@40000000 \{\s+device_type = "memory";\s+reg = <0x00 0x40000000 0x00 0x10000000>;/);
  assert.match(text, /interrupt-controller@3001000 \{\s+compatible = "arm,cortex-a15-gic";\s+#interrupt-cells = <0x03>;\s+#address-cells = <0x00>;\s+interrupt-controller;\s+reg = <0x00 0x3001000 0x00 0x1000 0x00 0x3002000 0x00 0x2000>;\s+phandle = <0x01>;/);
  assert.match(text, /timer \{\s+compatible = "arm,armv8-timer";\s+interrupts = <0x01 0x0d 0xf08 0x01 0x0e 0xf08 0x01 0x0b 0xf08>;\s+always-on;/);
});

test('guest DT, pl011 profile: an AMBA PrimeCell node with apb_pclk for Linux\'s amba-pl011 and U-Boot', () => {
  const text = dts(buildGuestDt({ ramBase: 0x40000000, ramSize: 256 << 20, bootargs: 'x', vuart: 'pl011' }));
  assert.match(text, /stdout-path = "\/pl011@22000000";/);
  assert.match(text, /apb-pclk \{\s+compatible = "fixed-clock";\s+#clock-cells = <0x00>;\s+clock-frequency = <0x16e3600>;[^}]*phandle = <0x02>;/);
  assert.match(text, /pl011@22000000 \{\s+compatible = "arm,pl011\\0arm,primecell";\s+reg = <0x00 0x22000000 0x00 0x1000>;\s+interrupts = <0x00 0x00 0xf04>;\s+clocks = <0x02 0x02>;\s+clock-names = "uartclk\\0apb_pclk";/);
  assert.doesNotMatch(text, /sbsa/);
});
