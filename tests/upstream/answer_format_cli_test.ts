/**
 * A 2xx answer read by what it holds, not by its content type, end to end: a JSON error labelled
 * as an event stream (a relay that answers a streamed request from its own quota check) and an
 * event stream labelled as JSON.
 */
import assert from "node:assert/strict";
import { runTarget, testEachTarget } from "../_command.ts";
import { inputFor, PNG_64, startFakeUpstream } from "../_fake_upstream.ts";
import { withTempDir } from "../_helpers.ts";
import {
  parseJson,
  runBatch,
  sharedFlags,
  testEachBatchTarget,
  writeJobs,
} from "../batch/batch_command.ts";

const QUOTA_ERROR = JSON.stringify({
  error: {
    message: "You exceeded your current quota, please check your plan and billing details.",
    type: "insufficient_quota",
    code: "insufficient_quota",
    param: null,
  },
});

function quotaAsEvents(): Response {
  return new Response(QUOTA_ERROR, {
    headers: { "content-type": "text/event-stream; charset=utf-8" },
  });
}

function completedAsJson(): Response {
  const data = JSON.stringify({ type: "image_generation.completed", b64_json: PNG_64.toBase64() });
  return new Response(`: ok\n\nevent: image_generation.completed\ndata: ${data}\n\n`, {
    headers: { "content-type": "application/json" },
  });
}

testEachTarget(
  "diagnoses a JSON quota error labelled text/event-stream as quota_exceeded",
  async (target) => {
    await using upstream = startFakeUpstream();
    upstream.route("quota-sse", quotaAsEvents);
    await withTempDir(async (dir) => {
      const input = inputFor(upstream, "quota-sse", dir, { stream: true, max_retries: 2 });
      const run = await runTarget(target, [JSON.stringify(input)]);
      assert.equal(run.code, 1, run.stdout + run.stderr);
      const result = JSON.parse(run.stdout);
      assert.equal(result.stage, "request");
      assert.equal(result.http_status, 200);
      assert.equal(result.upstream_error_code, "insufficient_quota");
      assert.equal(result.diagnosis.category, "quota_exceeded");
      assert.equal(result.diagnosis.retryable, false);
      assert.equal(upstream.requests.length, 1);
    });
  },
);

testEachTarget("reads an event stream labelled application/json as events", async (target) => {
  await using upstream = startFakeUpstream();
  upstream.route("sse-json", completedAsJson);
  await withTempDir(async (dir) => {
    const input = inputFor(upstream, "sse-json", dir, { stream: true });
    const run = await runTarget(target, [JSON.stringify(input)]);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const result = JSON.parse(run.stdout);
    assert.deepEqual(await Deno.readFile(result.image_path), PNG_64);
  });
});

testEachBatchTarget(
  "stops early on a quota error labelled text/event-stream instead of retrying every job",
  async (target) => {
    await using upstream = startFakeUpstream();
    upstream.route("quota-sse", quotaAsEvents);
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(
        `${dir}/jobs.jsonl`,
        Array.from(
          { length: 4 },
          (_, i) => ({ prompt: `p${i}`, task_name: `p${i}`, stream: true }),
        ),
      );
      const run = await runBatch(target, [
        jobs,
        "--concurrency",
        "1",
        "--max-attempts",
        "3",
        ...sharedFlags(upstream, "quota-sse", dir),
      ]);
      assert.equal(run.code, 1, run.stdout + run.stderr);
      const result = parseJson(run.stdout);
      assert.equal(result.stopped_reason, "quota_exceeded");
      assert.deepEqual(result.categories, { quota_exceeded: 1 });
      assert.equal(result.counts.not_started, 3);
      assert.equal(upstream.requests.length, 1);
    });
  },
);
