// CPU start-up self-test program (src/cpu/selftest.ts runs it; the words are embedded there, and
// test/cpu-selftest.test.ts checks they match this source). Loaded at 0x40000000, MMU off, VBAR_EL1 = +0x800.
// The host sets: x0 = 0x1111, x5 = an unaligned address, x7 = EL0 entry, x8 = EL0 stack, SP = EL1 stack.
    .global _start
_start:                       // +0x000: EL1 -> EL0
    hvc #0                    // HVC must trap to the host (SCR_EL3.HCE), PC after it
    msr sp_el0, x8
    msr elr_el1, x7
    msr spsr_el1, xzr         // EL0t, DAIF clear
    eret
    .org 0x100
el0_svc:                      // case A: SVC from EL0
    svc #0x1234
    b .
    .org 0x200
el0_ldxr:                     // case B: unaligned exclusive load from EL0 -> alignment fault, FAR = x5
    ldxr x0, [x5]
    b .
    .org 0x300
el1_svc:                      // case C: SVC from EL1h -> current-EL SPx vector
    svc #0x77
    b .
    .org 0x380
el1_wfi:                      // case D: uc_emu_start returns at WFI with PC after it
    wfi
    b .
    .org 0x400
el1_timer:                    // case E: CNTV writes reach the MSR hook; MRS reads the mirrored CTL with ISTATUS
    msr cntv_cval_el0, xzr    // a deadline in the past
    mov x1, #1
    msr cntv_ctl_el0, x1      // ENABLE
    isb
    mrs x2, cntv_ctl_el0
    mov x0, #0x4444
    hvc #0
    b .
    .macro report
    mrs x1, esr_el1           // these MRS UNDEF if hflags still say EL0
    mrs x2, far_el1
    mrs x3, CurrentEL
    mov x4, sp
    mrs x6, elr_el1
    mrs x10, sp_el0
    mrs x11, spsr_el1
    stp x1, x2, [sp, #-16]!
    mov x0, #0x2222
    hvc #0
    b .
    .endm
    .org 0xa00                // VBAR_EL1 + 0x200: current EL, SPx, synchronous
    report
    .org 0xc00                // VBAR_EL1 + 0x400: lower EL, AArch64, synchronous
    report
