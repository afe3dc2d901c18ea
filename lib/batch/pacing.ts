/**
 * The pure parts of the scheduling: the pace of starts, the adaptive concurrency and the
 * backoff. Time is passed in (milliseconds on any monotonic clock), so they are tested without
 * waiting.
 */

/** Weight of the newest gap between starts in their running average. */
const GAP_WEIGHT = 0.25;
/** The learned spacing is at most this many times the longest wait the 429s asked for… */
const SPACING_PER_WAIT = 2;
/** …and never more than a minute, whatever they asked for. */
const MAX_SPACING_MS = 60_000;
/** Successes that undo the spacing learned at a 429, each taking its share off… */
const SUCCESSES_TO_RECOVER = 8;
/** …this many times as many when that 429 came while the last spacing was still being undone. */
const SLOWER_AT_THE_LIMIT = 4;

/**
 * Starts spread evenly, one every 60/rpm seconds, with no burst after an idle spell. Below a
 * concurrency of one, the pace is learned too: a 429 while only one request goes at a time
 * halves the rate of starts (twice the usual gap between them, and at least the wait the 429
 * asked for), so that a limit lower than one request at a time is kept without guessing it.
 *
 * That learned spacing is bounded: at most twice the longest wait the 429s asked for since it
 * was last zero, and at most 60 s, so an upstream asking for 100 ms never waits seconds for the
 * next request. Successes undo it in equal steps: eight in a row bring the full pace back, or 32
 * when the 429 came while the last spacing was still being undone (the limit was met again on
 * the way back, so it is approached more slowly).
 */
export class Pacer {
  readonly intervalMs: number;
  #nextAt = -Infinity;
  #lastStartAt: number | null = null;
  /** The running average of the time between starts. */
  #gapMs = 0;
  /** The spacing learned from 429s; 0 when none is needed. */
  #learnedMs = 0;
  /** What each success takes off the learned spacing. */
  #stepMs = 0;
  /** The longest wait asked for since the learned spacing was last zero. */
  #askedMs = 0;

  constructor(rpm: number | null) {
    this.intervalMs = rpm === null ? 0 : 60_000 / rpm;
  }

  /** The spacing of starts now: the --rpm one, or the learned one when longer. */
  get spacingMs(): number {
    return Math.max(this.intervalMs, this.#learnedMs);
  }

  /** How long until the next start may go. */
  waitMs(now: number): number {
    return Math.max(0, this.#nextAt - now);
  }

  started(now: number): void {
    if (this.#lastStartAt !== null) {
      const gap = now - this.#lastStartAt;
      this.#gapMs = this.#gapMs === 0 ? gap : this.#gapMs + GAP_WEIGHT * (gap - this.#gapMs);
    }
    this.#lastStartAt = now;
    this.#nextAt = now + this.spacingMs;
  }

  /**
   * Rate limited with one request at a time, the answer asking for a wait of `waitMs` (the
   * upstream's retry_after_ms, or the backoff): start half as often as lately, within the bound.
   */
  slowDown(waitMs: number): void {
    const recovering = this.#learnedMs > 0;
    this.#askedMs = Math.max(this.#askedMs, waitMs);
    const bound = Math.min(MAX_SPACING_MS, SPACING_PER_WAIT * this.#askedMs);
    const slower = Math.max(2 * this.#learnedMs, 2 * this.#gapMs, waitMs);
    this.#learnedMs = Math.min(bound, slower);
    const successes = SUCCESSES_TO_RECOVER * (recovering ? SLOWER_AT_THE_LIMIT : 1);
    this.#stepMs = this.#learnedMs / successes;
  }

  succeeded(): void {
    this.#learnedMs -= this.#stepMs;
    if (this.#learnedMs < 1) this.#learnedMs = this.#askedMs = 0;
  }
}

/** Near the level where the last 429 came, a step up takes this many windows of successes. */
const WINDOWS_PER_STEP_NEAR_CEILING = 4;

/**
 * The effective concurrency: halved by a rate-limited answer, at most once per round of
 * requests (answers to requests sent before the last cut are the same news), and raised by one
 * after each full window (as many successes as the limit) of requests sent since the last cut
 * and answered without a 429. The level at which the last 429 came is approached more slowly:
 * an upstream whose limit is a rate lets only so many requests be in flight, and probing above
 * that at the speed of the climb back would meet a 429 every few rounds.
 */
export class AdaptiveLimit {
  readonly max: number;
  #limit: number;
  #lastCutAt = -Infinity;
  /** The limit when the last 429 came. */
  #ceiling = Infinity;
  /** Successes since the last step up or cut. */
  #successes = 0;

  constructor(max: number) {
    this.max = max;
    this.#limit = max;
  }

  get current(): number {
    return this.#limit;
  }

  /** A request started at `startedAt` was answered 429 at `now`; true if the limit was cut. */
  rateLimited(startedAt: number, now: number): boolean {
    if (startedAt < this.#lastCutAt) return false;
    this.#ceiling = this.#limit;
    this.#limit = Math.max(1, Math.floor(this.#limit / 2));
    this.#lastCutAt = now;
    this.#successes = 0;
    return true;
  }

  /** A request started at `startedAt` was answered without a 429. */
  succeeded(startedAt: number): void {
    if (startedAt < this.#lastCutAt || this.#limit >= this.max) return;
    this.#successes++;
    const nearCeiling = this.#limit + 1 >= this.#ceiling;
    const window = this.#limit * (nearCeiling ? WINDOWS_PER_STEP_NEAR_CEILING : 1);
    if (this.#successes < window) return;
    this.#limit++;
    this.#successes = 0;
  }
}

const FIRST_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 60_000;

/**
 * The wait before retry number `retry` (0 for the first): the upstream's retry_after_ms when
 * it gave one, up to 60 s (an upstream asking for hours, or years, would hold the whole run
 * silently), else about 1 s, 2 s, 4 s … at most 60 s, jittered between half and one and a half
 * times that so that jobs failing together do not come back together.
 */
export function retryDelayMs(
  retry: number,
  retryAfterMs: number | undefined,
  random: () => number = Math.random,
): number {
  if (retryAfterMs !== undefined) return Math.min(retryAfterMs, MAX_BACKOFF_MS);
  const nominal = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** retry);
  return Math.round(nominal * (0.5 + random()));
}

/** Waits `ms`, or until `signal` fires; never rejects. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
