// The package's `vpl011/device` entry: the vpl011 device core (Xen's xen/arch/arm/vpl011.c as a pure state
// machine) and the PL011/SBSA register facts. The device talks to the world through ports only: a console ring
// (vpl011/ring's ConsoleRing over a 4 KiB page), an interrupt line ({ set(level) }) and a notify callback.
//
//   import { Vpl011, Reg } from 'vpl011/device';
//   import { ConsoleRing } from 'vpl011/ring';
//   const uart = new Vpl011({ ring: new ConsoleRing(new SharedArrayBuffer(4096)), irq: { set() {} }, notify() {} });
//   uart.read(Reg.FR, 4); // 0x90: TXFE | RXFE
export {
  Vpl011,
  VPL011_PROFILES,
  type Vpl011Profile,
  type Vpl011Ports,
  type Vpl011Options,
  type Vpl011Counters,
  type Vpl011State,
  type Pl011Registers,
  type Vpl011IrqView,
} from '../device/vpl011.js';
// Why the line is where it is (what `vpl011 stat --why-irq` prints): whyIrq(uart.irqView()).
export { whyIrq, gicSentence, type SpiView } from '../device/why-irq.js';
export * from '../device/spec.js';
export { MMIO_ABORT, type AccessWidth, type MmioHandler } from '../xen/mmio.js';
export type { IrqLine } from '../xen/vgic.js';
export type { LogSink } from '../util/ratelimit.js';
