// Console escape commands at a terminal, after Ctrl-] (as ssh's `~` and conserver's Ctrl-E c): both `vpl011 run`
// and `vpl011 console` read the keyboard through this, so the keys mean the same everywhere.
//
//   Ctrl-] .       quit (`run`: destroy the domain) / detach (`console`)
//   Ctrl-] b       send a BREAK (a Linux console then takes the next key as a magic SysRq command)
//   Ctrl-] ?       print the list of escapes
//   Ctrl-] Ctrl-]  send one Ctrl-] to the guest
//   Ctrl-] other   nothing is sent; a one-line hint is printed (neither key reaches the guest)
//
// The Ctrl-] may end one read and its command start the next: the state carries over between chunks. Only terminal
// input is read this way; piped input goes to the guest byte for byte (a script sends what it means).

export const ESCAPE_BYTE = 0x1d; // Ctrl-]

export type EscapeAction =
  | { kind: 'data'; bytes: Uint8Array }
  | { kind: 'quit' }
  | { kind: 'break' }
  | { kind: 'help' }
  | { kind: 'unknown'; key: number };

/** The help text for Ctrl-] ? (one line per escape; `quitWord` is "quit" or "detach"). */
export function escapeHelp(quitWord: string): string {
  return [
    'vpl011 escapes (type Ctrl-] then the key):',
    `  .       ${quitWord}`,
    '  b       send a BREAK (Linux: the next key is a magic SysRq command, e.g. h = help)',
    '  ?       this list',
    '  Ctrl-]  send Ctrl-] to the guest',
  ].join('\n'); // raw mode keeps the terminal's output processing (ONLCR): '\n' is a new line
}

/** A printable name for the key after Ctrl-] in the "unknown escape" hint. */
export function keyName(key: number): string {
  if (key < 0x20) return `Ctrl-${String.fromCharCode(key + 0x40)}`;
  if (key === 0x7f) return 'DEL';
  if (key >= 0x80) return `0x${key.toString(16)}`;
  return String.fromCharCode(key);
}

export class EscapeReader {
  /** A Ctrl-] was the last byte read: the next byte is a command. */
  private armed = false;

  /** Split a chunk of terminal input into data for the guest and escape commands, in order. */
  feed(chunk: Uint8Array): EscapeAction[] {
    const out: EscapeAction[] = [];
    let start = 0;
    const flush = (end: number) => {
      if (end > start) out.push({ kind: 'data', bytes: chunk.subarray(start, end) });
    };
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (this.armed) {
        this.armed = false;
        start = i + 1;
        switch (b) {
          case 0x2e: // .
            out.push({ kind: 'quit' });
            return out; // what follows a quit is not read
          case 0x62: // b
          case 0x42: // B
            out.push({ kind: 'break' });
            break;
          case 0x3f: // ?
            out.push({ kind: 'help' });
            break;
          case ESCAPE_BYTE:
            out.push({ kind: 'data', bytes: Uint8Array.of(ESCAPE_BYTE) });
            break;
          default:
            out.push({ kind: 'unknown', key: b });
        }
      } else if (b === ESCAPE_BYTE) {
        flush(i);
        this.armed = true;
        start = i + 1;
      }
    }
    if (!this.armed) flush(chunk.length);
    return out;
  }
}
