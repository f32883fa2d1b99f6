// fr-poll: fills the transmit side until FR.TXFF, then polls FR at most POLLS times (default 100,000, as firmware
// bounds such a wait) for TXFF to clear. Gave up: PSCI SYSTEM_OFF. TXFF cleared: PSCI SYSTEM_RESET. With no backend
// draining the ring it must give up in about POLLS x 1 us, as on hardware (issue 7 §2). POLLS=0 polls forever.
    .include "common.inc"
    .ifndef POLLS
    .equ POLLS, 100000
    .endif
    .equ PSCI_SYSTEM_RESET, 0x84000009
    .global _start
_start:
    ldr x0, =UART
    mov w2, #'x'
fill:
    ldr w3, [x0, #UARTFR]
    tbnz w3, #FR_TXFF, full
    str w2, [x0, #UARTDR]
    b fill
full:
    ldr x5, =POLLS
poll:
    ldr w3, [x0, #UARTFR]
    tbz w3, #FR_TXFF, drained
    subs x5, x5, #1
    b.ne poll
    system_off               // gave up: the FIFO never drained within POLLS reads
    b .
drained:
    ldr w0, =PSCI_SYSTEM_RESET
    hvc #0
    b .
