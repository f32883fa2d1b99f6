// `vpl011 replay <script>`: run a register-access script against a fresh vpl011 and print one line per step.
// The device is built the way a guest gets it: a Domain with the magic pages in a SharedArrayBuffer, vuart init at
// GFN 0x39003 (SPI 32, a real event channel to a backend domain 0), a SpiLevels vGIC. The script's backend steps act
// as xenconsoled: they use the ring's backend end and notify over the event channel; the domain's events are then
// dispatched to the device (as the vCPU thread would).
//
// Script: one step per line, `#` starts a comment (outside quotes), numbers are hex (0x..) or decimal.
//   profile sbsa|pl011        (before any other step)
//   write <off> <value> [width]    read <off> [width]    expect <off> <value> [width]     (width 1|2|4|8, default 4)
//   backend-in "<text with \n \r \t \\ \" \xNN escapes>" [quiet]    backend-drain [n] [quiet]    notify    irq [0|1]
// A backend step notifies the device (as xenconsoled does) unless `quiet`: then it only moves the data, and a later
// `notify` signals it (what `vpl011 trace` writes, where the device saw a move before the backend's event reached it).
//   expect-out "<bytes>"       (the backend drains all of OUT; it must be exactly these bytes)
// `irq 0|1` and `expect-out` are expectations like `expect`: a difference is a mismatch.
// Exit code: 0 all expectations met, 1 a mismatch, 2 a bad script.

import { GUEST_MAGIC_BASE, GUEST_PL011_BASE, GUEST_VUART_GFN, NR_MAGIC_PAGES, XEN_PAGE_SIZE } from '../xen/arch-arm.js';
import { Domain, type MmioAccess } from '../xen/domain.js';
import { EventChannels } from '../xen/evtchn.js';
import type { AccessWidth } from '../xen/mmio.js';
import { ConsoleRingBackend, XENCONS_OUT_SIZE } from '../xen/ring.js';
import { SpiLevels } from '../xen/spi-levels.js';
import { domainVpl011Init, vuartOf } from '../xen/vuart.js';
import type { Vpl011Profile } from '../device/vpl011.js';
import { printableLine, quote } from '../util/quote.js';
import { hex } from '../util/hex.js';
import { Vpl011Error } from '../util/errors.js';

/** A script of garbage gets this many error lines, then a count: its errors never flood the terminal. */
const MAX_ERRORS = 50;

type Step =
  | { line: number; op: 'read' | 'expect'; off: number; width: AccessWidth; value: number }
  | { line: number; op: 'write'; off: number; width: AccessWidth; value: number }
  | { line: number; op: 'backend-in'; bytes: Uint8Array; quiet: boolean }
  | { line: number; op: 'backend-drain'; max: number; quiet: boolean }
  | { line: number; op: 'notify' }
  | { line: number; op: 'expect-out'; bytes: Uint8Array }
  | { line: number; op: 'irq'; expect: 0 | 1 | undefined };

/** A line of the replay script that cannot be run; reported with its line number. */
class ScriptError extends Vpl011Error<'EINVAL'> {
  constructor(message: string) {
    super('EINVAL', message);
  }
}

function parseNumber(tok: string | undefined, what: string, max: number): number {
  if (tok === undefined) throw new ScriptError(`missing ${what}`);
  if (!/^(0[xX][0-9a-fA-F]+|[0-9]+)$/.test(tok)) throw new ScriptError(`bad ${what} ${quote(tok)}`);
  const v = Number(tok);
  if (!Number.isSafeInteger(v) || v > max) throw new ScriptError(`${what} ${quote(tok)} out of range (max 0x${max.toString(16)})`);
  return v;
}

function parseWidth(tok: string | undefined): AccessWidth {
  if (tok === undefined) return 4;
  const w = parseNumber(tok, 'width', 8);
  if (w !== 1 && w !== 2 && w !== 4 && w !== 8) throw new ScriptError(`bad width ${tok} (1, 2, 4 or 8)`);
  return w;
}

/** Split a line into tokens; a "..." token keeps its escapes raw. Strips a # comment outside quotes. */
function tokenize(text: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '#') break;
    if (c === ' ' || c === '\t' || c === '\r') {
      i++;
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (j >= text.length) throw new ScriptError('unterminated string');
      out.push(text.slice(i, j + 1));
      i = j + 1;
      continue;
    }
    let j = i;
    while (j < text.length && !' \t\r#"'.includes(text[j]!)) j++;
    out.push(text.slice(i, j));
    i = j;
  }
  return out;
}

function unescape(quoted: string): Uint8Array {
  const body = quoted.slice(1, -1);
  const bytes: number[] = [];
  const enc = new TextEncoder();
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c !== '\\') {
      const cp = body.codePointAt(i)!;
      const ch = String.fromCodePoint(cp);
      for (const b of enc.encode(ch)) bytes.push(b);
      i += ch.length - 1;
      continue;
    }
    const e = body[++i];
    if (e === 'n') bytes.push(0x0a);
    else if (e === 'r') bytes.push(0x0d);
    else if (e === 't') bytes.push(0x09);
    else if (e === '\\') bytes.push(0x5c);
    else if (e === '"') bytes.push(0x22);
    else if (e === 'x' && /^[0-9a-fA-F]{2}$/.test(body.slice(i + 1, i + 3))) {
      bytes.push(parseInt(body.slice(i + 1, i + 3), 16));
      i += 2;
    } else throw new ScriptError(`bad escape ${quote('\\' + (e ?? ''))}`);
  }
  return Uint8Array.from(bytes);
}

/** Bytes as a quoted string with the same escapes the script accepts; at most `max` bytes, then "…". */
export function quoteBytes(bytes: Uint8Array, max = Infinity): string {
  let s = '"';
  for (const [i, b] of bytes.entries()) {
    if (i >= max) return s + '"…';
    if (b === 0x0a) s += '\\n';
    else if (b === 0x0d) s += '\\r';
    else if (b === 0x09) s += '\\t';
    else if (b === 0x5c) s += '\\\\';
    else if (b === 0x22) s += '\\"';
    else if (b >= 0x20 && b < 0x7f) s += String.fromCharCode(b);
    else s += '\\x' + b.toString(16).padStart(2, '0');
  }
  return s + '"';
}

function parseScript(text: string): { steps: Step[]; errors: string[]; profile: Vpl011Profile } {
  const steps: Step[] = [];
  const errors: string[] = [];
  let profile: Vpl011Profile = 'sbsa';
  let sawStep = false;
  let moreErrors = 0;
  text.split('\n').forEach((raw, i) => {
    const line = i + 1;
    try {
      const t = tokenize(raw);
      if (t.length === 0) return;
      const [op, a, b, c] = t;
      const extra = (n: number): void => {
        if (t.length > n) throw new ScriptError(`unexpected ${quote(t[n]!)}`);
      };
      switch (op) {
        case 'profile':
          extra(2);
          if (sawStep) throw new ScriptError('profile must come before any other step');
          if (a !== 'sbsa' && a !== 'pl011') throw new ScriptError(`unknown profile ${quote(a ?? '')} (sbsa or pl011)`);
          profile = a;
          return;
        case 'read':
          extra(3);
          steps.push({ line, op: 'read', off: parseNumber(a, 'offset', 0xfff), width: parseWidth(b), value: 0 });
          break;
        case 'write':
        case 'expect':
          extra(4);
          steps.push({
            line,
            op,
            off: parseNumber(a, 'offset', 0xfff),
            value: parseNumber(b, 'value', 0xffffffff),
            width: parseWidth(c),
          });
          break;
        case 'backend-in':
          extra(3);
          if (a === undefined || !a.startsWith('"')) throw new ScriptError('backend-in needs a "quoted string"');
          if (b !== undefined && b !== 'quiet') throw new ScriptError(`unexpected ${quote(b)} (quiet?)`);
          steps.push({ line, op: 'backend-in', bytes: unescape(a), quiet: b === 'quiet' });
          break;
        case 'expect-out':
          extra(2);
          if (a === undefined || !a.startsWith('"')) throw new ScriptError('expect-out needs a "quoted string"');
          steps.push({ line, op: 'expect-out', bytes: unescape(a) });
          break;
        case 'backend-drain': {
          extra(3);
          const quiet = t[t.length - 1] === 'quiet' && t.length > 1;
          const n = quiet ? (t.length === 3 ? a : undefined) : a;
          if (quiet === false && b !== undefined) throw new ScriptError(`unexpected ${quote(b)}`);
          steps.push({ line, op: 'backend-drain', max: n === undefined ? XENCONS_OUT_SIZE : parseNumber(n, 'count', 1 << 20), quiet });
          break;
        }
        case 'notify':
          extra(1);
          steps.push({ line, op: 'notify' });
          break;
        case 'irq':
          extra(2);
          if (a !== undefined && a !== '0' && a !== '1') throw new ScriptError(`bad irq level ${quote(a)} (0 or 1)`);
          steps.push({ line, op: 'irq', expect: a === undefined ? undefined : a === '1' ? 1 : 0 });
          break;
        default:
          throw new ScriptError(`unknown step ${quote(op ?? '')}`);
      }
      sawStep = true;
    } catch (e) {
      if (!(e instanceof ScriptError)) throw e;
      if (errors.length < MAX_ERRORS) errors.push(printableLine(`line ${line}: ${e.message}`));
      else moreErrors++;
    }
  });
  if (moreErrors > 0) errors.push(`(${moreErrors} more errors not shown)`);
  return { steps, errors, profile };
}

const hex3 = (n: number): string => hex(n, 3);
const hex8 = (n: number): string => hex(n, 8);

/** A read whose value differs from the script's expectation. */
export interface ReadMismatch {
  line: number;
  off: number;
  width: AccessWidth;
  ours: number;
  expected: number;
}

export interface ReplayOptions {
  /** Only mismatches, aborts and the last line are written (a long imported trace). */
  mismatchesOnly?: boolean;
  /** Extra words for a read mismatch (e.g. which TRM clause decides it); appended to its line. */
  explain?: (m: ReadMismatch) => string | undefined;
  /** Extra words for an `irq` or `expect-out` mismatch, by script line. */
  explainLine?: (line: number) => string | undefined;
}

/** Run a replay script; `write` gets each output line. Returns the exit code (0 ok, 1 mismatch, 2 bad script). */
export function runReplay(scriptText: string, write: (line: string) => void, opts: ReplayOptions = {}): number {
  const out = write;
  const quietOk = opts.mismatchesOnly === true;
  const ok = (line: string): void => {
    if (!quietOk) out(line);
  };
  const { steps, errors, profile } = parseScript(scriptText);
  if (errors.length > 0) {
    for (const e of errors) write(e);
    return 2;
  }

  // A fresh machine: backend domain 0, guest domain 1 with the magic pages, vuart initialised as libxl does.
  const BACKEND = 0;
  const evtchn = EventChannels.create({ maxDomains: 2, portsPerDomain: 8 });
  const vgic = new SpiLevels();
  const d = new Domain({ domid: 1, name: 'replay', vgic, evtchn });
  const magic = new SharedArrayBuffer(NR_MAGIC_PAGES * XEN_PAGE_SIZE);
  d.addMemory({ name: 'magic', base: GUEST_MAGIC_BASE, size: magic.byteLength, buffer: magic, byteOffset: 0 });
  const port = domainVpl011Init(d, { consoleDomid: BACKEND, gfn: GUEST_VUART_GFN, profile });
  const inst = vuartOf(d)!;
  const page = d.mapGuestPage(GUEST_VUART_GFN);
  const backend = new ConsoleRingBackend(page.buffer, page.byteOffset);
  backend.setConnection(0);
  const bport = evtchn.bindInterdomain(BACKEND, d.domid, port, () => {});
  const deliver = (): void => {
    evtchn.notify(BACKEND, bport);
    evtchn.dispatch(d.domid); // what the vCPU thread does when its doorbell rings
  };

  const acc: MmioAccess = { addr: 0, width: 4, write: false, value: 0 };
  let failed = 0;
  for (const s of steps) {
    switch (s.op) {
      case 'read':
      case 'expect': {
        acc.addr = GUEST_PL011_BASE + s.off;
        acc.width = s.width;
        acc.write = false;
        acc.value = 0;
        const r = d.handleMmio(acc);
        if (s.op === 'read') {
          write(r === 'ok' ? `read ${hex3(s.off)} w${s.width} = ${hex8(acc.value)}` : `abort read ${hex3(s.off)} w${s.width}`);
        } else if (r !== 'ok') {
          failed++;
          write(`abort read ${hex3(s.off)} w${s.width} (line ${s.line}: expected ${hex8(s.value)})`);
        } else if (acc.value >>> 0 !== s.value >>> 0) {
          failed++;
          const why = opts.explain?.({ line: s.line, off: s.off, width: s.width, ours: acc.value >>> 0, expected: s.value >>> 0 });
          write(`expect ${hex3(s.off)} w${s.width} = ${hex8(acc.value)} MISMATCH (line ${s.line}: expected ${hex8(s.value)})${why ? `: ${why}` : ''}`);
        } else {
          ok(`expect ${hex3(s.off)} w${s.width} = ${hex8(acc.value)} ok`);
        }
        break;
      }
      case 'write': {
        acc.addr = GUEST_PL011_BASE + s.off;
        acc.width = s.width;
        acc.write = true;
        acc.value = s.value;
        const r = d.handleMmio(acc);
        if (r === 'ok') ok(`write ${hex3(s.off)} w${s.width} ${'0x' + s.value.toString(16)}`);
        else write(`abort write ${hex3(s.off)} w${s.width}`);
        break;
      }
      case 'backend-in': {
        const n = backend.writeIn(s.bytes);
        if (n > 0 && !s.quiet) deliver();
        if (n === s.bytes.length) ok(`in ${n} of ${s.bytes.length}`);
        else write(`in ${n} of ${s.bytes.length}`);
        break;
      }
      case 'backend-drain': {
        const got = backend.drainOut(s.max);
        if (got.length > 0 && !s.quiet) deliver();
        ok(`drained ${quoteBytes(got)}`);
        break;
      }
      case 'notify':
        deliver();
        ok('notified');
        break;
      case 'expect-out': {
        const got = backend.drainOut(XENCONS_OUT_SIZE);
        if (got.length > 0) deliver();
        const same = got.length === s.bytes.length && got.every((b, i) => b === s.bytes[i]);
        if (same) ok(`drained ${quoteBytes(got)} ok`);
        else {
          failed++;
          // What the script expects is shown up to what OUT can hold: anything longer cannot match anyway.
          const why = opts.explainLine?.(s.line);
          write(`drained ${quoteBytes(got)} MISMATCH (line ${s.line}: expected ${quoteBytes(s.bytes, XENCONS_OUT_SIZE)})${why ? `: ${why}` : ''}`);
        }
        break;
      }
      case 'irq': {
        const level = vgic.level(inst.spi) ? 1 : 0;
        if (s.expect === undefined) write(`irq ${level}`);
        else if (s.expect === level) ok(`irq ${level} ok`);
        else {
          failed++;
          const why = opts.explainLine?.(s.line);
          write(`irq ${level} MISMATCH (line ${s.line}: expected ${s.expect})${why ? `: ${why}` : ''}`);
        }
        break;
      }
    }
  }
  write(failed === 0 ? 'ok' : `failed ${failed}`);
  return failed === 0 ? 0 : 1;
}
