/**
 * The pure parts of the scheduling: the pace of starts, the adaptive concurrency and the
 * backoff. Time is passed in (milliseconds on any monotonic clock), so they are tested without
 * waiting.
 */

/** Each success takes this much off the learned spacing: some 20 successes undo a halving. */
const SPEED_UP = 0.966;
/** Weight of the newest gap between starts in their running average. */
const GAP_WEIGHT = 0.25;

/**
 * Starts spread evenly, one every 60/rpm seconds, with no burst after an idle spell. Below a
 * concurrency of one, the pace is learned too: a 429 while only one request goes at a time
 * halves the rate of starts (twice the usual gap between them), and each success brings it back
 * up a little, so that a limit lower than one request at a time is kept without guessing it.
 */
export class Pacer {
  readonly intervalMs: number;
  #nextAt = -Infinity;
  #lastStartAt: number | null = null;
  /** The running average of the time between starts. */
  #gapMs = 0;
  /** The spacing learned from 429s; 0 when none is needed. */
  #learnedMs = 0;

  constructor(rpm: number | null) {
    this.intervalMs = rpm === null ? 0 : 60_000 / rpm;
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
    this.#nextAt = now + Math.max(this.intervalMs, this.#learnedMs);
  }

  /** Rate limited with one request at a time: start half as often as lately. */
  slowDown(): void {
    this.#learnedMs = Math.max(2 * this.#learnedMs, 2 * this.#gapMs);
  }

  succeeded(): void {
    this.#learnedMs = this.#learnedMs < 1 ? 0 : this.#learnedMs * SPEED_UP;
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
