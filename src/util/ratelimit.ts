// A log that cannot be used to flood the host: what Xen's gprintk at guest level gives vpl011 (a guest that hammers
// an unhandled register must not fill the console daemon's log). The device has no clock, so the limit counts
// events instead of time: the first `burst` messages pass, then only the 2^k-th ones, each saying how many were
// suppressed. Deterministic, allocation-free when suppressing.

export type LogSink = (message: string) => void;

export class RateLimitedLog {
  private count = 0;
  private nextPower: number;
  suppressed = 0;

  constructor(
    private readonly sink: LogSink | undefined,
    private readonly burst = 10,
  ) {
    this.nextPower = 1;
    while (this.nextPower <= burst) this.nextPower *= 2;
  }

  /** Whether the next event would be printed; call log() only then, to avoid building strings for nothing. */
  wouldLog(): boolean {
    const n = this.count + 1;
    return this.sink !== undefined && (n <= this.burst || n === this.nextPower);
  }

  /** Count one event; print it if the limit allows. `message` is only built by the caller when wouldLog(). */
  log(message: string): void {
    this.count++;
    const n = this.count;
    if (n > this.burst) {
      if (n !== this.nextPower) {
        this.suppressed++;
        return;
      }
      this.nextPower *= 2;
    }
    if (!this.sink) return;
    const note = this.suppressed > 0 ? ` (${this.suppressed} similar messages suppressed)` : '';
    this.suppressed = 0;
    try {
      this.sink(message + note);
    } catch {
      // A broken log sink must not turn a guest access into a host exception.
    }
  }

  /** Count an event without building its message (when wouldLog() is false). */
  skip(): void {
    this.count++;
    if (this.count === this.nextPower) this.nextPower *= 2;
    this.suppressed++;
  }

  get events(): number {
    return this.count;
  }
}
