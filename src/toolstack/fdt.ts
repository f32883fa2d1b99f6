// A flattened-device-tree (DTB, version 17) writer: the job libfdt's sequential-write API does for libxl.
// Format per the Devicetree Specification v0.4, chapter 5: a 40-byte header, the memory reservation map
// (8-byte aligned, {u64 address, u64 size} pairs ended by a zero pair), the structure block (4-byte tokens)
// and the strings block (property names, NUL-terminated; each name stored once and shared by offset).

const FDT_MAGIC = 0xd00dfeed;
const FDT_BEGIN_NODE = 0x1;
const FDT_END_NODE = 0x2;
const FDT_PROP = 0x3;
const FDT_END = 0x9;
const FDT_VERSION = 17;
const FDT_LAST_COMP_VERSION = 16;
const HEADER_SIZE = 40;

// Devicetree spec 2.2.1 / 2.2.4: node names are 1-31 chars of [A-Za-z0-9,._+-] plus an optional @unit-address;
// property names are 1-31 chars of [A-Za-z0-9,._+?#-]. dtc only warns on longer names, so we do not cap length.
const NODE_NAME = /^[A-Za-z0-9,._+-]+(@[A-Za-z0-9,._+-]+)?$/;
const PROP_NAME = /^[A-Za-z0-9,._+?#-]+$/;

export type Cell64 = number | bigint;

function u64Bytes(values: readonly Cell64[]): Uint8Array {
  const out = new Uint8Array(values.length * 8);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => {
    const b = BigInt(v);
    if (b < 0n || b > 0xffff_ffff_ffff_ffffn) throw new RangeError(`fdt: u64 value out of range: ${v}`);
    view.setBigUint64(i * 8, b);
  });
  return out;
}

function u32Bytes(values: readonly number[]): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => {
    if (!Number.isInteger(v) || v < 0 || v > 0xffff_ffff) throw new RangeError(`fdt: u32 value out of range: ${v}`);
    view.setUint32(i * 4, v);
  });
  return out;
}

function stringBytes(list: readonly string[]): Uint8Array {
  for (const s of list) if (s.includes('\0')) throw new RangeError('fdt: string property contains NUL');
  return new TextEncoder().encode(list.map((s) => s + '\0').join(''));
}

/** One node of the tree: properties in insertion order, then children in insertion order. */
export class FdtNode {
  readonly props = new Map<string, Uint8Array>();
  readonly children: FdtNode[] = [];
  /** Set by Fdt.phandle(); 0 means none. */
  phandleValue = 0;

  constructor(readonly name: string) {
    if (name !== '' && !NODE_NAME.test(name)) throw new RangeError(`fdt: bad node name "${name}"`);
  }

  /** A raw property value. Duplicate names are refused: the spec requires them unique within a node. */
  bytes(name: string, value: Uint8Array): this {
    if (!PROP_NAME.test(name)) throw new RangeError(`fdt: bad property name "${name}" in node "${this.name}"`);
    if (this.props.has(name)) throw new Error(`fdt: duplicate property "${name}" in node "${this.name}"`);
    this.props.set(name, value.slice());
    return this;
  }

  /** A property with no value (a boolean, e.g. interrupt-controller). */
  empty(name: string): this {
    return this.bytes(name, new Uint8Array(0));
  }

  u32(name: string, ...cells: number[]): this {
    return this.bytes(name, u32Bytes(cells));
  }

  u64(name: string, ...values: Cell64[]): this {
    return this.bytes(name, u64Bytes(values));
  }

  string(name: string, value: string): this {
    return this.bytes(name, stringBytes([value]));
  }

  strings(name: string, ...values: string[]): this {
    if (values.length === 0) throw new RangeError(`fdt: empty string list "${name}"`);
    return this.bytes(name, stringBytes(values));
  }

  /** A "reg"-style list of (address, size) pairs, each 2 cells (the #address-cells = #size-cells = 2 convention). */
  reg64(name: string, ...pairs: Array<[Cell64, Cell64]>): this {
    return this.u64(name, ...pairs.flat());
  }

  /** Adds and returns a child node; names must be unique among siblings (spec 2.2.1). */
  child(name: string): FdtNode {
    if (name === '') throw new RangeError('fdt: only the root node has an empty name');
    if (this.children.some((c) => c.name === name)) throw new Error(`fdt: duplicate node "${name}" under "${this.name || '/'}"`);
    const node = new FdtNode(name);
    this.children.push(node);
    return node;
  }
}

export interface MemReservation {
  address: Cell64;
  size: Cell64;
}

/** A whole tree plus its header fields. */
export class Fdt {
  readonly root = new FdtNode('');
  readonly reservations: MemReservation[] = [];
  bootCpuidPhys = 0;
  private nextPhandle = 1;

  /** Gives `node` a phandle (once) and returns it; the "phandle" property is written by serialize(). */
  phandle(node: FdtNode): number {
    if (node.phandleValue === 0) {
      if (node.props.has('phandle')) throw new Error(`fdt: node "${node.name}" already has a phandle property`);
      node.phandleValue = this.nextPhandle++;
    }
    return node.phandleValue;
  }

  serialize(): Uint8Array {
    return serializeFdt(this);
  }
}

class ByteSink {
  private buf = new Uint8Array(1024);
  length = 0;

  private grow(extra: number): void {
    if (this.length + extra <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.length + extra) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  u32(v: number): void {
    this.grow(4);
    new DataView(this.buf.buffer).setUint32(this.length, v >>> 0);
    this.length += 4;
  }

  bytes(b: Uint8Array): void {
    this.grow(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }

  align(n: number): void {
    const pad = (n - (this.length % n)) % n;
    this.grow(pad);
    this.buf.fill(0, this.length, this.length + pad);
    this.length += pad;
  }

  result(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

/** The strings block: each distinct name stored once (dedup), offsets in first-use order. */
class StringTable {
  private readonly offsets = new Map<string, number>();
  readonly sink = new ByteSink();

  offset(name: string): number {
    let off = this.offsets.get(name);
    if (off === undefined) {
      off = this.sink.length;
      this.offsets.set(name, off);
      this.sink.bytes(new TextEncoder().encode(name + '\0'));
    }
    return off;
  }
}

function writeNode(node: FdtNode, struct: ByteSink, strings: StringTable): void {
  struct.u32(FDT_BEGIN_NODE);
  struct.bytes(new TextEncoder().encode(node.name + '\0'));
  struct.align(4);
  const props: Array<[string, Uint8Array]> = [...node.props];
  if (node.phandleValue !== 0) props.push(['phandle', u32Bytes([node.phandleValue])]);
  for (const [name, value] of props) {
    struct.u32(FDT_PROP);
    struct.u32(value.length);
    struct.u32(strings.offset(name));
    struct.bytes(value);
    struct.align(4);
  }
  for (const c of node.children) writeNode(c, struct, strings);
  struct.u32(FDT_END_NODE);
}

export function serializeFdt(fdt: Fdt): Uint8Array {
  const struct = new ByteSink();
  const strings = new StringTable();
  writeNode(fdt.root, struct, strings);
  struct.u32(FDT_END);

  const rsv = new ByteSink();
  for (const r of fdt.reservations) rsv.bytes(u64Bytes([r.address, r.size]));
  rsv.bytes(u64Bytes([0, 0]));

  const offRsv = HEADER_SIZE; // already 8-byte aligned
  const offStruct = offRsv + rsv.length;
  const offStrings = offStruct + struct.length;
  const total = offStrings + strings.sink.length;

  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  const header = [FDT_MAGIC, total, offStruct, offStrings, offRsv, FDT_VERSION, FDT_LAST_COMP_VERSION,
    fdt.bootCpuidPhys, strings.sink.length, struct.length];
  header.forEach((v, i) => view.setUint32(i * 4, v));
  out.set(rsv.result(), offRsv);
  out.set(struct.result(), offStruct);
  out.set(strings.sink.result(), offStrings);
  return out;
}
