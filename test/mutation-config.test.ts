// Config parsing cases the main config tests do not pin, each written against a mutant StrykerJS left alive
// (bench/MUTATION.md): exact messages, scanner edges at end of input (a mutated loop there hangs), whitespace and
// list layout, integer forms, the name rule's anchors, issue order, bounds at their edges.
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, MEMORY_MAX_MIB, MEMORY_MIN_MIB, defaultGuestConfig, parseConfig } from '../src/toolstack/config.js';

const T = { timeout: 20_000 };
const NO_FILES = { checkFiles: false };

function issues(text: string, file = '/g.cfg', opts = NO_FILES): Array<[number, string, string]> {
  try {
    parseConfig(text, file, opts);
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${String(e)}`);
    assert.equal(e.name, 'ConfigError');
    return e.issues.map((i) => [i.line, i.field, i.message]);
  }
  return [];
}
const K = 'kernel = "/k"\n';

test('constants and the default guest', T, () => {
  assert.equal(MEMORY_MAX_MIB, 3072);
  const d = defaultGuestConfig({ kernel: '/k', initrd: '/i' });
  assert.equal(d.name, 'debian');
  assert.equal(d.mmioPolicy, 'abort');
});

test('exact messages: set twice, wrong types, empty path, not a regular file, both cmdline and extra, bare ramdisk', T, () => {
  assert.deepEqual(issues(`${K}memory = 64\nmemory = 65\n`), [[3, 'memory', 'set twice (first at line 2)']]);
  assert.deepEqual(issues(`${K}memory = "512"\n`), [[2, 'memory', 'expects an integer, got the string "512"']]);
  assert.deepEqual(issues(`${K}vcpus = [ 1 ]\n`), [[2, 'vcpus', 'expects an integer, got a list']]);
  assert.deepEqual(issues('kernel = ""\n'), [[1, 'kernel', 'is empty']]);
  const dir = resolve(fileURLToPath(import.meta.url), '..');
  assert.deepEqual(issues(`kernel = "${dir}"\n`, '/g.cfg', { checkFiles: true }), [[1, 'kernel', `${dir}: not a regular file`]]);
  assert.deepEqual(issues(`${K}extra = "a"\ncmdline = "b"\n`), [[3, 'cmdline', 'give either "cmdline" or "extra", not both (extra is at line 2)']]);
  assert.deepEqual(issues(`${K}kind = "bare"\nramdisk = "/r"\n`), [[3, 'ramdisk', 'not supported with kind = "bare"']]);
  assert.equal(parseConfig(`${K}kind = "linux"\n`, '/g.cfg', NO_FILES).kind, 'linux');
  assert.equal('ramdisk' in parseConfig(K, '/g.cfg', NO_FILES), false, 'no ramdisk key when none is given');
});

test('name: from the file, "guest" when the file has no name, anchored rule, 64 characters at most', T, () => {
  assert.equal(parseConfig(K, '/', NO_FILES).name, 'guest');
  assert.equal(issues(`${K}name = "-x"\n`)[0]?.[1], 'name');
  assert.equal(issues(`${K}name = "x!"\n`)[0]?.[1], 'name');
  assert.equal(parseConfig(`${K}name = "${'a'.repeat(64)}"\n`, '/g.cfg', NO_FILES).name.length, 64);
  assert.equal(issues(`${K}name = "${'a'.repeat(65)}"\n`)[0]?.[1], 'name');
});

test('bounds at their edges: memory 16..3072, cmdline/extra 2048 bytes', T, () => {
  assert.equal(parseConfig(`${K}memory = ${MEMORY_MIN_MIB}\n`, '/g.cfg', NO_FILES).memoryMiB, 16);
  assert.deepEqual(issues(`${K}memory = 15\n`), [[2, 'memory', `15 MiB is outside 16..3072 MiB`]]);
  assert.equal(parseConfig(`${K}cmdline = "${'c'.repeat(2048)}"\n`, '/g.cfg', NO_FILES).cmdline.length, 2048);
  assert.deepEqual(issues(`${K}cmdline = "${'c'.repeat(2049)}"\n`), [[2, 'cmdline', 'is 2049 bytes; arm64 Linux accepts at most 2048 (COMMAND_LINE_SIZE)']]);
  assert.deepEqual(issues(`${K}extra = "${'e'.repeat(2049)}"\n`), [[2, 'extra', 'is 2049 bytes; arm64 Linux accepts at most 2048 (COMMAND_LINE_SIZE)']]);
});

test('issues come sorted by line, whatever order they were found in', T, () => {
  assert.deepEqual(
    issues('memory = 1\nname = "-x"\n').map(([l, f]) => `${l}:${f}`),
    ['0:kernel', '1:memory', '2:name'],
  );
});

test('end of input without a newline: comment, bad line, unterminated string and list all end (no hang)', T, () => {
  assert.equal(parseConfig('kernel = "/k" # c', '/g.cfg', NO_FILES).kernel, '/k');
  assert.deepEqual(issues(`${K}memory 5`), [[2, 'memory', 'expected "=" after the key']]);
  assert.deepEqual(issues(`${K}cmdline = "abc`), [[2, 'cmdline', 'unterminated string (opened with ")']]);
  assert.deepEqual(issues(`${K}extra = [ "a",`), [[2, 'extra', 'unterminated list (missing "]")']]);
});

test('whitespace: tabs and CRLF line ends; a newline is not allowed between key, "=" and value', T, () => {
  const c = parseConfig('kernel\t=\t"/k"\r\nmemory = 64\r\n', '/g.cfg', NO_FILES);
  assert.equal(c.memoryMiB, 64);
  assert.deepEqual(issues(`${K}memory\n= 64\n`).map(([l, f, m]) => `${l}:${f}:${m}`)[0], '2:memory:expected "=" after the key');
  assert.deepEqual(issues(`${K}memory =\n64\n`)[0], [2, 'memory', 'missing value']);
});

test('lists: newlines after "[" and before ","; a missing comma is an error', T, () => {
  assert.deepEqual(issues(`${K}extra = [\n "a"\n , "b" ]\n`), [[2, 'extra', 'expects a quoted string, got a list']]);
  assert.deepEqual(issues(`${K}extra = [ "a" "b" ]\n`), [[2, 'extra', 'expected "," or "]" in list']]);
});

test('integers: negative hex, too large; a bare word is named in its message; a bad key is a syntax error', T, () => {
  assert.deepEqual(issues(`${K}memory = -0x10\n`), [[2, 'memory', '-16 MiB is outside 16..3072 MiB']]);
  assert.deepEqual(issues(`${K}memory = 99999999999999999999\n`), [[2, 'memory', 'integer 99999999999999999999 is too large']]);
  assert.deepEqual(issues(`${K}memory = abc def\n`), [[2, 'memory', 'value "abc" is not a quoted string, an integer or a list (strings need quotes)']]);
  assert.deepEqual(issues(`${K}9x = 1\n`), [[2, '(syntax)', 'expected "key = value", found "9x = 1"']]);
  assert.deepEqual(issues(`${K}memory = 5 x\n`), [[2, 'memory', 'unexpected text after the value: "x"']]);
});

test('messages quote at most 80 characters of the offending line (then "…"), and only that line', T, () => {
  const junk = 'x'.repeat(100);
  assert.deepEqual(issues(`${K}memory = 5 ${junk}\nvcpus = 1\n`), [[2, 'memory', `unexpected text after the value: "${'x'.repeat(80)}…"`]]);
  assert.deepEqual(issues(`${K}9${junk}\nvcpus = 1\n`), [[2, '(syntax)', `expected "key = value", found "9${'x'.repeat(79)}…"`]]);
  assert.deepEqual(issues(`${K}memory = 5 y\nvcpus = 1\n`), [[2, 'memory', 'unexpected text after the value: "y"']]);
});
