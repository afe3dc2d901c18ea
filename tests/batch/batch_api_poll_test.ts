/**
 * img2-batch --batch-api while it waits for a batch whose looks (`GET /batches/{id}`) are answered
 * 429, 5xx or 401 (the fake's `failLooks`): it waits what the upstream asks, submits nothing
 * again, and gives up only on an answer that will not pass.
 */
import assert from "node:assert/strict";
import { startFakeUpstream } from "../_fake_upstream.ts";
import { withTempDir } from "../_helpers.ts";
import {
  batchApiCalls,
  batchArgs,
  parseJson,
  promptJobs,
  readEvents,
  runBatch,
  testEachBatchTarget,
  writeJobs,
} from "./batch_command.ts";

function count(calls: string[], pattern: RegExp): number {
  return calls.filter((call) => pattern.test(call)).length;
}

const LOOK = /^GET \/batches\/[^/]+$/;

testEachBatchTarget(
  "looks answered 429 and 5xx: each next look waits what Retry-After asks, and the batch is collected once",
  async (target) => {
    await using upstream = startFakeUpstream();
    upstream.batchApi.failLooks = [
      { status: 429, headers: { "retry-after-ms": "1200" } },
      { status: 429, headers: { "retry-after": "1" } },
      // Asked for almost no wait: a batch is not looked at again in a loop.
      { status: 500, headers: { "retry-after-ms": "20" } },
      { status: 502, headers: { "retry-after-ms": "1000" } },
      { status: 503, headers: { "retry-after": "1" } },
    ];
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/jobs.jsonl`, promptJobs(3));
      const events = `${dir}/events.jsonl`;
      const run = await runBatch(target, batchArgs(upstream, dir, jobs, "--events", events));
      assert.equal(run.code, 0, run.stdout + run.stderr);
      const result = parseJson(run.stdout);
      assert.equal(result.counts.done, 3);
      assert.equal(result.stopped_reason, null);
      assert.equal(result.batch_error, undefined);
      const calls = batchApiCalls(upstream);
      assert.equal(count(calls, /^POST \/files$/), 1);
      assert.equal(count(calls, /^POST \/batches$/), 1);
      assert.equal(count(calls, LOOK), 6);
      assert.equal(count(calls, /\/content$/), 1);
      const retries = (await readEvents(events)).filter((e) => e.event === "batch_poll_retry");
      assert.deepEqual(
        retries.map((e) => [e.http_status, e.category, e.delay_ms, e.part, e.batch_id]),
        [
          [429, "rate_limited", 1200, "1", result.batches[0].id],
          [429, "rate_limited", 1000, "1", result.batches[0].id],
          [500, "upstream_failure", 1000, "1", result.batches[0].id],
          [502, "upstream_failure", 1000, "1", result.batches[0].id],
          [503, "upstream_failure", 1000, "1", result.batches[0].id],
        ],
      );
    });
  },
);

testEachBatchTarget(
  "a look answered 401 stops the wait with its diagnosis, the jobs left submitted; a rerun collects them",
  async (target) => {
    await using upstream = startFakeUpstream();
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/jobs.jsonl`, promptJobs(2));
      const events = `${dir}/events.jsonl`;
      // --detach looks once: a 429 leaves the jobs at the provider, and nothing waits.
      upstream.batchApi.failLooks = [{ status: 429, headers: { "retry-after": "1" } }];
      const detached = await runBatch(
        target,
        batchArgs(upstream, dir, jobs, "--detach", "--events", events),
      );
      assert.equal(detached.code, 3, detached.stdout + detached.stderr);
      assert.equal(parseJson(detached.stdout).counts.submitted, 2);
      assert.equal(parseJson(detached.stdout).batch_error, undefined);
      assert.equal(count(batchApiCalls(upstream), LOOK), 1);

      upstream.batchApi.failLooks = [
        { status: 429, headers: { "retry-after-ms": "1000" } },
        { status: 401 },
      ];
      const run = await runBatch(target, batchArgs(upstream, dir, jobs, "--events", events));
      assert.equal(run.code, 3, run.stdout + run.stderr);
      const result = parseJson(run.stdout);
      assert.equal(result.stopped_reason, "auth_failed");
      assert.equal(result.batch_error.http_status, 401);
      assert.equal(result.batch_error.upstream_error_code, "invalid_api_key");
      assert.equal(result.batch_error.diagnosis.retryable, false);
      assert.doesNotMatch(result.batch_error.error, /no Batch API/);
      assert.equal(result.counts.submitted, 2);
      assert.deepEqual(result.jobs.map((job: { status: string }) => job.status), [
        "submitted",
        "submitted",
      ]);
      const state = JSON.parse(
        await Deno.readTextFile(`${dir}/out/.img2-batch/jobs/state.json`),
      );
      assert.deepEqual(state.jobs.map((job: { status: string }) => job.status), [
        "submitted",
        "submitted",
      ]);
      // The looks of the detached run and of this one: the 401 was the last.
      assert.equal(count(batchApiCalls(upstream), LOOK), 3);
      const retries = (await readEvents(events)).filter((e) => e.event === "batch_poll_retry");
      assert.deepEqual(retries.map((e) => [e.http_status, e.delay_ms]), [[429, 1000]]);

      const rerun = await runBatch(target, batchArgs(upstream, dir, jobs));
      assert.equal(rerun.code, 0, rerun.stdout + rerun.stderr);
      assert.equal(parseJson(rerun.stdout).counts.done, 2);
      const calls = batchApiCalls(upstream);
      assert.equal(count(calls, /^POST \/files$/), 1);
      assert.equal(count(calls, /^POST \/batches$/), 1);
    });
  },
);

testEachBatchTarget(
  "a look answered 404 stops the wait without saying the upstream has no Batch API",
  async (target) => {
    await using upstream = startFakeUpstream();
    upstream.batchApi.failLooks = [{ status: 404 }];
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/jobs.jsonl`, promptJobs(1));
      const run = await runBatch(target, batchArgs(upstream, dir, jobs));
      assert.equal(run.code, 3, run.stdout + run.stderr);
      const result = parseJson(run.stdout);
      assert.equal(result.batch_error.http_status, 404);
      assert.doesNotMatch(result.batch_error.error, /no Batch API/);
      assert.doesNotMatch(result.batch_error.diagnosis.human_reason, /no Batch API/);
      assert.equal(result.counts.submitted, 1);
    });
  },
);

testEachBatchTarget(
  "an upload answered 429 with a day's Retry-After: the run stops at once, every job pending, nothing created",
  async (target) => {
    await using upstream = startFakeUpstream();
    upstream.batchApi.failUploads = [{ status: 429, headers: { "retry-after": "86400" } }];
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/jobs.jsonl`, promptJobs(2));
      const run = await runBatch(target, batchArgs(upstream, dir, jobs), {
        // A run that waited the day would be killed, and fail here.
        whileRunning: async (child) => {
          const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
          await child.status;
          clearTimeout(timer);
        },
      });
      assert.equal(run.code, 1, run.stdout + run.stderr);
      const result = parseJson(run.stdout);
      assert.equal(result.stopped_reason, "rate_limited");
      assert.equal(result.counts.pending, 2);
      assert.deepEqual(batchApiCalls(upstream), ["POST /files"]);
      // The rerun, the limit passed, submits them.
      const rerun = await runBatch(target, batchArgs(upstream, dir, jobs));
      assert.equal(rerun.code, 0, rerun.stdout);
      assert.equal(parseJson(rerun.stdout).counts.done, 2);
    });
  },
);
