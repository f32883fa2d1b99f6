// vector-loop: installs a vector table whose synchronous entry raises the same exception again (MODE 0: `udf #0`
// after an `udf #0`; MODE 1: `svc #0` after an `svc #0`), so no handler can ever run. The domain must end with an
// exception loop naming the first exception (issue 7 §3: every class, not only aborts).
    .ifndef MODE
    .equ MODE, 0
    .endif
    .global _start
_start:
    adr x9, vectors
    msr vbar_el1, x9
    isb
first:
    .if MODE == 0
    udf #0
    .else
    svc #0
    .endif
    b .
    .balign 0x800
vectors:
    .org vectors + 0x200     // current EL with SPx, synchronous
    .if MODE == 0
    udf #0
    .else
    svc #0
    .endif
    b .
