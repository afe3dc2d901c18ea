import assert from "node:assert/strict";
import { signalWhileStdoutBlocked } from "../_command.ts";
import { listDir, startFakeUpstream } from "../_fake_upstream.ts";
import { withTempDir } from "../_helpers.ts";
import { refuseFirstRequests } from "../../scripts/mock/mock_rate_limit.ts";
import {
  delay,
  imageAnswer,
  parseJson,
  promptJobs,
  promptsSent,
  runBatch,
  sharedFlags,
  testEachBatchTarget,
  writeJobs,
} from "./batch_command.ts";

testEachBatchTarget("runs every job once, and a second run sends nothing", async (target) => {
  await using upstream = startFakeUpstream();
  upstream.route("count", () => imageAnswer());
  await withTempDir(async (dir) => {
    const jobs = await writeJobs(`${dir}/cats.jsonl`, promptJobs(5));
    const first = await runBatch(target, [jobs, ...sharedFlags(upstream, "count", dir)]);
    assert.equal(first.code, 0, first.stderr);
    const result = parseJson(first.stdout);
    assert.equal(result.ok, true);
    assert.deepEqual(result.counts, { done: 5, failed: 0, not_started: 0, pending: 0, missing: 0 });
    assert.deepEqual(promptsSent(upstream, "count").sort(), ["p1", "p2", "p3", "p4", "p5"]);
    const runDir = `${dir}/out/.img2-batch/cats`;
    assert.deepEqual(await listDir(runDir), [
      "batch_result.json",
      "index.html",
      "journal.jsonl",
      "state.json",
    ]);
    assert.deepEqual(parseJson(await Deno.readTextFile(`${runDir}/batch_result.json`)), result);
    const state = parseJson(await Deno.readTextFile(`${runDir}/state.json`));
    assert.equal(state.jobs.length, 5);
    assert.ok(state.jobs.every((job: { status: string }) => job.status === "done"));
    for (const job of result.jobs) {
      assert.equal(job.result.ok, true);
      assert.equal(job.attempts, 1);
      assert.match(job.image_path, new RegExp(`/out/${job.task_name}-\\d{8}-\\d{6}\\.png$`));
    }

    // What a run killed while rewriting state.json or index.html would leave; the next run
    // clears it.
    await Deno.writeTextFile(`${runDir}/state.json.0a1b2c3d.tmp`, '{"jobs_file"');
    await Deno.writeTextFile(`${runDir}/index.html.9f8e7d6c.tmp`, "<!doctype html>");
    const second = await runBatch(target, [jobs, ...sharedFlags(upstream, "count", dir)]);
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual(await listDir(runDir), [
      "batch_result.json",
      "index.html",
      "journal.jsonl",
      "state.json",
    ]);
    assert.equal(upstream.requests.length, 5);
    assert.deepEqual(parseJson(second.stdout).counts, result.counts);
  });
});

testEachBatchTarget(
  "resumes after kill -9 mid-run without requesting a finished job again",
  async (target) => {
    await using upstream = startFakeUpstream();
    upstream.route("slow", async () => {
      await delay(150);
      return imageAnswer();
    });
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/slow.jsonl`, promptJobs(8));
      const args = [jobs, "--concurrency", "2", ...sharedFlags(upstream, "slow", dir)];
      const journal = `${dir}/out/.img2-batch/slow/journal.jsonl`;
      const killed = await runBatch(target, args, {
        whileRunning: async (child) => {
          while (endedIds(await Deno.readTextFile(journal).catch(() => "")).length < 3) {
            await delay(20);
          }
          child.kill("SIGKILL");
        },
      });
      assert.equal(killed.code, 137);
      const finished = endedIds(await Deno.readTextFile(journal));
      assert.ok(finished.length >= 3 && finished.length < 8, `${finished}`);
      const before = promptsSent(upstream, "slow").length;

      const resumed = await runBatch(target, args);
      assert.equal(resumed.code, 0, resumed.stderr);
      assert.equal(parseJson(resumed.stdout).counts.done, 8);
      const again = promptsSent(upstream, "slow").slice(before);
      for (const id of finished) assert.ok(!again.includes(id), `${id} was requested again`);
      const images = (await listDir(`${dir}/out`)).filter((name) => name.endsWith(".png"));
      for (let i = 1; i <= 8; i++) {
        assert.equal(images.filter((name) => name.startsWith(`p${i}-`)).length, 1, `${images}`);
      }
    });
  },
);

function endedIds(journal: string): string[] {
  return journal.split("\n").filter((line) => line.includes('"event":"end"'))
    .map((line) => JSON.parse(line).id);
}

for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
  testEachBatchTarget(
    `${signal} cancels the jobs in flight, keeps them pending and exits ${code}`,
    async (target) => {
      await using upstream = startFakeUpstream();
      await withTempDir(async (dir) => {
        const jobs = await writeJobs(`${dir}/stall.jsonl`, promptJobs(4));
        const args = [jobs, "--concurrency", "2", ...sharedFlags(upstream, "stall-headers", dir)];
        const run = await runBatch(target, args, {
          whileRunning: async (child) => {
            while (upstream.requests.length < 2) await upstream.nextArrival();
            child.kill(signal);
          },
        });
        assert.equal(run.code, code, run.stderr);
        const result = parseJson(run.stdout);
        assert.equal(result.interrupted, true);
        assert.equal(result.ok, false);
        assert.deepEqual(result.counts, {
          done: 0,
          failed: 0,
          not_started: 0,
          pending: 4,
          missing: 0,
        });
        assert.equal(upstream.requests.length, 2);
        const saved = parseJson(
          await Deno.readTextFile(`${dir}/out/.img2-batch/stall/batch_result.json`),
        );
        assert.equal(saved.interrupted, true);
        const state = parseJson(await Deno.readTextFile(`${dir}/out/.img2-batch/stall/state.json`));
        assert.ok(state.jobs.every((job: { status: string }) => job.status === "pending"));
        // No partial image is left behind.
        assert.deepEqual(await listDir(`${dir}/out`), [".img2-batch"]);
      });
    },
  );
}

testEachBatchTarget(
  "SIGTERM ends the run within a second while standard output is never read",
  async (target) => {
    await using upstream = startFakeUpstream();
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/stall.jsonl`, promptJobs(1));
      const arrived = upstream.nextArrival();
      const run = await signalWhileStdoutBlocked(
        target,
        [jobs, ...sharedFlags(upstream, "stall-headers", dir)],
        dir,
        { signal: "SIGTERM", when: () => arrived },
      );
      assert.equal(run.code, 143);
      assert.ok(run.afterSignalMs < 1500, `ended ${run.afterSignalMs} ms after SIGTERM`);
    });
  },
);

testEachBatchTarget(
  "429s pause the run and are retried without using up --max-attempts",
  async (target) => {
    await using upstream = startFakeUpstream();
    let refused = 0;
    upstream.route("storm", () => {
      if (refused >= 6) return imageAnswer();
      refused++;
      return Response.json(
        { error: { message: "Rate limit reached", type: "requests", code: "rate_limit_exceeded" } },
        { status: 429, headers: { "retry-after-ms": "30" } },
      );
    });
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/storm.jsonl`, promptJobs(3));
      const events = `${dir}/events.jsonl`;
      const run = await runBatch(target, [
        jobs,
        "--max-attempts",
        "1",
        "--events",
        events,
        ...sharedFlags(upstream, "storm", dir),
      ]);
      assert.equal(run.code, 0, run.stdout);
      const result = parseJson(run.stdout);
      assert.equal(result.rate_limited_responses, 6);
      assert.equal(
        result.jobs.reduce((sum: number, job: { attempts: number }) => sum + job.attempts, 0),
        9,
      );
      const lines = (await Deno.readTextFile(events)).trim().split("\n").map((l) => JSON.parse(l));
      const pauses = lines.filter((line) => line.event === "paused_rate_limited");
      assert.ok(pauses.length > 0);
      // The first 429 halves the concurrency of 4.
      assert.deepEqual([pauses[0].pause_ms, pauses[0].concurrency], [30, 2]);
      assert.equal(lines.filter((line) => line.event === "job_retry").length, 6);
      assert.equal(lines.filter((line) => line.event === "job_done").length, 3);
    });
  },
);

testEachBatchTarget(
  "429s to the first three requests of every prompt: each waits what was asked, and all finish",
  async (target) => {
    await using upstream = startFakeUpstream();
    upstream.route("first-three", refuseFirstRequests(3, 100, imageAnswer));
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/five.jsonl`, promptJobs(5));
      const events = `${dir}/events.jsonl`;
      const run = await runBatch(
        target,
        [jobs, "--events", events, ...sharedFlags(upstream, "first-three", dir)],
        {
          // A spacing of starts that doubled with every 429 took minutes here; bounded by the
          // 100 ms asked for, the run takes a few seconds.
          whileRunning: (child) => {
            const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
            child.status.finally(() => clearTimeout(timer));
            return Promise.resolve();
          },
        },
      );
      assert.equal(run.code, 0, run.stderr);
      const result = parseJson(run.stdout);
      assert.deepEqual(result.counts, {
        done: 5,
        failed: 0,
        not_started: 0,
        pending: 0,
        missing: 0,
      });
      assert.equal(result.rate_limited_responses, 15);
      assert.ok(result.jobs.every((job: { attempts: number }) => job.attempts === 4));
      assert.equal(upstream.requests.length, 20);
      const lines = (await Deno.readTextFile(events)).trim().split("\n").map((l) => JSON.parse(l));
      const waits = new Set([
        ...lines.filter((line) => line.event === "paused_rate_limited").map((l) => l.pause_ms),
        ...lines.filter((line) => line.event === "job_retry").map((l) => l.delay_ms),
      ]);
      assert.deepEqual([...waits], [100]);
    });
  },
);

testEachBatchTarget("a job gives up after 10 rate-limited answers in a row", async (target) => {
  await using upstream = startFakeUpstream();
  upstream.route("always-429", () =>
    Response.json(
      { error: { message: "Rate limit reached", type: "requests", code: "rate_limit_exceeded" } },
      { status: 429, headers: { "retry-after-ms": "1" } },
    ));
  await withTempDir(async (dir) => {
    const jobs = await writeJobs(`${dir}/one.jsonl`, promptJobs(1));
    const run = await runBatch(target, [jobs, ...sharedFlags(upstream, "always-429", dir)]);
    assert.equal(run.code, 1);
    const result = parseJson(run.stdout);
    assert.equal(result.jobs[0].status, "failed");
    assert.equal(result.jobs[0].attempts, 10);
    assert.deepEqual(result.categories, { rate_limited: 1 });
    assert.equal(upstream.requests.length, 10);
  });
});

testEachBatchTarget("retries a retryable failure up to --max-attempts in all", async (target) => {
  await using upstream = startFakeUpstream();
  upstream.route("flaky", () =>
    Response.json(
      { error: { message: "Upstream request failed", type: "upstream_error" } },
      { status: 502, headers: { "retry-after-ms": "5" } },
    ));
  await withTempDir(async (dir) => {
    const jobs = await writeJobs(`${dir}/flaky.jsonl`, promptJobs(1));
    const run = await runBatch(target, [
      jobs,
      "--max-attempts",
      "2",
      ...sharedFlags(upstream, "flaky", dir),
    ]);
    assert.equal(run.code, 1);
    assert.equal(parseJson(run.stdout).jobs[0].attempts, 2);
    assert.equal(upstream.requests.length, 2);
  });
});

testEachBatchTarget(
  "stops after quota_exceeded, records the rest as not_started, unless --keep-going",
  async (target) => {
    await using upstream = startFakeUpstream();
    upstream.route("quota", () =>
      Response.json({
        error: {
          message: "You exceeded your current quota, please check your plan and billing details.",
          type: "insufficient_quota",
          code: "insufficient_quota",
        },
      }, { status: 429 }));
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/quota.jsonl`, promptJobs(4));
      const args = [jobs, "--concurrency", "1", ...sharedFlags(upstream, "quota", dir)];
      const stopped = await runBatch(target, args);
      assert.equal(stopped.code, 1);
      const result = parseJson(stopped.stdout);
      assert.equal(result.stopped_reason, "quota_exceeded");
      assert.deepEqual(result.counts, {
        done: 0,
        failed: 1,
        not_started: 3,
        pending: 0,
        missing: 0,
      });
      assert.deepEqual(result.categories, { quota_exceeded: 1 });
      assert.equal(upstream.requests.length, 1);

      const going = await runBatch(target, [...args, "--keep-going", "--run-dir", `${dir}/run2`]);
      assert.equal(going.code, 1);
      assert.equal(parseJson(going.stdout).stopped_reason, null);
      assert.equal(upstream.requests.length, 5);
    });
  },
);

const HAS_SCRIPT = (() => {
  try {
    return Deno.statSync("/usr/bin/script").isFile;
  } catch {
    return false;
  }
})();

testEachBatchTarget("shows one progress line on a terminal, and none on a pipe", async (target) => {
  if (!HAS_SCRIPT) return;
  await using upstream = startFakeUpstream();
  upstream.route("count", () => imageAnswer());
  await withTempDir(async (dir) => {
    const jobs = await writeJobs(`${dir}/tty.jsonl`, promptJobs(2));
    const args = [jobs, ...sharedFlags(upstream, "count", dir)];
    const piped = await runBatch(target, args);
    assert.equal(piped.stderr, "");
    // script(1) runs the command on a pseudo-terminal and copies what it shows to its stdout.
    const quoted = [...target.argv!, ...args, "--run-dir", `${dir}/tty-run`]
      .map((arg) => `'${arg.replaceAll("'", `'\\''`)}'`);
    const onTerminal = await new Deno.Command("/usr/bin/script", {
      args: ["-qec", quoted.join(" "), "/dev/null"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const shown = new TextDecoder().decode(onTerminal.stdout);
    assert.equal(onTerminal.code, 0, shown);
    assert.match(shown, /img2-batch: 2 done, 0 failed, 0 running, 0 queued · .*concurrency 4/);
  });
});

testEachBatchTarget(
  "an --rpm so low that the next start is weeks away waits quietly until a signal",
  async (target) => {
    await using upstream = startFakeUpstream();
    upstream.route("count", () => imageAnswer());
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/rare.jsonl`, promptJobs(2));
      const run = await runBatch(target, [
        jobs,
        "--rpm",
        "0.000001",
        ...sharedFlags(upstream, "count", dir),
      ], {
        whileRunning: async (child) => {
          const journal = `${dir}/out/.img2-batch/rare/journal.jsonl`;
          while (!(await Deno.readTextFile(journal).catch(() => "")).includes('"end"')) {
            await delay(20);
          }
          await delay(200);
          child.kill("SIGTERM");
        },
      });
      assert.equal(run.code, 143, run.stdout);
      assert.equal(run.stderr, "");
      assert.deepEqual(parseJson(run.stdout).counts.pending, 1);
      assert.equal(upstream.requests.length, 1);
    });
  },
);

testEachBatchTarget(
  "names a jobs file given by a relative path by its absolute path",
  async (target) => {
    await using upstream = startFakeUpstream();
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/cats.jsonl`, promptJobs(1));
      const relative = `./${"../".repeat(Deno.cwd().split("/").length)}${jobs.slice(1)}`;
      const run = await runBatch(target, [
        relative,
        ...sharedFlags(upstream, "ok", dir),
        "--dry-run",
      ]);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(parseJson(run.stdout).jobs_file, jobs);
    });
  },
);

testEachBatchTarget(
  "the run dir, the output_dir it makes and the run's files are for the caller alone",
  async (target) => {
    await using upstream = startFakeUpstream();
    upstream.route("count", () => imageAnswer());
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/own.jsonl`, promptJobs(1));
      const events = `${dir}/events.jsonl`;
      const run = await runBatch(target, [
        jobs,
        "--events",
        events,
        ...sharedFlags(upstream, "count", dir),
      ]);
      assert.equal(run.code, 0, run.stderr);
      const runDir = `${dir}/out/.img2-batch/own`;
      const modeOf = async (path: string) => ((await Deno.stat(path)).mode! & 0o777).toString(8);
      for (const folder of [`${dir}/out`, `${dir}/out/.img2-batch`, runDir]) {
        assert.equal(await modeOf(folder), "700", folder);
      }
      for (const name of ["journal.jsonl", "state.json", "batch_result.json"]) {
        assert.equal(await modeOf(`${runDir}/${name}`), "600", name);
      }
      assert.equal(await modeOf(events), "600");
    });
  },
);

testEachBatchTarget(
  "SIGTERM is answered while --events - writes to a standard error that is never read",
  async (target) => {
    await using upstream = startFakeUpstream();
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/stall.jsonl`, promptJobs(2));
      const journal = `${dir}/out/.img2-batch/stall/journal.jsonl`;
      const run = await signalWhileStdoutBlocked(
        target,
        [jobs, "--events", "-", ...sharedFlags(upstream, "stall-headers", dir)],
        dir,
        {
          signal: "SIGTERM",
          blocked: "stderr",
          // The journal's start comes just before the first event is written.
          when: async () => {
            while (!(await Deno.readTextFile(journal).catch(() => "")).includes('"start"')) {
              await delay(20);
            }
          },
        },
      );
      assert.equal(run.code, 143);
    });
  },
);
