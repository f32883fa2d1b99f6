// vector-loop: installs a vector table whose synchronous entry raises the same exception again, so no handler can
// ever run (MODE 0: `udf #0`; MODE 1: `svc #0`; MODE 2: a store to 0x09000000, where nothing is mapped, aborted
// by the VMM itself; MODE 3: an unaligned `ldxr`, an alignment fault raised by the CPU; MODE 4: `brk #0`; MODE 5:
// a read of the write-only UARTICR, which the vpl011 refuses). The domain must end with an exception loop naming
// the first exception (issue 7 §3: every class, not only aborts). MODE 6 and 7 (MODE 2's and 3's access) have a
// vector that returns to the faulting instruction, which faults again, identically, for ever.
    .ifndef MODE
    .equ MODE, 0
    .endif
    .macro bad
    .if MODE == 0
    udf #0
    .elseif MODE == 1
    svc #0
    .elseif MODE == 2 || MODE == 6
    str w1, [x2]
    .elseif MODE == 3 || MODE == 7
    ldxr x0, [x5]
    .elseif MODE == 4
    brk #0
    .else
    ldr w3, [x6, #0x44]
    .endif
    .endm
    .global _start
_start:
    adr x9, vectors
    msr vbar_el1, x9
    isb
first:
    .if MODE >= 2
    mov x2, #0x09000000
    mov x5, #0x40010003 & 0xffff
    movk x5, #0x4001, lsl #16
    mov x6, #0x22000000
    .endif
    bad
    b .
    .balign 0x800
vectors:
    .org vectors + 0x200     // current EL with SPx, synchronous
    .if MODE >= 6
    eret                     // back to the faulting instruction
    .else
    bad
    .endif
    b .
