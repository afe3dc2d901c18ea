/** img2-batch --batch-api against the offline upstream's Batch API (scripts/mock/mock_batch_api.ts). */
import assert from "node:assert/strict";
import { listDir, PNG_64, startFakeUpstream, TEST_KEY } from "../_fake_upstream.ts";
import { withTempDir } from "../_helpers.ts";
import {
  batchApiCalls as calls,
  batchArgs,
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

async function readAll(dir: string): Promise<string[]> {
  const texts: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) texts.push(...await readAll(path));
    else if (entry.isFile && !entry.name.endsWith(".png")) {
      texts.push(await Deno.readTextFile(path));
    }
  }
  return texts;
}

testEachBatchTarget(
  "--batch-api submits one batch, waits for it and saves every image as img2-generate would",
  async (target) => {
    await using upstream = startFakeUpstream();
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/jobs.jsonl`, promptJobs(3));
      const events = `${dir}/events.jsonl`;
      const run = await runBatch(target, batchArgs(upstream, dir, jobs, "--events", events));
      assert.equal(run.code, 0, run.stdout + run.stderr);
      const result = parseJson(run.stdout);
      assert.equal(result.mode, "batch-api");
      assert.deepEqual(result.counts, {
        done: 3,
        failed: 0,
        not_started: 0,
        pending: 0,
        missing: 0,
        submitted: 0,
      });
      assert.equal(result.batches.length, 1);
      assert.equal(result.batches[0].status, "completed");
      assert.deepEqual(result.batches[0].request_counts, { total: 3, completed: 3, failed: 0 });
      for (const job of result.jobs) {
        assert.equal(job.result.ok, true);
        assert.equal(job.result.batch_id, result.batches[0].id);
        assert.match(job.result.request_id, /^req_batch_/);
        assert.equal(job.result.width, 64);
        assert.deepEqual(await Deno.readFile(job.image_path), PNG_64);
      }
      assert.deepEqual(calls(upstream), [
        "POST /files",
        "GET /batches",
        "POST /batches",
        `GET /batches/${result.batches[0].id}`,
        `GET /files/${result.batches[0].output_file_id}/content`,
      ]);
      const create = upstream.requests.find((r) =>
        r.method === "POST" && r.path.endsWith("/batches")
      )!;
      assert.equal(create.headers.get("authorization"), `Bearer ${TEST_KEY}`);
      assert.equal(create.body?.endpoint, "/v1/images/generations");
      assert.equal(create.body?.completion_window, "24h");
      const metadata = create.body?.metadata as Record<string, string>;
      assert.equal(metadata.img2_batch_part, "1");
      const runDir = `${dir}/out/.img2-batch/jobs`;
      const input = (await Deno.readTextFile(`${runDir}/batch-input-1.jsonl`)).trim().split("\n")
        .map((line) => JSON.parse(line));
      assert.deepEqual(input[0], {
        custom_id: "p1",
        method: "POST",
        url: "/v1/images/generations",
        body: { model: "gpt-image-2", prompt: "p1", size: "1024x1024", n: 1 },
      });
      const state = JSON.parse(await Deno.readTextFile(`${runDir}/state.json`));
      assert.equal(state.mode, "batch-api");
      assert.equal(state.batches[0].id, result.batches[0].id);
      const names = (await readEvents(events)).map((event) => event.event);
      for (const name of ["batch_submitted", "batch_status", "batch_collected", "job_done"]) {
        assert.ok(names.includes(name), `${name} in ${names}`);
      }
      // The key is in no file of the run dir, no event, and no line uploaded.
      for (const text of [...await readAll(runDir), await Deno.readTextFile(events), run.stdout]) {
        assert.ok(!text.includes(TEST_KEY));
      }
      for (const file of upstream.batchApi.files.values()) {
        assert.ok(!new TextDecoder().decode(file.bytes).includes(TEST_KEY));
      }
      // Run again: nothing is sent.
      const before = upstream.requests.length;
      const again = await runBatch(target, batchArgs(upstream, dir, jobs));
      assert.equal(again.code, 0, again.stdout);
      assert.equal(upstream.requests.length, before);
      assert.deepEqual(
        (await listDir(`${dir}/out`)).filter((name) => name.endsWith(".png")).length,
        3,
      );
    });
  },
);

/** No temporary file is left in the output folder or the run dir. */
async function assertNoTemporaryFiles(dir: string): Promise<void> {
  for (const folder of [`${dir}/out`, `${dir}/out/.img2-batch/jobs`]) {
    const names = await listDir(folder);
    assert.deepEqual(names.filter((name) => /\.(img2-part|tmp)$/.test(name)), []);
  }
}

/** Waits until the upstream has been asked `call` (as calls() writes it) `times` times. */
async function until(upstream: FakeUpstream, pattern: RegExp, times = 1): Promise<void> {
  while (calls(upstream).filter((call) => pattern.test(call)).length < times) await delay(20);
}

testEachBatchTarget(
  "--batch-api reads lines in any order, ignores strays, and diagnoses failed lines",
  async (target) => {
    await using upstream = startFakeUpstream();
    upstream.batchApi.shuffle = true;
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/jobs.jsonl`, [
        ...promptJobs(3),
        { prompt: "a [refuse] b", task_name: "refused" },
        { prompt: "a [error] b", task_name: "broken" },
      ]);
      const events = `${dir}/events.jsonl`;
      const run = await runBatch(target, batchArgs(upstream, dir, jobs, "--events", events));
      assert.equal(run.code, 1, run.stdout);
      const result = parseJson(run.stdout);
      const byId = Object.fromEntries(result.jobs.map((job: { id: string }) => [job.id, job]));
      for (const id of ["p1", "p2", "p3"]) assert.equal(byId[id].status, "done");
      assert.equal(byId.refused.status, "failed");
      assert.equal(byId.refused.result.http_status, 400);
      assert.equal(byId.refused.result.diagnosis.category, "content_rejected");
      assert.equal(byId.broken.result.http_status, 500);
      assert.equal(byId.broken.result.diagnosis.category, "upstream_failure");
      const ignored = (await readEvents(events)).filter((event) =>
        event.event === "batch_line_ignored"
      ).map((event) => event.reason);
      assert.deepEqual(ignored, [
        "a second line for the same job",
        "its custom_id is none of this batch's jobs",
      ]);
      const pngs = (await listDir(`${dir}/out`)).filter((name) => name.endsWith(".png"));
      assert.equal(pngs.length, 3);
    });
  },
);

testEachBatchTarget(
  "an expired batch leaves its unanswered jobs pending, and a rerun submits only those",
  async (target) => {
    await using upstream = startFakeUpstream();
    upstream.batchApi.expire = true;
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/jobs.jsonl`, [
        ...promptJobs(2),
        { prompt: "late [slow]", task_name: "late" },
      ]);
      const first = await runBatch(target, batchArgs(upstream, dir, jobs));
      assert.equal(first.code, 1, first.stdout);
      const result = parseJson(first.stdout);
      assert.equal(result.counts.done, 2);
      assert.equal(result.counts.pending, 1);
      assert.match(result.jobs[2].reason, /expired/);
      upstream.batchApi.expire = false;
      const second = await runBatch(target, batchArgs(upstream, dir, jobs));
      assert.equal(second.code, 0, second.stdout);
      const inputs = [...upstream.batchApi.files.values()].filter((f) => f.purpose === "batch");
      assert.equal(inputs.length, 2);
      const ids = new TextDecoder().decode(inputs[1]!.bytes).trim().split("\n")
        .map((line) => JSON.parse(line).custom_id);
      assert.deepEqual(ids, ["late"]);
      assert.equal(parseJson(second.stdout).batches.length, 2);
    });
  },
);

testEachBatchTarget(
  "a failed validation fails the lines it names and leaves the rest pending",
  async (target) => {
    await using upstream = startFakeUpstream();
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/jobs.jsonl`, [
        { prompt: "fine", task_name: "fine" },
        { prompt: "bad [invalid]", task_name: "bad" },
      ]);
      const run = await runBatch(target, batchArgs(upstream, dir, jobs));
      assert.equal(run.code, 1, run.stdout);
      const [fine, bad] = parseJson(run.stdout).jobs;
      assert.equal(fine.status, "pending");
      assert.match(fine.reason, /failed/);
      assert.equal(bad.status, "failed");
      assert.equal(bad.result.upstream_error_message, "Invalid prompt on line 2.");
      assert.equal(bad.result.upstream_error_code, "invalid_request");
      // A failure of no line: the whole part waits for the next run, saying why.
      upstream.batchApi.failWithoutLine = true;
      const whole = await runBatch(target, batchArgs(upstream, dir, jobs, "--retry-failed"));
      assert.equal(whole.code, 1, whole.stdout);
      const [again, badAgain] = parseJson(whole.stdout).jobs;
      assert.equal(again.status, "pending");
      assert.match(again.reason, /^The batch failed: The file could not be read/);
      assert.equal(badAgain.status, "failed");
    });
  },
);

testEachBatchTarget(
  "an upstream without a Batch API fails at once, every job pending and nothing paid",
  async (target) => {
    await using upstream = startFakeUpstream();
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/jobs.jsonl`, promptJobs(2));
      const run = await runBatch(target, [
        jobs,
        "--batch-api",
        ...sharedFlags(upstream, "batch-none", dir),
      ]);
      assert.equal(run.code, 1, run.stdout);
      const result = parseJson(run.stdout);
      assert.equal(result.stopped_reason, "endpoint_not_found");
      assert.equal(result.batch_error.http_status, 501);
      assert.equal(result.batch_error.upstream_error_code, "api_not_implemented");
      assert.match(
        result.batch_error.error,
        /^This upstream has no Batch API; run without --batch-api/,
      );
      assert.equal(result.counts.pending, 2);
      assert.equal(upstream.requests.filter((r) => r.scenario === "batch-none").length, 1);
    });
  },
);

testEachBatchTarget(
  "--detach exits 3 while jobs are at the provider; status and a rerun collect them",
  async (target) => {
    await using upstream = startFakeUpstream();
    upstream.batchApi.completeMs = 3_600_000;
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/jobs.jsonl`, promptJobs(2));
      const args = batchArgs(upstream, dir, jobs, "--detach");
      const first = await runBatch(target, args);
      assert.equal(first.code, 3, first.stdout);
      const result = parseJson(first.stdout);
      assert.equal(result.counts.submitted, 2);
      assert.equal(result.jobs[0].status, "submitted");
      const runDir = `${dir}/out/.img2-batch/jobs`;
      const atProvider = await runBatch(target, ["status", runDir]);
      assert.equal(atProvider.code, 3, atProvider.stdout);
      const status = parseJson(atProvider.stdout);
      assert.equal(status.mode, "batch-api");
      assert.equal(status.counts.submitted, 2);
      assert.equal(status.batches[0].status, "in_progress");
      const again = await runBatch(target, args);
      assert.equal(again.code, 3);
      assert.equal(calls(upstream).filter((call) => call === "POST /batches").length, 1);
      upstream.batchApi.completeMs = 0;
      const last = await runBatch(target, args);
      assert.equal(last.code, 0, last.stdout);
      const done = await runBatch(target, ["status", runDir]);
      assert.equal(done.code, 0, done.stdout);
      assert.equal(parseJson(done.stdout).counts.done, 2);
      assert.equal(parseJson(done.stdout).batches[0].status, "completed");
    });
  },
);

testEachBatchTarget(
  "--cancel cancels the run's open batch and leaves its jobs pending",
  async (target) => {
    await using upstream = startFakeUpstream();
    upstream.batchApi.completeMs = 3_600_000;
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/jobs.jsonl`, promptJobs(2));
      assert.equal((await runBatch(target, batchArgs(upstream, dir, jobs, "--detach"))).code, 3);
      const cancelled = await runBatch(target, batchArgs(upstream, dir, jobs, "--cancel"));
      assert.equal(cancelled.code, 1, cancelled.stdout);
      const result = parseJson(cancelled.stdout);
      assert.equal(result.batches[0].status, "cancelled");
      assert.equal(result.counts.pending, 2);
      assert.ok(calls(upstream).some((call) => /^POST \/batches\/[^/]+\/cancel$/.test(call)));
    });
  },
);

testEachBatchTarget(
  "kill -9 while the batch is created: the rerun adopts it and creates none",
  async (target) => {
    await using upstream = startFakeUpstream();
    upstream.batchApi.stallCreate = true;
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/jobs.jsonl`, promptJobs(2));
      const killed = await runBatch(target, batchArgs(upstream, dir, jobs), {
        whileRunning: async (child) => {
          await until(upstream, /^POST \/batches$/);
          await delay(50);
          child.kill("SIGKILL");
        },
      });
      assert.equal(killed.code, 137);
      upstream.batchApi.stallCreate = false;
      // Batches of others made since: the run's own is found on a later page of the list.
      const own = upstream.batchApi.batches[0]!;
      for (let i = 0; i < 150; i++) {
        upstream.batchApi.batches.push({ ...own, id: `batch_other_${i}`, metadata: {} });
      }
      const rerun = await runBatch(target, batchArgs(upstream, dir, jobs));
      assert.equal(rerun.code, 0, rerun.stdout);
      assert.equal(calls(upstream).filter((call) => call === "POST /batches").length, 1);
      assert.equal(upstream.batchApi.batches.length, 151);
      assert.equal(parseJson(rerun.stdout).batches[0].id, own.id);
      assert.equal(parseJson(rerun.stdout).counts.done, 2);
      await assertNoTemporaryFiles(dir);
    });
  },
);

testEachBatchTarget(
  "kill -9 while the output is read: the rerun saves each image once and leaves no temp file",
  async (target) => {
    await using upstream = startFakeUpstream();
    upstream.batchApi.stallContent = true;
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/jobs.jsonl`, promptJobs(3));
      const killed = await runBatch(target, batchArgs(upstream, dir, jobs), {
        whileRunning: async (child) => {
          await until(upstream, /^GET \/files\/.*\/content$/);
          await delay(300);
          child.kill("SIGKILL");
        },
      });
      assert.equal(killed.code, 137);
      upstream.batchApi.stallContent = false;
      const rerun = await runBatch(target, batchArgs(upstream, dir, jobs));
      assert.equal(rerun.code, 0, rerun.stdout);
      assert.equal(upstream.batchApi.batches.length, 1);
      const names = await listDir(`${dir}/out`);
      assert.equal(names.filter((name) => name.endsWith(".png")).length, 3, names.join());
      await assertNoTemporaryFiles(dir);
    });
  },
);

testEachBatchTarget(
  "an output file cut inside a line: that job goes back to pending, not failed, and a rerun saves it",
  async (target) => {
    await using upstream = startFakeUpstream();
    upstream.batchApi.cutContent = true;
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/jobs.jsonl`, promptJobs(3));
      const events = `${dir}/events.jsonl`;
      const cut = await runBatch(target, batchArgs(upstream, dir, jobs, "--events", events));
      const result = parseJson(cut.stdout);
      assert.equal(result.counts.done, 1, cut.stdout);
      assert.equal(result.counts.failed, 0);
      assert.equal(result.counts.pending, 2);
      const ignored = (await readEvents(events)).filter((event) =>
        event.event === "batch_line_ignored"
      );
      assert.deepEqual(ignored.map((event) => [event.line, event.reason]), [
        [2, "The file ends inside the line"],
      ]);
      assert.deepEqual((await listDir(`${dir}/out`)).filter((name) => name.endsWith(".tmp")), []);
      upstream.batchApi.cutContent = false;
      const rerun = await runBatch(target, batchArgs(upstream, dir, jobs));
      assert.equal(rerun.code, 0, rerun.stdout);
      assert.equal(parseJson(rerun.stdout).counts.done, 3);
      const names = await listDir(`${dir}/out`);
      assert.equal(names.filter((name) => name.endsWith(".png")).length, 3, names.join());
    });
  },
);

testEachBatchTarget(
  "SIGINT while waiting detaches: nothing cancelled, exit 130, the jobs still submitted",
  async (target) => {
    await using upstream = startFakeUpstream();
    upstream.batchApi.completeMs = 3_600_000;
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/jobs.jsonl`, promptJobs(2));
      const run = await runBatch(target, batchArgs(upstream, dir, jobs, "--poll-seconds", "5"), {
        whileRunning: async (child) => {
          await until(upstream, /^GET \/batches\/[^/]+$/);
          await delay(100);
          child.kill("SIGINT");
        },
      });
      assert.equal(run.code, 130, run.stdout + run.stderr);
      const result = parseJson(run.stdout);
      assert.equal(result.interrupted, true);
      assert.equal(result.counts.submitted, 2);
      assert.ok(!calls(upstream).some((call) => call.endsWith("/cancel")));
    });
  },
);

testEachBatchTarget(
  "--dry-run with --batch-api says what a batch line leaves out and sends nothing",
  async (target) => {
    await using upstream = startFakeUpstream();
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/jobs.jsonl`, [
        { prompt: "p", task_name: "p", stream: true, partial_images: 1 },
      ]);
      const run = await runBatch(target, batchArgs(upstream, dir, jobs, "--dry-run"));
      assert.equal(run.code, 0, run.stdout);
      const report = parseJson(run.stdout);
      assert.equal(report.batch_api.endpoint, "/v1/images/generations");
      assert.deepEqual(report.batch_api.left_out, ["stream", "partial_images"]);
      // Each job shows the line that would be uploaded, not the call it stands for.
      assert.equal(report.jobs[0].request, undefined);
      assert.deepEqual(report.jobs[0].batch_line, {
        custom_id: report.jobs[0].id,
        method: "POST",
        url: "/v1/images/generations",
        body: { model: "gpt-image-2", prompt: "p", size: "1024x1024", n: 1 },
      });
      assert.equal(upstream.requests.length, 0);
    });
  },
);

testEachBatchTarget(
  "jobs of two models go in two batches; a 500 on the way is tried again, nothing twice",
  async (target) => {
    await using upstream = startFakeUpstream();
    upstream.batchApi.failNext = 1;
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/jobs.jsonl`, [
        { prompt: "a", task_name: "a" },
        { prompt: "b", task_name: "b", model: "gpt-image-1" },
        { prompt: "c", task_name: "c" },
      ]);
      const run = await runBatch(target, batchArgs(upstream, dir, jobs));
      assert.equal(run.code, 0, run.stdout);
      assert.equal(parseJson(run.stdout).batches.length, 2);
      const models = upstream.batchApi.batches.map((batch) => {
        const text = new TextDecoder().decode(
          upstream.batchApi.files.get(batch.input_file_id)!.bytes,
        );
        return text.trim().split("\n").map((line) => JSON.parse(line).body.model).join(",");
      });
      assert.deepEqual(models, ["gpt-image-2,gpt-image-2", "gpt-image-1"]);
    });
  },
);

testEachBatchTarget(
  "kill -9 during the upload or the wait: the rerun makes one batch per part and collects it",
  async (target) => {
    await using upstream = startFakeUpstream();
    upstream.batchApi.stallUpload = true;
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/jobs.jsonl`, promptJobs(2));
      const killUpload = await runBatch(target, batchArgs(upstream, dir, jobs), {
        whileRunning: async (child) => {
          await until(upstream, /^POST \/files$/);
          await delay(50);
          child.kill("SIGKILL");
        },
      });
      assert.equal(killUpload.code, 137);
      upstream.batchApi.stallUpload = false;
      upstream.batchApi.completeMs = 3_600_000;
      const killWait = await runBatch(target, batchArgs(upstream, dir, jobs), {
        whileRunning: async (child) => {
          await until(upstream, /^GET \/batches\/[^/]+$/);
          child.kill("SIGKILL");
        },
      });
      assert.equal(killWait.code, 137);
      upstream.batchApi.completeMs = 0;
      const rerun = await runBatch(target, batchArgs(upstream, dir, jobs));
      assert.equal(rerun.code, 0, rerun.stdout);
      assert.equal(upstream.batchApi.batches.length, 1);
      assert.equal(parseJson(rerun.stdout).counts.done, 2);
      await assertNoTemporaryFiles(dir);
    });
  },
);

testEachBatchTarget(
  "while a batch waits, status says live and submitted, the contact sheet says so, and a run without --batch-api sends none of its jobs",
  async (target) => {
    await using upstream = startFakeUpstream();
    upstream.batchApi.completeMs = 3_600_000;
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/jobs.jsonl`, promptJobs(2));
      const runDir = `${dir}/out/.img2-batch/jobs`;
      let live: Record<string, unknown> = {};
      const run = await runBatch(target, batchArgs(upstream, dir, jobs, "--poll-seconds", "5"), {
        whileRunning: async (child) => {
          await until(upstream, /^GET \/batches\/[^/]+$/);
          await delay(1200); // state.json is written at most once a second
          const status = await runBatch(target, ["status", runDir]);
          live = parseJson(status.stdout);
          child.kill("SIGTERM");
        },
      });
      assert.equal(run.code, 143, run.stdout);
      assert.equal(live.live, true);
      assert.deepEqual((live.counts as Record<string, number>).submitted, 2);
      assert.equal((live.batches as { status: string }[])[0]!.status, "in_progress");
      const sheet = await Deno.readTextFile(`${runDir}/index.html`);
      assert.match(sheet, /at the provider/);
      const sync = await runBatch(target, [jobs, ...sharedFlags(upstream, "batch", dir)]);
      assert.equal(sync.code, 3, sync.stdout);
      assert.equal(parseJson(sync.stdout).counts.submitted, 2);
      assert.ok(!upstream.requests.some((r) => r.path.endsWith("/images/generations")));
    });
  },
);
