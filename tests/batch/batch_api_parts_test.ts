/** How --batch-api cuts its jobs into parts: at most 50 000 lines and 200 MB each. */
import assert from "node:assert/strict";
import { startFakeUpstream } from "../_fake_upstream.ts";
import { withTempDir } from "../_helpers.ts";
import {
  batchLine,
  cutParts,
  MAX_PART_BYTES,
  MAX_PART_LINES,
} from "../../lib/batch/batch_api_run.ts";
import { validateParams } from "../../lib/mod.ts";
import {
  batchApiCalls,
  batchArgs,
  parseJson,
  promptJobs,
  runBatch,
  testEachBatchTarget,
  writeJobs,
} from "./batch_command.ts";

const sizes = (parts: number[][]) => parts.map((part) => part.reduce((sum, n) => sum + n, 0));

Deno.test("cutParts(): 50 000 lines a part, the 50 001st in the next", () => {
  const parts = cutParts(Array.from({ length: MAX_PART_LINES + 1 }, () => 10), (n) => n);
  assert.deepEqual(parts.map((part) => part.length), [MAX_PART_LINES, 1]);
  assert.deepEqual(
    cutParts(Array.from({ length: MAX_PART_LINES }, () => 10), (n) => n).length,
    1,
  );
});

Deno.test("cutParts(): 200 MB a part, a line exactly at the bound kept, one byte over cut", () => {
  // Lines of a 32 000-character prompt's size, about 32 KB each.
  const line = 32_100;
  const fit = Math.floor(MAX_PART_BYTES / line);
  const rest = MAX_PART_BYTES - fit * line;
  // The last line ends exactly at 200 MB: one part.
  const exact = [...Array.from({ length: fit }, () => line), rest];
  assert.deepEqual(sizes(cutParts(exact, (n) => n)), [MAX_PART_BYTES]);
  // One byte more: that line goes to a second part, none over 200 MB.
  const over = [...Array.from({ length: fit }, () => line), rest + 1, line];
  const parts = cutParts(over, (n) => n);
  assert.deepEqual(sizes(parts), [fit * line, rest + 1 + line]);
  assert.ok(sizes(parts).every((size) => size <= MAX_PART_BYTES));
  // Every line is in one part, in order.
  assert.deepEqual(parts.flat(), over);
  // Over 400 MB: three parts, each full up to the line that would not fit.
  const many = Array.from({ length: 2 * fit + 10 }, () => line);
  assert.deepEqual(cutParts(many, (n) => n).map((part) => part.length), [fit, fit, 10]);
});

Deno.test("the longest prompt's line is a small part of 200 MB: several thousand such jobs a part", () => {
  const params = validateParams({
    prompt: "\u0001".repeat(32_000),
    base_url: "http://127.0.0.1:1/v1",
    api_key: "k",
    model: "gpt-image-2",
    size: "1024x1024",
    task_name: "t",
    timeout_ms: 1000,
  });
  const bytes = new TextEncoder().encode(batchLine("id", params) + "\n").length;
  // Each control character is written \u0001: six bytes.
  assert.ok(bytes > 6 * 32_000 && bytes < MAX_PART_BYTES / 1000, String(bytes));
});

testEachBatchTarget(
  "50 001 jobs go in two parts, two files and two batches, each job in exactly one",
  async (target) => {
    await using upstream = startFakeUpstream();
    upstream.batchApi.completeMs = 3_600_000;
    await withTempDir(async (dir) => {
      const count = MAX_PART_LINES + 1;
      const jobs = await writeJobs(`${dir}/jobs.jsonl`, promptJobs(count));
      const run = await runBatch(target, batchArgs(upstream, dir, jobs, "--detach"));
      assert.equal(run.code, 3, run.stderr);
      assert.equal(parseJson(run.stdout).counts.submitted, count);
      const calls = batchApiCalls(upstream);
      assert.equal(calls.filter((call) => call === "POST /files").length, 2);
      assert.equal(calls.filter((call) => call === "POST /batches").length, 2);
      const batches = upstream.batchApi.batches;
      assert.deepEqual(batches.map((batch) => batch.metadata.img2_batch_part), ["1", "2"]);
      const ids = batches.map((batch) =>
        new TextDecoder().decode(upstream.batchApi.files.get(batch.input_file_id)!.bytes)
          .trim().split("\n").map((line) => JSON.parse(line).custom_id as string)
      );
      assert.deepEqual(ids.map((part) => part.length), [MAX_PART_LINES, 1]);
      const all = ids.flat();
      assert.equal(new Set(all).size, count);
      assert.deepEqual(all, promptJobs(count).map((job) => job.task_name));
    });
  },
);
