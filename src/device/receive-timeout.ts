// The pl011 profile's receive timeout (TRM 2.8.4, 3.3.12 RTRIS): "asserted when the receive FIFO is not empty, and
// no more data is received during a 32-bit period", the bit period being that of the programmed baud rate
// (UARTCLK / (16 x (IBRD + FBRD/64)), TRM 2.4.3), measured in guest time: the guest's virtual counter, given to the
// device by the machine as a clock in milliseconds. Until the guest programs a divisor (earlycon, U-Boot without a
// clock) or when no clock is given (device tests, replay), there is no bit period and RT keeps Xen's meaning, "data
// present". The sbsa profile always keeps Xen's.
//
// Modes, kept in a hot-state word (HotWord.RtMode) that the native fast path reads:
//   RT_UNTIMED (0): RT = data present;  RT_WAITING (1): data arrived, the timeout has not elapsed (RT clear);
//   RT_DUE (2): the timeout elapsed with data still waiting (RT set until the FIFO empties or new data arrives).

/** The UART reference clock the guest's device tree promises (guest-dt.ts apb-pclk: 24 MHz, as QEMU's virt). */
export const PL011_UARTCLK_HZ = 24_000_000;

export const RtMode = {
  Untimed: 0,
  Waiting: 1,
  Due: 2,
} as const;
export type RtMode = (typeof RtMode)[keyof typeof RtMode];

/**
 * 32 bit periods in ms for a latched divisor (IBRD << 6 | FBRD, in 1/64 units): 32 x 16 x (divisor / 64) / UARTCLK
 * seconds. 0: no divisor programmed (no baud rate, so no timeout).
 */
export function rxTimeoutMs(divisor: number, uartclkHz = PL011_UARTCLK_HZ): number {
  if (divisor <= 0) return 0;
  return ((32 * 16 * (divisor / 64)) / uartclkHz) * 1000;
}

/** When the last character arrived and how long the line may stay idle before RT: the device's timing state. */
export class ReceiveTimeout {
  /** The clock (guest time, ms); undefined: untimed. */
  private clock: (() => number) | undefined;
  private timeoutMs = 0;
  /** Guest time at which the last character was seen to arrive. */
  private arrivedAt = 0;

  setClock(clock: (() => number) | undefined): void {
    this.clock = clock;
  }

  /** A new divisor latched (LCR_H write): the timeout follows the baud rate. */
  setDivisor(divisor: number): void {
    this.timeoutMs = rxTimeoutMs(divisor);
  }

  get timed(): boolean {
    return this.clock !== undefined && this.timeoutMs > 0;
  }

  /** Data arrived now: the idle period starts again. */
  arrived(): void {
    if (this.clock) this.arrivedAt = this.clock();
  }

  /** Ms until the timeout elapses (0: elapsed). */
  msLeft(): number {
    if (!this.clock) return 0;
    return Math.max(0, this.arrivedAt + this.timeoutMs - this.clock());
  }
}
