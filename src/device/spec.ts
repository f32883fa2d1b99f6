// PL011 / SBSA UART registers and bits, as typed constants: the PL011 TRM (ARM DDI 0183G, r1p5) register summary
// (3.2) and Xen's xen/arch/arm/include/asm/pl011-uart.h. The SBSA Generic UART (SBSA Appendix B) is the subset
// DR, RSR/ECR, FR, IMSC, RIS, MIS, ICR (and optionally ILPR/IBRD/FBRD/LCR_H/CR/IFLS/DMACR, which Xen omits).

/** Register offsets. */
export const enum Reg {
  DR = 0x000,
  RSR = 0x004, // RSR on read, ECR on write
  FR = 0x018,
  ILPR = 0x020,
  IBRD = 0x024,
  FBRD = 0x028,
  LCR_H = 0x02c,
  CR = 0x030,
  IFLS = 0x034,
  IMSC = 0x038,
  RIS = 0x03c,
  MIS = 0x040,
  ICR = 0x044,
  DMACR = 0x048,
  PERIPH_ID0 = 0xfe0,
  PERIPH_ID1 = 0xfe4,
  PERIPH_ID2 = 0xfe8,
  PERIPH_ID3 = 0xfec,
  PCELL_ID0 = 0xff0,
  PCELL_ID1 = 0xff4,
  PCELL_ID2 = 0xff8,
  PCELL_ID3 = 0xffc,
}

/** UARTFR bits (TRM 3.3.3). */
export const enum FR {
  CTS = 1 << 0,
  DSR = 1 << 1,
  DCD = 1 << 2,
  BUSY = 1 << 3,
  RXFE = 1 << 4,
  TXFF = 1 << 5,
  RXFF = 1 << 6,
  TXFE = 1 << 7,
  RI = 1 << 8,
}

/** UARTFR reset value: TXFE | RXFE (TRM 3.3.3; Xen b4637ed6cd). */
export const FR_RESET = FR.TXFE | FR.RXFE;

/** Interrupt bits, shared by IMSC, RIS, MIS and ICR (TRM 3.3.10-3.3.14). */
export const enum INT {
  RIMI = 1 << 0,
  CTSMI = 1 << 1,
  DCDMI = 1 << 2,
  DSRMI = 1 << 3,
  RX = 1 << 4, // RXIS / RXIM / RXIC
  TX = 1 << 5,
  RT = 1 << 6,
  FE = 1 << 7,
  PE = 1 << 8,
  BE = 1 << 9,
  OE = 1 << 10,
}

/** All defined interrupt bits (ICR writes of other bits do nothing). */
export const INT_ALL = 0x7ff;
/** The interrupts vpl011 can raise (Xen: RXI, TXI, RTI; errors and modem never happen on a ring). */
export const INT_DRIVEN = INT.RX | INT.TX | INT.RT;

/** SBSA_UART_FIFO_SIZE (Xen vpl011.h): the FIFO depth guests assume (Linux sbsa-uart fifosize = 32). */
export const SBSA_UART_FIFO_SIZE = 32;
/** SBSA_UART_FIFO_LEVEL: the 1/2 trigger level in bytes, used by Xen against the ring sizes (bb2c1a1cc9). */
export const SBSA_UART_FIFO_LEVEL = SBSA_UART_FIFO_SIZE / 2;

/** DR: the data bits written to / read from the ring; bits 8-11 are OE/BE/PE/FE, never set by vpl011. */
export const DR_DATA_MASK = 0xff;
