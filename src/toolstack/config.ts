// Guest configuration: an xl.cfg-like text (xl.cfg(5) syntax: `key = value`, `#` comments, "quoted" or 'quoted'
// strings, integers, [ "a", "b" ] lists) parsed into a validated GuestConfig. The text is user input: every
// problem is collected (not just the first) and reported as file:line: field: message.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, extname, isAbsolute, resolve } from 'node:path';
import type { VuartProfile } from './guest-dt.js';
import { GUEST_RAM0_SIZE } from './guest-map.js';

export type { VuartProfile } from './guest-dt.js';
/** What the domain does on an MMIO access nobody handles: inject a data abort (Xen since 0b6122a117) or crash. */
export type MmioPolicy = 'abort' | 'crash-domain';
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
  /** The file the config came from, for messages. */
  source?: string;
}

export const MEMORY_MIN_MIB = 16;
/** One RAM bank: GUEST_RAM0_SIZE is 3 GiB (arch-arm.h); Xen's second bank is not modelled. */
export const MEMORY_MAX_MIB = GUEST_RAM0_SIZE / (1024 * 1024);
export const DEFAULT_CMDLINE = 'console=ttyAMA0 earlycon';
export const DEFAULT_MEMORY_MIB = 512;

export interface ConfigIssue {
  file: string;
  line: number;
  field: string;
  message: string;
}

export class ConfigError extends Error {
  constructor(readonly issues: ConfigIssue[]) {
    super(issues.map((i) => `${i.file}:${i.line}: ${i.field}: ${i.message}`).join('\n'));
    this.name = 'ConfigError';
  }
}

type Value = { kind: 'string'; value: string } | { kind: 'int'; value: number } | { kind: 'list'; value: Value[] };

interface Setting {
  key: string;
  value: Value;
  line: number;
}

const KNOWN_KEYS = ['name', 'kind', 'kernel', 'ramdisk', 'extra', 'cmdline', 'memory', 'vcpus', 'vuart', 'mmio_policy'] as const;
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

/** Reads and validates a config file. Throws ConfigError (all problems) or the fs error if unreadable. */
export function loadConfig(file: string, opts: { checkFiles?: boolean } = {}): GuestConfig {
  const text = readFileSync(file, 'utf8');
  return parseConfig(text, resolve(file), opts);
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
    if (!(allowed as readonly string[]).includes(v)) {
      err(byKey.get(key), key, `"${v}" is not one of ${allowed.map((a) => `"${a}"`).join(', ')}`);
      return dflt;
    }
    return v as T;
  };

  const folder = dirname(file);
  const checkFiles = opts.checkFiles ?? true;
  const path = (key: 'kernel' | 'ramdisk'): string | undefined => {
    const v = str(key);
    if (v === undefined) return undefined;
    if (v === '') {
      err(byKey.get(key), key, 'is empty');
      return undefined;
    }
    const abs = isAbsolute(v) ? v : resolve(folder, v);
    if (checkFiles) {
      if (!existsSync(abs)) err(byKey.get(key), key, `${abs}: no such file`);
      else if (!statSync(abs).isFile()) err(byKey.get(key), key, `${abs}: not a regular file`);
    }
    return abs;
  };

  let name = str('name');
  if (name === undefined) {
    name = basename(file, extname(file)) || 'guest';
  }
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(name)) {
    err(byKey.get('name'), 'name', `"${name}" must be 1-64 characters of letters, digits, "_", "." or "-", starting with a letter or digit`);
  }

  const kind = oneOf<GuestKind>('kind', ['linux', 'bare'], 'linux');
  const kernel = path('kernel');
  if (!byKey.has('kernel')) err(undefined, 'kernel', 'is required');
  const ramdisk = path('ramdisk');
  if (ramdisk !== undefined && kind === 'bare') err(byKey.get('ramdisk'), 'ramdisk', 'not supported with kind = "bare"');

  // xl.cfg(5): `cmdline` is the whole command line, `extra` is appended to root=...; we have no root= so they are
  // synonyms, and giving both is ambiguous.
  if (byKey.has('extra') && byKey.has('cmdline')) {
    err(byKey.get('cmdline'), 'cmdline', `give either "cmdline" or "extra", not both (extra is at line ${byKey.get('extra')!.line})`);
  }
  const cmdline = str('cmdline') ?? str('extra') ?? (kind === 'linux' ? DEFAULT_CMDLINE : '');
  if (cmdline.length > 2048) err(byKey.get('cmdline') ?? byKey.get('extra'), byKey.has('cmdline') ? 'cmdline' : 'extra', `is ${cmdline.length} bytes; arm64 Linux accepts at most 2048 (COMMAND_LINE_SIZE)`);

  let memoryMiB = int('memory') ?? DEFAULT_MEMORY_MIB;
  if (memoryMiB < MEMORY_MIN_MIB || memoryMiB > MEMORY_MAX_MIB) {
    err(byKey.get('memory'), 'memory', `${memoryMiB} MiB is outside ${MEMORY_MIN_MIB}..${MEMORY_MAX_MIB} MiB`);
    memoryMiB = DEFAULT_MEMORY_MIB;
  }

  const vcpus = int('vcpus') ?? 1;
  if (vcpus !== 1) err(byKey.get('vcpus'), 'vcpus', `only 1 vCPU is supported (got ${vcpus})`);

  const vuart = oneOf<VuartProfile>('vuart', ['sbsa_uart', 'pl011'], 'sbsa_uart');
  const mmioPolicy = oneOf<MmioPolicy>('mmio_policy', ['abort', 'crash-domain'], 'abort');

  if (issues.length > 0) throw new ConfigError(issues.sort((a, b) => a.line - b.line));
  const config: GuestConfig = { name, kind, kernel: kernel!, cmdline, memoryMiB, vcpus: 1, vuart, mmioPolicy, source: file };
  if (ramdisk !== undefined) config.ramdisk = ramdisk;
  return config;
}

function describe(v: Value): string {
  if (v.kind === 'int') return `the integer ${v.value}`;
  if (v.kind === 'list') return 'a list';
  return `the string "${v.value}"`;
}

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
  /** Up to 40 characters of the current line from `at`, for an error message (never scans the rest of the file). */
  const quoteFrom = (at: number): string => {
    const s = text.slice(at, at + 40);
    const nl = s.indexOf('\n');
    return nl < 0 ? s : s.slice(0, nl);
  };
  const skipToEol = () => {
    while (i < n && text[i] !== '\n') i++;
  };
  class ScanError extends Error {}

  const parseValue = (key: string, startLine: number): Value => {
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
      i++;
      const items: Value[] = [];
      skipSpace(true);
      while (peek() !== ']') {
        if (i >= n) {
          issues.push({ file, line: startLine, field: key, message: 'unterminated list (missing "]")' });
          throw new ScanError();
        }
        items.push(parseValue(key, startLine));
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
    const word = /^[^\s#,\]]*/.exec(text.slice(i, i + 80))![0];
    issues.push({ file, line, field: key, message: word ? `value ${word} is not a quoted string, an integer or a list (strings need quotes)` : 'missing value' });
    throw new ScanError();
  };

  while (true) {
    skipSpace(true);
    if (i >= n) break;
    const startLine = line;
    const km = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i, i + 200));
    if (!km) {
      issues.push({ file, line, field: '(syntax)', message: `expected "key = value", found "${quoteFrom(i)}"` });
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
      const value = parseValue(key, startLine);
      skipSpace(false);
      // xl accepts ";" as a separator; anything else on the line is an error.
      if (peek() === ';') i++;
      skipSpace(false);
      if (i < n && peek() !== '\n') {
        issues.push({ file, line, field: key, message: `unexpected text after the value: "${quoteFrom(i)}"` });
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
