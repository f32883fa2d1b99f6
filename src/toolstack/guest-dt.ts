// The guest's device tree: what libxl's libxl__prepare_dtb (tools/libs/light/libxl_arm.c) writes for an arm64
// guest with vuart = "sbsa_uart", plus /chosen/stdout-path so that plain `earlycon` finds the UART.
import { Fdt, type FdtNode } from './fdt.js';
import { XEN_LAYOUT, type GuestLayout } from './guest-map.js';

export type VuartProfile = 'sbsa_uart' | 'pl011';

export interface GuestDtOptions {
  ramBase: number;
  ramSize: number;
  bootargs: string;
  /** [start, end) of the initrd in guest-physical memory, when there is one. */
  initrd?: { start: number; end: number };
  vuart: VuartProfile;
  /** The memory map (default: Xen's). */
  layout?: GuestLayout;
}

// Devicetree binding for the GIC (arm,gic.yaml): cell 1 is 0 = SPI, 1 = PPI; cell 3 holds the trigger type in
// bits 0-3 (4 = level-high, 8 = level-low) and, for PPIs, the CPU mask in bits 8-15. libxl's set_interrupt()
// puts cpumask 0xf in SPIs too (hence <0 0 0xf04>); we keep its exact bytes.
const DT_IRQ_TYPE_LEVEL_HIGH = 4;
const DT_IRQ_TYPE_LEVEL_LOW = 8;

function gicInterrupt(intid: number, cpumask: number, type: number): [number, number, number] {
  const flags = ((cpumask & 0xff) << 8) | type;
  if (intid >= 32) return [0, intid - 32, flags];
  if (intid >= 16) return [1, intid - 16, flags];
  throw new RangeError(`guest-dt: INTID ${intid} is an SGI, not describable in a DT`);
}

/** The name of the UART node, which /chosen/stdout-path points at. */
export function uartNodeName(vuart: VuartProfile, layout: GuestLayout = XEN_LAYOUT): string {
  // libxl names the sbsa node "sbsa-pl011" without a unit address; we keep Xen's name. The pl011 profile is ours,
  // named by the usual convention (QEMU's virt board names it the same way: U-Boot prints it as its console).
  return vuart === 'sbsa_uart' ? 'sbsa-pl011' : `pl011@${layout.uart.base.toString(16)}`;
}

export function buildGuestDt(opts: GuestDtOptions): Uint8Array {
  const layout = opts.layout ?? XEN_LAYOUT;
  const fdt = new Fdt();
  const root = fdt.root;
  // Root compatible and model: the layout's (guest-map.ts says why). Linux prints the model as "Machine model:".
  root.strings('compatible', ...layout.compatible);
  root.string('model', layout.model);
  root.u32('#address-cells', 2);
  root.u32('#size-cells', 2);
  const chosen = root.child('chosen');
  chosen.string('bootargs', opts.bootargs);
  // Not in libxl (docs/UPSTREAM.md §2): without stdout-path plain `earlycon` has nothing to bind to.
  // Linux's of_setup_earlycon() matches the node's compatible against OF_EARLYCON_DECLARE tables, and
  // amba-pl011.c declares both "arm,pl011" and "arm,sbsa-uart".
  chosen.string('stdout-path', `/${uartNodeName(opts.vuart, layout)}`);
  if (opts.initrd) {
    chosen.u64('linux,initrd-start', opts.initrd.start);
    chosen.u64('linux,initrd-end', opts.initrd.end);
  }

  const cpus = root.child('cpus');
  cpus.u32('#address-cells', 1);
  cpus.u32('#size-cells', 0);
  const cpu0 = cpus.child('cpu@0');
  cpu0.string('device_type', 'cpu');
  cpu0.string('compatible', 'arm,armv8'); // libxl's make_cpus_node for arm64
  cpu0.u32('reg', 0);
  cpu0.string('enable-method', 'psci');

  const psci = root.child('psci');
  psci.strings('compatible', 'arm,psci-1.0', 'arm,psci-0.2');
  psci.string('method', 'hvc'); // a guest at EL1 calls the hypervisor, as under Xen

  const memory = root.child(`memory@${opts.ramBase.toString(16)}`);
  memory.string('device_type', 'memory');
  memory.reg64('reg', [opts.ramBase, opts.ramSize]);

  const gic = makeGic(root, layout);
  // The root carries interrupt-parent (libxl: GUEST_PHANDLE_GIC); device nodes inherit it.
  root.u32('interrupt-parent', fdt.phandle(gic));
  makeTimer(root, layout);

  if (opts.vuart === 'sbsa_uart') {
    makeSbsaUart(root, layout);
  } else {
    makePl011(fdt, root, layout);
  }
  // No flash node even where the layout has flash (qemu-virt): we model no CFI command set, and U-Boot's CFI
  // driver would probe one from the node. U-Boot reads its environment from the flash address without it.
  return fdt.serialize();
}

function makeGic(root: FdtNode, layout: GuestLayout): FdtNode {
  const gic = root.child(`interrupt-controller@${layout.gicd.base.toString(16)}`);
  gic.string('compatible', 'arm,cortex-a15-gic');
  gic.u32('#interrupt-cells', 3);
  gic.u32('#address-cells', 0);
  gic.empty('interrupt-controller');
  gic.reg64('reg', [layout.gicd.base, layout.gicd.size], [layout.gicc.base, layout.gicc.size]);
  return gic;
}

function makeTimer(root: FdtNode, layout: GuestLayout): void {
  const timer = root.child('timer');
  timer.string('compatible', 'arm,armv8-timer');
  // libxl's make_timer_node: secure phys, non-secure phys, virt (PPIs 13, 14, 11), level-low, cpumask 0xf.
  // No hypervisor timer (PPI 10): the guest runs at EL1 and arch-arm.h defines none, as under Xen.
  const ppis = [layout.timerPpis.physS, layout.timerPpis.physNs, layout.timerPpis.virt];
  timer.u32('interrupts', ...ppis.flatMap((p) => gicInterrupt(p, 0xf, DT_IRQ_TYPE_LEVEL_LOW)));
  // Our vCPU's counter keeps running while the vCPU sits in WFI, so Linux need not look for a broadcast timer.
  timer.empty('always-on');
}

/** libxl make_vpl011_uart_node, byte for byte: no clocks, no interrupt-parent (inherited from the root). */
function makeSbsaUart(root: FdtNode, layout: GuestLayout): void {
  const uart = root.child('sbsa-pl011');
  uart.string('compatible', 'arm,sbsa-uart');
  uart.reg64('reg', [layout.uart.base, layout.uart.size]);
  uart.u32('interrupts', ...gicInterrupt(layout.uartIntid, 0xf, DT_IRQ_TYPE_LEVEL_HIGH));
  // Linux's sbsa_uart_probe fails with -EINVAL without current-speed (docs/UPSTREAM.md §3).
  uart.u32('current-speed', 115200);
}

/** The full PL011 profile: a node Linux's AMBA driver and U-Boot's serial_pl011 both bind to. */
function makePl011(fdt: Fdt, root: FdtNode, layout: GuestLayout): void {
  // The AMBA bus needs the "apb_pclk" clock to read the PrimeCell IDs; the pl011 driver takes the first clock as
  // its UART clock. 24 MHz, as QEMU's virt board, so the divisors Linux programs are the usual ones.
  const clk = root.child('apb-pclk');
  clk.string('compatible', 'fixed-clock');
  clk.u32('#clock-cells', 0);
  clk.u32('clock-frequency', 24_000_000);
  clk.string('clock-output-names', 'clk24mhz');
  const ph = fdt.phandle(clk);
  const uart = root.child(uartNodeName('pl011', layout));
  uart.strings('compatible', 'arm,pl011', 'arm,primecell');
  uart.reg64('reg', [layout.uart.base, layout.uart.size]);
  uart.u32('interrupts', ...gicInterrupt(layout.uartIntid, 0xf, DT_IRQ_TYPE_LEVEL_HIGH));
  uart.u32('clocks', ph, ph);
  uart.strings('clock-names', 'uartclk', 'apb_pclk');
  uart.u32('current-speed', 115200);
}
