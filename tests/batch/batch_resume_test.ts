import assert from "node:assert/strict";
import { listDir, PNG_64, startFakeUpstream } from "../_fake_upstream.ts";
import { withTempDir } from "../_helpers.ts";
import type { RunOutput } from "../_command.ts";
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

testEachBatchTarget(
  "two jobs files of the same name share a run dir, and the refusal says so",
  async (target) => {
    await using upstream = startFakeUpstream();
    upstream.route("count", () => imageAnswer());
    await withTempDir(async (dir) => {
      await Deno.mkdir(`${dir}/a`);
      await Deno.mkdir(`${dir}/b`);
      const first = await writeJobs(`${dir}/a/jobs.jsonl`, promptJobs(1));
      const second = await writeJobs(`${dir}/b/jobs.jsonl`, [{ prompt: "q", task_name: "q" }]);
      assert.equal(
        (await runBatch(target, [first, ...sharedFlags(upstream, "count", dir)])).code,
        0,
      );
      const refused = await runBatch(target, [second, ...sharedFlags(upstream, "count", dir)]);
      assert.equal(refused.code, 2);
      assert.equal(
        parseJson(refused.stdout).error,
        `Another jobs file, "${first}", uses the run dir "${dir}/out/.img2-batch/jobs": ` +
          `give --run-dir for a separate run, or --force to run this one there instead`,
      );
      const separate = await runBatch(target, [
        second,
        "--run-dir",
        `${dir}/b-run`,
        ...sharedFlags(upstream, "count", dir),
      ]);
      assert.equal(separate.code, 0, separate.stdout);
      assert.deepEqual(promptsSent(upstream, "count"), ["p1", "q"]);
    });
  },
);

testEachBatchTarget(
  "a changed plan is refused unless --force, which keeps the unchanged done jobs",
  async (target) => {
    await using upstream = startFakeUpstream();
    upstream.route("count", () => imageAnswer());
    await withTempDir(async (dir) => {
      const path = `${dir}/plan.jsonl`;
      await writeJobs(path, promptJobs(3));
      const args = [path, ...sharedFlags(upstream, "count", dir)];
      assert.equal((await runBatch(target, args)).code, 0);

      await writeJobs(path, [...promptJobs(2), { prompt: "p3 changed", task_name: "p3" }]);
      const refused = await runBatch(target, args);
      assert.equal(refused.code, 2);
      assert.match(parseJson(refused.stdout).error, /changed since the last run.*--force/);
      assert.equal(upstream.requests.length, 3);

      const forced = await runBatch(target, [...args, "--force"]);
      assert.equal(forced.code, 0, forced.stdout);
      assert.deepEqual(promptsSent(upstream, "count").slice(3), ["p3 changed"]);

      const otherSize = await runBatch(target, [...args, "--size", "512x512"]);
      assert.equal(otherSize.code, 2, "a changed shared setting is a changed plan");
    });
  },
);

testEachBatchTarget(
  "a done job whose image was deleted is missing, and made again only with --redo-missing",
  async (target) => {
    await using upstream = startFakeUpstream();
    upstream.route("count", () => imageAnswer());
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/gone.jsonl`, promptJobs(2));
      const args = [jobs, ...sharedFlags(upstream, "count", dir)];
      const first = parseJson((await runBatch(target, args)).stdout);
      await Deno.remove(first.jobs[0].image_path);

      const missing = await runBatch(target, args);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /"p1".*is gone: give --redo-missing/);
      assert.deepEqual(parseJson(missing.stdout).counts, {
        done: 1,
        failed: 0,
        not_started: 0,
        pending: 0,
        missing: 1,
      });
      assert.equal(upstream.requests.length, 2);

      const redone = await runBatch(target, [...args, "--redo-missing"]);
      assert.equal(redone.code, 0, redone.stdout);
      assert.deepEqual(promptsSent(upstream, "count").slice(2), ["p1"]);
    });
  },
);

testEachBatchTarget(
  "a resumed run retries retryable failures, and non-retryable ones only with --retry-failed",
  async (target) => {
    await using upstream = startFakeUpstream();
    let healthy = false;
    upstream.route("mixed", (_request, body) => {
      if (healthy) return imageAnswer();
      return body?.prompt === "p1"
        ? Response.json({ error: { message: "Bad gateway", type: "upstream_error" } }, {
          status: 502,
          headers: { "retry-after-ms": "1" },
        })
        : Response.json({
          error: {
            message: "Your request was rejected by the safety system.",
            type: "invalid_request_error",
            code: "content_policy_violation",
          },
        }, { status: 400 });
    });
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/mixed.jsonl`, promptJobs(2));
      const args = [jobs, "--max-attempts", "1", ...sharedFlags(upstream, "mixed", dir)];
      const first = parseJson((await runBatch(target, args)).stdout);
      assert.deepEqual(first.categories, { upstream_failure: 1, content_rejected: 1 });

      healthy = true;
      const resumed = await runBatch(target, args);
      assert.equal(resumed.code, 1);
      assert.deepEqual(promptsSent(upstream, "mixed").slice(2), ["p1"]);
      assert.deepEqual(parseJson(resumed.stdout).categories, { content_rejected: 1 });

      const retried = await runBatch(target, [...args, "--retry-failed"]);
      assert.equal(retried.code, 0, retried.stdout);
      assert.deepEqual(promptsSent(upstream, "mixed").slice(3), ["p2"]);
      assert.equal(parseJson(retried.stdout).jobs[1].attempts, 2);
    });
  },
);

testEachBatchTarget(
  "a request cut by kill -9 still counts in the job's attempts",
  async (target) => {
    await using upstream = startFakeUpstream();
    const release = Promise.withResolvers<void>();
    let answer = false;
    upstream.route("cut", async () => {
      if (!answer) await release.promise;
      return imageAnswer();
    });
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/cut.jsonl`, promptJobs(1));
      const args = [jobs, ...sharedFlags(upstream, "cut", dir)];
      const killed = await runBatch(target, args, {
        whileRunning: async (child) => {
          while (upstream.requests.length < 1) await delay(20);
          child.kill("SIGKILL");
          await child.status;
          answer = true;
          release.resolve();
        },
      });
      assert.equal(killed.code, 137);
      const resumed = await runBatch(target, args);
      assert.equal(resumed.code, 0, resumed.stdout);
      assert.equal(parseJson(resumed.stdout).jobs[0].attempts, 2);
      assert.equal(upstream.requests.length, 2);
    });
  },
);

testEachBatchTarget(
  "the temporary file of an image cut short by kill -9 is gone once the run resumes",
  async (target) => {
    await using upstream = startFakeUpstream();
    let stalled = false;
    upstream.route("stall-once", () => {
      if (stalled) return imageAnswer();
      stalled = true;
      const start = `{"data": [{"b64_json": "${PNG_64.toBase64().slice(0, 40)}`;
      return new Response(
        new ReadableStream({ start: (c) => c.enqueue(new TextEncoder().encode(start)) }),
        { headers: { "content-type": "application/json" } },
      );
    });
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/stall.jsonl`, promptJobs(1));
      const args = [jobs, ...sharedFlags(upstream, "stall-once", dir)];
      const parts = async () =>
        (await listDir(`${dir}/out`).catch(() => [])).filter((name) => name.endsWith("-part"));
      const killed = await runBatch(target, args, {
        whileRunning: async (child) => {
          while (!stalled || (await parts()).length === 0) await delay(20);
          child.kill("SIGKILL");
          await child.status;
        },
      });
      assert.equal(killed.code, 137);
      assert.equal((await parts()).length, 1);

      const resumed = await runBatch(target, args);
      assert.equal(resumed.code, 0, resumed.stdout);
      assert.deepEqual(await parts(), []);
    });
  },
);

testEachBatchTarget(
  "adopts the image of a job that was named but not journaled when the run died, and removes the temporary files of the jobs cut off",
  async (target) => {
    await using upstream = startFakeUpstream();
    upstream.route("count", () => imageAnswer());
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/adopt.jsonl`, promptJobs(3));
      const args = [jobs, ...sharedFlags(upstream, "count", dir)];
      const dry = parseJson((await runBatch(target, [...args, "--dry-run"])).stdout);
      const runDir = `${dir}/out/.img2-batch/adopt`;
      await Deno.mkdir(runDir, { recursive: true });
      const startedAt = Date.now() - 5000;
      const made = `${dir}/out/p1-20260101-120000.png`;
      await Deno.writeFile(made, PNG_64);
      // p2's file is older than the run that started it: not its image.
      const old = `${dir}/out/p2-20250101-120000.png`;
      await Deno.writeFile(old, PNG_64);
      await Deno.utime(old, new Date(startedAt - 60_000), new Date(startedAt - 60_000));
      // What the cut jobs left: p1's image under its temporary name too, p2's image cut short.
      // A temporary file still locked is a live writer's; p3 was not running, so one of its
      // name is another writer's too.
      await Deno.link(made, `${dir}/out/.p1.0a1b2c3d.img2-part`);
      await Deno.writeFile(`${dir}/out/.p2.4e5f6a7b.img2-part`, PNG_64.subarray(0, 20));
      await Deno.writeFile(`${dir}/out/.p3.8c9d0e1f.img2-part`, PNG_64.subarray(0, 20));
      using live = await Deno.open(`${dir}/out/.p2.0f0f0f0f.img2-part`, {
        create: true,
        write: true,
      });
      await live.lock(true);
      // A run that started p1 and p2, noted their temporary files, and died after p1's image was
      // saved under its name.
      const marker = async (id: string, part: string) => {
        const { dev, ino } = await Deno.lstat(`${dir}/out/${part}`);
        return { event: "file", time: Date.now(), id, part, dev, ino };
      };
      await Deno.writeTextFile(
        `${runDir}/journal.jsonl`,
        [
          { event: "run", time: startedAt, plan_hash: dry.plan_hash, jobs_sha256: dry.jobs_sha256 },
          { event: "start", time: startedAt, id: "p1" },
          { event: "start", time: startedAt, id: "p2" },
          await marker("p1", ".p1.0a1b2c3d.img2-part"),
          await marker("p2", ".p2.4e5f6a7b.img2-part"),
        ].map((event) => JSON.stringify(event) + "\n").join(""),
      );

      const run = await runBatch(target, args);
      assert.equal(run.code, 0, run.stdout);
      const hidden = (await listDir(`${dir}/out`)).filter((name) => name.startsWith("."));
      assert.deepEqual(hidden, [".img2-batch", ".p2.0f0f0f0f.img2-part", ".p3.8c9d0e1f.img2-part"]);
      assert.deepEqual(promptsSent(upstream, "count").sort(), ["p2", "p3"]);
      const p1 = parseJson(run.stdout).jobs[0];
      assert.deepEqual([p1.status, p1.image_path, p1.adopted], ["done", made, true]);

      const again = await runBatch(target, args);
      assert.equal(again.code, 0);
      assert.equal(upstream.requests.length, 2);
    });
  },
);

testEachBatchTarget("--events FILE appends across runs", async (target) => {
  await using upstream = startFakeUpstream();
  upstream.route("count", () => imageAnswer());
  await withTempDir(async (dir) => {
    const jobs = await writeJobs(`${dir}/ev.jsonl`, promptJobs(1));
    const events = `${dir}/events.jsonl`;
    const args = [jobs, "--events", events, ...sharedFlags(upstream, "count", dir)];
    await runBatch(target, args);
    await runBatch(target, [...args, "--redo-missing"]);
    await runBatch(target, [...args.slice(0, 3), ...sharedFlags(upstream, "count", dir)]);
    const lines = (await Deno.readTextFile(events)).trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((line) => line.event), ["job_started", "job_done"]);
    assert.equal(lines[1].id, "p1");
    assert.match(lines[1].time, /^\d{4}-\d\d-\d\dT/);
    await Deno.remove(lines[1].image_path);
    await runBatch(target, [...args, "--redo-missing"]);
    assert.equal((await Deno.readTextFile(events)).trim().split("\n").length, 4);
  });
});

testEachBatchTarget("--rpm spaces the starts evenly, with no burst", async (target) => {
  await using upstream = startFakeUpstream();
  const arrivals: number[] = [];
  upstream.route("paced", () => {
    arrivals.push(performance.now());
    return imageAnswer();
  });
  await withTempDir(async (dir) => {
    const jobs = await writeJobs(`${dir}/paced.jsonl`, promptJobs(4));
    const run = await runBatch(target, [
      jobs,
      "--rpm",
      "300",
      "--concurrency",
      "4",
      ...sharedFlags(upstream, "paced", dir),
    ]);
    assert.equal(run.code, 0, run.stdout);
    assert.equal(arrivals.length, 4);
    // One start every 200 ms (each journaled first, which may take a little longer or shorter
    // for one of them): requests that arrive much closer together came in a burst.
    for (let i = 1; i < arrivals.length; i++) {
      assert.ok(arrivals[i]! - arrivals[i - 1]! >= 120, `${arrivals.map(Math.round)}`);
    }
  });
});

testEachBatchTarget(
  "a second run in the same run dir while the first goes sends nothing and says why",
  async (target) => {
    await using upstream = startFakeUpstream();
    const release = Promise.withResolvers<void>();
    upstream.route("held", async () => {
      await release.promise;
      return imageAnswer();
    });
    await withTempDir(async (dir) => {
      // Time enough for the second run to start on a loaded machine.
      const patient = promptJobs(2).map((job) => ({ ...job, timeout_ms: 60_000 }));
      const jobs = await writeJobs(`${dir}/held.jsonl`, patient);
      const args = [jobs, ...sharedFlags(upstream, "held", dir)];
      let second: RunOutput | null = null;
      const first = await runBatch(target, args, {
        whileRunning: async () => {
          while (upstream.requests.length < 2) await delay(20);
          second = await runBatch(target, args);
          release.resolve();
        },
      });
      assert.equal(first.code, 0, first.stdout);
      const refused = second as RunOutput | null;
      assert.equal(refused?.code, 2, refused?.stdout);
      const error = parseJson(refused!.stdout);
      assert.equal(error.stage, "input");
      assert.match(error.error, /^Another img2-batch is running in ".*\/held": wait for it/);
      assert.deepEqual(promptsSent(upstream, "held").sort(), ["p1", "p2"]);
    });
  },
);
