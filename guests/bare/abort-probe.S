// abort-probe: installs an EL1 vector table, makes one bad access (MODE 0: a 32-bit store to 0x09000000, where
// nothing is mapped; MODE 1: a 64-bit load from there; MODE 2: a 64-bit load at UART+0xffc, straddling the
// UART's page; MODE 3: a 32-bit read of UARTICR, which the vpl011 refuses), and its synchronous vector prints "ESR=<hex> FAR=<hex> ELR=<hex> AT=<hex>\n" (AT: the faulting
// instruction's address) and powers off. No abort arrives: "NONE\n". Issue 7 §3.
// MODE 4 and 5 check that the guest goes on after the abort and that the refused access changed nothing: the vector
// returns past the faulting instruction, which is a 64-bit store of "!" (0x21, high word 0x3f3f3f3f) to UARTDR
// (MODE 4; its low half alone would be a byte in the ring) or, once input is waiting, a 64-bit load from UARTDR
// (MODE 5; its low half alone would consume that byte) into x3, preset to 0x1122334455667788. The report line then
// goes on with " X3=<hex> RX=<hex>" (x3 after the fault; the next byte read from DR by a 32-bit load) and " CONT".
    .include "common.inc"
    .ifndef MODE
    .equ MODE, 0
    .endif
    .global _start
_start:
    adr x9, vectors
    msr vbar_el1, x9
    isb
    mov x22, #0
    ldr x0, =UART
    ldr x2, =0x09000000
    mov w1, #0x5a
    .if MODE == 2
    ldr x2, =UART + 0xffc
    .endif
    .if MODE == 4
    ldr x1, =0x3f3f3f3f00000021
    .endif
    .if MODE == 5
    ldr x3, =0x1122334455667788
1:  ldr w4, [x0, #UARTFR]    // wait for input
    tbnz w4, #FR_RXFE, 1b
    .endif
fault:
    .if MODE == 0
    str w1, [x2]
    .elseif MODE == 3
    ldr w3, [x0, #0x44]
    .elseif MODE == 4
    str x1, [x0]
    .elseif MODE == 5
    ldr x3, [x0]
    .else
    ldr x3, [x2]
    .endif
    .if MODE >= 4
    mov x23, x3
    cbz x22, 4f              // the vector did not run
    bl report
    adr x1, msg_x3
    bl puts
    mov x4, x23
    bl puthex
    adr x1, msg_rx
    bl puts
    ldr w4, [x0, #UARTDR]
    bl puthex
    adr x1, msg_cont
    bl puts
    system_off
4:
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

report:                      // prints ESR=x20 FAR=x21 ELR=x22 AT=fault (uses x1-x6, x19)
    mov x19, x30
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
    mov x30, x19
    ret

    .balign 0x800
vectors:
    .org vectors + 0x200     // current EL with SPx, synchronous
    ldr x0, =UART
    mrs x20, esr_el1
    mrs x21, far_el1
    mrs x22, elr_el1
    .if MODE >= 4
    add x9, x22, #4          // go on after the faulting instruction
    msr elr_el1, x9
    eret
    .endif
    bl report
    adr x1, msg_nl
    bl puts
    system_off
    b .
msg_x3:  .asciz " X3="
msg_rx:  .asciz " RX="
msg_cont: .asciz " CONT\n"
msg_esr: .asciz "ESR="
msg_far: .asciz " FAR="
msg_elr: .asciz " ELR="
msg_at:  .asciz " AT="
msg_nl:  .asciz "\n"
msg_none: .asciz "NONE\n"
