// `vpl011 stat NAME --why-irq`: one sentence per interrupt source saying why it is high or low right now, with the
// numbers. Only wording lives here: whether a source holds, is latched, is masked, and the thresholds it was compared
// with are what the device computed (Vpl011.irqView(), the same conditions() its update() latches RIS from), and the
// GIC's part is what the GIC model reports (Gicv2.spiView()). So the sentences cannot disagree with the line.
import type { Vpl011IrqView } from './vpl011.js';
import { INT } from './spec.js';
import { hex as hexDigits } from '../util/hex.js';

/** One SPI as the GIC sees it (Gicv2.spiView()). */
export interface SpiView {
  intid: number;
  /** The level the device drives into the distributor. */
  line: boolean;
  enabled: boolean;
  pending: boolean;
  active: boolean;
  priority: number;
  /** GICD_CTLR.Enable and GICC_CTLR.Enable. */
  distributorOn: boolean;
  cpuInterfaceOn: boolean;
  /** GICC_PMR and the running priority (0x100: idle). */
  pmr: number;
  runningPriority: number;
  /** The GIC signals this interrupt to the vCPU now (it is the best pending one and passes every check). */
  signalled: boolean;
}

const n = (v: number): string => v.toLocaleString('en-US');
const bytes = (v: number): string => `${n(v)} byte${v === 1 ? '' : 's'}`;
const hex = (v: number, d = 3): string => hexDigits(v, d);

/** The error and modem sources: a ring has no framing, parity, break or overrun, and no modem lines. */
const NEVER: readonly { bit: number; name: string; mask: string; what: string; pl011Only: boolean }[] = [
  { bit: INT.FE, name: 'FE', mask: 'FEIM', what: 'framing error', pl011Only: false },
  { bit: INT.PE, name: 'PE', mask: 'PEIM', what: 'parity error', pl011Only: false },
  { bit: INT.BE, name: 'BE', mask: 'BEIM', what: 'break', pl011Only: false },
  { bit: INT.OE, name: 'OE', mask: 'OEIM', what: 'overrun (input waits in the ring instead)', pl011Only: false },
  { bit: INT.RIMI, name: 'RI', mask: 'RIMIM', what: 'ring-indicator change (no modem lines)', pl011Only: true },
  { bit: INT.CTSMI, name: 'CTS', mask: 'CTSMIM', what: 'CTS change (no modem lines)', pl011Only: true },
  { bit: INT.DCDMI, name: 'DCD', mask: 'DCDMIM', what: 'DCD change (no modem lines)', pl011Only: true },
  { bit: INT.DSRMI, name: 'DSR', mask: 'DSRMIM', what: 'DSR change (no modem lines)', pl011Only: true },
];

/** One line per source (RX, RT, TX, then the error and modem sources of the profile), then the line and the GIC. */
export function whyIrq(v: Vpl011IrqView, spi?: SpiView): string[] {
  const out: string[] = [];
  const rxL = v.rxOn ? v.inLevel : 0;
  const free = v.outSize - v.outLevel;
  const txiMinFree = v.outSize - v.txiMaxOut;
  const rxOff = v.rxOn ? '' : ` (the receiver is off: CR.RXE=0, so the ${bytes(v.inLevel)} in IN are not seen)`;

  // For each driven source: what holds (the device's condition), and in words, with its numbers.
  const sources: { bit: number; name: string; mask: string; holds: string; fails: string }[] = [
    {
      bit: INT.RX,
      name: 'RX',
      mask: 'RXIM',
      holds: `${bytes(rxL)} wait in IN ≥ ${n(v.rxiMinIn)} (the RX trigger level)`,
      fails: `${bytes(rxL)} in IN < ${n(v.rxiMinIn)} (the RX trigger level)${rxOff}`,
    },
    {
      bit: INT.RT,
      name: 'RT',
      mask: 'RTIM',
      holds: v.profile === 'sbsa'
        ? `${bytes(rxL)} wait in IN (RT = data present: there is no time to time out)`
        : `${bytes(rxL)} wait in IN (RT: 32 idle bit periods have passed, or data present while no baud rate is programmed)`,
      fails: !v.rxOn ? `nothing is visible${rxOff}` : v.rtWaiting && rxL > 0 ? `${bytes(rxL)} wait in IN, but 32 idle bit periods have not passed since the last one arrived (the receive timeout, TRM 2.9.5)` : 'IN is empty',
    },
    {
      bit: INT.TX,
      name: 'TX',
      mask: 'TXIM',
      holds: `${bytes(free)} free in OUT ≥ ${n(txiMinFree)} (the TX trigger level)`,
      fails: `only ${bytes(free)} free in OUT < ${n(txiMinFree)} (the TX trigger level; the backend has not drained it)`,
    },
  ];
  for (const s of sources) {
    const holds = (v.holding & s.bit) !== 0;
    const latched = (v.ris & s.bit) !== 0;
    const unmasked = (v.imsc & s.bit) !== 0;
    const im = `IMSC.${s.mask}=${unmasked ? 1 : 0}`;
    if (latched && unmasked) out.push(`${s.name}: ${s.holds} and ${im} → ${s.name}I asserted (MIS.${s.name}MIS=1)`);
    else if (latched) out.push(`${s.name}: masked (${im}) although ${s.holds}; RIS.${s.name}RIS=1, MIS.${s.name}MIS=0`);
    else if (holds) {
      const next = s.bit === INT.TX && v.txLatchesOnDrWriteOnly
        ? 'latches on the next DR write (the backend is Xen: only a DR write sets TXI)'
        : 'latches on the next data event (DR access, backend notification, IMSC write)';
      out.push(
        `${s.name}: low although ${s.holds}: RIS.${s.name}RIS is not latched (cleared by an ICR write, or no data event since reset) and ${next}${unmasked ? '' : `; masked anyway (${im})`}`,
      );
    } else out.push(`${s.name}: low: ${s.fails}${unmasked ? ` (${im})` : `; masked too (${im})`}`);
  }
  for (const s of NEVER) {
    if (s.pl011Only && v.profile !== 'pl011') continue;
    const unmasked = (v.imsc & s.bit) !== 0;
    out.push(`${s.name}: low: never raised, a console ring has no ${s.what} (IMSC.${s.mask}=${unmasked ? 1 : 0})`);
  }
  out.push(
    v.line
      ? `line: high: MIS=${hex(v.mis)} ≠ 0 (RIS=${hex(v.ris)} & IMSC=${hex(v.imsc)})`
      : `line: low: MIS=0 (RIS=${hex(v.ris)} & IMSC=${hex(v.imsc)})`,
  );
  if (spi) out.push(gicSentence(spi));
  return out;
}

/** The GIC's part: whether the device's line reaches the vCPU, and if not, which check stops it. */
export function gicSentence(s: SpiView): string {
  const state = `${s.pending ? 'pending' : 'not pending'}, ${s.active ? 'active' : 'not active'}, ${s.enabled ? 'enabled' : 'disabled'}, priority ${hex(s.priority, 2)}`;
  const head = `GIC: SPI ${s.intid} line ${s.line ? 'high' : 'low'}, ${state}`;
  if (s.signalled) return `${head} → signalled to the vCPU (IRQ)`;
  if (!s.pending) return `${head} → nothing to signal`;
  if (s.active) return `${head} → not signalled: already active (the guest has not written EOI for it)`;
  if (!s.enabled) return `${head} → not signalled: the guest has not enabled it (GICD_ISENABLER)`;
  if (!s.distributorOn) return `${head} → not signalled: the distributor is off (GICD_CTLR=0)`;
  if (!s.cpuInterfaceOn) return `${head} → not signalled: the CPU interface is off (GICC_CTLR=0)`;
  if (s.priority >= s.pmr) return `${head} → not signalled: priority ${hex(s.priority, 2)} is not above the mask GICC_PMR=${hex(s.pmr, 2)}`;
  if (s.priority >= s.runningPriority) {
    return `${head} → not signalled: priority ${hex(s.priority, 2)} is not above the running priority ${hex(s.runningPriority, 2)}`;
  }
  return `${head} → not signalled: another interrupt of higher priority is pending`;
}
