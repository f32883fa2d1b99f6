// Safe quoting of untrusted text on its way to a terminal. Text from a config file, a replay script, a daemon's
// answer or a domain record can carry ESC, BEL, CR or a megabyte of anything; echoed raw it can recolour, retitle or
// rewrite the user's terminal (a CR overwrites the line; ESC sequences move the cursor, set the window title, ...).
// Everything that quotes such text goes through here: non-printables become visible escapes, length is capped.

/** What an error quotes of a value: enough to recognise it, never a flood. */
export const QUOTE_MAX = 80;
/** Cap for a whole message line from a less trusted source (e.g. a daemon's error), after escaping. */
export const LINE_MAX = 500;

const ESCAPES: Record<number, string> = { 0x07: '\\a', 0x08: '\\b', 0x09: '\\t', 0x0a: '\\n', 0x0b: '\\v', 0x0c: '\\f', 0x0d: '\\r', 0x1b: '\\e' };

/**
 * Code points a terminal acts on rather than shows: C0 controls, DEL, C1 controls (0x80-0x9f: 0x9b is CSI on many
 * terminals), line/paragraph separators, bidirectional overrides and isolates (they reorder what the user reads).
 */
function isUnsafe(cp: number): boolean {
  return (
    cp < 0x20 ||
    (cp >= 0x7f && cp <= 0x9f) ||
    cp === 0x2028 ||
    cp === 0x2029 ||
    (cp >= 0x202a && cp <= 0x202e) ||
    (cp >= 0x2066 && cp <= 0x2069) ||
    cp === 0xfeff
  );
}

function escapeCodePoint(cp: number): string {
  const named = ESCAPES[cp];
  if (named) return named;
  if (cp <= 0xff) return '\\x' + cp.toString(16).padStart(2, '0');
  return '\\u{' + cp.toString(16) + '}';
}

/**
 * `text` with every unsafe code point as a visible escape (\e, \r, \x9b, \u{202e}, ...), cut to at most `max`
 * characters of output plus "…" when longer. Only the part that is shown is examined: the cost is O(max), whatever
 * the input's size. max = Infinity escapes without cutting.
 */
export function printable(text: string, max: number = QUOTE_MAX): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const cp = text.codePointAt(i)!;
    const ch = cp > 0xffff ? text.slice(i, i + 2) : text[i]!;
    // A lone surrogate is not text either.
    const piece = isUnsafe(cp) || (cp >= 0xd800 && cp <= 0xdfff) ? escapeCodePoint(cp) : ch;
    // Never cut inside an escape or a surrogate pair: stop before a piece that does not fit.
    if (out.length + piece.length > max) return out + '…';
    out += piece;
    i += ch.length;
  }
  return out;
}

/** `printable` in double quotes: for a value inside a message, e.g. unknown step "frob\e[31m". */
export function quote(text: string, max: number = QUOTE_MAX): string {
  return `"${printable(text, max)}"`;
}

/** A whole message line from elsewhere (a daemon's answer, an fs error naming a user's path): escaped and capped. */
export function printableLine(text: string): string {
  return printable(text, LINE_MAX);
}
