// The console side of line events (src/console/console.ts, escape.ts): the keyboard escapes after Ctrl-], a BREAK
// reaching a vpl011 in order with typed input, the bounds (a console's own queue, the guest's 16-entry queue with
// retry), and the strict overrun mode (lost input counted, OE on the next character) against the default, which
// never loses a byte.
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { Console, LINE_EVENTS_QUEUED_MAX } from '../src/console/console.js';
import { EscapeReader } from '../src/console/escape.js';
import { EventChannels } from '../src/xen/evtchn.js';
import { ConsoleRing, ConsoleRingBackend, XENCONS_IN_SIZE } from '../src/xen/ring.js';
import { LINE_EVENT_CAPACITY, LineEventQueue } from '../src/xen/line-events.js';
import { Vpl011 } from '../src/device/vpl011.js';
import { Reg } from '../src/device/spec.js';
import { SpiLevels } from '../src/xen/spi-levels.js';
import { spiLine } from '../src/xen/vgic.js';

test('escapes: Ctrl-] . quits, b breaks, ? helps, Ctrl-] Ctrl-] is one Ctrl-], another key is refused; state crosses reads', () => {
  const e = new EscapeReader();
  const show = (chunk: string) =>
    e.feed(Buffer.from(chunk, 'latin1')).map((a) => (a.kind === 'data' ? `data:${Buffer.from(a.bytes).toString('latin1')}` : a.kind === 'unknown' ? `unknown:${a.key}` : a.kind));
  assert.deepEqual(show('ls\r'), ['data:ls\r']);
  assert.deepEqual(show('ab\x1dbh'), ['data:ab', 'break', 'data:h']);
  assert.deepEqual(show('\x1d?x\x1d\x1dy'), ['help', 'data:x', 'data:\x1d', 'data:y']);
  assert.deepEqual(show('\x1dz'), ['unknown:122'], 'neither key reaches the guest');
  assert.deepEqual(show('q\x1d'), ['data:q'], 'a Ctrl-] at the end of a read waits for the next');
  assert.deepEqual(show('.left over'), ['quit'], 'the command in the next read; nothing after a quit');
  assert.deepEqual(show('\x1dB'), ['break']);
});

function setup(overrun?: 'strict') {
  const page = new SharedArrayBuffer(4096);
  const ev = EventChannels.create({ maxDomains: 2, portsPerDomain: 4 });
  const gp = ev.allocUnbound(1, 0, () => dev.notification());
  const localPort = ev.bindInterdomain(0, 1, gp);
  const console = new Console({ name: 'c', domid: 1, ring: new ConsoleRingBackend(page), evtchn: ev, backendDomid: 0, localPort, ...(overrun ? { overrun } : {}) });
  const vgic = new SpiLevels();
  vgic.reserveSpi(32);
  const dev: Vpl011 = new Vpl011({ ring: new ConsoleRing(page), irq: spiLine(vgic, 32), notify: () => {}, lineEvents: new LineEventQueue(ev.lineEventWords(1)) });
  const readAll = (): number[] => {
    const got: number[] = [];
    ev.dispatch(1);
    while ((dev.read(Reg.FR, 4) & 0x10) === 0) got.push(dev.read(Reg.DR, 4));
    return got;
  };
  return { console, dev, ev, readAll };
}

test('a BREAK goes in order with typed input: the 0x00 + BE character between the keys around it', () => {
  const { console, readAll } = setup();
  console.queueInput(Buffer.from('ab'));
  assert.equal(console.queueLineEvent('break'), true);
  console.queueInput(Buffer.from('h'));
  assert.equal(console.queueLineEvent('framing'), true);
  assert.equal(console.queueLineEvent('parity'), true);
  console.service();
  assert.deepEqual(readAll(), [0x61, 0x62, 0x400, 0x68, 0x100, 0x200]);
  assert.equal(console.lineCounters.sent, 3);
});

test('bounds: a console refuses more than 16 queued line events (counted); a full guest queue holds them back, then they go, none lost', async () => {
  const { console, dev, readAll } = setup();
  console.holdInput = true; // the guest is not listening yet: everything queues in the console
  for (let i = 0; i < LINE_EVENTS_QUEUED_MAX; i++) assert.equal(console.queueLineEvent('break'), true);
  assert.equal(console.queueLineEvent('break'), false);
  assert.equal(console.lineCounters.refused, 1);
  console.releaseInput();
  console.service();
  // 16 went into the guest's queue; another 16 wait in the console behind a full guest queue.
  for (let i = 0; i < LINE_EVENT_CAPACITY; i++) assert.equal(console.queueLineEvent('framing'), true);
  console.service();
  assert.equal(console.pendingInput, LINE_EVENT_CAPACITY, 'held back: the guest queue is full');
  const first = readAll();
  assert.equal(first.length, LINE_EVENT_CAPACITY);
  assert.ok(first.every((v) => v === 0x400));
  // The console retries on its own (the device sends no notification when it takes an entry).
  let woke = false;
  console.wake = () => void (woke = true);
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(woke, 'the retry timer asked for a turn');
  console.service();
  const second = readAll();
  assert.equal(second.length, LINE_EVENT_CAPACITY);
  assert.ok(second.every((v) => v === 0x100));
  assert.equal(dev.counters.rxErrors, 2 * LINE_EVENT_CAPACITY);
  console.close();
});

test('overrun: backpressure (default) never loses input; strict loses what finds IN full (counted) and marks the next character OE', () => {
  for (const mode of [undefined, 'strict'] as const) {
    const { console, readAll } = setup(mode);
    const big = Buffer.alloc(XENCONS_IN_SIZE + 100, 0x78);
    console.queueInput(big);
    console.service();
    console.queueInput(Buffer.from('!'));
    console.service();
    if (mode === undefined) {
      assert.equal(console.pendingInput, 101, 'waiting, not lost');
      assert.equal(console.lineCounters.overrun, 0);
      const got = readAll();
      console.service();
      const rest = readAll();
      assert.equal(got.length + rest.length, XENCONS_IN_SIZE + 101);
      assert.equal(rest.at(-1), 0x21, 'no error bits');
    } else {
      assert.equal(console.pendingInput, 0);
      assert.equal(console.lineCounters.overrun, 101, 'the 100 bytes that did not fit and the "!" typed into a full FIFO');
      const got = readAll();
      assert.equal(got.length, XENCONS_IN_SIZE);
      console.queueInput(Buffer.from('y'));
      console.service();
      assert.deepEqual(readAll(), [0x800 | 0x79], 'the first character after the loss carries OE');
    }
    console.close();
  }
});
