// hello + echo: polled TX of a banner (FR.TXFF then DR), then polled RX echo (FR.RXFE then DR) until '\x04'
// (EOT), then PSCI SYSTEM_OFF. No interrupts, no MMU.
    .include "common.inc"
    .global _start
_start:
    ldr x0, =UART
    adr x1, banner
1:  ldrb w2, [x1], #1
    cbz w2, echo
    bl putc
    b 1b
echo:
2:  ldr w3, [x0, #UARTFR]
    tbnz w3, #FR_RXFE, 2b    // spin on FR: the VMM must show backend progress without interrupts
    ldr w2, [x0, #UARTDR]
    and w2, w2, #0xff
    cmp w2, #4
    b.eq done
    bl putc
    b 2b
done:
    system_off
    b .
putc:
3:  ldr w3, [x0, #UARTFR]
    tbnz w3, #FR_TXFF, 3b
    str w2, [x0, #UARTDR]
    ret
banner:
    .asciz "hello from bare metal\n"
