// stream: COUNT bytes (assembler --defsym COUNT=n; 1 MiB by default) of a pattern a test regenerates
// (streamPattern in src/vmm/bare-guests.ts), each byte through DR after polling FR.TXFF (PL011 TRM 3.3.3), then
// PSCI SYSTEM_OFF. Byte i is '\n' when i % 64 == 63, else '!' + (x % 94) with x the next xorshift32 state
// (x ^= x << 13; x ^= x >> 17; x ^= x << 5), seeded 0x2545f491: printable, and a lost, repeated or reordered
// byte changes everything after it.
    .include "common.inc"
    .ifndef COUNT
    .equ COUNT, 1048576
    .endif
    .global _start
_start:
    ldr x0, =UART
    ldr x1, =COUNT
    mov x4, #0               // i
    ldr w5, =0x2545f491      // xorshift32 state
    mov w6, #94
next:
    cmp x4, x1
    b.hs done
    and x7, x4, #63
    cmp x7, #63
    b.ne 1f
    mov w2, #'\n'
    b 2f
1:  eor w5, w5, w5, lsl #13
    eor w5, w5, w5, lsr #17
    eor w5, w5, w5, lsl #5
    udiv w7, w5, w6
    msub w2, w7, w6, w5      // x % 94
    add w2, w2, #'!'
2:  ldr w3, [x0, #UARTFR]
    tbnz w3, #FR_TXFF, 2b
    str w2, [x0, #UARTDR]
    add x4, x4, #1
    b next
done:
    system_off
    b .
