import assert from "node:assert/strict";
import { AdaptiveLimit, Pacer, retryDelayMs } from "../../lib/batch/pacing.ts";

Deno.test("Pacer lets one start go every 60/rpm seconds", () => {
  const pacer = new Pacer(120);
  assert.equal(pacer.waitMs(0), 0);
  pacer.started(0);
  assert.equal(pacer.waitMs(0), 500);
  assert.equal(pacer.waitMs(499), 1);
  assert.equal(pacer.waitMs(500), 0);
  pacer.started(500);
  assert.equal(pacer.waitMs(600), 400);
});

Deno.test("Pacer allows no burst after an idle spell", () => {
  const pacer = new Pacer(60);
  pacer.started(0);
  // Idle for a minute: the next start goes at once, the one after it a full interval later.
  assert.equal(pacer.waitMs(60_000), 0);
  pacer.started(60_000);
  assert.equal(pacer.waitMs(60_000), 1000);
});

Deno.test("Pacer without --rpm never waits", () => {
  const pacer = new Pacer(null);
  pacer.started(0);
  assert.equal(pacer.waitMs(0), 0);
});

Deno.test("Pacer keeps any 60 s window to at most rpm starts", () => {
  const rpm = 7;
  const pacer = new Pacer(rpm);
  const starts: number[] = [];
  for (let now = 0; now < 300_000; now += 13) {
    if (pacer.waitMs(now) === 0) {
      pacer.started(now);
      starts.push(now);
    }
  }
  for (const from of starts) {
    assert.ok(starts.filter((t) => t >= from && t < from + 60_000).length <= rpm);
  }
});

/** A pacer that saw starts every 100 ms, as a run going one request at a time does. */
function pacedEvery100Ms(rpm: number | null = null): Pacer {
  const pacer = new Pacer(rpm);
  for (const now of [0, 100, 200, 300]) pacer.started(now);
  return pacer;
}

Deno.test("Pacer halves its rate of starts on slowDown, within twice the wait asked for", () => {
  const pacer = pacedEvery100Ms();
  pacer.slowDown(200);
  pacer.started(400);
  assert.equal(pacer.waitMs(400), 200);
  pacer.slowDown(200);
  pacer.started(600);
  assert.equal(pacer.waitMs(600), 400);
  // Twice the 200 ms asked for is as far as it goes.
  pacer.slowDown(200);
  assert.equal(pacer.spacingMs, 400);
});

Deno.test("Pacer waits at least what the 429 asked for", () => {
  const pacer = pacedEvery100Ms();
  pacer.slowDown(700);
  assert.equal(pacer.spacingMs, 700);
});

Deno.test("Pacer gets its full pace back after eight successes", () => {
  const pacer = pacedEvery100Ms();
  pacer.slowDown(1000);
  assert.equal(pacer.spacingMs, 1000);
  for (let i = 0; i < 4; i++) pacer.succeeded();
  assert.equal(pacer.spacingMs, 500);
  for (let i = 0; i < 4; i++) pacer.succeeded();
  assert.equal(pacer.spacingMs, 0);
  pacer.started(400);
  assert.equal(pacer.waitMs(400), 0);
});

Deno.test("Pacer comes back four times more slowly when a 429 comes on the way back", () => {
  const pacer = pacedEvery100Ms();
  pacer.slowDown(400);
  for (let i = 0; i < 4; i++) pacer.succeeded();
  assert.equal(pacer.spacingMs, 200);
  // Met again at 200 ms: twice that, then 32 successes to none.
  pacer.slowDown(400);
  assert.equal(pacer.spacingMs, 400);
  for (let i = 0; i < 16; i++) pacer.succeeded();
  assert.equal(pacer.spacingMs, 200);
  for (let i = 0; i < 16; i++) pacer.succeeded();
  assert.equal(pacer.spacingMs, 0);
});

Deno.test("Pacer stays within twice the longest wait asked for, 429 after 429", () => {
  // Answered 429 at once, 100 ms asked for each time: the spacing stops at 200 ms, not 2^n.
  const pacer = new Pacer(null);
  let now = 0;
  for (let i = 0; i < 30; i++) {
    pacer.started(now);
    pacer.slowDown(100);
    now += Math.max(100, pacer.waitMs(now));
  }
  assert.equal(pacer.spacingMs, 200);
  // A longer wait asked for raises the bound, to twice that; a shorter one does not lower it.
  pacer.slowDown(700);
  assert.equal(pacer.spacingMs, 700);
  pacer.slowDown(100);
  assert.equal(pacer.spacingMs, 1400);
  pacer.slowDown(100);
  assert.equal(pacer.spacingMs, 1400);
});

Deno.test("Pacer never learns a spacing over 60 s, whatever the upstream asks for", () => {
  const pacer = new Pacer(null);
  pacer.started(0);
  pacer.started(50_000);
  for (let i = 0; i < 10; i++) pacer.slowDown(3_600_000);
  assert.equal(pacer.spacingMs, 60_000);
});

Deno.test("Pacer forgets the waits asked for once its pace is back, and keeps --rpm throughout", () => {
  const pacer = pacedEvery100Ms(600);
  pacer.slowDown(20_000);
  assert.equal(pacer.spacingMs, 20_000);
  for (let i = 0; i < 8; i++) pacer.succeeded();
  assert.equal(pacer.spacingMs, 100);
  // The 20 s asked for before no longer counts: the bound is twice the new 30 ms, and --rpm's
  // 100 ms is longer still.
  pacer.slowDown(30);
  assert.equal(pacer.spacingMs, 100);
  pacer.started(400);
  assert.equal(pacer.waitMs(400), 100);
});

Deno.test("AdaptiveLimit halves on a 429, once per round of requests", () => {
  const limit = new AdaptiveLimit(16);
  assert.equal(limit.rateLimited(0, 100), true);
  assert.equal(limit.current, 8);
  // Answers to requests sent before the cut tell nothing new.
  assert.equal(limit.rateLimited(50, 120), false);
  assert.equal(limit.current, 8);
  assert.equal(limit.rateLimited(130, 200), true);
  assert.equal(limit.current, 4);
  for (let i = 0; i < 10; i++) limit.rateLimited(1000 + i * 100, 1000 + i * 100);
  assert.equal(limit.current, 1);
});

Deno.test("AdaptiveLimit climbs back by one per full window of successes, up to the maximum", () => {
  const limit = new AdaptiveLimit(16);
  limit.rateLimited(0, 0);
  assert.equal(limit.current, 8);
  // Below the level of the last 429: one step per window of `current` successes.
  for (let i = 0; i < 7; i++) limit.succeeded(1);
  assert.equal(limit.current, 8);
  limit.succeeded(1);
  assert.equal(limit.current, 9);
  for (let i = 0; i < 9; i++) limit.succeeded(1);
  assert.equal(limit.current, 10);
  for (let i = 0; i < 1000; i++) limit.succeeded(1);
  assert.equal(limit.current, 16);
});

Deno.test("AdaptiveLimit counts only successes of requests sent since the last cut", () => {
  const limit = new AdaptiveLimit(32);
  limit.rateLimited(0, 100);
  assert.equal(limit.current, 16);
  // Answers to requests sent at the old level say nothing of the new one.
  for (let i = 0; i < 40; i++) limit.succeeded(50);
  assert.equal(limit.current, 16);
  for (let i = 0; i < 15; i++) limit.succeeded(150);
  assert.equal(limit.current, 16);
  limit.succeeded(150);
  assert.equal(limit.current, 17);
});

Deno.test("AdaptiveLimit approaches the level of the last 429 four times more slowly", () => {
  const limit = new AdaptiveLimit(32);
  limit.rateLimited(0, 0);
  limit.rateLimited(1, 1);
  limit.rateLimited(2, 2);
  assert.equal(limit.current, 4);
  limit.rateLimited(3, 3);
  assert.equal(limit.current, 2);
  let successes = 0;
  const climbTo = (level: number) => {
    while (limit.current < level) {
      limit.succeeded(10);
      successes++;
    }
  };
  climbTo(3);
  assert.equal(successes, 2);
  // From 3, the next step reaches the 4 that was answered 429: four windows of 3.
  successes = 0;
  climbTo(4);
  assert.equal(successes, 12);
  successes = 0;
  climbTo(5);
  assert.equal(successes, 16);
});

Deno.test("retryDelayMs honours retry_after_ms up to 60 s, else backs off exponentially with jitter", () => {
  assert.equal(retryDelayMs(3, 1234), 1234);
  assert.equal(retryDelayMs(0, 3 * 3_600_000), 60_000);
  assert.equal(retryDelayMs(0, 0), 0);
  assert.equal(retryDelayMs(0, undefined, () => 0), 500);
  assert.equal(retryDelayMs(0, undefined, () => 0.999999), 1500);
  assert.equal(retryDelayMs(2, undefined, () => 0.5), 4000);
  assert.equal(retryDelayMs(20, undefined, () => 0.5), 60_000);
});
