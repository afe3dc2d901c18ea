import assert from "node:assert/strict";
import type { GenerationResult } from "../../lib/mod.ts";
import { type BatchEvent, Scheduler, type SchedulerHooks } from "../../lib/batch/scheduler.ts";
import { type JobRecord, newRecord } from "../../lib/batch/state.ts";

function record(id: string): JobRecord {
  return newRecord({
    id,
    line: 1,
    input: { prompt: id },
    params: { prompt: id, task_name: id } as never,
  });
}

const done = (id: string): GenerationResult => ({
  ok: true,
  stage: "done",
  image_path: `/out/${id}.png`,
  bytes: 1,
  mime_type: "image/png",
  width: 1,
  height: 1,
  base_url: null,
  model: null,
  size: null,
  task_name: id,
  elapsed_ms: 1,
});

const rateLimited = (retryAfterMs = 5): GenerationResult => ({
  ok: false,
  stage: "response",
  http_status: 429,
  upstream_error_type: null,
  upstream_error_message: null,
  upstream_error_code: null,
  error: "Rate limited",
  diagnosis: {
    category: "rate_limited",
    human_reason: "",
    retryable: true,
    retry_after_ms: retryAfterMs,
  },
  base_url: null,
  model: null,
  size: null,
  task_name: null,
  elapsed_ms: 1,
});

function hooks(
  generate: SchedulerHooks["generate"],
  events: BatchEvent[] = [],
): SchedulerHooks {
  return {
    generate,
    onStart: () => Promise.resolve(),
    onEnd: () => Promise.resolve(),
    onEvent: (event) => events.push(event),
    onChange: () => {},
  };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 1));
const settings = { concurrency: 3, rpm: null, maxAttempts: 3, keepGoing: false };

Deno.test("Scheduler keeps at most --concurrency requests in flight, and runs every job", async () => {
  let inFlight = 0;
  let most = 0;
  const records = Array.from({ length: 20 }, (_, i) => record(`j${i}`));
  const scheduler = new Scheduler(
    records,
    settings,
    hooks(async (input) => {
      most = Math.max(most, ++inFlight);
      await tick();
      inFlight--;
      return done(String(input.prompt));
    }),
    new AbortController().signal,
  );
  const outcome = await scheduler.run();
  assert.equal(most, 3);
  assert.equal(outcome.doneNow, 20);
  assert.ok(records.every((r) => r.status === "done" && r.attempts === 1));
});

Deno.test("Scheduler lowers the concurrency after a 429 and starts nothing during the pause", async () => {
  let inFlight = 0;
  let answered429At = -1;
  const startsDuringPause: number[] = [];
  let first = true;
  const events: BatchEvent[] = [];
  const records = Array.from({ length: 12 }, (_, i) => record(`j${i}`));
  const scheduler = new Scheduler(
    records,
    { ...settings, concurrency: 4 },
    hooks(async (input) => {
      const now = performance.now();
      if (answered429At >= 0) {
        if (now < answered429At + 4) startsDuringPause.push(now);
      }
      inFlight++;
      await tick();
      inFlight--;
      if (first) {
        first = false;
        answered429At = performance.now();
        return rateLimited();
      }
      return done(String(input.prompt));
    }, events),
    new AbortController().signal,
  );
  const outcome = await scheduler.run();
  assert.equal(outcome.rateLimitedResponses, 1);
  assert.deepEqual(startsDuringPause, []);
  assert.deepEqual(
    events.filter((e) => e.event === "paused_rate_limited"),
    [{ event: "paused_rate_limited", pause_ms: 5, concurrency: 2 }],
  );
  assert.equal(records[0]!.attempts, 2);
  assert.ok(records.every((r) => r.status === "done"));
});

Deno.test("Scheduler spreads the restarts after a pause over as long again, not all at once", async () => {
  let answered429At = -1;
  const startsAfter429: number[] = [];
  const records = Array.from({ length: 8 }, (_, i) => record(`j${i}`));
  const scheduler = new Scheduler(
    records,
    { ...settings, concurrency: 4 },
    hooks(async (input) => {
      if (answered429At >= 0) startsAfter429.push(performance.now());
      await tick();
      if (answered429At < 0) {
        answered429At = performance.now();
        return rateLimited(40);
      }
      return done(String(input.prompt));
    }),
    new AbortController().signal,
  );
  await scheduler.run();
  assert.ok(records.every((r) => r.status === "done"));
  // The pause of 40 ms ends with two slots (the limit halved from four): one start then, the
  // next 40 / 2 ms later.
  assert.ok(startsAfter429[0]! >= answered429At + 39, `${startsAfter429[0]! - answered429At}`);
  const gap = startsAfter429[1]! - startsAfter429[0]!;
  assert.ok(gap >= 19, `the second start came ${gap} ms after the first`);
});

Deno.test("Scheduler spaces its starts out when 429s go on at a concurrency of one", async () => {
  // An upstream that takes one request per 10 ms, with room for two at once, and answers fast:
  // even one request at a time is too many for it.
  let tokens = 2;
  let refilledAt = performance.now();
  const records = Array.from({ length: 60 }, (_, i) => record(`j${i}`));
  const scheduler = new Scheduler(
    records,
    { ...settings, concurrency: 4 },
    hooks(async (input) => {
      await tick();
      const now = performance.now();
      tokens = Math.min(2, tokens + (now - refilledAt) / 10);
      refilledAt = now;
      if (tokens < 1) return rateLimited();
      tokens--;
      return done(String(input.prompt));
    }),
    new AbortController().signal,
  );
  const outcome = await scheduler.run();
  assert.ok(records.every((r) => r.status === "done"));
  // Without learning a pace, more requests are answered 429 than not here.
  assert.ok(outcome.rateLimitedResponses <= 15, `${outcome.rateLimitedResponses} answered 429`);
});

Deno.test("Scheduler leaves the jobs it did not start pending when the signal fires", async () => {
  const controller = new AbortController();
  const records = Array.from({ length: 6 }, (_, i) => record(`j${i}`));
  const scheduler = new Scheduler(
    records,
    { ...settings, concurrency: 1 },
    hooks(async (input) => {
      await tick();
      controller.abort();
      return done(String(input.prompt));
    }),
    controller.signal,
  );
  await scheduler.run();
  assert.deepEqual(records.map((r) => r.status), [
    "done",
    "pending",
    "pending",
    "pending",
    "pending",
    "pending",
  ]);
});

Deno.test("Scheduler hands generate each job's validated parameters, not its raw input again", async () => {
  const records = [record("j0"), record("j1")];
  const given: unknown[] = [];
  const scheduler = new Scheduler(
    records,
    { ...settings, concurrency: 1 },
    hooks((params) => {
      given.push(params);
      return Promise.resolve(done(params.task_name));
    }),
    new AbortController().signal,
  );
  await scheduler.run();
  assert.equal(given.length, 2);
  records.forEach((r, i) => assert.equal(given[i], r.job!.params));
});
