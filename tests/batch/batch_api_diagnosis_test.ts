/**
 * img2-batch --batch-api diagnoses what the Batch API itself says, as OpenAI and Azure OpenAI say
 * it: a line its validation refused, an input file too large, a quota of stored files. The
 * reasons are in the default language, zh.
 */
import assert from "node:assert/strict";
import { startFakeUpstream } from "../_fake_upstream.ts";
import { withTempDir } from "../_helpers.ts";
import {
  batchApiCalls,
  batchArgs,
  parseJson,
  promptJobs,
  runBatch,
  testEachBatchTarget,
  writeJobs,
} from "./batch_command.ts";

testEachBatchTarget(
  "a validation that refuses a line as invalid_json_line fails that job as a bad request, not to be retried",
  async (target) => {
    await using upstream = startFakeUpstream();
    // OpenAI's words for a line that is no JSON, in place of the fake's own.
    upstream.batchApi.rewriteView = (view) => {
      const errors = view.errors as { data: Record<string, unknown>[] } | null;
      if (errors === null) return view;
      const data = errors.data.map((error) => ({
        ...error,
        code: "invalid_json_line",
        message: "This line is not parseable as valid JSON.",
      }));
      return { ...view, errors: { ...errors, data } };
    };
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/jobs.jsonl`, [
        { prompt: "fine", task_name: "fine" },
        { prompt: "bad [invalid]", task_name: "bad" },
      ]);
      const run = await runBatch(target, batchArgs(upstream, dir, jobs));
      assert.equal(run.code, 1, run.stdout);
      const [fine, bad] = parseJson(run.stdout).jobs;
      assert.equal(fine.status, "pending");
      assert.equal(bad.status, "failed");
      assert.equal(bad.result.upstream_error_code, "invalid_json_line");
      assert.equal(bad.result.diagnosis.category, "bad_request");
      assert.equal(bad.result.diagnosis.retryable, false);
      assert.match(bad.result.diagnosis.human_reason, /拒绝了这个任务在批处理输入文件中的那一行/);
    });
  },
);

for (
  const [name, body, category, reason] of [
    [
      "OpenAI's 400 File is too large.",
      `{"error":{"message":"File is too large.","type":"invalid_request_error","param":null,"code":null}}`,
      "bad_request",
      /批处理输入文件超过了上游允许的大小/,
    ],
    [
      "Azure OpenAI's 400 quotaExceeded for files without expiry",
      `{"error":{"code":"quotaExceeded","message":"The quota for files without expiry is reached. The maximum is 500."}}`,
      "quota_exceeded",
      /上游存储文件的配额已满/,
    ],
  ] as const
) {
  testEachBatchTarget(`an upload answered ${name} stops the run as ${category}`, async (target) => {
    await using upstream = startFakeUpstream();
    upstream.batchApi.intercept = (request, path) =>
      request.method === "POST" && path === "/files"
        ? new Response(body, { status: 400, headers: { "content-type": "application/json" } })
        : null;
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/jobs.jsonl`, promptJobs(2));
      const run = await runBatch(target, batchArgs(upstream, dir, jobs));
      assert.equal(run.code, 1, run.stdout + run.stderr);
      const result = parseJson(run.stdout);
      assert.equal(result.stopped_reason, category);
      assert.match(result.batch_error.diagnosis.human_reason, reason);
      assert.equal(result.batch_error.diagnosis.retryable, false);
      assert.equal(result.counts.pending, 2);
      assert.deepEqual(batchApiCalls(upstream), ["POST /files"]);
    });
  });
}
