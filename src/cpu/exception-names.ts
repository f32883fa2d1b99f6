// Names for exception syndromes (ESR_ELx.EC, Arm ARM D17.2.37), for messages that tell a person which exception a
// guest could not take.
const EC_NAMES: Readonly<Record<number, string>> = {
  0x00: 'undefined instruction',
  0x01: 'trapped WFI/WFE',
  0x0e: 'illegal execution state',
  0x15: 'SVC',
  0x16: 'HVC',
  0x18: 'trapped system register access',
  0x20: 'instruction abort from EL0',
  0x21: 'instruction abort',
  0x22: 'PC alignment fault',
  0x24: 'data abort from EL0',
  0x25: 'data abort',
  0x26: 'SP alignment fault',
  0x2f: 'SError',
  0x3c: 'BRK',
};

/** "undefined instruction (ESR 0x2000000)": the class name and the raw syndrome. */
export function describeSyndrome(esr: number): string {
  const ec = esr >>> 26;
  return `${EC_NAMES[ec] ?? `exception class 0x${ec.toString(16)}`} (ESR 0x${(esr >>> 0).toString(16)})`;
}
