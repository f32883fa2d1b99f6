// no-vector: an undefined instruction with no vector table installed (VBAR_EL1 = 0, where nothing is mapped). The
// domain must end naming the undefined instruction, not the vector fetch that follows it (issue 7 §3).
    .global _start
_start:
    nop
    udf #0
    b .
