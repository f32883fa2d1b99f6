// Random guest config files (the xl.cfg-like syntax of src/toolstack/config.ts), for the parser campaign and for
// `up` requests to the daemon: random bytes, random settings with hostile values (huge strings and integers, wrong
// types, unterminated strings and lists, deep nesting), and small mutations of a valid config.
import { Prng } from './prng.js';

const KEYS = ['name', 'kind', 'kernel', 'ramdisk', 'extra', 'cmdline', 'memory', 'vcpus', 'vuart', 'mmio_policy'];
const WORDS = ['linux', 'bare', 'sbsa_uart', 'pl011', 'abort', 'crash-domain', 'debian', '/dev/null', '.', '..', '/', '\u00e9\u00e8', '\u202e', '\x1b[31m'];

export interface ConfigGenOptions {
  /** A valid base config's text (mutated by one class of generated files). */
  valid: string;
  /** Probability of a deeply nested value (10^4..2*10^5 levels). */
  deepNesting?: number;
  /** Largest size of a random or huge value, in bytes. */
  maxHuge?: number;
}

export interface GeneratedConfig {
  text: string;
  kind: 'bytes' | 'settings' | 'mutated' | 'deep';
}

function randomString(rng: Prng, max: number): string {
  const n = rng.int(max + 1);
  let s = '';
  for (let i = 0; i < n; i++) {
    const r = rng.int(10);
    s += r < 6 ? String.fromCharCode(0x20 + rng.int(95)) : r < 8 ? String.fromCharCode(rng.int(0x20)) : String.fromCharCode(rng.int(0x10000));
  }
  return s;
}

function value(rng: Prng, depth: number, maxHuge: number): string {
  switch (rng.int(depth > 3 ? 6 : 8)) {
    case 0:
      return `"${randomString(rng, 40)}"`;
    case 1:
      return `'${rng.pick(WORDS)}'`;
    case 2:
      return String(rng.pick([0, 1, -1, 16, 3072, 3073, 15, 2 ** 31, 2 ** 53, -(2 ** 53), rng.u32()]));
    case 3:
      return rng.chance(0.5) ? '0x' + rng.u32().toString(16) : '9'.repeat(1 + rng.int(60));
    case 4:
      return rng.pick(['', '"', "'", '"unterminated', '[', ']', ',', 'word', '=', '# comment', ';', 'true', '1e9', '-', '0x', '--1']);
    case 5:
      // Now and then a huge value: a long string or a long number.
      if (rng.chance(0.9)) return `"${randomString(rng, 200)}"`;
      return rng.chance(0.5) ? `"${'A'.repeat(rng.int(maxHuge))}"` : '7'.repeat(rng.int(maxHuge));
    default: {
      const n = rng.int(5);
      const items: string[] = [];
      for (let i = 0; i < n; i++) items.push(value(rng, depth + 1, maxHuge));
      const sep = rng.chance(0.9) ? ', ' : rng.pick([',,', ' ', '\n', ',\n']);
      return `[${items.join(sep)}${rng.chance(0.9) ? ']' : ''}`;
    }
  }
}

export function generateConfig(rng: Prng, opts: ConfigGenOptions): GeneratedConfig {
  const maxHuge = opts.maxHuge ?? 100_000;
  if (rng.chance(opts.deepNesting ?? 0.002)) {
    const depth = rng.range(10_000, 200_000);
    const close = rng.chance(0.5) ? ']'.repeat(depth) : '';
    return { kind: 'deep', text: `name = "deep"\nkernel = ${'['.repeat(depth)}${close}\n` };
  }
  const r = rng.int(10);
  if (r < 2) {
    const n = rng.chance(0.99) ? rng.int(4096) : rng.int(1 << 20);
    return { kind: 'bytes', text: Buffer.from(rng.bytes(n)).toString('latin1') };
  }
  if (r < 7) {
    const lines: string[] = [];
    const n = rng.int(14);
    for (let i = 0; i < n; i++) {
      const key = rng.chance(0.8) ? rng.pick(KEYS) : rng.chance(0.5) ? randomString(rng, 12) : '__proto__';
      const eq = rng.chance(0.95) ? rng.pick([' = ', '=', '\t=\t', ' =']) : rng.pick(['', ' : ', ' == ']);
      let line = `${key}${eq}${value(rng, 0, maxHuge)}`;
      if (rng.chance(0.1)) line += rng.pick([' # c', ';', ' ; x', ' trailing', '\r']);
      lines.push(line);
      if (rng.chance(0.05)) lines.push(rng.pick(['', '# comment', '   ', '\t']));
    }
    return { kind: 'settings', text: lines.join(rng.chance(0.9) ? '\n' : '\r\n') + (rng.chance(0.8) ? '\n' : '') };
  }
  // Small mutations of a valid config: most stay close to valid, so the checks after the syntax run.
  let t = opts.valid;
  const m = 1 + rng.int(4);
  for (let i = 0; i < m; i++) {
    const at = rng.int(t.length + 1);
    switch (rng.int(4)) {
      case 0:
        t = t.slice(0, at) + t.slice(at + 1 + rng.int(4));
        break;
      case 1:
        t = t.slice(0, at) + String.fromCharCode(rng.int(128)) + t.slice(at);
        break;
      case 2:
        t = t.slice(0, at) + rng.pick(['"', "'", '[', ']', '\n', '=', '#', '0x', '99999999999999999999']) + t.slice(at);
        break;
      default:
        t = t + `\n${rng.pick(KEYS)} = ${value(rng, 0, 1000)}\n`;
    }
  }
  return { kind: 'mutated', text: t };
}
