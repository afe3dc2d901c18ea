import assert from "node:assert/strict";
import { AdaptiveLimit, Pacer, retryDelayMs } from "../lib/batch/pacing.ts";

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

Deno.test("Pacer halves its rate of starts on slowDown, and speeds up again with successes", () => {
  const pacer = new Pacer(null);
  for (const now of [0, 100, 200, 300]) pacer.started(now);
  pacer.slowDown();
  pacer.started(400);
  assert.equal(pacer.waitMs(400), 200);
  pacer.slowDown();
  pacer.started(600);
  assert.equal(pacer.waitMs(600), 400);
  for (let i = 0; i < 20; i++) pacer.succeeded();
  pacer.started(1000);
  assert.ok(pacer.waitMs(1000) > 0 && pacer.waitMs(1000) < 250, `${pacer.waitMs(1000)}`);
  for (let i = 0; i < 200; i++) pacer.succeeded();
  pacer.started(1100);
  assert.equal(pacer.waitMs(1100), 0);
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
