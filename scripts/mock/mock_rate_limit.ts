/**
 * The offline upstream's images-per-minute limit, as OpenAI enforces and reports one: a token
 * bucket that refills at N/60 images per second and holds at most 5 seconds' worth (never less
 * than one image), so a limit of 600 allows a burst of 50 and then 10 a second. A refused request
 * is answered 429 with `Retry-After` in whole seconds, OpenAI's `rate_limit_exceeded` body and
 * its `x-ratelimit-*` headers; those headers go on every answer under the limit.
 */

/** How many seconds of the rate the bucket holds. */
export const BURST_SECONDS = 5;

export type Grant =
  | { granted: true; remaining: number; resetMs: number }
  | { granted: false; remaining: number; resetMs: number; waitMs: number };

export class ImagesPerMinuteLimit {
  readonly perMinute: number;
  /** The most images the bucket holds */
  readonly capacity: number;
  readonly #perMs: number;
  readonly #now: () => number;
  #tokens: number;
  #at: number;

  /** `now` gives milliseconds on a monotonic clock; tests pass their own. */
  constructor(perMinute: number, now: () => number = () => performance.now()) {
    if (!Number.isFinite(perMinute) || perMinute <= 0) {
      throw new RangeError(
        `Cannot limit to "${perMinute}" images per minute: expected a positive number`,
      );
    }
    this.perMinute = perMinute;
    this.capacity = Math.max(1, perMinute * BURST_SECONDS / 60);
    this.#perMs = perMinute / 60_000;
    this.#now = now;
    this.#tokens = this.capacity;
    this.#at = now();
  }

  /** Takes `images` tokens (at most a full bucket's worth) if the bucket holds them. */
  take(images = 1): Grant {
    const now = this.#now();
    this.#tokens = Math.min(this.capacity, this.#tokens + (now - this.#at) * this.#perMs);
    this.#at = now;
    const cost = Math.min(images, this.capacity);
    if (this.#tokens >= cost) {
      this.#tokens -= cost;
      return { granted: true, remaining: Math.floor(this.#tokens), resetMs: this.#resetMs() };
    }
    return {
      granted: false,
      remaining: Math.floor(this.#tokens),
      resetMs: this.#resetMs(),
      waitMs: (cost - this.#tokens) / this.#perMs,
    };
  }

  /** How long until the bucket is full again */
  #resetMs(): number {
    return (this.capacity - this.#tokens) / this.#perMs;
  }
}

/** OpenAI's way of writing a wait: `20ms`, `1.386s`, `6m0s`. */
export function openaiDuration(ms: number): string {
  const whole = Math.max(0, Math.ceil(ms));
  if (whole < 1000) return `${whole}ms`;
  if (whole < 60_000) return `${Number((whole / 1000).toFixed(3))}s`;
  const minutes = Math.floor(whole / 60_000);
  return `${minutes}m${Number(((whole - minutes * 60_000) / 1000).toFixed(3))}s`;
}

/** The `x-ratelimit-*` headers OpenAI sends with every answer, for the images limit. */
export function rateLimitHeaders(limit: ImagesPerMinuteLimit, grant: Grant): Headers {
  return new Headers({
    "x-ratelimit-limit-requests": String(limit.perMinute),
    "x-ratelimit-remaining-requests": String(grant.remaining),
    "x-ratelimit-reset-requests": openaiDuration(grant.resetMs),
  });
}

/** OpenAI's 429 for an images-per-minute limit. */
export function rateLimitedResponse(
  limit: ImagesPerMinuteLimit,
  grant: Extract<Grant, { granted: false }>,
  fields: { model: string; requested: number; requestId: string },
): Response {
  const used = Math.round(limit.perMinute * (1 - grant.remaining / limit.capacity));
  const message = `Rate limit reached for ${fields.model} in organization org-mock on images ` +
    `per min (IPM): Limit ${limit.perMinute}, Used ${used}, Requested ${fields.requested}. ` +
    `Please try again in ${openaiDuration(grant.waitMs)}. ` +
    "Visit https://platform.openai.com/account/rate-limits to learn more.";
  const error = { message, type: "requests", param: null, code: "rate_limit_exceeded" };
  const headers = rateLimitHeaders(limit, grant);
  headers.set("content-type", "application/json; charset=utf-8");
  headers.set("retry-after", String(Math.max(1, Math.ceil(grant.waitMs / 1000))));
  headers.set("x-request-id", fields.requestId);
  headers.set("openai-version", "2020-10-01");
  return new Response(JSON.stringify({ error }, null, 4) + "\n", { status: 429, headers });
}

/**
 * A route (see `MockUpstream.route`) that answers the first `refusals` requests for each prompt
 * with OpenAI's `rate_limit_exceeded` 429 asking for `retryAfterMs` in `retry-after-ms`, and
 * every later one with an image: an upstream whose limit refuses what is new, not what is fast.
 */
export function refuseFirstRequests(
  refusals: number,
  retryAfterMs: number,
  image: () => Response,
): (request: Request, body: Record<string, unknown> | null) => Response {
  const seen = new Map<string, number>();
  return (_request, body) => {
    const prompt = String(body?.prompt);
    const count = (seen.get(prompt) ?? 0) + 1;
    seen.set(prompt, count);
    if (count > refusals) return image();
    const error = {
      message: "Rate limit reached for images",
      type: "requests",
      param: null,
      code: "rate_limit_exceeded",
    };
    return Response.json({ error }, {
      status: 429,
      headers: { "retry-after-ms": String(retryAfterMs) },
    });
  };
}
