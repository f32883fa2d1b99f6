// The saved-domain container (docs/SAVE.md): a magic, the format version, then named sections, each with its
// length and a SHA-256 of its bytes. Parsing checks the whole file (magic, version, every length against what is
// left, every checksum, no trailing bytes, no unknown or repeated section) before anything reads a section, and
// refuses with a one-line SaveFormatError. What the sections mean is saved-domain.ts's business.
//
//   0   "VPL011SV"                 8 bytes
//   8   format version             u32 LE (SAVE_FORMAT_VERSION)
//   12  section count              u32 LE
//   16  sections, each:  name length u8 (1..32), name (ASCII [a-z0-9-]), payload length u64 LE,
//                        SHA-256 of the payload (32 bytes), payload
import { createHash } from 'node:crypto';
import { Vpl011Error } from '../util/errors.js';

export const SAVE_MAGIC = Buffer.from('VPL011SV', 'ascii');
/** Bumped on any incompatible change of the container or of a section's meaning. */
export const SAVE_FORMAT_VERSION = 1;
const MAX_SECTIONS = 64;
const NAME_RE = /^[a-z0-9-]{1,32}$/;

/** A saved file that cannot be used, with the reason in one line. */
export class SaveFormatError extends Vpl011Error<'EINVAL'> {
  constructor(message: string) {
    super('EINVAL', message);
  }
}

export interface Section {
  name: string;
  data: Uint8Array;
}

const sha256 = (b: Uint8Array): Buffer => createHash('sha256').update(b).digest();

export function encodeSections(sections: readonly Section[]): Buffer {
  if (sections.length > MAX_SECTIONS) throw new RangeError(`save: ${sections.length} sections (at most ${MAX_SECTIONS})`);
  const parts: Uint8Array[] = [];
  const head = Buffer.alloc(16);
  SAVE_MAGIC.copy(head, 0);
  head.writeUInt32LE(SAVE_FORMAT_VERSION, 8);
  head.writeUInt32LE(sections.length, 12);
  parts.push(head);
  for (const s of sections) {
    if (!NAME_RE.test(s.name)) throw new RangeError(`save: bad section name ${s.name}`);
    const h = Buffer.alloc(1 + s.name.length + 8 + 32);
    h.writeUInt8(s.name.length, 0);
    h.write(s.name, 1, 'ascii');
    h.writeBigUInt64LE(BigInt(s.data.length), 1 + s.name.length);
    sha256(s.data).copy(h, 1 + s.name.length + 8);
    parts.push(h, s.data);
  }
  return Buffer.concat(parts);
}

/**
 * Parse and check a container. `known` lists the section names this version reads, each required exactly once.
 * Returns the sections by name (views into `buf`).
 */
export function decodeSections(buf: Uint8Array, known: readonly string[]): Map<string, Uint8Array> {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < 16 || !b.subarray(0, 8).equals(SAVE_MAGIC)) {
    throw new SaveFormatError(b.length < 8 ? 'not a vpl011 saved domain (too short for the header)' : 'not a vpl011 saved domain (bad magic)');
  }
  const version = b.readUInt32LE(8);
  if (version > SAVE_FORMAT_VERSION) {
    throw new SaveFormatError(`saved by a newer vpl011 (format ${version}; this one reads format ${SAVE_FORMAT_VERSION})`);
  }
  if (version !== SAVE_FORMAT_VERSION) throw new SaveFormatError(`unsupported format ${version} (this vpl011 reads format ${SAVE_FORMAT_VERSION})`);
  const count = b.readUInt32LE(12);
  if (count > MAX_SECTIONS) throw new SaveFormatError(`corrupt header: ${count} sections`);
  const out = new Map<string, Uint8Array>();
  let at = 16;
  for (let i = 0; i < count; i++) {
    if (at + 1 > b.length) throw new SaveFormatError(`truncated: section ${i + 1} of ${count} is missing`);
    const nameLen = b.readUInt8(at);
    if (nameLen < 1 || nameLen > 32 || at + 1 + nameLen + 40 > b.length) {
      throw new SaveFormatError(nameLen < 1 || nameLen > 32 ? `corrupt: section ${i + 1} has a bad name length` : `truncated: section ${i + 1} header`);
    }
    const name = b.toString('latin1', at + 1, at + 1 + nameLen);
    if (!NAME_RE.test(name)) throw new SaveFormatError(`corrupt: section ${i + 1} has a bad name`);
    const len = b.readBigUInt64LE(at + 1 + nameLen);
    const sum = b.subarray(at + 1 + nameLen + 8, at + 1 + nameLen + 40);
    const start = at + 1 + nameLen + 40;
    if (len > BigInt(b.length - start)) throw new SaveFormatError(`truncated: section ${name} needs ${len} bytes, ${b.length - start} left`);
    const data = b.subarray(start, start + Number(len));
    if (!sha256(data).equals(sum)) throw new SaveFormatError(`corrupt: section ${name} fails its checksum`);
    if (!known.includes(name)) throw new SaveFormatError(`unknown section ${name} (format ${version})`);
    if (out.has(name)) throw new SaveFormatError(`corrupt: section ${name} appears twice`);
    out.set(name, data);
    at = start + Number(len);
  }
  if (at !== b.length) throw new SaveFormatError(`corrupt: ${b.length - at} bytes after the last section`);
  const missing = known.find((n) => !out.has(n));
  if (missing !== undefined) throw new SaveFormatError(`corrupt: section ${missing} is missing`);
  return out;
}
