// PSCI 1.1 / SMCCC 1.1 answers for one vCPU (Arm DEN0022D; Xen xen/arch/arm/vpsci.c answers the same way).
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { psciCall, PSCI, PSCI_RET } from '../src/cpu/psci.js';
import { vectorOffset, dabtSyndrome } from '../src/cpu/exception.js';

test('PSCI_VERSION and SMCCC_VERSION report 1.1 (0x10001)', () => {
  assert.deepEqual(psciCall(PSCI.VERSION, 0n), { x0: 0x10001n, action: 'none' });
  assert.equal(psciCall(PSCI.SMCCC_VERSION, 0n).x0, 0x10001n);
});

test('SYSTEM_OFF powers off, SYSTEM_RESET resets, CPU_OFF of the only CPU powers off', () => {
  assert.equal(psciCall(PSCI.SYSTEM_OFF, 0n).action, 'poweroff');
  assert.equal(psciCall(PSCI.SYSTEM_RESET, 0n).action, 'reset');
  assert.equal(psciCall(PSCI.CPU_OFF, 0n).action, 'poweroff');
});

test('CPU_ON is refused: ALREADY_ON for CPU 0, INVALID_PARAMETERS for a CPU that does not exist', () => {
  assert.equal(psciCall(PSCI.CPU_ON, 0n).x0, PSCI_RET.ALREADY_ON);
  assert.equal(psciCall(PSCI.CPU_ON, 1n).x0, PSCI_RET.INVALID_PARAMETERS);
  assert.equal(psciCall(PSCI.CPU_ON, 1n).action, 'none');
});

test('PSCI_FEATURES: implemented calls succeed, others NOT_SUPPORTED; unknown function ids NOT_SUPPORTED', () => {
  assert.equal(psciCall(PSCI.FEATURES, BigInt(PSCI.SYSTEM_OFF)).x0, 0n);
  assert.equal(psciCall(PSCI.FEATURES, BigInt(PSCI.CPU_SUSPEND)).x0, PSCI_RET.NOT_SUPPORTED);
  assert.equal(psciCall(0xc2000000, 0n).x0, PSCI_RET.NOT_SUPPORTED);
  assert.equal(psciCall(0xffffffff, 0n).action, 'none');
});

test('exception vector offsets follow Arm ARM D1.10.2 (current EL SP0/SPx, lower EL AArch64)', () => {
  assert.equal(vectorOffset(1, false, 'sync'), 0x000n);
  assert.equal(vectorOffset(1, true, 'sync'), 0x200n);
  assert.equal(vectorOffset(1, true, 'irq'), 0x280n);
  assert.equal(vectorOffset(0, false, 'sync'), 0x400n);
  assert.equal(vectorOffset(0, false, 'serror'), 0x580n);
});

test('the injected data-abort syndrome: EC 0x25 same EL / 0x24 lower EL, IL, WnR for writes, DFSC 0x10', () => {
  assert.equal(dabtSyndrome(1, false), 0x96000010);
  assert.equal(dabtSyndrome(0, true), 0x92000050);
});
