// The pl011 profile's loopback path (CR.LBE, TRM 3.3.8): in loopback the transmitter feeds the receiver inside the
// UART, so what the guest writes to DR comes back through the receive FIFO, as on hardware (driver self-tests,
// QEMU f576e0733c). A small FIFO of 12-bit entries (data + DR error bits), at most the PL011's 32 entries deep: the
// depth in force (32 with LCR_H.FEN, 1 without) bounds it; a push into a full FIFO is an overrun: the byte is lost
// and the next entry that goes in carries OE (TRM 3.3.1).
import { PL011_FIFO_SIZE } from './spec.js';

const OE_BIT = 1 << 11;

export class LoopbackFifo {
  private readonly entries = new Uint16Array(PL011_FIFO_SIZE);
  private head = 0;
  private count = 0;
  private overrun = false;

  get level(): number {
    return this.count;
  }

  /** Push a transmitted byte; false (nothing stored, next entry flagged OE) when `depth` entries are held already. */
  push(byte: number, depth: number): boolean {
    const cap = Math.max(1, Math.min(depth, PL011_FIFO_SIZE));
    if (this.count >= cap) {
      this.overrun = true;
      return false;
    }
    this.entries[(this.head + this.count) % PL011_FIFO_SIZE] = (byte & 0xff) | (this.overrun ? OE_BIT : 0);
    this.overrun = false;
    this.count++;
    return true;
  }

  /** The oldest entry (data in bits 7:0, errors in 11:8), or -1 when empty. */
  pop(): number {
    if (this.count === 0) return -1;
    const v = this.entries[this.head]!;
    this.head = (this.head + 1) % PL011_FIFO_SIZE;
    this.count--;
    return v;
  }

  clear(): void {
    this.head = 0;
    this.count = 0;
    this.overrun = false;
  }
}
