/**
 * The pure parts of the scheduling: the pace of starts, the adaptive concurrency and the
 * backoff. Time is passed in (milliseconds on any monotonic clock), so they are tested without
 * waiting.
 */

/** Starts spread evenly, one every 60/rpm seconds, with no burst after an idle spell. */
export class Pacer {
  readonly intervalMs: number;
  #nextAt = -Infinity;

  constructor(rpm: number | null) {
    this.intervalMs = rpm === null ? 0 : 60_000 / rpm;
  }

  /** How long until the next start may go. */
  waitMs(now: number): number {
    return Math.max(0, this.#nextAt - now);
  }

  started(now: number): void {
    this.#nextAt = now + this.intervalMs;
  }
}

/**
 * The effective concurrency: halved by a rate-limited answer, at most once per round of
 * requests (answers to requests sent before the last cut are the same news), and raised by
 * one per round of successes, back up to the maximum.
 */
export class AdaptiveLimit {
  readonly max: number;
  #limit: number;
  #lastCutAt = -Infinity;

  constructor(max: number) {
    this.max = max;
    this.#limit = max;
  }

  get current(): number {
    return Math.max(1, Math.floor(this.#limit));
  }

  /** A request started at `startedAt` was answered 429 at `now`; true if the limit was cut. */
  rateLimited(startedAt: number, now: number): boolean {
    if (startedAt < this.#lastCutAt) return false;
    this.#limit = Math.max(1, this.#limit / 2);
    this.#lastCutAt = now;
    return true;
  }

  succeeded(): void {
    this.#limit = Math.min(this.max, this.#limit + 1 / this.current);
  }
}

const FIRST_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 60_000;

/**
 * The wait before retry number `retry` (0 for the first): the upstream's retry_after_ms when
 * it gave one, else about 1 s, 2 s, 4 s … at most 60 s, jittered between half and one and a
 * half times that so that jobs failing together do not come back together.
 */
export function retryDelayMs(
  retry: number,
  retryAfterMs: number | undefined,
  random: () => number = Math.random,
): number {
  if (retryAfterMs !== undefined) return retryAfterMs;
  const nominal = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** retry);
  return Math.round(nominal * (0.5 + random()));
}
