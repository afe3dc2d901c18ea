import assert from "node:assert/strict";
import {
  backoffMs,
  durationMs,
  retryAfterMs,
  retryRefused,
  retryWait,
} from "../../lib/upstream/retry.ts";
import type { Diagnosis } from "../../lib/failure/types.ts";

const retryable: Diagnosis = { category: "rate_limited", human_reason: "", retryable: true };

Deno.test("retryWait() retries nothing that is not retryable, nor past max_retries", () => {
  assert.equal(retryWait({ ...retryable, retryable: false }, 3, 0, 60_000), null);
  assert.equal(retryWait(retryable, 0, 3, 60_000), null);
});

Deno.test("retryWait() waits what the upstream asked, but not past the deadline", () => {
  assert.equal(retryWait({ ...retryable, retry_after_ms: 2500 }, 1, 0, 60_000), 2500);
  assert.equal(retryWait({ ...retryable, retry_after_ms: 2500 }, 1, 0, 2500), null);
});

Deno.test("retryWait() backs off about 1 s, 2 s, 4 s … at most 30 s otherwise", () => {
  for (const [attempt, nominal] of [[0, 1000], [1, 2000], [2, 4000], [10, 30_000]] as const) {
    const wait = retryWait(retryable, 1, attempt, 600_000)!;
    assert.ok(wait >= nominal / 2 && wait <= nominal * 1.5, `${attempt}: ${wait}`);
  }
  assert.equal(backoffMs(3, () => 0.5), 8000);
});

Deno.test("retryAfterMs() reads retry-after-ms", () => {
  assert.equal(retryAfterMs(new Headers({ "retry-after-ms": "1500" })), 1500);
  assert.equal(retryAfterMs(new Headers({ "retry-after-ms": "20.2" })), 21);
  assert.equal(retryAfterMs(new Headers({ "retry-after-ms": "0" })), 0);
});

Deno.test("retryAfterMs() prefers retry-after-ms to retry-after", () => {
  assert.equal(retryAfterMs(new Headers({ "retry-after-ms": "250", "retry-after": "9" })), 250);
});

Deno.test("retryAfterMs() falls back to retry-after when retry-after-ms is invalid", () => {
  assert.equal(retryAfterMs(new Headers({ "retry-after-ms": "soon", "retry-after": "2" })), 2000);
});

Deno.test("retryAfterMs() reads retry-after in seconds", () => {
  assert.equal(retryAfterMs(new Headers({ "retry-after": "20" })), 20000);
  assert.equal(retryAfterMs(new Headers({ "retry-after": "1.5" })), 1500);
  assert.equal(retryAfterMs(new Headers({ "retry-after": " 3 " })), 3000);
  assert.equal(retryAfterMs(new Headers({ "retry-after": "0" })), 0);
});

Deno.test("retryAfterMs() reads retry-after as an HTTP date", () => {
  const date = "Wed, 21 Oct 2015 07:28:00 GMT";
  const at = Date.UTC(2015, 9, 21, 7, 28, 0);
  assert.equal(retryAfterMs(new Headers({ "retry-after": date }), null, at - 30_000), 30_000);
  assert.equal(retryAfterMs(new Headers({ "retry-after": date }), null, at), 0);
});

Deno.test("retryAfterMs() gives 0 for an HTTP date already past", () => {
  const date = "Wed, 21 Oct 2015 07:28:00 GMT";
  assert.equal(retryAfterMs(new Headers({ "retry-after": date }), null, Date.UTC(2016, 0, 1)), 0);
});

Deno.test("retryAfterMs() gives null without a usable header", () => {
  assert.equal(retryAfterMs(new Headers()), null);
  assert.equal(retryAfterMs(new Headers({ "retry-after": "" })), null);
  assert.equal(retryAfterMs(new Headers({ "retry-after": "soon" })), null);
  assert.equal(retryAfterMs(new Headers({ "retry-after-ms": "soon" })), null);
});

Deno.test("retryAfterMs() reads when to try again from the message", () => {
  const wait = (message: string) => retryAfterMs(new Headers(), message);
  assert.equal(wait("Rate limit reached for images. Please try again in 6s."), 6000);
  assert.equal(wait("Please try again in 1m2s. Visit https://…"), 62_000);
  assert.equal(wait("Please try again in 120ms."), 120);
  assert.equal(wait("Rate limited, try again after 51.84 seconds"), 51_840);
  assert.equal(
    wait("No deployments available for selected model, Try again in 60 seconds."),
    60_000,
  );
  assert.equal(wait("Please retry after 7 seconds. Please go here: https://aka.ms/oai"), 7000);
  assert.equal(wait("请求过于频繁,请 12 秒后重试"), 12_000);
  assert.equal(wait("请在1分钟后再试"), 60_000);
  assert.equal(wait("Please try again later"), null);
});

Deno.test("retryAfterMs() prefers the headers to the message", () => {
  assert.equal(retryAfterMs(new Headers({ "retry-after": "2" }), "try again in 6s"), 2000);
});

Deno.test("retryAfterMs() reads x-ratelimit-reset-* only for a limit that is used up", () => {
  const headers = new Headers({
    "x-ratelimit-remaining-requests": "4",
    "x-ratelimit-reset-requests": "6ms",
    "x-ratelimit-remaining-images": "0",
    "x-ratelimit-reset-images": "1m2s",
  });
  assert.equal(retryAfterMs(headers), 62_000);
  headers.set("x-ratelimit-remaining-images", "3");
  assert.equal(retryAfterMs(headers), null);
});

Deno.test("retryAfterMs() reports a date far ahead as it is", () => {
  const now = Date.UTC(2026, 0, 1);
  const date = new Date(now + 86_400_000).toUTCString();
  assert.equal(retryAfterMs(new Headers({ "retry-after": date }), null, now), 86_400_000);
});

Deno.test("durationMs() reads OpenAI's reset durations", () => {
  assert.equal(durationMs("51.84s"), 51_840);
  assert.equal(durationMs("1m2s"), 62_000);
  assert.equal(durationMs("6ms"), 6);
  assert.equal(durationMs("1h30m"), 5_400_000);
  assert.equal(durationMs(""), null);
  assert.equal(durationMs("soon"), null);
});

Deno.test("retryRefused() is true only for x-should-retry: false", () => {
  assert.equal(retryRefused(new Headers({ "x-should-retry": "false" })), true);
  assert.equal(retryRefused(new Headers({ "x-should-retry": " False " })), true);
  assert.equal(retryRefused(new Headers({ "x-should-retry": "true" })), false);
  assert.equal(retryRefused(new Headers()), false);
});
