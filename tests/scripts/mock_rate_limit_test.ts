/**
 * The offline upstream's pace: its images-per-minute bucket (on an injected clock), its 429 as
 * `deno task mock --images-per-minute` sends it, and its generation latency.
 */
import assert from "node:assert/strict";
import { type MockUpstream, startMockUpstream } from "../../scripts/mock/mock.ts";
import { spawnMock } from "../../scripts/mock/mock_process.ts";
import {
  ImagesPerMinuteLimit,
  openaiDuration,
  rateLimitHeaders,
} from "../../scripts/mock/mock_rate_limit.ts";
import { retryAfterMs } from "../../lib/upstream/retry.ts";

const KEY = "sk-mock-test-0123456789abcdef";

/** A clock the test moves by hand. */
function manualClock(): { now: () => number; advance: (ms: number) => void } {
  let time = 1_000;
  return { now: () => time, advance: (ms) => void (time += ms) };
}

/** Takes from the bucket until it refuses; returns how many it granted. */
function drain(limit: ImagesPerMinuteLimit): number {
  let granted = 0;
  while (limit.take().granted) granted++;
  return granted;
}

Deno.test("ImagesPerMinuteLimit starts full with 5 seconds' worth, then refuses", () => {
  const clock = manualClock();
  const limit = new ImagesPerMinuteLimit(600, clock.now);
  assert.equal(limit.capacity, 50);
  assert.equal(drain(limit), 50);
  const refused = limit.take();
  assert.equal(refused.granted, false);
  assert.equal(refused.remaining, 0);
});

Deno.test("ImagesPerMinuteLimit refills at N/60 a second and says how long to wait", () => {
  const clock = manualClock();
  const limit = new ImagesPerMinuteLimit(600, clock.now);
  drain(limit);
  clock.advance(40);
  const early = limit.take();
  assert.ok(!early.granted);
  assert.equal(Math.round(early.waitMs), 60);
  clock.advance(61);
  assert.ok(limit.take().granted);
  clock.advance(1000);
  assert.equal(drain(limit), 10);
});

Deno.test("ImagesPerMinuteLimit holds no more than 5 seconds' worth after a long pause", () => {
  const clock = manualClock();
  const limit = new ImagesPerMinuteLimit(120, clock.now);
  drain(limit);
  clock.advance(3_600_000);
  assert.equal(drain(limit), 10);
  const refused = limit.take();
  assert.ok(!refused.granted);
  assert.equal(Math.round(refused.resetMs), 5000);
});

Deno.test("ImagesPerMinuteLimit holds at least one image under a slow limit", () => {
  const clock = manualClock();
  const limit = new ImagesPerMinuteLimit(3, clock.now);
  assert.equal(limit.capacity, 1);
  assert.equal(drain(limit), 1);
  const refused = limit.take();
  assert.ok(!refused.granted);
  assert.equal(Math.round(refused.waitMs), 20_000);
});

Deno.test("ImagesPerMinuteLimit takes one token per image, at most a full bucket", () => {
  const clock = manualClock();
  const limit = new ImagesPerMinuteLimit(120, clock.now);
  const four = limit.take(4);
  assert.ok(four.granted);
  assert.equal(four.remaining, 6);
  assert.ok(!limit.take(7).granted);
  clock.advance(3_600_000);
  assert.ok(limit.take(50).granted, "more than the bucket holds still passes once it is full");
  assert.ok(!limit.take().granted);
});

Deno.test("ImagesPerMinuteLimit refuses a limit that is not a positive number", () => {
  for (const bad of [0, -1, Number.NaN, Infinity]) {
    assert.throws(() => new ImagesPerMinuteLimit(bad), /images per minute: expected a positive/);
  }
});

Deno.test("openaiDuration() writes waits as OpenAI's messages and reset headers do", () => {
  assert.equal(openaiDuration(0), "0ms");
  assert.equal(openaiDuration(19.2), "20ms");
  assert.equal(openaiDuration(1386), "1.386s");
  assert.equal(openaiDuration(5000), "5s");
  assert.equal(openaiDuration(360_000), "6m0s");
  assert.equal(openaiDuration(61_500), "1m1.5s");
});

Deno.test("rateLimitHeaders() names the limit, what is left and when it is full again", () => {
  const clock = manualClock();
  const limit = new ImagesPerMinuteLimit(600, clock.now);
  const headers = rateLimitHeaders(limit, limit.take());
  assert.deepEqual(Object.fromEntries(headers), {
    "x-ratelimit-limit-requests": "600",
    "x-ratelimit-remaining-requests": "49",
    "x-ratelimit-reset-requests": "100ms",
  });
});

function generate(url: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${url}/images/generations`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json", ...headers },
    body: JSON.stringify({ model: "gpt-image-1", prompt: "a lighthouse", size: "16x16" }),
  });
}

Deno.test("deno task mock --images-per-minute answers beyond the limit with OpenAI's 429", async () => {
  const mock = await spawnMock(["--images-per-minute", "12"]);
  try {
    const first = await generate(mock.url);
    assert.equal(first.status, 200);
    assert.equal(first.headers.get("x-ratelimit-limit-requests"), "12");
    assert.equal(first.headers.get("x-ratelimit-remaining-requests"), "0");
    await first.body?.cancel();

    const second = await generate(mock.url);
    assert.equal(second.status, 429);
    assert.equal(second.headers.get("retry-after"), "5");
    assert.match(second.headers.get("x-ratelimit-reset-requests") ?? "", /^\d(\.\d+)?s$/);
    assert.match(second.headers.get("x-request-id") ?? "", /^req_[0-9a-f]{32}$/);
    const text = await second.text();
    const { error } = JSON.parse(text);
    assert.equal(error.code, "rate_limit_exceeded");
    assert.equal(error.type, "requests");
    assert.match(
      error.message,
      /^Rate limit reached for gpt-image-1 in organization org-mock on images per min \(IPM\): Limit 12, Used 12, Requested 1\. Please try again in \d(\.\d+)?s\. Visit https:\/\/platform\.openai\.com\/account\/rate-limits to learn more\.$/,
    );
    assert.equal(retryAfterMs(second.headers, error.message), 5000);
    assert.ok(text.endsWith("\n    }\n}\n"), "indented like OpenAI's bodies");
  } finally {
    await mock.stop();
  }
  assert.deepEqual(mock.tally(), { byStatus: { 200: 1, 429: 1 }, total: 2 });
  assert.match(mock.banner, /\(at most 12 images per minute\)$/);
});

async function withMock(
  options: Parameters<typeof startMockUpstream>[0],
  fn: (mock: MockUpstream) => Promise<void>,
): Promise<void> {
  const mock = startMockUpstream({ port: 0, ...options });
  try {
    await fn(mock);
  } finally {
    await mock.shutdown();
  }
}

async function timed(response: Promise<Response>): Promise<{ status: number; ms: number }> {
  const started = performance.now();
  const res = await response;
  await res.arrayBuffer();
  return { status: res.status, ms: performance.now() - started };
}

/** A response on its way, and whether it has come yet. */
function watched(response: Promise<Response>): { answered: boolean; done: Promise<void> } {
  const watch = { answered: false, done: Promise.resolve() };
  watch.done = response.then(async (res) => {
    watch.answered = true;
    await res.body?.cancel();
  }, () => {});
  return watch;
}

/** Far longer than any answer takes, so that what comes before it skipped the latency. */
const LONG_LATENCY_MS = 20_000;

Deno.test("a generation takes the mock's latency, and x-mock-latency-ms sets it per request", async () => {
  await withMock({ latencyMs: 300 }, async (mock) => {
    const slow = await timed(generate(mock.url));
    assert.equal(slow.status, 200);
    assert.ok(slow.ms >= 290, `answered after ${slow.ms} ms`);
  });
  await withMock({}, async (mock) => {
    const asked = await timed(generate(mock.url, { "x-mock-latency-ms": "300" }));
    assert.ok(asked.ms >= 290, `answered after ${asked.ms} ms`);
  });
  const mock = startMockUpstream({ port: 0, latencyMs: LONG_LATENCY_MS });
  const waiting = watched(generate(mock.url));
  try {
    const quick = await generate(mock.url, { "x-mock-latency-ms": "0" });
    assert.equal(quick.status, 200);
    await quick.body?.cancel();
    assert.equal(
      waiting.answered,
      false,
      "the request sent first at the mock's latency came first",
    );
  } finally {
    await mock.shutdown();
    await waiting.done;
  }
});

Deno.test("a rate-limited generation is answered at once, without the latency", async () => {
  const unlimited = startMockUpstream({ port: 0, latencyMs: LONG_LATENCY_MS });
  const limited = startMockUpstream({ port: 0, latencyMs: LONG_LATENCY_MS, imagesPerMinute: 1 });
  const waiting = watched(generate(unlimited.url));
  try {
    const first = await generate(limited.url, { "x-mock-latency-ms": "0" });
    assert.equal(first.status, 200);
    await first.body?.cancel();
    const refused = await generate(limited.url);
    assert.equal(refused.status, 429);
    await refused.body?.cancel();
    assert.equal(
      waiting.answered,
      false,
      "a generation sent earlier at the same latency came first",
    );
  } finally {
    await Promise.all([unlimited.shutdown(), limited.shutdown()]);
    await waiting.done;
  }
});

Deno.test("startMockUpstream() refuses a negative latency", () => {
  assert.throws(() => startMockUpstream({ port: 0, latencyMs: -1 }), /latencyMs "-1"/);
});
