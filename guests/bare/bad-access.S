// bad-access: a read of UARTICR (write-only: Xen's vpl011_mmio_read refuses it at any width). A 64-bit access cannot
// be used: unicorn splits it into two 4-byte MMIO callbacks, so the device never sees width 8. Under 'abort' the guest's
// EL1h synchronous vector checks ESR_EL1 (EC 0x25 data abort same EL, DFSC 0x10 external abort) and FAR_EL1
// (UART + 0x44), writes "ABORT ok\n" or "ABORT bad\n", then SYSTEM_OFF.
// Under 'crash-domain' the VMM ends the domain at the access.
    .include "common.inc"
    .global _start
_start:
    adr x9, vectors
    msr vbar_el1, x9
    isb
    ldr x0, =UART
    ldr w10, [x0, #0x44]     // UARTICR read: refused
    wfi                      // a safe point: the abort is taken here at the latest
    mov x20, #0
    system_off               // no abort arrived: power off without the ABORT line
    .balign 0x800
vectors:
    .org vectors + 0x200     // current EL with SPx, synchronous
    mrs x20, esr_el1
    mrs x21, far_el1
    mrs x22, elr_el1
    adr x1, msg_bad
    lsr x23, x20, #26
    cmp x23, #0x25
    b.ne 0f
    and x23, x20, #0x3f
    cmp x23, #0x10
    b.ne 0f
    ldr x24, =UART + 0x44
    cmp x21, x24
    b.ne 0f
    adr x1, msg_ok
0:  ldr x0, =UART
1:  ldrb w2, [x1], #1
    cbz w2, 2f
    str w2, [x0, #UARTDR]
    b 1b
2:  system_off
    b .
msg_ok:
    .asciz "ABORT ok\n"
msg_bad:
    .asciz "ABORT bad\n"
