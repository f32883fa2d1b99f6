// insight-probe: a known vpl011 access sequence for `vpl011 stat` / `vpl011 trace` (test/insight.test.ts):
//   IMSC := 0x50 (RXIM|RTIM); "OK\n" through DR, polling FR.TXFF before each byte; read RIS; read MIS;
//   ICR := 0x20 (TXIC); read offset 0x800 (not a register: RAZ, counted as unhandled);
//   then echo input: FR.RXFE clear -> read DR, write it back; WFI while there is none; EOT (0x04) -> SYSTEM_OFF.
// Interrupts stay masked (the GIC is never enabled): WFI returns when the backend's event channel rings.
    .include "common.inc"
    .equ UARTIMSC, 0x38
    .equ UARTRIS, 0x3c
    .equ UARTMIS, 0x40
    .equ UARTICR, 0x44
    .global _start
_start:
    ldr x0, =UART
    mov w2, #0x50
    str w2, [x0, #UARTIMSC]
    mov w2, #'O'
    bl putc
    mov w2, #'K'
    bl putc
    mov w2, #'\n'
    bl putc
    ldr w3, [x0, #UARTRIS]
    ldr w3, [x0, #UARTMIS]
    mov w2, #0x20
    str w2, [x0, #UARTICR]
    ldr w3, [x0, #0x800]
echo:
    ldr w3, [x0, #UARTFR]
    tbz w3, #FR_RXFE, 1f
    wfi
    b echo
1:  ldr w2, [x0, #UARTDR]
    and w2, w2, #0xff
    cmp w2, #4
    b.eq done
    bl putc
    b echo
done:
    system_off
    b .
putc:
3:  ldr w3, [x0, #UARTFR]
    tbnz w3, #FR_TXFF, 3b
    str w2, [x0, #UARTDR]
    ret
