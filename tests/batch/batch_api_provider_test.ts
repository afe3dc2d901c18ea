/**
 * img2-batch --batch-api against a provider that lies or errs: a list of batches that pages in a
 * circle or never ends, a batch `completed` before it names its output file, counts of nonsense,
 * lines that no HTTP status can carry. Nothing is submitted twice, every run answers.
 */
import assert from "node:assert/strict";
import { startFakeUpstream } from "../_fake_upstream.ts";
import { withTempDir } from "../_helpers.ts";
import {
  BATCH_TARGETS,
  delay,
  parseJson,
  promptJobs,
  runBatch,
  sharedFlags,
  writeJobs,
} from "./batch_command.ts";
import type { FakeUpstream } from "../_fake_upstream.ts";
import type { MockBatch } from "../../scripts/mock/mock_batch_api.ts";

const target = BATCH_TARGETS[0]!;

function batchArgs(upstream: FakeUpstream, dir: string, jobs: string, ...more: string[]) {
  return [jobs, "--batch-api", ...sharedFlags(upstream, "batch", dir), ...more];
}

/** The calls to the Batch API, method and path, the query left out. */
function calls(upstream: FakeUpstream, pattern: RegExp): number {
  return upstream.requests.filter((r) => r.scenario === "batch")
    .map((r) => `${r.method} ${r.path.replace("/batch/v1", "").replace(/\?.*/, "")}`)
    .filter((call) => pattern.test(call)).length;
}

/** Batches of other runs of the account, made after this one's upload. */
function othersOf(count: number): MockBatch[] {
  return Array.from({ length: count }, (_, i) => ({
    id: `batch_other_${i}`,
    input_file_id: "file-other",
    metadata: {},
    created_at: Math.floor(Date.now() / 1000) + 60,
    createdMs: Date.now(),
    status: "completed",
    output_file_id: null,
    error_file_id: null,
    errors: [],
    request_counts: { total: 0, completed: 0, failed: 0 },
    ended_at: null,
    cancelling: false,
  }));
}

Deno.test("a list of batches that pages in a circle ends: the part is created once", async () => {
  await using upstream = startFakeUpstream();
  upstream.batchApi.batches.push(...othersOf(3));
  // Every page is the first, and says there is more.
  let first: Record<string, unknown> | null = null;
  upstream.batchApi.rewriteList = (page) => {
    first ??= page;
    return { ...first, has_more: true };
  };
  await withTempDir(async (dir) => {
    const jobs = await writeJobs(`${dir}/jobs.jsonl`, promptJobs(2));
    const run = await runBatch(target, batchArgs(upstream, dir, jobs), {
      whileRunning: async (child) => {
        // Without an end to the list the run would ask for it forever.
        while (
          calls(upstream, /^GET \/batches$/) < 50 &&
          !upstream.batchApi.batches.some((b) => b.metadata.img2_batch_part)
        ) {
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        if (calls(upstream, /^GET \/batches$/) >= 50) child.kill("SIGKILL");
      },
    });
    assert.equal(run.code, 0, run.stdout);
    assert.equal(parseJson(run.stdout).counts.done, 2);
    assert.equal(calls(upstream, /^POST \/batches$/), 1);
    assert.equal(calls(upstream, /^GET \/batches$/), 2);
  });
});

Deno.test("a list of batches that never ends stops the run before any batch is created", async () => {
  await using upstream = startFakeUpstream();
  let next = 0;
  // Ever new batches of no date: the list never reaches the part's upload time.
  upstream.batchApi.rewriteList = (page) => {
    const data = Array.from({ length: 100 }, () => ({ id: `batch_new_${++next}`, metadata: {} }));
    return { ...page, data, last_id: data.at(-1)!.id, has_more: true };
  };
  await withTempDir(async (dir) => {
    const jobs = await writeJobs(`${dir}/jobs.jsonl`, promptJobs(2));
    let ended = false;
    const run = await runBatch(target, batchArgs(upstream, dir, jobs), {
      whileRunning: async (child) => {
        void child.status.then(() => ended = true);
        // Without an end to the list the run would ask for it forever.
        while (!ended && calls(upstream, /^GET \/batches$/) < 10_000) await delay(20);
        if (!ended) child.kill("SIGKILL");
      },
    });
    assert.equal(run.code, 1, run.stdout);
    const result = parseJson(run.stdout);
    assert.equal(result.stopped_reason, "bad_response");
    assert.match(result.batch_error.error, /list of batches did not end/);
    assert.equal(result.counts.pending, 2);
    assert.equal(calls(upstream, /^POST \/batches$/), 0);
  });
});

Deno.test("a batch completed before it names its output file is looked at again, not sent twice", async () => {
  await using upstream = startFakeUpstream();
  let hide = true;
  upstream.batchApi.rewriteView = (view) =>
    hide && view.status === "completed" ? { ...view, output_file_id: null } : view;
  await withTempDir(async (dir) => {
    const jobs = await writeJobs(`${dir}/jobs.jsonl`, promptJobs(2));
    const detached = await runBatch(target, batchArgs(upstream, dir, jobs, "--detach"));
    assert.equal(detached.code, 3, detached.stdout);
    const first = parseJson(detached.stdout);
    assert.equal(first.counts.submitted, 2);
    assert.equal(first.batches[0].status, "completed");
    hide = false;
    const rerun = await runBatch(target, batchArgs(upstream, dir, jobs, "--detach"));
    assert.equal(rerun.code, 0, rerun.stdout);
    assert.equal(parseJson(rerun.stdout).counts.done, 2);
    assert.equal(upstream.batchApi.batches.length, 1);
  });
});

Deno.test("request counts that are no counts are shown as none", async () => {
  await using upstream = startFakeUpstream();
  upstream.batchApi.rewriteView = (view) => ({
    ...view,
    request_counts: { total: -5, completed: 1.5, failed: "2" },
  });
  await withTempDir(async (dir) => {
    const jobs = await writeJobs(`${dir}/jobs.jsonl`, promptJobs(1));
    const run = await runBatch(target, batchArgs(upstream, dir, jobs));
    assert.equal(run.code, 0, run.stdout);
    assert.deepEqual(parseJson(run.stdout).batches[0].request_counts, {
      total: 0,
      completed: 0,
      failed: 0,
    });
  });
});

Deno.test("a batch created with no id in the answer is a bad response, adopted by the next look", async () => {
  await using upstream = startFakeUpstream();
  let looks = 0;
  upstream.batchApi.rewriteView = (view) => {
    if (++looks > 1) return view;
    const { id: _id, ...rest } = view;
    return rest;
  };
  await withTempDir(async (dir) => {
    const jobs = await writeJobs(`${dir}/jobs.jsonl`, promptJobs(1));
    const run = await runBatch(target, batchArgs(upstream, dir, jobs));
    assert.equal(run.code, 0, run.stdout);
    assert.equal(parseJson(run.stdout).counts.done, 1);
    assert.equal(upstream.batchApi.batches.length, 1);
  });
});

Deno.test({
  // Not yet: BatchApiRun#takeLine builds `new Response(body, {status})` for any status 200–599,
  // and a Response of status 204, 205 or 304 may have no body: the constructor throws, the run
  // stops as internal_error at every rerun. A status with no body, or outside 200–599, should be
  // read as the 502 it is made into for a status that is not a number.
  ignore: true,
  name: "an answer line of status 204 with a body fails its job, not the run",
  fn: async () => {
    await using upstream = startFakeUpstream();
    upstream.batchApi.rewriteOutput = (line, number) =>
      number === 1
        ? { ...line, response: { ...(line.response as object), status_code: 204 } }
        : line;
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/jobs.jsonl`, promptJobs(2));
      const run = await runBatch(target, batchArgs(upstream, dir, jobs));
      assert.equal(run.code, 1, run.stdout);
      const result = parseJson(run.stdout);
      assert.equal(result.stopped_reason, null);
      assert.equal(result.counts.done, 1);
      assert.equal(result.counts.failed, 1);
    });
  },
});
