// The pl011 profile's receive timeout in guest time (TRM 2.8.4, 3.3.12; src/device/receive-timeout.ts): RTRIS is
// asserted once the receive FIFO holds data and no character has arrived for 32 bit periods of the programmed baud
// rate (UARTCLK 24 MHz / (16 x divisor)), on the clock the machine gives (the guest's virtual counter). Untimed
// (sbsa, no clock, no divisor): "data present", as Xen.
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { deviceRig } from './lib/device-rig.js';
import { CR, INT, LCRH, Reg } from '../src/device/spec.js';
import { rxTimeoutMs } from '../src/device/receive-timeout.js';

function timed(ibrd: number, fbrd: number) {
  const r = deviceRig('pl011');
  let now = 1000;
  r.dev.setRxClock(() => now);
  r.dev.write(Reg.IBRD, 4, ibrd);
  r.dev.write(Reg.FBRD, 4, fbrd);
  r.dev.write(Reg.LCR_H, 4, LCRH.FEN | (3 << LCRH.WLEN_SHIFT)); // latches the divisor (TRM 3.3.6)
  r.dev.write(Reg.CR, 4, CR.UARTEN | CR.TXE | CR.RXE);
  r.dev.write(Reg.IMSC, 4, INT.RX | INT.RT);
  const advance = (ms: number) => {
    now += ms;
    r.dev.rxTimeoutTick();
  };
  return { ...r, advance };
}

test('32 bit periods: 0.2778 ms at 115200 (IBRD 13, FBRD 1), 3.333 ms at 9600 (IBRD 156, FBRD 16)', () => {
  assert.ok(Math.abs(rxTimeoutMs((13 << 6) | 1) - 32 / 115200 * 1000) < 0.001);
  assert.ok(Math.abs(rxTimeoutMs((156 << 6) | 16) - 32 / 9600 * 1000) < 0.0001);
  assert.equal(rxTimeoutMs(0), 0, 'no divisor, no timeout');
});

test('pl011 timed: RT after 32 idle bit periods, not before; a new character restarts the count; reading the FIFO empty clears it', () => {
  const { dev, fill, advance, line } = timed(13, 1);
  fill('ls'); // below the RX trigger (16): only RT can tell the driver
  assert.equal(dev.read(Reg.RIS, 4) & INT.RT, 0, 'just received: no timeout yet');
  assert.equal(line(), false);
  const left = dev.msUntilRxTimeout()!;
  assert.ok(left > 0.27 && left <= 0.278, `the machine's WFI deadline: ${left} ms`);
  advance(0.2);
  assert.equal(dev.read(Reg.RIS, 4) & INT.RT, 0, '0.2 ms < 32 bit periods');
  fill('\r'); // another character: the idle period starts again
  advance(0.2);
  assert.equal(dev.read(Reg.RIS, 4) & INT.RT, 0, 'restarted by the new character');
  advance(0.1);
  assert.equal(dev.read(Reg.RIS, 4) & INT.RT, INT.RT, 'RTRIS after 32 idle bit periods');
  assert.equal(line(), true, 'RTIM unmasked: the line rises');
  assert.equal(dev.msUntilRxTimeout(), null, 'nothing pending any more');
  const got = [dev.read(Reg.DR, 4), dev.read(Reg.DR, 4), dev.read(Reg.DR, 4)];
  assert.deepEqual(got, [0x6c, 0x73, 0x0d]);
  assert.equal(dev.read(Reg.RIS, 4) & INT.RT, 0, 'cleared when the FIFO empties (TRM 2.8.4)');
  assert.equal(line(), false);
});

test('pl011 timed: ICR clears RT; 9600 baud waits 3.33 ms; the receiver off or nothing waiting arms nothing', () => {
  const { dev, fill, advance } = timed(156, 16);
  fill('x');
  advance(3.3);
  assert.equal(dev.read(Reg.RIS, 4) & INT.RT, 0);
  advance(0.05);
  assert.equal(dev.read(Reg.RIS, 4) & INT.RT, INT.RT);
  dev.write(Reg.ICR, 4, INT.RT);
  assert.equal(dev.read(Reg.RIS, 4) & INT.RT, 0, 'ICR clears it');
  assert.equal(dev.read(Reg.DR, 4), 0x78);
  assert.equal(dev.msUntilRxTimeout(), null, 'FIFO empty: no deadline');
  dev.write(Reg.CR, 4, CR.UARTEN | CR.TXE);
  fill('y');
  assert.equal(dev.msUntilRxTimeout(), null, 'receiver off: no deadline');
});

test('untimed: sbsa (a clock is ignored), pl011 without a clock, pl011 before a divisor: RT = data present (Xen)', () => {
  const sbsa = deviceRig('sbsa');
  sbsa.dev.setRxClock(() => 0);
  sbsa.fill('a');
  assert.equal(sbsa.dev.read(Reg.RIS, 4) & INT.RT, INT.RT);
  assert.equal(sbsa.dev.msUntilRxTimeout(), null);
  const noClock = deviceRig('pl011');
  noClock.dev.write(Reg.IBRD, 4, 13);
  noClock.dev.write(Reg.LCR_H, 4, 0x70);
  noClock.fill('a');
  assert.equal(noClock.dev.read(Reg.RIS, 4) & INT.RT, INT.RT);
  const earlycon = deviceRig('pl011');
  earlycon.dev.setRxClock(() => 5);
  earlycon.fill('a');
  assert.equal(earlycon.dev.read(Reg.RIS, 4) & INT.RT, INT.RT, 'no divisor programmed: no bit period');
});
