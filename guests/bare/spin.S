// spin: writes "spinning\n" (polled TX), then loops forever without touching a device or a system register, so the
// VMM never gets a safe point: `b .` by default, or with --defsym RAMFLAG=1 a loop that loads a RAM word nobody
// ever sets (a guest waiting on a flag in memory). Used to prove that any guest can be stopped (issue 7 §1).
    .include "common.inc"
    .global _start
_start:
    ldr x0, =UART
    adr x1, banner
1:  ldrb w2, [x1], #1
    cbz w2, spin
3:  ldr w3, [x0, #UARTFR]
    tbnz w3, #FR_TXFF, 3b
    str w2, [x0, #UARTDR]
    b 1b
spin:
    .ifdef RAMFLAG
    adr x4, flag
2:  ldr w5, [x4]
    cbz w5, 2b
    system_off
    .endif
    b .
banner:
    .asciz "spinning\n"
    .balign 8
flag:
    .word 0
