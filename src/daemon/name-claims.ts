// Domain names are unique. An `up` request does async work (fetching images, spawning the host,
// waiting for its record) before the name is visible in a record, so checking records alone lets two concurrent
// requests both pass. A request claims its name in the same synchronous step as the check, and holds the claim
// until its domain has a record (or it failed); a concurrent request sees the claim and is refused.

export class NameClaims {
  private readonly held = new Set<string>();

  /**
   * Claim `name` unless a claim or an existing domain (`taken(name)`, checked now) has it. Returns the release
   * function, or an error message for the loser.
   */
  claim(name: string, taken: (name: string) => boolean): (() => void) | string {
    if (this.held.has(name) || taken(name)) return `name: a domain called ${name} already exists`;
    this.held.add(name);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held.delete(name);
    };
  }

  has(name: string): boolean {
    return this.held.has(name);
  }
}
