// The one error convention (docs/DESIGN.md "Errors"):
//   - an error vpl011 throws on purpose is a Vpl011Error, or a subclass named after what failed (ConfigError,
//     EvtchnError, ...), with `code`: an errno-style name ('EINVAL', 'ENOENT', 'EBUSY', ...) a caller can switch on,
//     as it would on a Node system error's code, and a one-line `message` for a person;
//   - a function that may fail on ordinary input returns a Checked<T> instead of throwing, never `T | string`;
//   - MMIO accesses answer MMIO_ABORT in both directions (src/device/ports.ts), the ring's results are distinct
//     negative numbers (RING_EMPTY, RING_FULL, RING_CORRUPT), so the per-byte paths allocate nothing;
//   - whatever is caught is reported with errorMessage(e), never `(e as Error).message`.

/** The errno-style codes this project's errors carry. */
export type ErrorCode =
  | 'EINVAL' // bad input: a config, an argument, a file's contents, a request
  | 'ENOENT' // something named does not exist
  | 'EEXIST' // something to be created exists already
  | 'EBUSY' // held by someone else (a lock, an SPI, a name)
  | 'ENOSPC' // a table is full
  | 'EACCES' // not ours, or not private enough to trust
  | 'EPERM' // not allowed in this state
  | 'EIO' // the system or the network failed under us
  | 'EPROTO' // the other end broke the protocol
  | 'ENOTSUP'; // this host cannot do it

export class Vpl011Error<C extends ErrorCode = ErrorCode> extends Error {
  constructor(
    readonly code: C,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    // Every subclass is named after itself, so no error prints as a bare "Error".
    this.name = new.target.name;
  }
}

/** The result of a check that may fail on ordinary input: the value, or a one-line reason. */
export type Checked<T> = { ok: true; value: T } | { ok: false; error: string };

export const valid = <T>(value: T): Checked<T> => ({ ok: true, value });
export const invalid = <T = never>(error: string): Checked<T> => ({ ok: false, error });

/** The message of anything caught: an Error's message, or the thrown value as text. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The errno code of a Node system error ('ENOENT', 'EACCES', ...), or undefined for anything else. */
export function errnoOf(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}
