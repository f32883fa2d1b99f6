// Guest configuration: an xl.cfg-like text (xl.cfg(5) syntax: `key = value`, `#` comments, "quoted" or 'quoted'
// strings, integers, [ "a", "b" ] lists) parsed into a validated GuestConfig. The text is user input: every
// problem is collected (not just the first) and reported as file:line: field: message. The same rules check a
// config built from command-line options (checkGuestConfig): one source of truth for what a valid guest is.
// Quoted values are escaped and capped (src/util/quote.ts): a config's bytes never reach the terminal raw.
import { existsSync, statSync } from 'node:fs';
import { basename, dirname, extname, isAbsolute, resolve } from 'node:path';
import type { VuartProfile } from './guest-dt.js';
import { GUEST_RAM0_SIZE, LAYOUT_NAMES, type LayoutName } from './guest-map.js';
import { FileReadError, READ_CAP, readRegularFile } from '../util/bounded-read.js';
import { QUOTE_MAX, printable, printableLine, quote } from '../util/quote.js';
import { DOMAIN_NAME_RE } from './domain-name.js';
import { REFUSED_ACCESS_POLICIES, type RefusedAccessPolicy } from '../xen/domain.js';
import { Vpl011Error } from '../util/errors.js';

export type { VuartProfile } from './guest-dt.js';
/** What the domain does on an MMIO access nobody handles: inject a data abort (Xen since 0b6122a117) or crash. */
export type MmioPolicy = RefusedAccessPolicy;
/** What console input meets when the guest's receive ring is full (docs/DEVICE.md "Line events"). */
export type RxOverrun = 'backpressure' | 'strict';
/** linux: arm64 Image + DTB in x0; bare: an ELF (loaded where its program headers say) or a raw binary. */
export type GuestKind = 'linux' | 'bare';

export interface GuestConfig {
  name: string;
  kind: GuestKind;
  /** Absolute path. */
  kernel: string;
  /** Absolute path, when there is one. */
  ramdisk?: string;
  cmdline: string;
  memoryMiB: number;
  vcpus: 1;
  vuart: VuartProfile;
  mmioPolicy: MmioPolicy;
  /** The guest memory map (src/toolstack/guest-map.ts, docs/LAYOUTS.md); absent means "xen". */
  layout?: LayoutName;
  /**
   * Absolute path of firmware for QEMU's virt board (layout "qemu-virt"), loaded into flash and entered there as
   * QEMU's -bios does. `kernel` (may then be '': no payload) and `ramdisk` become the firmware's payload in RAM.
   */
  firmware?: string;
  /** `rx_overrun`: absent = 'backpressure' (input waits); 'strict': input that finds IN full is lost with OE. */
  rxOverrun?: RxOverrun;
  /** The file the config came from, for messages. */
  source?: string;
}

export const MEMORY_MIN_MIB = 16;
/** One RAM bank: GUEST_RAM0_SIZE is 3 GiB (arch-arm.h); Xen's second bank is not modelled. */
export const MEMORY_MAX_MIB = GUEST_RAM0_SIZE / (1024 * 1024);
export const DEFAULT_CMDLINE = 'console=ttyAMA0 earlycon';
export const DEFAULT_MEMORY_MIB = 512;
/** arm64 Linux's COMMAND_LINE_SIZE. */
export const CMDLINE_MAX_BYTES = 2048;
/** A config file larger than this is refused (a real one is a few hundred bytes). */
export const CONFIG_MAX_BYTES = READ_CAP;
/** Lists nest at most this deep (xl.cfg values are flat lists); deeper is an error, not a stack overflow. */
export const LIST_MAX_DEPTH = 16;
/** The scanner stops after this many problems: a binary file is one error, not a million. */
export const MAX_ISSUES = 50;
/** An error message shows at most this many problems, then says how many more there are. */
const SHOWN_ISSUES = 20;

export interface ConfigIssue {
  /** The config file; '' for a command-line option. */
  file: string;
  /** 0: not a line of the file (the file as a whole, or a command-line option). */
  line: number;
  /** The config key, or the command-line option (e.g. "--memory"); '' for the file as a whole. */
  field: string;
  message: string;
}

/** One problem as one terminal-safe line: "file:line: field: message", parts left out when unknown. */
export function formatIssue(i: ConfigIssue): string {
  const where = i.file === '' ? '' : `${printable(i.file, 200)}${i.line > 0 ? `:${i.line}` : ''}: `;
  return printableLine(`${where}${i.field === '' ? '' : `${i.field}: `}${i.message}`);
}

export class ConfigError extends Vpl011Error<'EINVAL'> {
  constructor(readonly issues: ConfigIssue[]) {
    const shown = issues.slice(0, SHOWN_ISSUES).map(formatIssue);
    if (issues.length > SHOWN_ISSUES) shown.push(`(${issues.length - SHOWN_ISSUES} more problems not shown)`);
    super('EINVAL', shown.join('\n'));
  }
}

type Value = { kind: 'string'; value: string } | { kind: 'int'; value: number } | { kind: 'list'; value: Value[] };

interface Setting {
  key: string;
  value: Value;
  line: number;
}

const KNOWN_KEYS = ['name', 'kind', 'kernel', 'ramdisk', 'extra', 'cmdline', 'memory', 'vcpus', 'vuart', 'mmio_policy', 'layout', 'firmware', 'rx_overrun'] as const;
type Key = (typeof KNOWN_KEYS)[number];

/** The built-in default guest: Debian's kernel + our busybox initramfs (paths from the fetch step). */
export function defaultGuestConfig(paths: { kernel: string; initrd: string }): GuestConfig {
  return {
    name: 'debian',
    kind: 'linux',
    kernel: paths.kernel,
    ramdisk: paths.initrd,
    cmdline: DEFAULT_CMDLINE,
    memoryMiB: DEFAULT_MEMORY_MIB,
    vcpus: 1,
    vuart: 'sbsa_uart',
    mmioPolicy: 'abort',
  };
}

/**
 * Reads and validates a config file: a regular file of at most CONFIG_MAX_BYTES (never /dev/zero, a FIFO or a
 * directory; see readRegularFile). Throws ConfigError with every problem, the file's own included.
 */
export function loadConfig(file: string, opts: { checkFiles?: boolean } = {}): GuestConfig {
  return parseConfig(readConfigText(file), resolve(file), opts);
}

/** The text of a config file, bounded; a ConfigError naming the file when it cannot be one. */
export function readConfigText(file: string): string {
  try {
    return readRegularFile(file, CONFIG_MAX_BYTES).toString('utf8');
  } catch (e) {
    if (e instanceof FileReadError) throw new ConfigError([{ file, line: 0, field: '', message: e.reason }]);
    throw e;
  }
}

// ---- the rules: each returns what is wrong with a value, or undefined; used for files and command lines alike ----


export function nameProblem(name: string): string | undefined {
  return DOMAIN_NAME_RE.test(name) ? undefined : `${quote(name)} must be 1-64 characters of letters, digits, "_", "." or "-", starting with a letter or digit`;
}

export function memoryProblem(mib: number): string | undefined {
  if (!Number.isSafeInteger(mib)) return `${printable(String(mib))} is not a whole number of MiB`;
  return mib < MEMORY_MIN_MIB || mib > MEMORY_MAX_MIB ? `${mib} MiB is outside ${MEMORY_MIN_MIB}..${MEMORY_MAX_MIB} MiB` : undefined;
}

export function cmdlineProblem(cmdline: string): string | undefined {
  const bytes = Buffer.byteLength(cmdline, 'utf8');
  return bytes > CMDLINE_MAX_BYTES ? `is ${bytes} bytes; arm64 Linux accepts at most ${CMDLINE_MAX_BYTES} (COMMAND_LINE_SIZE)` : undefined;
}

/** An absolute path that must name an existing regular file (a kernel, a ramdisk). */
export function guestFileProblem(abs: string): string | undefined {
  if (!existsSync(abs)) return `${printable(abs, 200)}: no such file`;
  if (!statSync(abs).isFile()) return `${printable(abs, 200)}: not a regular file`;
  return undefined;
}

export function oneOfProblem(v: string, allowed: readonly string[]): string | undefined {
  return allowed.includes(v) ? undefined : `${quote(v)} is not one of ${allowed.map((a) => `"${a}"`).join(', ')}`;
}

/**
 * Whether the guest's console input waits until the guest unmasks its receive interrupts (`vpl011 run` with pipes,
 * the daemon's consoles): input that reaches a Linux kernel booted directly before its driver opens the port would
 * be drained and lost (amba-pl011). Firmware polls the UART with its interrupts masked, so it never "listens": its
 * input must never be held (it was, and `vpl011 console` to U-Boot under the daemon delivered nothing).
 */
export function inputWaitsForListener(config: GuestConfig): boolean {
  return config.kind === 'linux' && config.firmware === undefined;
}

/** Firmware needs the flash only the qemu-virt layout has, and takes a Linux payload. */
export function firmwareProblem(layout: LayoutName, kind: GuestKind): string | undefined {
  if (layout !== 'qemu-virt') return `needs layout = "qemu-virt" (firmware runs from that layout's flash; got "${layout}")`;
  return kind === 'bare' ? 'not supported with kind = "bare" (the firmware is the program)' : undefined;
}

/** QEMU's virt board has a full PL011: its firmware drives its registers (baud, line control). */
export function qemuVirtVuartProblem(vuart: VuartProfile): string | undefined {
  return vuart === 'pl011' ? undefined : `layout "qemu-virt" has a PL011 (vuart = "pl011"), not "${vuart}"`;
}

const KINDS: readonly GuestKind[] = ['linux', 'bare'];
const VUARTS: readonly VuartProfile[] = ['sbsa_uart', 'pl011'];
const MMIO_POLICIES: readonly MmioPolicy[] = REFUSED_ACCESS_POLICIES;
const RX_OVERRUNS: readonly RxOverrun[] = ['backpressure', 'strict'];

/**
 * Check a config assembled outside parseConfig (the command line's options over a file or the default guest) with
 * the same rules. `origin` names where a field came from when it was not the file, e.g. { memoryMiB: '--memory' }.
 * Throws ConfigError listing every problem.
 */
export function checkGuestConfig(config: GuestConfig, origin: Partial<Record<keyof GuestConfig, string>> = {}): void {
  const issues: ConfigIssue[] = [];
  const check = (key: keyof GuestConfig, configKey: string, problem: string | undefined) => {
    if (problem === undefined) return;
    const opt = origin[key];
    issues.push(opt ? { file: '', line: 0, field: opt, message: problem } : { file: config.source ?? '', line: 0, field: configKey, message: problem });
  };
  check('name', 'name', nameProblem(config.name));
  check('kind', 'kind', oneOfProblem(config.kind, KINDS));
  // With firmware the kernel is an optional payload: '' means none.
  if (!(config.firmware !== undefined && config.kernel === '')) check('kernel', 'kernel', guestFileProblem(config.kernel));
  if (config.ramdisk !== undefined) {
    check('ramdisk', 'ramdisk', guestFileProblem(config.ramdisk));
    if (config.kind === 'bare') check(origin.kind ? 'kind' : 'ramdisk', 'ramdisk', 'a ramdisk is not supported with kind = "bare"');
  }
  check('cmdline', 'cmdline', cmdlineProblem(config.cmdline));
  check('memoryMiB', 'memory', memoryProblem(config.memoryMiB));
  check('vuart', 'vuart', oneOfProblem(config.vuart, VUARTS));
  check('mmioPolicy', 'mmio_policy', oneOfProblem(config.mmioPolicy, MMIO_POLICIES));
  if (config.layout !== undefined) check('layout', 'layout', oneOfProblem(config.layout, LAYOUT_NAMES));
  if (config.firmware !== undefined) {
    check('firmware', 'firmware', guestFileProblem(config.firmware));
    check('firmware', 'firmware', firmwareProblem(config.layout ?? 'xen', config.kind));
  }
  if (config.layout === 'qemu-virt') check('vuart', 'vuart', qemuVirtVuartProblem(config.vuart));
  if (config.rxOverrun !== undefined) check('rxOverrun', 'rx_overrun', oneOfProblem(config.rxOverrun, RX_OVERRUNS));
  if (issues.length > 0) throw new ConfigError(issues);
}

/**
 * Parses `text` as if read from `file` (relative kernel/ramdisk paths resolve against its folder).
 * checkFiles (default true): kernel and ramdisk must exist and be regular files.
 */
export function parseConfig(text: string, file: string, opts: { checkFiles?: boolean } = {}): GuestConfig {
  const issues: ConfigIssue[] = [];
  const settings = tokenize(text, file, issues);
  const byKey = new Map<Key, Setting>();
  for (const s of settings) {
    if (!(KNOWN_KEYS as readonly string[]).includes(s.key)) {
      issues.push({ file, line: s.line, field: s.key, message: `unknown key (known keys: ${KNOWN_KEYS.join(', ')})` });
      continue;
    }
    const prev = byKey.get(s.key as Key);
    if (prev) {
      issues.push({ file, line: s.line, field: s.key, message: `set twice (first at line ${prev.line})` });
      continue;
    }
    byKey.set(s.key as Key, s);
  }
  const err = (s: Setting | undefined, field: string, message: string) =>
    issues.push({ file, line: s?.line ?? 0, field, message });

  const str = (key: Key): string | undefined => {
    const s = byKey.get(key);
    if (!s) return undefined;
    if (s.value.kind !== 'string') {
      err(s, key, `expects a quoted string, got ${describe(s.value)}`);
      return undefined;
    }
    return s.value.value;
  };
  const int = (key: Key): number | undefined => {
    const s = byKey.get(key);
    if (!s) return undefined;
    if (s.value.kind !== 'int') {
      err(s, key, `expects an integer, got ${describe(s.value)}`);
      return undefined;
    }
    return s.value.value;
  };
  const oneOf = <T extends string>(key: Key, allowed: readonly T[], dflt: T): T => {
    const v = str(key);
    if (v === undefined) return dflt;
    const problem = oneOfProblem(v, allowed);
    if (problem) {
      err(byKey.get(key), key, problem);
      return dflt;
    }
    return v as T;
  };

  const folder = dirname(file);
  const checkFiles = opts.checkFiles ?? true;
  const path = (key: 'kernel' | 'ramdisk' | 'firmware'): string | undefined => {
    const v = str(key);
    if (v === undefined) return undefined;
    if (v === '') {
      err(byKey.get(key), key, 'is empty');
      return undefined;
    }
    const abs = isAbsolute(v) ? v : resolve(folder, v);
    const problem = checkFiles ? guestFileProblem(abs) : undefined;
    if (problem) err(byKey.get(key), key, problem);
    return abs;
  };

  let name = str('name');
  if (name === undefined) {
    name = basename(file, extname(file)) || 'guest';
  }
  const nameIssue = nameProblem(name);
  if (nameIssue) err(byKey.get('name'), 'name', nameIssue);

  const kind = oneOf<GuestKind>('kind', KINDS, 'linux');
  const layout = oneOf<LayoutName>('layout', LAYOUT_NAMES, 'xen');
  const firmware = path('firmware');
  if (firmware !== undefined) {
    const problem = firmwareProblem(layout, kind);
    if (problem) err(byKey.get('firmware'), 'firmware', problem);
  }
  const kernel = path('kernel');
  if (!byKey.has('kernel') && firmware === undefined) err(undefined, 'kernel', 'is required');
  const ramdisk = path('ramdisk');
  if (ramdisk !== undefined && kind === 'bare') err(byKey.get('ramdisk'), 'ramdisk', 'not supported with kind = "bare"');

  // xl.cfg(5): `cmdline` is the whole command line, `extra` is appended to root=...; we have no root= so they are
  // synonyms, and giving both is ambiguous.
  if (byKey.has('extra') && byKey.has('cmdline')) {
    err(byKey.get('cmdline'), 'cmdline', `give either "cmdline" or "extra", not both (extra is at line ${byKey.get('extra')!.line})`);
  }
  const cmdline = str('cmdline') ?? str('extra') ?? (kind === 'linux' ? DEFAULT_CMDLINE : '');
  const cmdlineIssue = cmdlineProblem(cmdline);
  if (cmdlineIssue) err(byKey.get('cmdline') ?? byKey.get('extra'), byKey.has('cmdline') ? 'cmdline' : 'extra', cmdlineIssue);

  let memoryMiB = int('memory') ?? DEFAULT_MEMORY_MIB;
  const memoryIssue = memoryProblem(memoryMiB);
  if (memoryIssue) {
    err(byKey.get('memory'), 'memory', memoryIssue);
    memoryMiB = DEFAULT_MEMORY_MIB;
  }

  const vcpus = int('vcpus') ?? 1;
  if (vcpus !== 1) err(byKey.get('vcpus'), 'vcpus', `only 1 vCPU is supported (got ${vcpus})`);

  // qemu-virt's UART is a PL011: that is its default, and the only profile it takes.
  const vuart = oneOf<VuartProfile>('vuart', VUARTS, layout === 'qemu-virt' ? 'pl011' : 'sbsa_uart');
  if (layout === 'qemu-virt') {
    const problem = qemuVirtVuartProblem(vuart);
    if (problem) err(byKey.get('vuart'), 'vuart', problem);
  }
  const mmioPolicy = oneOf<MmioPolicy>('mmio_policy', MMIO_POLICIES, 'abort');
  const rxOverrun = oneOf<RxOverrun>('rx_overrun', RX_OVERRUNS, 'backpressure');

  if (issues.length > 0) throw new ConfigError(issues.sort((a, b) => a.line - b.line));
  const config: GuestConfig = { name, kind, kernel: kernel ?? '', cmdline, memoryMiB, vcpus: 1, vuart, mmioPolicy, source: file };
  if (ramdisk !== undefined) config.ramdisk = ramdisk;
  if (byKey.has('layout')) config.layout = layout;
  if (firmware !== undefined) config.firmware = firmware;
  if (rxOverrun !== 'backpressure') config.rxOverrun = rxOverrun;
  return config;
}

function describe(v: Value): string {
  if (v.kind === 'int') return `the integer ${v.value}`;
  if (v.kind === 'list') return 'a list';
  return `the string ${quote(v.value)}`;
}

/** How much of the text a message looks at to quote it (quote() shows at most QUOTE_MAX of it). */
const QUOTE_SCAN = 2 * QUOTE_MAX;

/** A small hand-written scanner: the grammar is tiny, and its errors must say where. */
function tokenize(text: string, file: string, issues: ConfigIssue[]): Setting[] {
  const settings: Setting[] = [];
  let i = 0;
  let line = 1;
  const n = text.length;
  const peek = () => text[i];
  const skipSpace = (newlines: boolean) => {
    while (i < n) {
      const c = text[i]!;
      if (c === '#') {
        while (i < n && text[i] !== '\n') i++;
      } else if (c === ' ' || c === '\t' || c === '\r') {
        i++;
      } else if (c === '\n' && newlines) {
        line++;
        i++;
      } else break;
    }
  };
  const skipToEol = () => {
    while (i < n && text[i] !== '\n') i++;
  };
  /** Ends the scan at the first syntax error; turned into a ConfigIssue below. */
  class ScanError extends Vpl011Error<'EINVAL'> {
    constructor(message = 'config syntax error') {
      super('EINVAL', message);
    }
  }
  /** The rest of the current line, for a message: bounded, whatever the line's length. */
  const restOfLine = () => {
    const head = text.slice(i, i + QUOTE_SCAN);
    const nl = head.indexOf('\n');
    return nl < 0 ? head : head.slice(0, nl);
  };

  const parseValue = (key: string, startLine: number, depth: number): Value => {
    const c = peek();
    if (c === '"' || c === "'") {
      i++;
      let s = '';
      while (i < n && text[i] !== c) {
        if (text[i] === '\n') break;
        s += text[i++];
      }
      if (text[i] !== c) {
        issues.push({ file, line, field: key, message: `unterminated string (opened with ${c})` });
        throw new ScanError();
      }
      i++;
      return { kind: 'string', value: s };
    }
    if (c === '[') {
      // Recursion is bounded by the nesting depth: 200,000 "[" must be an error at their line, not a stack overflow.
      if (depth >= LIST_MAX_DEPTH) {
        issues.push({ file, line, field: key, message: `lists nested deeper than ${LIST_MAX_DEPTH} levels` });
        throw new ScanError();
      }
      i++;
      const items: Value[] = [];
      skipSpace(true);
      while (peek() !== ']') {
        if (i >= n) {
          issues.push({ file, line: startLine, field: key, message: 'unterminated list (missing "]")' });
          throw new ScanError();
        }
        items.push(parseValue(key, startLine, depth + 1));
        skipSpace(true);
        if (peek() === ',') {
          i++;
          skipSpace(true);
        } else if (peek() !== ']') {
          issues.push({ file, line, field: key, message: 'expected "," or "]" in list' });
          throw new ScanError();
        }
      }
      i++;
      return { kind: 'list', value: items };
    }
    const m = /^-?(0x[0-9a-fA-F]+|[0-9]+)(?![A-Za-z0-9_])/.exec(text.slice(i, i + 40));
    if (m) {
      i += m[0].length;
      const v = Number(m[0].startsWith('-') ? -Number(m[0].slice(1)) : m[0]);
      if (!Number.isSafeInteger(v)) {
        issues.push({ file, line, field: key, message: `integer ${m[0]} is too large` });
        throw new ScanError();
      }
      return { kind: 'int', value: v };
    }
    const word = /^[^\s#,\]]*/.exec(text.slice(i, i + QUOTE_SCAN))![0];
    issues.push({ file, line, field: key, message: word ? `value ${quote(word)} is not a quoted string, an integer or a list (strings need quotes)` : 'missing value' });
    throw new ScanError();
  };

  while (true) {
    skipSpace(true);
    if (i >= n) break;
    if (issues.length >= MAX_ISSUES) {
      issues.push({ file, line, field: '(syntax)', message: `too many problems; stopped reading at line ${line}` });
      break;
    }
    const startLine = line;
    const km = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i, i + 200));
    if (!km) {
      issues.push({ file, line, field: '(syntax)', message: `expected "key = value", found ${quote(restOfLine())}` });
      skipToEol();
      continue;
    }
    const key = km[0];
    i += key.length;
    skipSpace(false);
    if (peek() !== '=') {
      issues.push({ file, line, field: key, message: 'expected "=" after the key' });
      skipToEol();
      continue;
    }
    i++;
    skipSpace(false);
    try {
      const value = parseValue(key, startLine, 0);
      skipSpace(false);
      // xl accepts ";" as a separator; anything else on the line is an error.
      if (peek() === ';') i++;
      skipSpace(false);
      if (i < n && peek() !== '\n') {
        issues.push({ file, line, field: key, message: `unexpected text after the value: ${quote(restOfLine())}` });
        skipToEol();
        continue;
      }
      settings.push({ key, value, line: startLine });
    } catch (e) {
      if (!(e instanceof ScanError)) throw e;
      skipToEol();
    }
  }
  return settings;
}
