// scribble: a buggy or hostile guest. Forever: write a random value (xorshift32; mostly below 4096, 1 in 8 any 32-bit
// value) over one of its own ring page's indices
// (struct xencons_interface in_cons/in_prod/out_cons/out_prod at 0x39003c00..0x39003c0c, Xen public/io/console.h;
// GFN 0x39003 is the vuart page, GUEST_MAGIC_BASE + 3 pages), then write "scribble\n" through DR. A corrupt OUT
// half reads as full (FR.TXFF) until the backend resynchronises it, so each character waits a bounded number of FR
// polls and is skipped if the ring stays full.
    .include "common.inc"
    .equ RING_INDICES, 0x39003c00
    // ~0.1 s of hardware polling (~1 us per trapped read): long enough for a console backend to resynchronise the
    // ring. (It was 256 while each poll of a full ring was stretched to up to 1 ms; polls keep hardware time now.)
    .equ SPINS, 100000
    .global _start
_start:
    ldr x0, =UART
    ldr x1, =RING_INDICES
    ldr w5, =0x9e3779b9      // xorshift32 state
loop:
    eor w5, w5, w5, lsl #13
    eor w5, w5, w5, lsr #17
    eor w5, w5, w5, lsl #5
    and w8, w5, #0xc         // which index: 0, 4, 8 or 12
    eor w9, w5, w5, ror #7
    tst w5, #0x70
    b.eq 4f                  // 1 in 8: a wild 32-bit value
    and w9, w9, #0xfff       // else a small one: often a plausible-looking distance, so the ring keeps moving
4:  str w9, [x1, x8]
    adr x6, text
1:  ldrb w2, [x6], #1
    cbz w2, loop
    ldr x10, =SPINS
2:  ldr w3, [x0, #UARTFR]
    tbz w3, #FR_TXFF, 3f
    subs x10, x10, #1
    b.ne 2b
    b 1b                     // still full: skip this character
3:  str w2, [x0, #UARTDR]
    b 1b
text:
    .asciz "scribble\n"
