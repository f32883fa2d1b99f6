// The vpl011 with its backend in Xen (dom0less), at device level: Xen's buffers (src/xen/xen-console.ts) and the
// console mux (src/console/xen-console-mux.ts) against upstream's rules (docs/UPSTREAM.md, docs/DOM0LESS.md;
// xen/arch/arm/vpl011.c vpl011_{write,read}_data_xen, vpl011_rx_char_xen; d3784f16bb, 1213ebfb9f;
// xen/drivers/char/console.c serial_rx, console_switch_input, vprintk_common).
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { PassThrough, Writable } from 'node:stream';
import { Vpl011 } from '../src/device/vpl011.js';
import { FR, INT, Reg } from '../src/device/spec.js';
import { SpiLevels } from '../src/xen/spi-levels.js';
import { spiLine } from '../src/xen/vgic.js';
import { EventChannels } from '../src/xen/evtchn.js';
import {
  createXenConsoleRegion, QUEUE_BYTES, RecordKind, XenConsoleFrontend, XenConsoleHost, XEN_CONSOLE_IN_SIZE, XEN_CONSOLE_LINE_MAX,
} from '../src/xen/xen-console.js';
import { XenConsoleMux } from '../src/console/xen-console-mux.js';

function rig(domid = 1) {
  const region = createXenConsoleRegion();
  const port = new XenConsoleFrontend(region, domid);
  const host = new XenConsoleHost(region);
  const vgic = new SpiLevels();
  vgic.reserveSpi(32);
  let notifies = 0;
  const wire = { notify: () => {} }; // the vuart channel, when a test has one
  const dev = new Vpl011({ ring: port, irq: spiLine(vgic, 32), notify: () => { notifies++; wire.notify(); } });
  const records = (): { kind: RecordKind; text: string }[] => {
    const r: { kind: RecordKind; text: string }[] = [];
    host.readRecords((kind, b) => r.push({ kind, text: Buffer.from(b).toString('latin1') }));
    return r;
  };
  const type = (s: string): number => {
    const n = host.writeIn(Buffer.from(s, 'latin1'));
    dev.notification(); // what the vuart channel's handler does on the vCPU
    return n;
  };
  const write = (s: string) => {
    for (const c of Buffer.from(s, 'latin1')) dev.write(Reg.DR, 1, c);
  };
  return { region, port, host, dev, vgic, wire, records, type, write, notifies: () => notifies, line: () => vgic.level(32) };
}

// ---- registers (TXFE/TXI rules of the Xen backend) ------------------------------------------------------------

test('Xen backend: FR resets to 0x90 and TXFE stays set through any amount of output; TXFF/BUSY never (d3784f16bb)', () => {
  const r = rig();
  assert.equal(r.dev.read(Reg.FR, 4), FR.TXFE | FR.RXFE);
  for (let i = 0; i < 10_000; i++) {
    r.dev.write(Reg.DR, 1, i % 100 === 99 ? 0x0a : 0x41);
    if (i % 500 === 0) r.records(); // the mux drains as it goes (a full queue would make the write wait)
    const fr = r.dev.read(Reg.FR, 4);
    if ((fr & FR.TXFE) === 0 || (fr & (FR.TXFF | FR.BUSY)) !== 0) assert.fail(`FR 0x${fr.toString(16)} after write ${i}`);
  }
  assert.equal(r.dev.counters.bytesOut, 10_000);
});

test('Xen backend: TXI only after the first DR write; an ICR-cleared TXI stays clear while input arrives (1213ebfb9f)', () => {
  const r = rig();
  assert.equal(r.dev.read(Reg.RIS, 4) & INT.TX, 0, 'not asserted at reset (uartris = 0)');
  r.dev.write(Reg.IMSC, 4, INT.TX);
  assert.equal(r.dev.read(Reg.RIS, 4) & INT.TX, 0, 'an IMSC write does not set TXI in this mode');
  assert.equal(r.line(), false);
  r.write('a');
  assert.equal(r.dev.read(Reg.RIS, 4) & INT.TX, INT.TX, 'set by the DR write');
  assert.equal(r.line(), true);
  r.dev.write(Reg.ICR, 4, INT.TX);
  assert.equal(r.dev.read(Reg.RIS, 4) & INT.TX, 0);
  assert.equal(r.line(), false);
  r.type('x'); // vpl011_rx_char_xen -> data_avail: no TX recomputation when the backend is Xen
  assert.equal(r.dev.read(Reg.RIS, 4) & INT.TX, 0, 'input does not re-raise TXI');
  assert.equal(r.dev.read(Reg.DR, 4), 0x78);
  assert.equal(r.dev.read(Reg.RIS, 4) & INT.TX, 0, 'nor does a DR read');
  r.write('b');
  assert.equal(r.dev.read(Reg.RIS, 4) & INT.TX, INT.TX, 'the next DR write sets it again');
  assert.equal(r.line(), true);
});

test('Xen backend: the 32-byte IN buffer: RTI on 1, RXI at 16, RXFF at 32; the rest is held, none lost', () => {
  const r = rig();
  r.dev.write(Reg.IMSC, 4, INT.RX | INT.RT);
  assert.equal(r.type('a'.repeat(15)), 15);
  assert.equal(r.dev.read(Reg.RIS, 4) & (INT.RX | INT.RT), INT.RT, '15 bytes: RTI only');
  r.type('b');
  assert.equal(r.dev.read(Reg.RIS, 4) & INT.RX, INT.RX, '16 = 32 - SBSA_UART_FIFO_LEVEL: RXI');
  const n = r.type('c'.repeat(40));
  assert.equal(n, XEN_CONSOLE_IN_SIZE - 16, 'only what fits is taken');
  assert.equal(r.host.inFree(), 0);
  assert.equal(r.dev.read(Reg.FR, 4) & FR.RXFF, FR.RXFF);
  const before = r.notifies();
  assert.equal(r.dev.read(Reg.DR, 4), 0x61);
  assert.equal(r.notifies(), before + 1, 'full -> not full: the mux is told it can move held input');
  assert.equal(r.dev.read(Reg.FR, 4) & FR.RXFF, 0);
  let got = 'a';
  while ((r.dev.read(Reg.FR, 4) & FR.RXFE) === 0) got += String.fromCharCode(r.dev.read(Reg.DR, 4));
  assert.equal(got, 'a'.repeat(15) + 'b' + 'c'.repeat(16));
  assert.equal(r.dev.read(Reg.RIS, 4) & (INT.RX | INT.RT), 0, 'empty: RTI and RXI clear');
  assert.equal(r.dev.read(Reg.DR, 4), 0, 'an empty read returns 0');
  assert.equal(r.dev.counters.emptyDrReads, 1);
});

// ---- output buffering ----------------------------------------------------------------------------------------

test('not focused: a line is flushed at its newline as one DOMn record; nothing before it', () => {
  const r = rig();
  r.write('hello');
  assert.deepEqual(r.records(), [], 'held in the 128-byte buffer');
  assert.equal(r.host.stats().held, 5);
  r.write(' world\n');
  assert.deepEqual(r.records(), [{ kind: RecordKind.Line, text: 'hello world\n' }]);
  assert.equal(r.host.stats().held, 0);
});

test('not focused: 126 bytes without a newline are flushed with a forced newline (SBSA_UART_OUT_BUF_SIZE - 2)', () => {
  const r = rig();
  const long = Array.from({ length: 300 }, (_, i) => String.fromCharCode(0x21 + (i % 90))).join('');
  r.write(long);
  const recs = r.records();
  assert.deepEqual(recs.map((x) => x.kind), [RecordKind.Line, RecordKind.Line]);
  assert.equal(recs[0]!.text, long.slice(0, XEN_CONSOLE_LINE_MAX) + '\n');
  assert.equal(recs[1]!.text, long.slice(XEN_CONSOLE_LINE_MAX, 2 * XEN_CONSOLE_LINE_MAX) + '\n');
  assert.equal(r.host.stats().held, 300 - 2 * XEN_CONSOLE_LINE_MAX);
  r.write('\n');
  assert.deepEqual(r.records(), [{ kind: RecordKind.Line, text: long.slice(2 * XEN_CONSOLE_LINE_MAX) + '\n' }]);
  // Exactly 126 then '\n': the 126th byte flushes; the newline is a line of its own (upstream does the same).
  r.write('y'.repeat(XEN_CONSOLE_LINE_MAX) + '\n');
  assert.deepEqual(r.records().map((x) => x.text), ['y'.repeat(XEN_CONSOLE_LINE_MAX) + '\n', '\n']);
});

test('focused: each byte is its own record at once, no prefix; held bytes from before the focus come first with a newline', () => {
  const r = rig();
  r.write('abc'); // held while not focused
  r.host.focused = true;
  r.write('d');
  assert.deepEqual(r.records(), [{ kind: RecordKind.Plain, text: 'abcd\n' }], 'held text + this byte + forced newline');
  r.write('xy\n');
  assert.deepEqual(r.records(), [
    { kind: RecordKind.Plain, text: 'x' },
    { kind: RecordKind.Plain, text: 'y' },
    { kind: RecordKind.Plain, text: '\n' },
  ]);
  r.write('ab');
  r.host.focused = false;
  assert.deepEqual(r.records().map((x) => x.text), ['a', 'b']);
  r.write('q\n');
  assert.deepEqual(r.records(), [{ kind: RecordKind.Line, text: 'q\n' }]);
});

test('a full record queue holds the DR write (no byte dropped) until the mux drains; a stop releases it', () => {
  const r = rig();
  const line = 'z'.repeat(62) + '\n'; // 63 bytes + 2 framing = 65 per record
  const fit = Math.floor(QUEUE_BYTES / 65);
  for (let i = 0; i < fit; i++) r.write(line);
  assert.equal(r.host.stats().queueWaits, 0);
  r.host.stop(); // otherwise the next flush would wait for the mux (this test is the mux: it would wait forever)
  const t0 = Date.now();
  r.write(line);
  assert.ok(Date.now() - t0 < 5_000, 'a stopped domain does not wait');
  assert.equal(r.host.stats().queueWaits, 1, 'the write found the queue full and waited');
  assert.equal(r.records().length, fit, 'everything queued before is intact');
  assert.equal(r.host.takeHeld().toString(), line, 'the unflushed line is still held (the mux prints it at domain end)');
});

// ---- the mux -------------------------------------------------------------------------------------------------

function muxRig(n: number) {
  const evtchn = EventChannels.create({ maxDomains: 4 });
  const sink = new PassThrough();
  let out = '';
  sink.on('data', (b: Buffer) => (out += b.toString('latin1')));
  const mux = new XenConsoleMux({ evtchn, backendDomid: 0, sink });
  const doms: (ReturnType<typeof rig> & { domid: number })[] = [];
  for (let i = 0; i < n; i++) {
    const domid = i + 1;
    const r = rig(domid);
    const gport = evtchn.allocUnbound(domid, 0, () => r.dev.notification());
    r.port.wake = () => void evtchn.notify(domid, gport);
    r.wire.notify = r.port.wake;
    const localPort = evtchn.bindInterdomain(0, domid, gport);
    mux.add({ domid, name: `g${domid}`, host: r.host, localPort });
    doms.push({ ...r, domid });
  }
  /** The vCPUs' side of event delivery (each domain's thread dispatches its doorbell). */
  const vcpus = () => doms.forEach((d) => evtchn.dispatch(d.domid));
  const settle = async () => {
    for (let i = 0; i < 5; i++) await new Promise((res) => setImmediate(res));
  };
  return { evtchn, mux, doms, vcpus, settle, out: () => out };
}

test('mux: DOMn lines with the (XEN) prefix, focused bytes without DOMn, never a line started mid-line', async () => {
  const m = muxRig(2);
  m.mux.start();
  try {
    const [d1, d2] = m.doms;
    await m.settle();
    d1!.write('# ech'); // focused (DOM1 has the focus at start), no newline yet
    d2!.write('from two\n');
    await m.settle();
    d1!.write('o\n');
    await m.settle();
    assert.equal(
      m.out(),
      "(XEN) *** Serial input to DOM1 (type 'CTRL-a' three times to switch input)\n" +
        '(XEN) # ech\n' + // the open line is ended before DOM2's whole line (upstream would continue it)
        '(XEN) DOM2: from two\n' +
        '(XEN) o\n',
    );
    assert.equal(m.mux.counters.linesBroken, 1);
  } finally {
    await m.mux.stop();
  }
});

test('mux: Ctrl-a x3 rotates DOM1 -> DOM2 -> Xen -> DOM1; input goes to the focused domain only; 1-2 Ctrl-a pass through', async () => {
  const m = muxRig(2);
  m.mux.start();
  try {
    const [d1, d2] = m.doms;
    const read = (d: typeof d1) => {
      m.vcpus();
      let s = '';
      while ((d!.dev.read(Reg.FR, 4) & FR.RXFE) === 0) s += String.fromCharCode(d!.dev.read(Reg.DR, 4));
      return s;
    };
    assert.equal(m.mux.focusedDomid, 1);
    m.mux.input(Buffer.from('one\x01\x01two'));
    assert.equal(read(d1), 'one\x01\x01two', 'two Ctrl-a are input');
    assert.equal(read(d2), '');
    m.mux.input(Buffer.from('\x01\x01\x01three'));
    assert.equal(m.mux.focusedDomid, 2);
    assert.equal(read(d2), 'three');
    assert.equal(read(d1), '');
    m.mux.input(Buffer.from('\x01\x01\x01lost'));
    assert.equal(m.mux.focusedDomid, 0, 'Xen');
    assert.equal(m.mux.counters.keysToXen, 4, 'no debug keys here: counted');
    m.mux.input(Buffer.from('\x01\x01\x01'));
    assert.equal(m.mux.focusedDomid, 1);
    await m.settle();
    assert.match(m.out(), /\(XEN\) \*\*\* Serial input to DOM2 .*\n\(XEN\) \*\*\* Serial input to Xen \(type 'CTRL-a' three times to switch input\)\n\(XEN\) \*\*\* Serial input to DOM1/);
  } finally {
    await m.mux.stop();
  }
});

test('mux: 1000 bytes typed at a guest reading slowly all arrive in order through the 32-byte buffer (held, not dropped)', async () => {
  const m = muxRig(1);
  m.mux.start();
  try {
    const d1 = m.doms[0]!;
    const sent = Buffer.from(Array.from({ length: 1000 }, (_, i) => 0x20 + (i % 90)));
    assert.equal(m.mux.input(sent), true);
    let got = '';
    for (let round = 0; round < 500 && got.length < 1000; round++) {
      m.vcpus();
      // Read a few bytes per round, as a slow guest would.
      for (let k = 0; k < 7 && (d1.dev.read(Reg.FR, 4) & FR.RXFE) === 0; k++) got += String.fromCharCode(d1.dev.read(Reg.DR, 4));
      await m.settle(); // the mux's loop takes the device's "not full" notification and moves more in
    }
    assert.equal(got, sent.toString('latin1'));
    assert.equal(m.mux.counters.bytesIn, 1000);
  } finally {
    await m.mux.stop();
  }
});

test('mux: a backed-up sink stops the mux taking records (they wait in the queue, then the vCPU); a drain resumes, nothing lost', async () => {
  const evtchn = EventChannels.create({ maxDomains: 2 });
  let out = '';
  let release: (() => void)[] = [];
  // A terminal that accepts nothing until told: every write's callback is held.
  const sink = new Writable({
    highWaterMark: 64,
    write(chunk: Buffer, _enc, cb) {
      out += chunk.toString('latin1');
      release.push(cb);
    },
  });
  const mux = new XenConsoleMux({ evtchn, backendDomid: 0, sink, outputLimit: 64 });
  const r = rig(1);
  const gport = evtchn.allocUnbound(1, 0, () => r.dev.notification());
  r.port.wake = () => void evtchn.notify(1, gport);
  mux.add({ domid: 1, name: 'g1', host: r.host, localPort: evtchn.bindInterdomain(0, 1, gport) });
  mux.start(); // DOM1 gets the focus; the switch message fills the sink past its limit
  try {
    const settle = async () => {
      for (let i = 0; i < 5; i++) await new Promise((res) => setImmediate(res));
    };
    await settle();
    r.write('line one\n');
    r.write('line two\n');
    await settle();
    assert.equal(r.host.hasRecords(), true, 'the records wait in the queue while the sink is backed up');
    assert.doesNotMatch(out, /line one/);
    for (let i = 0; i < 20 && release.length > 0; i++) {
      const held = release;
      release = [];
      held.forEach((cb) => cb());
      await settle();
    }
    assert.equal(r.host.hasRecords(), false);
    assert.match(out, /\n\(XEN\) line one\n\(XEN\) line two\n$/);
  } finally {
    release.forEach((cb) => cb());
    await mux.stop();
  }
});

test('mux: a domain that ends: its unterminated held line is printed (no byte lost), its unread input counted, the rotation skips it', async () => {
  const m = muxRig(2);
  m.mux.start();
  try {
    const [, d2] = m.doms;
    d2!.write('last words, no newline');
    m.mux.input(Buffer.from('\x01\x01\x01')); // DOM2's turn: its held text waits for its next byte
    m.mux.input(Buffer.from('never read'));
    await m.settle();
    m.mux.domainEnded(2);
    assert.equal(m.mux.counters.keysToDeadDomain, 'never read'.length, 'unread input is counted');
    assert.match(m.out(), /\(XEN\) last words, no newline\n$/, 'printed (focused: without DOMn) with a newline');
    m.mux.input(Buffer.from('x'));
    assert.equal(m.mux.counters.keysToDeadDomain, 'never read'.length + 1);
    m.mux.input(Buffer.from('\x01\x01\x01\x01\x01\x01'));
    assert.equal(m.mux.focusedDomid, 1, 'DOM2 -> Xen -> DOM1');
    m.mux.input(Buffer.from('\x01\x01\x01'));
    assert.equal(m.mux.focusedDomid, 0, 'DOM1 -> (DOM2 ended) -> Xen');
  } finally {
    await m.mux.stop();
  }
});
