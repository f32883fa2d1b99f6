// tx-flood: write x1 bytes (x1 at entry; 4,400,000 if 0) through DR, polling FR.TXFF before each, then SYSTEM_OFF.
    .include "common.inc"
    .global _start
_start:
    ldr x0, =UART
    cbnz x1, 1f
    ldr x1, =4400000
1:  mov w2, #'a'
2:  ldr w3, [x0, #UARTFR]
    tbnz w3, #FR_TXFF, 2b
    str w2, [x0, #UARTDR]
    add w2, w2, #1
    cmp w2, #'z'+1
    b.ne 3f
    mov w2, #'a'
3:  subs x1, x1, #1
    b.ne 2b
    system_off
    b .
