// PL011 / SBSA UART registers and bits, as typed constants: the PL011 TRM (ARM DDI 0183G, r1p5) register summary
// (3.2) and Xen's xen/arch/arm/include/asm/pl011-uart.h. The SBSA Generic UART (SBSA Appendix B) is the subset
// DR, RSR/ECR, FR, IMSC, RIS, MIS, ICR (and optionally ILPR/IBRD/FBRD/LCR_H/CR/IFLS/DMACR, which Xen omits).

/** Register offsets. */
export const Reg = {
  DR: 0x000,
  RSR: 0x004, // RSR on read, ECR on write
  FR: 0x018,
  ILPR: 0x020,
  IBRD: 0x024,
  FBRD: 0x028,
  LCR_H: 0x02c,
  CR: 0x030,
  IFLS: 0x034,
  IMSC: 0x038,
  RIS: 0x03c,
  MIS: 0x040,
  ICR: 0x044,
  DMACR: 0x048,
  PERIPH_ID0: 0xfe0,
  PERIPH_ID1: 0xfe4,
  PERIPH_ID2: 0xfe8,
  PERIPH_ID3: 0xfec,
  PCELL_ID0: 0xff0,
  PCELL_ID1: 0xff4,
  PCELL_ID2: 0xff8,
  PCELL_ID3: 0xffc,
} as const;
export type Reg = (typeof Reg)[keyof typeof Reg];

/** UARTFR bits (TRM 3.3.3). */
export const FR = {
  CTS: 1 << 0,
  DSR: 1 << 1,
  DCD: 1 << 2,
  BUSY: 1 << 3,
  RXFE: 1 << 4,
  TXFF: 1 << 5,
  RXFF: 1 << 6,
  TXFE: 1 << 7,
  RI: 1 << 8,
} as const;
export type FR = (typeof FR)[keyof typeof FR];

/** UARTFR reset value: TXFE | RXFE (TRM 3.3.3; Xen b4637ed6cd). */
export const FR_RESET = FR.TXFE | FR.RXFE;

/** Interrupt bits, shared by IMSC, RIS, MIS and ICR (TRM 3.3.10-3.3.14). */
export const INT = {
  RIMI: 1 << 0,
  CTSMI: 1 << 1,
  DCDMI: 1 << 2,
  DSRMI: 1 << 3,
  RX: 1 << 4, // RXIS / RXIM / RXIC
  TX: 1 << 5,
  RT: 1 << 6,
  FE: 1 << 7,
  PE: 1 << 8,
  BE: 1 << 9,
  OE: 1 << 10,
} as const;
export type INT = (typeof INT)[keyof typeof INT];

/** All defined interrupt bits (ICR writes of other bits do nothing). */
export const INT_ALL = 0x7ff;
/** The receive error interrupts (FE/PE/BE/OE, TRM 3.3.12): RIS bits 10:7 are the received character's DR bits 11:8. */
export const INT_ERRORS = INT.FE | INT.PE | INT.BE | INT.OE;
/** RSR bits 3:0 (FE, PE, BE, OE) shifted to their RIS bits 10:7. */
export const RSR_TO_INT_SHIFT = 7;
/** The interrupts vpl011 can raise: RXI, TXI, RTI (Xen's) and the receive errors the backend reports (line events). */
export const INT_DRIVEN = INT.RX | INT.TX | INT.RT | INT_ERRORS;

/** SBSA_UART_FIFO_SIZE (Xen vpl011.h): the FIFO depth guests assume (Linux sbsa-uart fifosize = 32). */
export const SBSA_UART_FIFO_SIZE = 32;
/** SBSA_UART_FIFO_LEVEL: the 1/2 trigger level in bytes, used by Xen against the ring sizes (bb2c1a1cc9). */
export const SBSA_UART_FIFO_LEVEL = SBSA_UART_FIFO_SIZE / 2;

/** DR: the data bits written to / read from the ring. */
export const DR_DATA_MASK = 0xff;
/** DR bits 11:8 on a read: FE, PE, BE, OE of that character (TRM 3.3.1); also RSR bits 3:0 (3.3.2). */
export const DR_ERROR_SHIFT = 8;

// ---- the full PL011 (profile `pl011`): registers the SBSA subset leaves out --------------------------------------

/** UARTCR bits (TRM 3.3.8). Bits 6:3 are reserved. */
export const CR = {
  UARTEN: 1 << 0,
  SIREN: 1 << 1,
  SIRLP: 1 << 2,
  LBE: 1 << 7,
  TXE: 1 << 8,
  RXE: 1 << 9,
  DTR: 1 << 10,
  RTS: 1 << 11,
  OUT1: 1 << 12,
  OUT2: 1 << 13,
  RTSEN: 1 << 14,
  CTSEN: 1 << 15,
} as const;
export type CR = (typeof CR)[keyof typeof CR];
/** UARTCR reset value: TXE | RXE (TRM 3.3.8). */
export const CR_RESET = CR.TXE | CR.RXE; // 0x300
/** The UARTCR bits a write stores (15:7 and 2:0; 6:3 reserved). */
export const CR_MASK = 0xff87;

/** UARTLCR_H bits (TRM 3.3.7). */
export const LCRH = {
  BRK: 1 << 0,
  PEN: 1 << 1,
  EPS: 1 << 2,
  STP2: 1 << 3,
  FEN: 1 << 4,
  WLEN_SHIFT: 5, // bits 6:5, 0b11 = 8 bits
  SPS: 1 << 7,
} as const;
export type LCRH = (typeof LCRH)[keyof typeof LCRH];
export const LCRH_MASK = 0xff;

/** UARTIFLS (TRM 3.3.9): TXIFLSEL in bits 2:0, RXIFLSEL in bits 5:3; reset 0x12 = both 1/2. */
export const IFLS_RESET = 0x12;
export const IFLS_MASK = 0x3f;
export const IFLS_RX_SHIFT = 3;
export const IFLS_SEL_MASK = 0x7;

/** Register widths (TRM 3.2): IBRD 16 bits, FBRD 6 bits, ILPR 8 bits. */
export const IBRD_MASK = 0xffff;
export const FBRD_MASK = 0x3f;
export const ILPR_MASK = 0xff;

/** PL011 FIFO depth from r1p5 on (TRM 2.1: 32x8 transmit, 32x12 receive; PeriphID2 revision 3). */
export const PL011_FIFO_SIZE = 32;

/**
 * Trigger level in bytes of a 32-entry FIFO for an IFLS selector (TRM 3.3.9): b000..b100 = 1/8, 1/4, 1/2, 3/4, 7/8.
 * b101-b111 are reserved; they are treated as the reset level, 1/2.
 */
export function iflsTriggerBytes(sel: number): number {
  switch (sel & IFLS_SEL_MASK) {
    case 0:
      return 4;
    case 1:
      return 8;
    case 3:
      return 24;
    case 4:
      return 28;
    default:
      return 16; // b010, and the reserved encodings
  }
}

/**
 * UARTPeriphID0-3 (TRM 3.3.15-3.3.18) for r1p5: part 0x011, designer 0x41 (ARM), revision 3, configuration 0.
 * Linux's amba bus assembles the low bytes of four 32-bit reads; its pl011 driver takes revision >= 3 as a 32-byte
 * FIFO (get_fifosize_arm), which matches what IFLS levels mean here. (QEMU reports revision 1 with a 16-byte FIFO.)
 */
export const PL011_PERIPH_ID = [0x11, 0x10, 0x34, 0x00] as const;
/** UARTPCellID0-3 (TRM 3.3.19-3.3.22): 0xB105F00D, the PrimeCell identification Linux's amba bus checks. */
export const PL011_PCELL_ID = [0x0d, 0xf0, 0x05, 0xb1] as const;
