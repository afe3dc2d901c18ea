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
  readEvents,
  runBatch,
  sharedFlags,
  testEachBatchTarget,
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

testEachBatchTarget(
  "lines with a status no answer has, no status, an error in words, or nothing: each job told apart",
  async (target) => {
    await using upstream = startFakeUpstream();
    upstream.batchApi.rewriteOutput = (line, number) => {
      const response = line.response as Record<string, unknown>;
      if (number === 1) return { ...line, response: { ...response, status_code: 204 } };
      if (number === 2) {
        const { status_code: _status, ...rest } = response;
        return { ...line, response: rest };
      }
      if (number === 3) return { ...line, response: null, error: "The model was overloaded" };
      if (number === 4) return { ...line, response: null, error: null };
      return line;
    };
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/jobs.jsonl`, promptJobs(5));
      const events = `${dir}/events.jsonl`;
      const run = await runBatch(target, batchArgs(upstream, dir, jobs, "--events", events));
      assert.equal(run.code, 1, run.stdout + run.stderr);
      const result = parseJson(run.stdout);
      assert.equal(result.stopped_reason, null);
      const byId = new Map(result.jobs.map((job: { id: string }) => [job.id, job]));
      const failure = (id: string) => (byId.get(id) as { result: Record<string, unknown> }).result;
      assert.equal(failure("p1").stage, "response");
      assert.match(String(failure("p1").error), /status_code 204, which no answer with a body/);
      assert.match(String(failure("p2").error), /no usable status_code/);
      assert.equal(failure("p2").http_status, null);
      assert.match(String(failure("p3").error), /The model was overloaded/);
      assert.equal((byId.get("p4") as { status: string }).status, "pending");
      assert.equal((byId.get("p5") as { status: string }).status, "done");
      const ignored = (await readEvents(events)).filter((event) =>
        event.event === "batch_line_ignored"
      );
      assert.deepEqual(ignored.map((event) => [event.custom_id, event.reason]), [
        ["p4", "the line has neither a response body nor an error"],
      ]);
    });
  },
);
