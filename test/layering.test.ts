// The import structure docs/DESIGN.md promises (issue #9 items 1 and 6): every import in src/, bench/ and test/
// points down the layer table (or stays in its own folder), no files import each other in a cycle, the console
// client does not load koffi, and every repository path a comment or doc cites exists.
//
// The table is read from docs/DESIGN.md itself, so the document and the check cannot drift apart. An offending edge
// is printed as `from -> to`; a cycle as the files around it.
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/** The repository root: this file runs as dist/test/layering.test.js. */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

interface Layer {
  rank: number;
  /** A repository path prefix such as `src/xen/` or `test/lib/`; the longest prefix that matches a file wins. */
  prefix: string;
}

/** The rows of the table under "## Layers" in docs/DESIGN.md: `| rank | \`prefix\` | job |`. */
export function readLayerTable(designMd: string): Layer[] {
  const start = designMd.indexOf('\n## Layers');
  assert.ok(start >= 0, 'docs/DESIGN.md has no "## Layers" section');
  const end = designMd.indexOf('\n## ', start + 1);
  const section = designMd.slice(start, end < 0 ? undefined : end);
  const layers: Layer[] = [];
  for (const m of section.matchAll(/^\|\s*(\d+)\s*\|\s*`([^`]+)`\s*\|/gm)) {
    layers.push({ rank: Number(m[1]), prefix: m[2]! });
  }
  assert.ok(layers.length > 0, 'docs/DESIGN.md "## Layers" has no `| rank | `folder/` |` rows');
  return layers;
}

export function layerOf(file: string, layers: readonly Layer[]): Layer | undefined {
  let best: Layer | undefined;
  for (const l of layers) if (file.startsWith(l.prefix) && (best === undefined || l.prefix.length > best.prefix.length)) best = l;
  return best;
}

function walk(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

export interface ImportEdge {
  from: string;
  /** A repository path (`src/xen/ring.ts`) for a relative import, else the bare specifier (`koffi`). */
  to: string;
  /** import() in a function body: loaded only when that code runs. */
  dynamic: boolean;
  /** `import type` / `export type` only: erased from the built JavaScript, so nothing is loaded at run time. */
  typeOnly: boolean;
}

/** Every import, export-from and import() with a literal specifier, of every .ts file under `dirs` of `root`. */
export function importEdges(root: string, dirs: readonly string[]): ImportEdge[] {
  const edges: ImportEdge[] = [];
  for (const d of dirs) {
    for (const abs of walk(join(root, d))) {
      const from = relative(root, abs);
      const text = readFileSync(abs, 'utf8');
      const info = ts.preProcessFile(text, true, true);
      const typeSpecs = new Set<string>();
      const valueSpecs = new Set<string>();
      for (const m of text.matchAll(/^\s*(import|export)\s+(type\s)?[^;]*?from\s*['"]([^'"]+)['"]/gm)) {
        (m[2] ? typeSpecs : valueSpecs).add(m[3]!);
      }
      for (const imp of info.importedFiles) {
        const spec = imp.fileName;
        // preProcessFile reports import() among importedFiles; tell it apart by the text before the specifier.
        const before = text.slice(Math.max(0, imp.pos - 20), imp.pos);
        const dynamic = /import\s*\(\s*['"`]?$/.test(before);
        const to = spec.startsWith('.') ? relative(root, resolve(dirname(abs), spec)).replace(/\.js$/, '.ts') : spec;
        edges.push({ from, to, dynamic, typeOnly: !dynamic && typeSpecs.has(spec) && !valueSpecs.has(spec) });
      }
    }
  }
  return edges;
}

/** Imports that point to a higher rank, or to a file no row of the table covers. */
export function upwardImports(edges: readonly ImportEdge[], layers: readonly Layer[]): string[] {
  const bad: string[] = [];
  for (const e of edges) {
    if (!/^(src|bench|test)\//.test(e.to)) continue; // a package or node: builtin
    const a = layerOf(e.from, layers);
    const b = layerOf(e.to, layers);
    if (a === undefined) bad.push(`${e.from}: no row of the layer table covers it`);
    else if (b === undefined) bad.push(`${e.from} -> ${e.to}: no row of the layer table covers the target`);
    else if (a.prefix !== b.prefix && b.rank >= a.rank) {
      bad.push(`${e.from} (${a.prefix}, rank ${a.rank}) -> ${e.to} (${b.prefix}, rank ${b.rank})`);
    }
  }
  return bad;
}

/** The import cycles among the files (Tarjan's strongly connected components of size > 1, or a self-import). */
export function importCycles(edges: readonly ImportEdge[]): string[][] {
  const next = new Map<string, string[]>();
  for (const e of edges) {
    if (!/^(src|bench|test)\//.test(e.to)) continue;
    const list = next.get(e.from) ?? [];
    list.push(e.to);
    next.set(e.from, list);
  }
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  let counter = 0;
  const visit = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (next.get(v) ?? []).includes(v)) cycles.push(scc.sort());
    }
  };
  for (const v of next.keys()) if (!index.has(v)) visit(v);
  return cycles;
}

/** The files `entry` loads when imported (static value imports, transitively), and the packages they name. */
export function staticClosure(edges: readonly ImportEdge[], entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>([entry]);
  const packages = new Set<string>();
  const todo = [entry];
  while (todo.length > 0) {
    const f = todo.pop()!;
    for (const e of edges) {
      if (e.from !== f || e.dynamic || e.typeOnly) continue;
      if (!/^(src|bench|test)\//.test(e.to)) packages.add(e.to);
      else if (!files.has(e.to)) {
        files.add(e.to);
        todo.push(e.to);
      }
    }
  }
  return { files, packages };
}

/**
 * Repository paths (`src/…`, `test/…`, `docs/…`, `bench/…`) that a comment or doc names, with where each is named.
 * A path followed by `:` and a name, or written with a glob, counts by its file part; a folder must exist as one.
 */
export function citedPaths(root: string, files: readonly string[]): { cited: string; where: string }[] {
  const out: { cited: string; where: string }[] = [];
  const re = /(?<![\w./-])((?:src|test|docs|bench)\/[\w./-]*[\w/])/g;
  for (const f of files) {
    const lines = readFileSync(join(root, f), 'utf8').split('\n');
    lines.forEach((line, i) => {
      for (const m of line.matchAll(re)) {
        let p = m[1]!;
        if (/^[\w./-]*\*/.test(line.slice(m.index! + p.length))) continue; // a glob such as test/daemon-*.test.ts
        p = p.replace(/[.]+$/, '');
        out.push({ cited: p, where: `${f}:${i + 1}` });
      }
    });
  }
  return out;
}

const DESIGN = readFileSync(join(ROOT, 'docs/DESIGN.md'), 'utf8');
const EDGES = importEdges(ROOT, ['src', 'bench', 'test']);

test('every import in src/, bench/ and test/ points down docs/DESIGN.md\'s layer table or stays in its folder', { timeout: 60_000 }, () => {
  const layers = readLayerTable(DESIGN);
  assert.ok(EDGES.length > 100, `only ${EDGES.length} imports found: the parser is not reading the tree`);
  const bad = upwardImports(EDGES, layers);
  assert.deepEqual(bad, [], `imports that point up the layer table:\n  ${bad.join('\n  ')}`);
});

test('no import cycle among the files of src/, bench/ and test/', { timeout: 60_000 }, () => {
  const cycles = importCycles(EDGES);
  assert.deepEqual(cycles, [], `import cycles:\n  ${cycles.map((c) => c.join(' <-> ')).join('\n  ')}`);
});

test('the checks can fail: an upward import and a cycle are reported with their edge', { timeout: 10_000 }, () => {
  const layers = readLayerTable(DESIGN);
  const up: ImportEdge = { from: 'src/device/vpl011.ts', to: 'src/xen/ring.ts', dynamic: false, typeOnly: true };
  assert.deepEqual(upwardImports([up], layers), [
    `src/device/vpl011.ts (${layerOf(up.from, layers)!.prefix}, rank ${layerOf(up.from, layers)!.rank}) -> src/xen/ring.ts (src/xen/, rank ${layerOf(up.to, layers)!.rank})`,
  ]);
  const cyc: ImportEdge[] = [
    { from: 'src/cpu/a.ts', to: 'src/cpu/b.ts', dynamic: false, typeOnly: false },
    { from: 'src/cpu/b.ts', to: 'src/cpu/a.ts', dynamic: true, typeOnly: false },
  ];
  assert.deepEqual(importCycles(cyc), [['src/cpu/a.ts', 'src/cpu/b.ts']]);
});

test('the console client (what `vpl011 list` and `console` load) needs neither koffi nor the daemon nor the toolstack', { timeout: 60_000 }, () => {
  const { files, packages } = staticClosure(EDGES, 'src/client/client.ts');
  assert.ok(files.size > 1, 'the client imports nothing: the closure is not being followed');
  assert.ok(!packages.has('koffi'), `koffi is loaded by the client: ${[...files].join(', ')}`);
  const heavy = [...files].filter((f) => f === 'src/daemon/daemon.ts' || /^src\/(toolstack|vmm|cpu|host)\//.test(f));
  assert.deepEqual(heavy, [], 'the client module graph reaches the toolstack, the VMM or the host bindings');
  // `vpl011` itself loads its command modules lazily: the CLI's static graph has no koffi either.
  const cli = staticClosure(EDGES, 'src/cli/main.ts');
  assert.ok(!cli.packages.has('koffi'), `src/cli/main.ts loads koffi at start-up, through: ${[...cli.files].join(', ')}`);

  // And at run time: importing the built client leaves koffi out of the process's module cache.
  const probe = [
    `await import(${JSON.stringify(join(ROOT, 'dist/src/client/client.js'))});`,
    `const { createRequire } = await import('node:module');`,
    `const loaded = Object.keys(createRequire(import.meta.url).cache).filter((k) => k.includes('koffi'));`,
    `process.stdout.write(JSON.stringify(loaded));`,
  ].join('\n');
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', probe], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), [], 'importing dist/src/client/client.js loaded koffi');
});

test('every src/, test/, docs/ and bench/ path cited in src/, test/, bench/, docs/ and README.md exists', { timeout: 60_000 }, () => {
  const texts = [
    ...walk(join(ROOT, 'src')),
    ...walk(join(ROOT, 'test')),
    ...walk(join(ROOT, 'bench')),
    ...readdirSync(join(ROOT, 'docs')).map((n) => join(ROOT, 'docs', n)),
    join(ROOT, 'README.md'),
    join(ROOT, 'src/cpu/native/fastpath.c'),
  ]
    .map((p) => relative(ROOT, p))
    .filter((p) => p !== 'test/layering.test.ts'); // its own examples name files that do not exist on purpose
  const cites = citedPaths(ROOT, texts);
  assert.ok(cites.length > 50, `only ${cites.length} citations found: the scan is not reading the tree`);
  // A module may be named without its ending (test/daemon-heal) or by its built name (.js).
  const exists = (p: string): boolean => ['', '.ts', '.test.ts'].some((ext) => existsSync(join(ROOT, p.replace(/\.js$/, '.ts') + ext)));
  const missing = cites.filter(({ cited }) => !exists(cited));
  assert.deepEqual(
    missing.map((m) => `${m.where}: ${m.cited}`),
    [],
    'references to repository paths that do not exist',
  );
});

test('no const enum: a project built with isolatedModules can use the device tables through their declarations', { timeout: 60_000 }, () => {
  const constEnums = walk(join(ROOT, 'src'))
    .filter((f) => /^\s*(export\s+)?(declare\s+)?const\s+enum\b/m.test(readFileSync(f, 'utf8')))
    .map((f) => relative(ROOT, f));
  assert.deepEqual(constEnums, [], 'const enum breaks isolated-module builds (esbuild, swc, ts.transpileModule)');
  // What a package's user sees: the declarations of the register and hot-state tables, and a consumer compiled
  // with isolatedModules (as esbuild or swc users must). A `declare const enum` there is error TS2748.
  const dir = mkdtempSync(join(tmpdir(), 'vpl011-isolated-'));
  try {
    for (const name of ['spec', 'hot-state']) {
      const d = ts.transpileDeclaration(readFileSync(join(ROOT, `src/device/${name}.ts`), 'utf8'), { reportDiagnostics: false });
      writeFileSync(join(dir, `${name}.d.ts`), d.outputText);
    }
    const consumer = join(dir, 'consumer.ts');
    writeFileSync(consumer, "import { FR, Reg } from './spec.js';\nimport { HotWord } from './hot-state.js';\nexport const used: number[] = [Reg.FR, FR.TXFF, HotWord.Magic];\n");
    const program = ts.createProgram([consumer], {
      isolatedModules: true,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      target: ts.ScriptTarget.ES2022,
      strict: true,
      noEmit: true,
      types: [],
    });
    const problems = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, ' '));
    assert.deepEqual(problems, [], 'a consumer compiled with isolatedModules');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
