// src/util/quote.ts: untrusted text made safe for a terminal.
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { printable, quote } from '../src/util/quote.js';

test('control characters, C1, bidi overrides and lone surrogates become visible escapes', { timeout: 5000 }, () => {
  assert.equal(printable('a\x1b[31mb\x07\r\n\t\x00\x7f'), 'a\\e[31mb\\a\\r\\n\\t\\x00\\x7f');
  assert.equal(printable('\x9b2J'), '\\x9b2J');
  assert.equal(printable('abc\u202edef\u2066'), 'abc\\u{202e}def\\u{2066}');
  assert.equal(printable('x\ud800y'), 'x\\u{d800}y');
  // Printable text, including non-ASCII, is shown as is.
  assert.equal(printable('héllo wörld 日本 🙂'), 'héllo wörld 日本 🙂');
});

test('capped at max characters plus "…", never inside an escape or a surrogate pair; O(max) on huge input', { timeout: 5000 }, () => {
  assert.equal(printable('x'.repeat(100)), 'x'.repeat(80) + '…');
  assert.equal(printable('x'.repeat(80)), 'x'.repeat(80));
  assert.equal(printable('x'.repeat(79) + '\x1b'), 'x'.repeat(79) + '…');
  assert.equal(printable('x'.repeat(79) + '🙂'), 'x'.repeat(79) + '…');
  assert.equal(quote('ab', 1), '"a…"');
  const huge = '\x1b'.repeat(50_000_000);
  const t = Date.now();
  assert.equal(printable(huge, 10), '\\e\\e\\e\\e\\e…');
  assert.ok(Date.now() - t < 1000, 'only the shown part is examined');
});
