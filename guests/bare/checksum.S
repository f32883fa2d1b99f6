// checksum: prints "checksum ready\n", reads COUNT bytes (--defsym COUNT=n; 1 MiB by default) by polling FR.RXFE
// then reading DR (PL011 TRM 3.3.1/3.3.3), prints "fnv1a32 XXXXXXXX bytes XXXXXXXX\n" (32-bit FNV-1a of the bytes,
// and how many were read, in hex), then PSCI SYSTEM_OFF.
    .include "common.inc"
    .ifndef COUNT
    .equ COUNT, 1048576
    .endif
    .global _start
_start:
    ldr x0, =UART
    adr x1, ready
    bl puts
    ldr x4, =COUNT           // bytes left
    mov x8, #0               // bytes read
    ldr w5, =0x811c9dc5      // FNV-1a offset basis
    ldr w6, =0x01000193      // FNV prime
next:
    cbz x4, report
1:  ldr w3, [x0, #UARTFR]
    tbnz w3, #FR_RXFE, 1b
    ldr w2, [x0, #UARTDR]
    and w2, w2, #0xff        // bits 8-11 are error flags
    eor w5, w5, w2
    mul w5, w5, w6
    sub x4, x4, #1
    add x8, x8, #1
    b next
report:
    adr x1, fnv
    bl puts
    mov w9, w5
    bl puthex32
    adr x1, bytes
    bl puts
    mov w9, w8
    bl puthex32
    mov w2, #'\n'
    bl putc
    system_off
    b .

// puts: the NUL-terminated string at x1. Uses x1-x3, keeps x30 in x15.
puts:
    mov x15, x30
2:  ldrb w2, [x1], #1
    cbz w2, 3f
    bl putc
    b 2b
3:  mov x30, x15
    ret
// puthex32: w9 as 8 lowercase hex digits. Uses x2, x3, x10, x11, keeps x30 in x15.
puthex32:
    mov x15, x30
    mov w10, #28
4:  lsr w11, w9, w10
    and w11, w11, #0xf
    cmp w11, #10
    add w2, w11, #'0'
    add w3, w11, #'a' - 10
    csel w2, w3, w2, hs
    bl putc
    subs w10, w10, #4
    b.pl 4b
    mov x30, x15
    ret
// putc: w2 through DR once FR.TXFF is clear. Uses x3.
putc:
5:  ldr w3, [x0, #UARTFR]
    tbnz w3, #FR_TXFF, 5b
    str w2, [x0, #UARTDR]
    ret

ready:
    .asciz "checksum ready\n"
fnv:
    .asciz "fnv1a32 "
bytes:
    .asciz " bytes "
