// Config-parser campaign: random config files (bench/fuzz/config-gen.ts) through src/toolstack/config.ts's
// parseConfig, in process. Every file must end in a GuestConfig or a ConfigError (one issue per line, each with
// file:line: field); anything else (a RangeError from deep recursion, a TypeError) is a defect, recorded by kind with
// the seed and index that reproduce it. The time of the slowest parse is recorded (bounded work per file).
import { ConfigError, parseConfig } from '../../src/toolstack/config.js';
import { generateConfig } from './config-gen.js';
import { Prng } from './prng.js';

export interface ConfigCampaignOptions {
  seed: number;
  files: number;
  /** A valid config (mutated by one class of generated files). */
  valid: string;
  /** The name the texts are parsed as (relative kernel paths resolve against its folder). */
  file: string;
  /** Probability of a deeply nested value (config-gen's default when absent). */
  deepNesting?: number;
}

export interface ConfigDefect {
  kind: string;
  count: number;
  /** The first index (with the campaign seed) that shows it. */
  firstIndex: number;
  example: string;
}

export interface ConfigCampaignResult {
  seed: number;
  files: number;
  valid: number;
  rejected: number;
  byKind: Record<string, number>;
  maxParseMs: number;
  bytes: number;
  defects: ConfigDefect[];
  seconds: number;
}

export function runConfigCampaign(opts: ConfigCampaignOptions): ConfigCampaignResult {
  const rng = new Prng(opts.seed);
  const res: ConfigCampaignResult = { seed: opts.seed, files: 0, valid: 0, rejected: 0, byKind: {}, maxParseMs: 0, bytes: 0, defects: [], seconds: 0 };
  const defects = new Map<string, ConfigDefect>();
  const started = performance.now();
  for (let i = 0; i < opts.files; i++) {
    const g = generateConfig(rng, { valid: opts.valid, ...(opts.deepNesting !== undefined ? { deepNesting: opts.deepNesting } : {}) });
    res.byKind[g.kind] = (res.byKind[g.kind] ?? 0) + 1;
    res.bytes += g.text.length;
    const t0 = performance.now();
    try {
      parseConfig(g.text, opts.file);
      res.valid++;
    } catch (e) {
      if (e instanceof ConfigError && e.issues.length > 0 && e.issues.every((x) => Number.isInteger(x.line) && typeof x.field === 'string')) {
        res.rejected++;
      } else {
        const err = e as Error;
        const kind = `${err?.name ?? typeof e}: ${String(err?.message ?? e).slice(0, 80)} (${g.kind} config)`;
        const d = defects.get(kind);
        if (d) d.count++;
        else defects.set(kind, { kind, count: 1, firstIndex: i, example: g.text.slice(0, 120) });
      }
    }
    const ms = performance.now() - t0;
    if (ms > res.maxParseMs) res.maxParseMs = ms;
    res.files++;
  }
  res.defects = [...defects.values()];
  res.seconds = (performance.now() - started) / 1000;
  return res;
}
