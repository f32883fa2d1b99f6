// `vpl011 run a.cfg b.cfg`: several real guests on one console with the vpl011 backend in Xen (docs/DOM0LESS.md),
// driven through the CLI's pipes as a script would. Bare-metal pairs check exact bytes (126-byte flushes, focused
// char-by-char output, the 32-byte IN buffer under a 1000-byte paste); a Linux pair checks prefixes and focus
// switching with real shells.
import { describe, before, after } from 'node:test';
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { PROMPT, vpl011Process, type ConsoleProcess } from './lib/console-process.js';
import { VPL011_BIN as CLI } from '../src/util/self.js';
import { buildBareGuestFile, streamPattern } from '../src/vmm/bare-guests.js';
import { ensureGuestImages } from '../src/toolstack/fetch.js';

const SWITCH = '\x01\x01\x01';
const msg = (to: string) => `(XEN) *** Serial input to ${to} (type 'CTRL-a' three times to switch input)\n`;

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'vpl011-dom0less-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function cfg(name: string, lines: Record<string, string | number>): string {
  const path = join(dir, `${name}.cfg`);
  const body = Object.entries({ name, ...lines }).map(([k, v]) => `${k} = ${typeof v === 'number' ? v : JSON.stringify(v)}`);
  writeFileSync(path, body.join('\n') + '\n');
  return path;
}

test('bare pair, exact bytes: the unfocused DOM2 in 126-byte lines, the focused DOM1 unprefixed, no line started mid-line', async () => {
  const streamCount = 65536;
  const floodCount = 300_000;
  const one = cfg('one', { kind: 'bare', kernel: buildBareGuestFile('stream', { defines: { COUNT: streamCount } }), memory: 16 });
  const two = cfg('two', { kind: 'bare', kernel: buildBareGuestFile('tx-flood'), memory: 16 });
  // tx-flood writes x1 bytes (4.4 M when x1 = 0 at entry): a config cannot set x1, so take the first floodCount
  // bytes of DOM2's lines and stop the run once they are there.
  const g = vpl011Process(['run', one, two, '--timeout', '240']);
  try {
    const want1 = streamPattern(streamCount).toString('latin1');
    // Wait until DOM1 has written all of its stream (and powered off) and DOM2 has produced floodCount bytes.
    const deadline = Date.now() + 200_000;
    while (!(g.stderr.includes('DOM1 (one): poweroff') && (g.out.match(/^\(XEN\) DOM2: /gm) ?? []).length * 126 > floodCount)) {
      if (Date.now() > deadline) assert.fail(`no end in sight; stderr:\n${g.stderr}\nlast output:\n${g.out.slice(-500)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    g.child.kill('SIGTERM'); // destroys both domains; the run ends with 128 + 15
    assert.equal((await g.exitWithin(60_000)).code, 143);
    const out = g.out;
    assert.ok(out.startsWith(msg('DOM1')), 'the focus is given to DOM1 before any domain runs');
    const lines = out.slice(msg('DOM1').length).split('\n');
    const last = lines.pop()!; // after the final '\n': an unterminated focused line, or ''
    let dom1 = '';
    let dom2 = '';
    let dom2Lines = 0;
    for (const l of [...lines.map((x) => x + '\n'), ...(last ? [last] : [])]) {
      assert.ok(l.startsWith('(XEN) '), `every line starts with Xen's console prefix: ${JSON.stringify(l.slice(0, 40))}`);
      const body = l.slice(6);
      assert.ok(!body.includes('(XEN)'), 'no line starts in the middle of another');
      if (body.startsWith('DOM2: ')) {
        dom2 += body.slice(6);
        dom2Lines++;
      } else {
        dom1 += body;
      }
    }
    // DOM2 (not focused, no newline ever written): every line is exactly 126 bytes + the forced newline, but the last,
    // which the domain held when SIGTERM destroyed it (printed at its end with a newline: no byte lost).
    const pieces = dom2.split('\n').slice(0, -1);
    assert.equal(pieces.length, dom2Lines);
    pieces.slice(0, -1).forEach((p, i) => p.length === 126 || assert.fail(`DOM2 line ${i}: ${p.length} bytes`));
    assert.ok(pieces.at(-1)!.length >= 1 && pieces.at(-1)!.length <= 126);
    const got2 = pieces.join('');
    const flood = Array.from({ length: got2.length }, (_, i) => String.fromCharCode(0x61 + (i % 26))).join('');
    assert.ok(got2 === flood, 'DOM2 bytes exact, in order');
    assert.ok(dom2Lines * 126 > floodCount);
    // DOM1 (focused, char by char): the stream exactly, apart from the newlines inserted where a DOM2 line came
    // while a DOM1 line was open. Those are only ever at positions where the pattern has no newline.
    let i = 0;
    let inserted = 0;
    for (const c of dom1) {
      if (c === want1[i]) i++;
      else if (c === '\n') inserted++;
      else assert.fail(`DOM1 byte ${i}: ${JSON.stringify(c)} where the stream has ${JSON.stringify(want1[i])}`);
    }
    assert.equal(i, want1.length, 'all of DOM1 stream arrived');
    assert.ok(inserted <= dom2Lines, 'at most one line break per DOM2 line');
  } finally {
    g.kill();
  }
});

test('bare pair: focused echo of a 1000-byte paste through the 32-byte IN (none lost), Ctrl-a x3 moves input, Xen and back', async () => {
  const hello = buildBareGuestFile('hello');
  const a = cfg('a', { kind: 'bare', kernel: hello, memory: 16 });
  const b = cfg('b', { kind: 'bare', kernel: hello, memory: 16 });
  const g = vpl011Process(['run', a, b, '--timeout', '120']);
  try {
    await g.expect(/\(XEN\) DOM2: hello from bare metal\n/, 60_000);
    // DOM1 (focused) prints byte by byte; DOM2's whole line may land in the middle of it, ending DOM1's open line first
    // (its rest then starts a new "(XEN) " line). Seen without DOM2's line, DOM1's banner is whole.
    const focusedOnly = () => g.out.replace(/\n\(XEN\) DOM2: [^\n]*\n\(XEN\) /g, '');
    for (let t = 0; t < 600 && !focusedOnly().includes('(XEN) hello from bare metal\n'); t++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(focusedOnly().includes('(XEN) hello from bare metal\n'), `DOM1's banner: ${JSON.stringify(g.out)}`);
    const from = g.out.length;
    // Periodic letters, then an end marker that appears nowhere before it: the echo is complete when it shows.
    const paste = Array.from({ length: 984 }, (_, i) => String.fromCharCode(0x61 + ((i * 7) % 26))).join('') + '<<END-OF-PASTE>>';
    g.type(paste);
    await g.expect(/<<END-OF-PASTE>>/, 60_000, from);
    g.type(SWITCH + 'two\n');
    await g.expect(/\(XEN\) two\n/, 30_000, from); // echoed while DOM2 has the focus
    g.type('\x04');
    for (let t = 0; t < 600 && !g.stderr.includes('DOM2 (b): poweroff'); t++) await new Promise((r) => setTimeout(r, 100));
    assert.match(g.stderr, /DOM2 \(b\): poweroff/, 'said as soon as it happens');
    g.type(SWITCH + 'k' + SWITCH + '\x04');
    assert.equal((await g.exitWithin(60_000)).code, 0, g.stderr);
    assert.equal(
      g.out.slice(from),
      '(XEN) ' + paste + '\n' + // the open line is ended before Xen's message
        msg('DOM2') +
        '(XEN) two\n' +
        msg('Xen') + // DOM2 has ended: from it the rotation goes on to Xen ...
        msg('DOM1'), // ... and on to DOM1, whose \x04 ends the run
    );
    assert.match(g.stderr, /input dropped: 1 byte\(s\) typed while Xen had the focus/);
  } finally {
    g.kill();
  }
});

describe('two Linux guests on one console', () => {
  let g: ConsoleProcess;
  before(async () => {
    const paths = await ensureGuestImages({ log: () => {} });
    const linux = (who: string) =>
      cfg(who, { kernel: paths.kernel, ramdisk: paths.initrd, extra: `console=ttyAMA0 earlycon who=${who}`, memory: 128 });
    g = vpl011Process(['run', linux('alpha'), linux('beta'), '--timeout', '280']);
    await g.expect(PROMPT, 200_000); // DOM1's prompt (focused: it is on the terminal at once)
    await g.expect(/\(XEN\) DOM2: .*Run \/init as init process/, 200_000);
  });
  after(() => g.kill());

  test('boot logs are DOMn-prefixed whole lines for DOM2 and unprefixed for the focused DOM1, never mixed in a line', () => {
    const lines = g.out.split('\n').slice(0, -1);
    for (const l of lines) {
      assert.ok(l.startsWith('(XEN) '), `line without the console prefix: ${JSON.stringify(l.slice(0, 60))}`);
      assert.ok(!l.slice(6).includes('(XEN) '), `a line started in the middle of another: ${JSON.stringify(l.slice(0, 120))}`);
    }
    assert.match(g.out, /^\(XEN\) DOM2: \[\s*\d+\.\d+\] Kernel command line: .*who=beta\r?$/m);
    assert.match(g.out, /^\(XEN\) \[\s*\d+\.\d+\] Kernel command line: .*who=alpha\r?$/m);
    assert.doesNotMatch(g.out, /DOM1: /, 'DOM1 has had the focus from the start');
  });

  test('echo $((6*7)) is answered by the focused guest only; three Ctrl-a move the question to the other', async () => {
    const ask = 'echo $((6*7)) $(cat /proc/cmdline)\n';
    // The focused guest's text, without the other's whole DOMn lines (one may land in the middle of a focused line,
    // which is then ended first and continued on a new "(XEN) " line) and without line structure.
    const flat = (t: string) => t.replace(/^\(XEN\) DOM\d+: [^\n]*\n/gm, '').replace(/^\(XEN\) /gm, '').replace(/[\r\n]/g, '');
    const answered = async (text: string, ms: number, at: number) => {
      for (let t = 0; t < ms / 100 && !flat(g.out.slice(at)).includes(text); t++) await new Promise((r) => setTimeout(r, 100));
      assert.ok(flat(g.out.slice(at)).includes(text), `no "${text}" from the focused guest: ${JSON.stringify(g.out.slice(at))}`);
    };
    let from = g.out.length;
    g.type(ask);
    await answered('42 console=ttyAMA0 earlycon who=alpha', 60_000, from);
    g.type(SWITCH);
    from = g.out.length;
    await g.expect(/\*\*\* Serial input to DOM2/, 10_000, from);
    g.type(ask);
    await answered('42 console=ttyAMA0 earlycon who=beta', 120_000, from);
    assert.equal((flat(g.out).match(/42 console=ttyAMA0 earlycon who=alpha/g) ?? []).length, 1, 'DOM1 answered once, before the switch');
    assert.doesNotMatch(g.out, /DOM\d: 42 /, 'the answer is never a DOMn line: the asker has the focus');
    // Both power off: DOM2 now, then Xen, then DOM1 (three switches: DOM2 -> Xen -> DOM1).
    g.type('poweroff -f\n');
    for (let t = 0; t < 1200 && !g.stderr.includes('DOM2 (beta): poweroff'); t++) await new Promise((r) => setTimeout(r, 100));
    assert.match(g.stderr, /DOM2 \(beta\): poweroff/);
    g.type(SWITCH + SWITCH);
    await g.expect(/\*\*\* Serial input to DOM1/, 10_000, from);
    g.type('poweroff -f\n');
    assert.equal((await g.exitWithin(120_000)).code, 0, g.stderr);
    assert.match(g.stderr, /DOM1 \(alpha\): poweroff/);
  });
});

test('on a terminal (a pty via script(1)): Ctrl-a x3 switches, Ctrl-] ? lists the escapes, Ctrl-] . destroys every domain, our lines start on their own', async (t) => {
  if (spawnSync('script', ['--version']).status !== 0) return t.skip('script(1) is not installed');
  const hello = buildBareGuestFile('hello');
  const a = cfg('ta', { kind: 'bare', kernel: hello, memory: 16 });
  const b = cfg('tb', { kind: 'bare', kernel: hello, memory: 16 });
  const cmd = [process.execPath, CLI, 'run', a, b, '--timeout', '100'].map((x) => `'${x}'`).join(' ');
  const child = spawn('script', ['-qfec', cmd, '/dev/null'], { stdio: 'pipe' });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString('latin1')));
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  const until = async (re: RegExp, ms: number) => {
    const end = Date.now() + ms;
    while (!re.test(out)) {
      if (Date.now() > end) assert.fail(`timed out waiting for ${re}:\n${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  try {
    await until(/DOM2: hello from bare metal/, 60_000);
    child.stdin.write('ab');
    await until(/\(XEN\) ab/, 30_000); // echoed while DOM1 has the focus (after a switch it would be a held DOM1 line)
    child.stdin.write(SWITCH + 'cd');
    await until(/\(XEN\) cd/, 30_000);
    child.stdin.write('\x1d?');
    await until(/Ctrl-\]  send Ctrl-\] to the guest/, 30_000);
    child.stdin.write('\x1d.');
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const code = await exited;
    clearTimeout(timer);
    assert.equal(code, 0);
    assert.match(out, /\(XEN\) ab\r\n\(XEN\) \*\*\* Serial input to DOM2 \(type 'CTRL-a' three times to switch input\)\r\n\(XEN\) cd\r\n[^]*?Ctrl-\]  send Ctrl-\] to the guest\r\nvpl011: DOM\d \(t[ab]\): destroyed\r\n/);
    assert.match(out, /console closed \(Ctrl-\] \.\); domains destroyed/);
  } finally {
    child.kill('SIGKILL');
  }
});
