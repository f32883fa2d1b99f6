// How the vCPU's higher exception levels are set up, shared by the vCPU (vcpu.ts) and the self-test that checks the
// library behaves so (selftest.ts): the guest runs at EL1, AArch64, non-secure, with EL2 present only to route its
// interrupts and hypercalls. Values from the Arm ARM (DDI 0487) register descriptions of SCR_EL3 and HCR_EL2.

/**
 * SCR_EL3 = RES1 (0x30) | NS | HCE | RW: EL1 AArch64 non-secure; HCE makes HVC trap, not UNDEF. Set before the
 * first run because unicorn's aarch64 reset leaves QEMU's arm_el_is_aa64 answering AArch32 for EL1 (docs/CPU.md).
 */
export const SCR_EL3_VALUE = 0x531n;
/** HCR_EL2 = RW (EL1 is AArch64) | IMO | FMO (HCR_EL2.VI becomes the guest's IRQ line). */
export const HCR_EL2_BASE = (1n << 31n) | (1n << 4n) | (1n << 3n);
/** HCR_EL2.VI: the virtual IRQ line the vGIC drives. */
export const HCR_EL2_VI = 1n << 7n;
