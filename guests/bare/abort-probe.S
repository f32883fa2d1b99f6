// abort-probe: installs an EL1 vector table, makes one bad access (MODE 0: a 32-bit store to 0x09000000, where
// nothing is mapped; MODE 1: a 64-bit load from there; MODE 2: a 64-bit load at UART+0xffc, straddling the
// UART's page; MODE 3: a 32-bit read of UARTICR, which the vpl011 refuses), and its synchronous vector prints "ESR=<hex> FAR=<hex> ELR=<hex> AT=<hex>\n" (AT: the faulting
// instruction's address) and powers off. No abort arrives: "NONE\n". Issue 7 §3.
    .include "common.inc"
    .ifndef MODE
    .equ MODE, 0
    .endif
    .global _start
_start:
    adr x9, vectors
    msr vbar_el1, x9
    isb
    ldr x0, =UART
    ldr x2, =0x09000000
    mov w1, #0x5a
    .if MODE == 2
    ldr x2, =UART + 0xffc
    .endif
fault:
    .if MODE == 0
    str w1, [x2]
    .elseif MODE == 3
    ldr w3, [x0, #0x44]
    .else
    ldr x3, [x2]
    .endif
    wfi                      // a safe point: an abort queued by the VMM is taken here at the latest
    adr x1, msg_none
    bl puts
    system_off
    b .

puts:                        // x1: NUL-terminated string (uses w2, w3)
1:  ldrb w2, [x1], #1
    cbz w2, 2f
3:  ldr w3, [x0, #UARTFR]
    tbnz w3, #FR_TXFF, 3b
    str w2, [x0, #UARTDR]
    b 1b
2:  ret

puthex:                      // x4: value, 16 hex digits (uses w2, w3, x5, x6)
    mov x6, #60
1:  lsr x5, x4, x6
    and x5, x5, #0xf
    cmp x5, #10
    add x2, x5, #'0'
    add x5, x5, #('a' - 10)
    csel x2, x5, x2, ge
3:  ldr w3, [x0, #UARTFR]
    tbnz w3, #FR_TXFF, 3b
    str w2, [x0, #UARTDR]
    subs x6, x6, #4
    b.ge 1b
    ret

    .balign 0x800
vectors:
    .org vectors + 0x200     // current EL with SPx, synchronous
    ldr x0, =UART
    mrs x20, esr_el1
    mrs x21, far_el1
    mrs x22, elr_el1
    adr x1, msg_esr
    bl puts
    mov x4, x20
    bl puthex
    adr x1, msg_far
    bl puts
    mov x4, x21
    bl puthex
    adr x1, msg_elr
    bl puts
    mov x4, x22
    bl puthex
    adr x1, msg_at
    bl puts
    adr x4, fault
    bl puthex
    adr x1, msg_nl
    bl puts
    system_off
    b .
msg_esr: .asciz "ESR="
msg_far: .asciz " FAR="
msg_elr: .asciz " ELR="
msg_at:  .asciz " AT="
msg_nl:  .asciz "\n"
msg_none: .asciz "NONE\n"
