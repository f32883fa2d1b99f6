// PSCI 1.1 / SMCCC 1.1 over HVC for one vCPU (Arm DEN0022, DEN0028). Xen's vpsci.c answers the same calls.
export const PSCI = {
  VERSION: 0x84000000,
  CPU_SUSPEND: 0xc4000001,
  CPU_OFF: 0x84000002,
  CPU_ON: 0xc4000003,
  AFFINITY_INFO: 0xc4000004,
  MIGRATE_INFO_TYPE: 0x84000006,
  SYSTEM_OFF: 0x84000008,
  SYSTEM_RESET: 0x84000009,
  FEATURES: 0x8400000a,
  SMCCC_VERSION: 0x80000000,
  SMCCC_ARCH_FEATURES: 0x80000001,
} as const;

export const PSCI_RET = { SUCCESS: 0n, NOT_SUPPORTED: -1n, INVALID_PARAMETERS: -2n, DENIED: -3n, ALREADY_ON: -4n } as const;

export type PsciAction = 'none' | 'poweroff' | 'reset';

const SUPPORTED = new Set<number>([
  PSCI.VERSION, PSCI.CPU_OFF, PSCI.CPU_ON, PSCI.AFFINITY_INFO, PSCI.MIGRATE_INFO_TYPE,
  PSCI.SYSTEM_OFF, PSCI.SYSTEM_RESET, PSCI.FEATURES, PSCI.SMCCC_VERSION,
]);

/** One call: function id from w0, its first argument from x1. Returns x0 and what the machine must do. */
export function psciCall(fid: number, x1: bigint): { x0: bigint; action: PsciAction } {
  switch (fid >>> 0) {
    case PSCI.VERSION:
      return { x0: 0x10001n, action: 'none' }; // 1.1
    case PSCI.SMCCC_VERSION:
      return { x0: 0x10001n, action: 'none' }; // 1.1
    case PSCI.FEATURES:
      return { x0: SUPPORTED.has(Number(x1 & 0xffffffffn)) ? PSCI_RET.SUCCESS : PSCI_RET.NOT_SUPPORTED, action: 'none' };
    case PSCI.MIGRATE_INFO_TYPE:
      return { x0: 2n, action: 'none' }; // no Trusted OS: migration not required
    case PSCI.AFFINITY_INFO:
      return { x0: x1 === 0n ? 0n : PSCI_RET.INVALID_PARAMETERS, action: 'none' }; // CPU 0 ON; no other CPUs
    case PSCI.CPU_ON:
      // One vCPU: MPIDR 0 is already on; any other target does not exist.
      return { x0: x1 === 0n ? PSCI_RET.ALREADY_ON : PSCI_RET.INVALID_PARAMETERS, action: 'none' };
    case PSCI.SYSTEM_OFF:
    case PSCI.CPU_OFF: // the last (only) CPU going off ends the domain, as in Xen
      return { x0: PSCI_RET.SUCCESS, action: 'poweroff' };
    case PSCI.SYSTEM_RESET:
      return { x0: PSCI_RET.SUCCESS, action: 'reset' };
    default:
      return { x0: PSCI_RET.NOT_SUPPORTED, action: 'none' };
  }
}
