// The one error convention (src/util/errors.ts): every error class the project throws on purpose is a Vpl011Error,
// named after itself, with an errno-style code; caught values are reported through errorMessage(), and no function
// answers `T | string`.
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Vpl011Error, errorMessage, errnoOf } from '../src/util/errors.js';
import { VuartError } from '../src/xen/vuart.js';
import { EvtchnError } from '../src/xen/evtchn.js';
import { DomainError } from '../src/xen/domain.js';
import { FileReadError } from '../src/util/bounded-read.js';
import { OutputFileError } from '../src/util/output-file.js';
import { SecretsError } from '../src/daemon/secrets.js';
import { WebAccessError } from '../src/daemon/web-access.js';
import { EvtchnTableError } from '../src/daemon/evtchn-table.js';
import { RunDirError } from '../src/daemon/paths.js';
import { FrameError } from '../src/daemon/frames.js';
import { TraceError } from '../src/cli/qemu-trace.js';
import { ClientError, RequestRefused } from '../src/client/client.js';
import { LockHeld } from '../src/host/flock.js';
import { ShmError } from '../src/host/shm.js';
import { ConfigError } from '../src/toolstack/config.js';
import { ImageError } from '../src/toolstack/image.js';
import { FetchError } from '../src/toolstack/fetch.js';
import { UnsupportedHostError } from '../src/toolstack/cache.js';
import { BuildError } from '../src/toolstack/build.js';
import { TcpConsoleError } from '../src/console/tcp-console.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** `T | string` parsers not yet moved to Checked<T> (the daemon's request and listen-address parsers). */
const PENDING_ANSWERS = ['export function parseRequest(', 'export function parseWebListen(', '  claim(name: string'];

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

test('every error class is a Vpl011Error named after itself, with an errno-style code', { timeout: 10_000 }, () => {
  const made: [string, Error][] = [
    ['VuartError', new VuartError('EBUSY', 'x')],
    ['EvtchnError', new EvtchnError('ENOSPC', 'x')],
    ['DomainError', new DomainError('ENOENT', 'x')],
    ['FileReadError', new FileReadError('f', 'no such file')],
    ['OutputFileError', new OutputFileError('f', 'is a directory')],
    ['SecretsError', new SecretsError('x', 'not-private')],
    ['WebAccessError', new WebAccessError('x')],
    ['EvtchnTableError', new EvtchnTableError('x')],
    ['RunDirError', new RunDirError('x')],
    ['FrameError', new FrameError('x')],
    ['TraceError', new TraceError('x')],
    ['ClientError', new ClientError('x')],
    ['RequestRefused', new RequestRefused('x')],
    ['LockHeld', new LockHeld('x')],
    ['ShmError', new ShmError('EEXIST', 'x')],
    ['ConfigError', new ConfigError([{ file: 'f', line: 1, field: 'name', message: 'x' }])],
    ['ImageError', new ImageError('x')],
    ['FetchError', new FetchError('x')],
    ['UnsupportedHostError', new UnsupportedHostError('x')],
    ['BuildError', new BuildError('x')],
    ['TcpConsoleError', new TcpConsoleError('x')],
  ];
  for (const [name, e] of made) {
    assert.ok(e instanceof Vpl011Error, `${name} is a Vpl011Error`);
    assert.equal(e.name, name);
    assert.match((e as Vpl011Error).code, /^E[A-Z]+$/, `${name}.code`);
    assert.ok(String(e).startsWith(`${name}: `), `${name} prints with its name`);
  }
  assert.equal(new RequestRefused('no such domain').code, 'EINVAL', 'a refusal is the request\'s fault');
  assert.equal(new SecretsError('x', 'not-private').code, 'EACCES');
  assert.equal(errorMessage(new ImageError('bad header')), 'bad header');
  assert.equal(errorMessage('a string'), 'a string');
  assert.equal(errnoOf(Object.assign(new Error('x'), { code: 'ENOENT' })), 'ENOENT');
  assert.equal(errnoOf(undefined), undefined);
});

test('no Error subclass outside the convention, no (e as Error).message, no T | string answers', { timeout: 30_000 }, () => {
  const bad: string[] = [];
  for (const abs of [...sources(join(ROOT, 'src')), ...sources(join(ROOT, 'bench')), ...sources(join(ROOT, 'test/lib'))]) {
    const f = relative(ROOT, abs);
    readFileSync(abs, 'utf8').split('\n').forEach((line, i) => {
      const where = `${f}:${i + 1}`;
      if (/^\s*(\/\/|\*|\/\*)/.test(line)) return; // a comment may name what it forbids
      if (/class \w+ extends Error\b/.test(line) && f !== 'src/util/errors.ts' && !f.startsWith('bench/') && !f.startsWith('test/')) {
        bad.push(`${where}: extends Error (extend Vpl011Error)`);
      }
      if (/\(\w+ as Error\)\.message/.test(line)) bad.push(`${where}: (e as Error).message (use errorMessage)`);
      const answersString = /\):\s*(Promise<)?[\w<>{}();:=> ]+ \| string>? \{$/.test(line);
      if (answersString && !/(undefined|number|null|Buffer|Uint8Array) \| string/.test(line) && !PENDING_ANSWERS.some((p) => line.includes(p))) {
        bad.push(`${where}: answers T | string (return a Checked<T>)`);
      }
    });
  }
  assert.deepEqual(bad, [], bad.join('\n'));
});
