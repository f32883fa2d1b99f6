/** The byte console `i` writes at offset `k`: printable, different per console, cheap to regenerate. */
export function patternByte(i: number, k: number): number {
  return 0x21 + ((k * 7 + i * 13 + (k >>> 11)) % 94);
}
