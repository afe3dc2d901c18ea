/**
 * Where a failure is retried: the decision (retryable, retries left, time left) and the wait
 * (what the upstream asked for, read here from its headers and message, else backoff) together,
 * around one attempt at a time.
 */
import type { Deadline } from "./deadline.ts";
import { diagnose } from "../failure/diagnosis.ts";
import { factsOf, GenerationError } from "../failure/errors.ts";
import type { Attempt, Diagnosis, Lang } from "../failure/types.ts";

const FIRST_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 30_000;

/**
 * Exponential backoff with full jitter around the nominal delay: about 1 s, 2 s, 4 s … at most
 * 30 s, each between half and one and a half times its nominal value.
 */
export function backoffMs(attempt: number, random: () => number = Math.random): number {
  const nominal = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** attempt);
  return Math.round(nominal * (0.5 + random()));
}

/** How long to wait before the next attempt, or null when there is to be none. */
export function retryWait(
  diagnosis: Diagnosis,
  retriesLeft: number,
  attempt: number,
  remainingMs: number,
): number | null {
  if (retriesLeft <= 0 || !diagnosis.retryable) return null;
  const wait = diagnosis.retry_after_ms ?? backoffMs(attempt);
  return wait < remainingMs ? wait : null;
}

export interface RetryOptions {
  maxRetries: number;
  lang: Lang;
  deadline: Deadline;
  /** Any error of an attempt as a stage failure. */
  asFailure: (error: unknown) => GenerationError;
  /** Called before waiting for the next attempt, e.g. to empty the file and tell progress. */
  beforeRetry: (failure: GenerationError, waitMs: number, attempt: number) => Promise<void>;
}

/** The last attempt's outcome, with each attempt's status and category. */
export type Attempted<T> =
  | { ok: true; value: T; attempts: Attempt[] }
  | { ok: false; failure: GenerationError; diagnosis: Diagnosis; attempts: Attempt[] };

/**
 * Attempts until one succeeds, a failure is not to be retried, or no time is left. Each failure
 * is diagnosed here, once; the diagnosis of the last one comes back with it.
 */
export async function withRetries<T extends { status: number }>(
  attemptOnce: () => Promise<T>,
  options: RetryOptions,
): Promise<Attempted<T>> {
  const { maxRetries, lang, deadline } = options;
  const attempts: Attempt[] = [];
  for (let attempt = 0;; attempt++) {
    let failure: GenerationError;
    try {
      const value = await attemptOnce();
      attempts.push({ http_status: value.status, category: null });
      return { ok: true, value, attempts };
    } catch (error) {
      failure = options.asFailure(error);
    }
    const diagnosis = diagnose(factsOf(failure), lang);
    attempts.push({
      http_status: failure.details.httpStatus ?? null,
      category: diagnosis.category,
    });
    const wait = retryWait(diagnosis, maxRetries - attempt, attempt, deadline.remainingMs());
    if (wait === null) return { ok: false, failure, diagnosis, attempts };
    await options.beforeRetry(failure, wait, attempt);
    try {
      await deadline.sleep(wait);
    } catch {
      const stopped = new GenerationError(
        failure.stage,
        `${failure.message}; then, waiting to retry: ${deadline.stopReason()}`,
        { ...failure.details, cause: deadline.cause() },
      );
      return { ok: false, failure: stopped, diagnosis: diagnose(factsOf(stopped), lang), attempts };
    }
  }
}

/**
 * Milliseconds to wait before trying again, from what the upstream said, first found of:
 * `retry-after-ms`; `retry-after` in seconds (fractions too) or as an HTTP date; the message
 * ("Please try again in 6s", "Try again in 60 seconds", "retry after 7 seconds", "请 12 秒后重试");
 * `x-ratelimit-reset-requests`/`-images`/`-tokens` (`51.84s`, `1m2s`, `6ms`) for a limit whose
 * `x-ratelimit-remaining-*` is 0. A date far ahead is reported as it is: whether to wait that long
 * is the caller's decision (the retry loop never waits past the deadline).
 */
export function retryAfterMs(
  headers: Headers,
  message: string | null = null,
  now = Date.now(),
): number | null {
  const precise = headers.get("retry-after-ms")?.trim();
  if (precise && DECIMAL.test(precise)) return Math.ceil(Number(precise));
  const value = headers.get("retry-after")?.trim();
  if (value && DECIMAL.test(value)) return Math.ceil(Number(value) * 1000);
  const date = value ? Date.parse(value) : NaN;
  if (!Number.isNaN(date)) return Math.max(0, date - now);
  return (message === null ? null : waitInMessage(message)) ?? rateLimitReset(headers);
}

const DECIMAL = /^\d+(\.\d+)?$/;

/** `x-should-retry: false`: the OpenAI SDKs never repeat such a request, and neither does this. */
export function retryRefused(headers: Headers): boolean {
  return headers.get("x-should-retry")?.trim().toLowerCase() === "false";
}

const WAIT_IN_MESSAGE = [
  // OpenAI "Please try again in 6s" / "in 1m2s" / "in 120ms"; LiteLLM "Try again in 60 seconds";
  // Azure "Please retry after 7 seconds"; "try again after 51.84 seconds".
  /\b(?:try again|retry) (?:in|after) ((?:\d+(?:\.\d+)?(?:h|ms|m|s))+)\b/i,
  /\b(?:try again|retry) (?:in|after) (\d+(?:\.\d+)?) ?(milliseconds?|seconds?|secs?|minutes?|mins?)\b/i,
  /(\d+(?:\.\d+)?) ?(毫秒|秒|分钟)(?:之?后)(?:再|重)试/,
];

const UNIT_MS: Record<string, number> = {
  h: 3_600_000,
  m: 60_000,
  s: 1000,
  ms: 1,
  millisecond: 1,
  second: 1000,
  sec: 1000,
  minute: 60_000,
  min: 60_000,
  毫秒: 1,
  秒: 1000,
  分钟: 60_000,
};

function waitInMessage(message: string): number | null {
  for (const pattern of WAIT_IN_MESSAGE) {
    const match = pattern.exec(message);
    if (!match?.[1]) continue;
    if (match[2] === undefined) return durationMs(match[1]);
    const unit = UNIT_MS[match[2].toLowerCase().replace(/s$/, "")] ?? UNIT_MS[match[2]];
    if (unit !== undefined) return Math.ceil(Number(match[1]) * unit);
  }
  return null;
}

/** OpenAI's reset durations: `51.84s`, `1m2s`, `6ms`, `1h30m`; null for anything else. */
export function durationMs(text: string): number | null {
  const parts =
    /^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?(?:(\d+(?:\.\d+)?)ms)?$/
      .exec(text.trim());
  if (parts === null || text.trim() === "") return null;
  const [, hours = "0", minutes = "0", seconds = "0", millis = "0"] = parts;
  return Math.ceil(
    Number(hours) * 3_600_000 + Number(minutes) * 60_000 + Number(seconds) * 1000 +
      Number(millis),
  );
}

const RATE_LIMITS = ["requests", "images", "tokens"];

/** The longest reset among the limits that are used up. */
function rateLimitReset(headers: Headers): number | null {
  let wait: number | null = null;
  for (const limit of RATE_LIMITS) {
    if (headers.get(`x-ratelimit-remaining-${limit}`)?.trim() !== "0") continue;
    const reset = durationMs(headers.get(`x-ratelimit-reset-${limit}`) ?? "");
    if (reset !== null) wait = Math.max(wait ?? 0, reset);
  }
  return wait;
}
