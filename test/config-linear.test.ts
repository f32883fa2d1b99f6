// The config parser's work is linear in the file's size. Found by the config fuzz campaign (bench/fuzz/config.ts):
// every syntax error quoted the rest of its line with text.slice(i).split('\n'), which copies and splits the whole
// rest of the file, so a file of many bad lines took quadratic time (a 256 KiB file of "!x" lines: minutes, with the
// daemon's event loop blocked, since `up` parses on it). The parse runs in a worker that is terminated at the
// deadline, so the old code fails this test instead of hanging the run.
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';

const CONFIG_URL = new URL('../src/toolstack/config.js', import.meta.url).href;

function parseInWorker(text: string, limitMs: number): Promise<{ ms: number; issues: number } | 'timeout'> {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    import(workerData.url).then(({ parseConfig, ConfigError }) => {
      const t0 = performance.now();
      let issues = 0;
      try { parseConfig(workerData.text, '/fz/x.cfg', { checkFiles: false }); } catch (e) { if (!(e instanceof ConfigError)) throw e; issues = e.issues.length; }
      parentPort.postMessage({ ms: performance.now() - t0, issues });
    });`;
  const w = new Worker(code, { eval: true, workerData: { url: CONFIG_URL, text } });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void w.terminate();
      resolve('timeout');
    }, limitMs);
    w.once('message', (m: { ms: number; issues: number }) => {
      clearTimeout(timer);
      void w.terminate();
      resolve(m);
    });
    w.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

test('a 256 KiB config of bad lines parses in bounded time (no quadratic quoting)', { timeout: 60_000 }, async () => {
  for (const [what, text] of [
    ['syntax errors', '!x\n'.repeat(87_381)],
    ['text after values', 'memory = 1 x\n'.repeat(20_000)],
  ] as const) {
    // Generous for a loaded 2-core machine: linear work here is well under a second.
    const r = await parseInWorker(text, 20_000);
    assert.notEqual(r, 'timeout', `${what}: ${text.length} bytes did not parse within 20 s`);
    // The parser reports the first problems and a count of the rest (src/toolstack/config.ts), not 87,000 lines.
    if (r !== 'timeout') assert.ok(r.issues >= 50 && r.issues < 100, `${what}: the first problems are reported, then a count (${r.issues})`);
  }
});
