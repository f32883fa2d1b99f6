// The one PRNG every fuzz campaign uses: sfc32 (Chris Doty-Humphrey's Small Fast Counting generator, 128 bits of
// state, 32-bit output), seeded through splitmix32 so that any 32-bit seed gives a well-mixed state. Fast enough for
// 10^7 operations a second, allocation-free, and deterministic: a campaign's whole run follows from its seed, so
// `--seed S` replays a failure exactly (as long as the campaign is single-threaded; see each campaign for what
// threads add).

/** splitmix32 step: used to expand a seed and to derive independent sub-seeds (one per worker, per profile...). */
export function mix32(x: number): number {
  x = (x + 0x9e3779b9) | 0;
  let z = x;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** A sub-seed for part `index` of a campaign seeded with `seed` (different parts never share a stream). */
export function subSeed(seed: number, index: number): number {
  return mix32((seed ^ mix32(index + 0x632be5ab)) >>> 0);
}

export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(readonly seed: number) {
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new RangeError(`prng: seed ${seed} is not a u32`);
    this.a = mix32(seed);
    this.b = mix32(this.a);
    this.c = mix32(this.b);
    this.d = 1;
    for (let i = 0; i < 12; i++) this.u32(); // sfc32's recommended warm-up
  }

  /** A uniform u32. */
  u32(): number {
    const a = this.a;
    const b = this.b;
    const c = this.c;
    const t = (((a + b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = b ^ (b >>> 9);
    this.b = (c + (c << 3)) | 0;
    this.c = ((c << 21) | (c >>> 11)) + t;
    this.c |= 0;
    return t >>> 0;
  }

  /** A uniform integer in [0, n) for 1 <= n <= 2^32 (multiply-shift; the bias is below 2^-32 * n). */
  int(n: number): number {
    return Math.floor((this.u32() / 4294967296) * n);
  }

  /** A uniform integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /** true with probability p. */
  chance(p: number): boolean {
    return this.u32() < p * 4294967296;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  /** n random bytes. */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      let v = this.u32();
      for (let k = i; k < i + 4 && k < n; k++) {
        out[k] = v & 0xff;
        v >>>= 8;
      }
    }
    return out;
  }
}

/** A fresh seed when none is given (printed by every campaign, so a failure can be replayed). */
export function randomSeed(): number {
  return (Date.now() ^ Math.imul(process.pid, 0x9e3779b1) ^ Math.floor(Math.random() * 0x100000000)) >>> 0;
}

/** Parse a seed given as decimal or 0x hex; a clear error otherwise. */
export function parseSeed(text: string): number {
  const t = text.trim();
  const v = /^0x[0-9a-f]{1,8}$/i.test(t) ? parseInt(t.slice(2), 16) : /^\d{1,10}$/.test(t) ? Number(t) : NaN;
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`--seed: expected a u32 (decimal or 0x hex), got ${JSON.stringify(text)}`);
  return v;
}
