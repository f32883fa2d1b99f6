// Numbers as the logs and errors show addresses, offsets and register values: `0x` and lowercase hex digits.

/**
 * `0x` and the hex digits of `n`, zero-padded to at least `digits`. A negative 32-bit number (an Int32Array word,
 * a register value after `|`) is shown as the unsigned word it stands for; a bigint or a larger number as it is.
 */
export function hex(n: number | bigint, digits = 0): string {
  const v = typeof n === 'number' && n < 0 && n >= -0x8000_0000 ? n >>> 0 : n;
  return '0x' + v.toString(16).padStart(digits, '0');
}
