// How long a guest that polls FR may be parked: the device's answer (docs: ARCHITECTURE "device"), so the VMM never
// reads FR bits to decide it. Pure: the caller passes the time.
//
// The question behind it: a guest polling an unchanged FR waits for the backend (TXFF: room in the
// ring; RXFE: input). Trapping every read burns a host core; parking the vCPU until the backend's doorbell saves it,
// but a guest that *counts* its reads (firmware: "give up after 100,000") must not see them slowed down: on hardware
// a trapped read costs about READ_COST_MS, so 100,000 reads end in ~0.1 s, and must here too. So, per polling episode
// (the same FR value read again and again with no other UART access between):
// - the parked time is paced against the hardware schedule: the k-th read of the episode may not complete later than
//   episode start + k x READ_COST_MS + SLACK_MS. The vCPU is parked only when it is ahead of that schedule (trapping
//   costs less than a hardware read), so a bounded poll of N reads ends within N x READ_COST_MS + SLACK_MS plus one
//   park's timer overshoot, and the host still sleeps for the difference;
// - an episode that lasts longer than PACED_WINDOW_MS of hardware time is a wait for an event, not a count-down:
//   no firmware bounds a poll that long, so the stall backs off to MAX_PARK_MS per read (almost no host CPU);
// - a park never exceeds MAX_PARK_MS, so interrupts and timers (taken at safe points, which a polling loop does not
//   reach) are never later than that; the doorbell (backend progress) ends a park at once.
import { FR, Reg } from './spec.js';
import { HotState, HotWord } from './hot-state.js';

/** What a trapped UART read costs on hardware (Xen's vpl011: a trap to the hypervisor), in ms. */
export const READ_COST_MS = 0.001;
/** Allowed lag behind the hardware schedule ("a few ms"): a usual wait (the backend drains every ms, plus scheduling jitter) is slept through in parks. */
export const SLACK_MS = 4;
/** Hardware time of polling after which the episode is an event wait and parks back off. */
export const PACED_WINDOW_MS = 1000;
/** The longest single park: interrupts and timers are at most this late (as before: FR_STALL_MS). */
export const MAX_PARK_MS = 1;
/** Shorter parks are not worth a futex wait (timer slack is ~50 us): the vCPU keeps trapping instead. */
export const MIN_PARK_MS = 0.1;
/** Identical FR reads (without TXFF) before the guest counts as polling: an idle U-Boot on RXFE. */
export const SPIN_READS = 16;

export class FrPollPacer {
  private last = -1;
  private reads = 0;
  private start = 0;

  /** Any other access to the device: the guest is not (only) polling FR. */
  reset(): void {
    this.last = -1;
    this.reads = 0;
  }

  /**
   * The guest read `fr` at `nowMs` (any monotonic clock in ms). Returns how long it may be parked now, in ms
   * (0: let it run). A changed value starts a new episode.
   */
  frRead(fr: number, nowMs: number): number {
    if (fr !== this.last) {
      this.last = fr;
      this.reads = 1;
      this.start = nowMs;
      return 0;
    }
    const n = ++this.reads;
    // TXFF (waiting for the ring to drain) counts as polling at the 2nd read; any other value after SPIN_READS.
    if (n < ((fr & FR.TXFF) !== 0 ? 2 : SPIN_READS)) return 0;
    const hardwareMs = n * READ_COST_MS;
    if (hardwareMs > PACED_WINDOW_MS) return MAX_PARK_MS;
    const lead = this.start + hardwareMs + SLACK_MS - nowMs;
    return lead >= MIN_PARK_MS ? Math.min(lead, MAX_PARK_MS) : 0;
  }
}

/**
 * One vpl011's FR polling, as the VMM's trap path sees it: which episode the guest is in and how long it may be
 * parked. The episode's words (the last FR value read, how many times in a row) live in the device's hot state,
 * because the native fast path counts in them too: a spin is seen the same whichever path served the reads before
 * it (a stale count here once stalled RX by 1 ms per batch). The VMM calls this and never reads FR bits itself.
 */
export class FrPollWatch {
  /** The register this watches (an offset in the UART's window). */
  static readonly OFFSET = Reg.FR;
  private readonly w: Int32Array;
  private readonly pacer = new FrPollPacer();

  /** `hot`: the device's hot state (its ring's), or none (no vuart: a private region). */
  constructor(hot: HotState | undefined) {
    this.w = (hot ?? new HotState()).w;
  }

  /** Another device access, or a refused FR read: the polling episode ends. */
  end(): void {
    this.w[HotWord.FrRepeats] = 0;
    this.pacer.reset();
  }

  /** A write to the device: the pacer starts over (the spin count stays, as the native path keeps it). */
  write(): void {
    this.pacer.reset();
  }

  /** The guest read FR = `fr` at `nowMs`: counts the episode and returns how long the vCPU may be parked (ms). */
  read(fr: number, nowMs: number): number {
    const w = this.w;
    // The native path serves the first reads of a poll and any other access in C (src/cpu/native/fastpath.c);
    // it keeps the shared spin words, so a reset count or a new value here means a new polling episode.
    if (fr !== w[HotWord.LastFr] || w[HotWord.FrRepeats] === 0) {
      this.pacer.reset();
      w[HotWord.LastFr] = fr;
      w[HotWord.FrRepeats] = 1;
    } else if (w[HotWord.FrRepeats]! < 0x3fffffff) {
      w[HotWord.FrRepeats]!++;
    }
    return this.pacer.frRead(fr, nowMs);
  }

  /** A changed FR the guest is about to see (after a park or a re-derivation): a new episode starts with it. */
  seen(fr: number, nowMs: number): void {
    this.w[HotWord.LastFr] = fr;
    this.w[HotWord.FrRepeats] = 1;
    this.pacer.frRead(fr, nowMs);
  }
}
