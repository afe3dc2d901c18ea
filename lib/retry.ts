/**
 * Where a failure is retried: the decision (retryable, retries left, time left) and the wait
 * (the upstream's retry_after_ms, else backoff) together, around one attempt at a time.
 */
import type { Deadline } from "./deadline.ts";
import { diagnose } from "./diagnosis.ts";
import { factsOf, GenerationError } from "./errors.ts";
import type { Attempt } from "./result.ts";
import type { Diagnosis, Lang } from "./types.ts";

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
        `${failure.message}; then, waiting to retry: ${(deadline.signal.reason as Error).message}`,
        { ...failure.details, cause: deadline.cause() },
      );
      return { ok: false, failure: stopped, diagnosis: diagnose(factsOf(stopped), lang), attempts };
    }
  }
}
