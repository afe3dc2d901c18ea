/**
 * What another user of the machine, a careless caller or a hostile upstream can do to a run:
 * each case black-box, against batch.ts and the bundle.
 */
import assert from "node:assert/strict";
import { basename } from "node:path";
import { type FakeUpstream, listDir, PNG_64, startFakeUpstream } from "../_fake_upstream.ts";
import { withTempDir } from "../_helpers.ts";
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

const IS_ROOT = Deno.uid() === 0;

/** Runs `args` as the user nobody, as another user of the machine would. */
async function asNobody(args: string[]): Promise<void> {
  const { code, stderr } = await new Deno.Command("setpriv", {
    args: ["--reuid=nobody", "--regid=nogroup", "--clear-groups", ...args],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
}

/** sharedFlags() with images going to `outputDir`. */
function flagsInto(upstream: FakeUpstream, dir: string, outputDir: string): string[] {
  const flags = sharedFlags(upstream, "count", dir);
  flags[flags.indexOf("--output-dir") + 1] = outputDir;
  return flags;
}

/** A folder everyone may write in, with the sticky bit, as /tmp: `{dir}/shared`. */
async function sharedFolder(dir: string): Promise<string> {
  await Deno.chmod(dir, 0o755);
  const shared = `${dir}/shared`;
  await Deno.mkdir(shared);
  await Deno.chmod(shared, 0o1777);
  return shared;
}

/** A test that needs a second user: planting files as nobody takes root. */
function testWithSecondUser(name: string, fn: Parameters<typeof testEachBatchTarget>[1]) {
  if (!IS_ROOT) {
    Deno.test({ name: `${name} (needs root to act as another user)`, ignore: true, fn() {} });
    return;
  }
  testEachBatchTarget(name, fn);
}

testWithSecondUser(
  "a run dir planted by another user in a shared sticky output_dir is refused, its link not followed",
  async (target) => {
    await using upstream = startFakeUpstream();
    upstream.route("count", () => imageAnswer());
    await withTempDir(async (dir) => {
      const shared = await sharedFolder(dir);
      const victim = `${dir}/victim.txt`;
      await Deno.writeTextFile(victim, "mine\n");
      const jobs = await writeJobs(`${dir}/jobs.jsonl`, promptJobs(2));
      const runDir = `${shared}/.img2-batch/jobs`;
      await asNobody([
        "sh",
        "-c",
        'umask 0; mkdir -p "$0" && chmod 0777 "$0" "$0/.." && ln -s "$1" "$0/journal.jsonl"',
        runDir,
        victim,
      ]);
      const run = await runBatch(target, [
        jobs,
        ...flagsInto(upstream, dir, shared),
      ]);
      assert.equal(run.code, 2, run.stdout);
      assert.match(
        parseJson(run.stdout).error,
        /Refusing the folder of the run dirs ".*": it belongs to another user/,
      );
      assert.equal(await Deno.readTextFile(victim), "mine\n");
      assert.equal(upstream.requests.length, 0);
    });
  },
);

testWithSecondUser(
  "a --run-dir through another user's link or in their folder, or their --events file, is refused before anything is sent",
  async (target) => {
    await using upstream = startFakeUpstream();
    upstream.route("count", () => imageAnswer());
    await withTempDir(async (dir) => {
      const shared = await sharedFolder(dir);
      await Deno.mkdir(`${dir}/mine`, { mode: 0o700 });
      await asNobody([
        "sh",
        "-c",
        'umask 0; ln -s "$1" "$0/link" && mkdir "$0/theirs" && : > "$0/events.jsonl"',
        shared,
        `${dir}/mine`,
      ]);
      const jobs = await writeJobs(`${dir}/jobs.jsonl`, promptJobs(1));
      const flags = sharedFlags(upstream, "count", dir);
      for (
        const [runDir, refusal] of [
          [`${shared}/link`, /Refusing the run dir ".*": it is a link of another user/],
          [
            `${shared}/theirs/run`,
            /Refusing the folder of the run dir ".*": it belongs to another user/,
          ],
        ] as const
      ) {
        const run = await runBatch(target, [jobs, ...flags, "--run-dir", runDir]);
        assert.equal(run.code, 2, run.stdout);
        assert.match(parseJson(run.stdout).error, refusal);
      }
      const events = await runBatch(target, [jobs, ...flags, "--events", `${shared}/events.jsonl`]);
      assert.equal(events.code, 2, events.stdout);
      assert.match(
        parseJson(events.stdout).error,
        /Refusing the --events file ".*": it belongs to another user/,
      );
      assert.equal(await Deno.readTextFile(`${shared}/events.jsonl`), "");
      assert.equal(upstream.requests.length, 0);
    });
  },
);

testWithSecondUser(
  "a shared output_dir of another user, or a --run-dir of theirs, is refused before anything is sent",
  async (target) => {
    await using upstream = startFakeUpstream();
    upstream.route("count", () => imageAnswer());
    await withTempDir(async (dir) => {
      const theirs = `${await sharedFolder(dir)}/theirs`;
      await asNobody(["sh", "-c", 'mkdir "$0" "$0/run" && chmod 0777 "$0" "$0/run"', theirs]);
      const jobs = await writeJobs(`${dir}/jobs.jsonl`, promptJobs(1));
      const intoTheirs = await runBatch(target, [
        jobs,
        ...flagsInto(upstream, dir, theirs),
      ]);
      assert.equal(intoTheirs.code, 2, intoTheirs.stdout);
      assert.match(parseJson(intoTheirs.stdout).error, /Refusing output_dir .*another user/);
      const theirRunDir = await runBatch(target, [
        jobs,
        ...sharedFlags(upstream, "count", dir),
        "--run-dir",
        `${theirs}/run`,
      ]);
      assert.equal(theirRunDir.code, 2, theirRunDir.stdout);
      assert.match(
        parseJson(theirRunDir.stdout).error,
        /Refusing the (folder of the )?run dir .*another user/,
      );
      assert.equal(upstream.requests.length, 0);
    });
  },
);

testEachBatchTarget(
  "the folders a run makes are its user's alone, and a journal that is a link is refused",
  async (target) => {
    await using upstream = startFakeUpstream();
    upstream.route("count", () => imageAnswer());
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/jobs.jsonl`, promptJobs(1));
      const args = [jobs, ...sharedFlags(upstream, "count", dir)];
      const run = await runBatch(target, args);
      assert.equal(run.code, 0, run.stdout);
      for (
        const folder of [`${dir}/out`, `${dir}/out/.img2-batch`, `${dir}/out/.img2-batch/jobs`]
      ) {
        assert.equal((await Deno.stat(folder)).mode! & 0o777, 0o700, folder);
      }
      const other = await writeJobs(`${dir}/other.jsonl`, promptJobs(1));
      const victim = `${dir}/victim.txt`;
      await Deno.writeTextFile(victim, "mine\n");
      await Deno.mkdir(`${dir}/out/.img2-batch/other`, { mode: 0o700 });
      await Deno.symlink(victim, `${dir}/out/.img2-batch/other/journal.jsonl`);
      const linked = await runBatch(target, [other, ...sharedFlags(upstream, "count", dir)]);
      assert.equal(linked.code, 2, linked.stdout);
      assert.match(parseJson(linked.stdout).error, /Cannot read the journal .*is a link/);
      assert.equal(await Deno.readTextFile(victim), "mine\n");
      assert.equal(upstream.requests.length, 1);
    });
  },
);

/** A journal of jobs file `jobs` under `args`, written as an earlier run could have: `events` after its run line. */
async function plantJournal(
  target: Parameters<Parameters<typeof testEachBatchTarget>[1]>[0],
  args: string[],
  events: Record<string, unknown>[],
): Promise<void> {
  const dry = parseJson((await runBatch(target, [...args, "--dry-run"])).stdout);
  await Deno.mkdir(dry.run_dir, { recursive: true, mode: 0o700 });
  const time = Date.now() - 5000;
  const run = { event: "run", time, plan_hash: dry.plan_hash, jobs_sha256: dry.jobs_sha256 };
  await Deno.writeTextFile(
    `${dry.run_dir}/journal.jsonl`,
    [run, ...events].map((event) => JSON.stringify({ time, ...event }) + "\n").join(""),
  );
}

function doneLine(id: string, imagePath: string): Record<string, unknown> {
  return {
    event: "end",
    id,
    status: "done",
    attempts: 1,
    category: null,
    retryable: false,
    image_path: imagePath,
    params_hash: "",
    result: null,
  };
}

testEachBatchTarget(
  "a journal's word that a job is done is believed only with the image it recorded",
  async (target) => {
    await using upstream = startFakeUpstream();
    upstream.route("count", () => imageAnswer());
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/jobs.jsonl`, promptJobs(3));
      const args = [jobs, ...sharedFlags(upstream, "count", dir)];
      await Deno.mkdir(`${dir}/out`, { mode: 0o700 });
      // p2's image is named as p2's are, but no run of this journal made it.
      const planted = `${dir}/out/p2-20260101-120000.png`;
      await Deno.writeFile(planted, PNG_64);
      await plantJournal(target, args, [
        doneLine("p1", "/etc/hostname"),
        doneLine("p2", planted),
      ]);
      const run = await runBatch(target, args);
      assert.equal(run.code, 1, run.stdout);
      const result = parseJson(run.stdout);
      assert.deepEqual(result.jobs.map((job: { status: string }) => job.status), [
        "missing",
        "missing",
        "done",
      ]);
      assert.match(
        result.jobs[0].reason,
        /"\/etc\/hostname" the journal names is not one of this job's/,
      );
      assert.match(result.jobs[1].reason, /journal holds no proof of the image/);
      assert.deepEqual(promptsSent(upstream, "count"), ["p3"]);

      // A made image swapped for another of the same size is not the job's either.
      const p3 = result.jobs[2].image_path;
      const swapped = (await Deno.readFile(p3)).reverse();
      await Deno.writeFile(p3, swapped);
      const again = parseJson((await runBatch(target, args)).stdout);
      assert.equal(again.jobs[2].status, "missing");
      assert.match(again.jobs[2].reason, /is not the one the journal recorded/);
      const redone = await runBatch(target, [...args, "--redo-missing"]);
      assert.equal(redone.code, 0, redone.stdout);
      assert.deepEqual(promptsSent(upstream, "count").slice(1).sort(), ["p1", "p2", "p3"]);
    });
  },
);

testEachBatchTarget(
  "a job cut off by kill -9 does not adopt the image another run made under the same name",
  async (target) => {
    await using upstream = startFakeUpstream();
    const release = Promise.withResolvers<void>();
    upstream.route("count", async (_request, body) => {
      if (body?.prompt === "A" && upstream.requests.length === 1) await release.promise;
      return imageAnswer();
    });
    await withTempDir(async (dir) => {
      await Deno.mkdir(`${dir}/a`);
      await Deno.mkdir(`${dir}/b`);
      const a = await writeJobs(`${dir}/a/jobs.jsonl`, [{ prompt: "A" }]);
      const b = await writeJobs(`${dir}/b/jobs.jsonl`, [{ prompt: "B" }]);
      const flags = sharedFlags(upstream, "count", dir);
      const argsA = [a, "--run-dir", `${dir}/run-a`, ...flags];
      const killed = await runBatch(target, argsA, {
        whileRunning: async (child) => {
          while (upstream.requests.length < 1) await delay(20);
          child.kill("SIGKILL");
          await child.status;
        },
      });
      assert.equal(killed.code, 137);
      release.resolve();
      const other = await runBatch(target, [b, "--run-dir", `${dir}/run-b`, ...flags]);
      assert.equal(other.code, 0, other.stdout);
      const theirs = parseJson(other.stdout).jobs[0].image_path;

      const resumed = await runBatch(target, argsA);
      assert.equal(resumed.code, 0, resumed.stdout);
      const job = parseJson(resumed.stdout).jobs[0];
      assert.equal(job.adopted, undefined);
      assert.notEqual(job.image_path, theirs);
      assert.deepEqual(promptsSent(upstream, "count"), ["A", "B", "A"]);
      const hidden = (await listDir(`${dir}/out`)).filter((name) => name.endsWith(".img2-part"));
      assert.deepEqual(hidden, [], "the part of the request cut off is removed");
    });
  },
);

testEachBatchTarget(
  "a journal that fills its disk stops the run, and the jobs in flight finish into images kept for the next run",
  async (target) => {
    await using upstream = startFakeUpstream();
    upstream.route("slow", async () => {
      await delay(20);
      return imageAnswer();
    });
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/jobs.jsonl`, promptJobs(30));
      const args = [jobs, "--concurrency", "4", ...sharedFlags(upstream, "slow", dir)];
      // No file of the process may grow past 8 KiB (ulimit -f counts 512-byte blocks), which the
      // journal reaches after a few jobs, and the images (of 64 bytes) never do.
      const cramped = {
        name: target.name,
        argv: ["sh", "-c", 'trap "" XFSZ; ulimit -f 16; exec "$@"', "sh", ...target.argv!],
      };
      const run = await runBatch(cramped, args);
      assert.equal(run.code, 1, run.stdout + run.stderr);
      const result = parseJson(run.stdout);
      assert.match(result.journal_error, /^Cannot write the journal, so the run stopped: /);
      assert.ok(result.elapsed_ms > 0);
      const done = result.jobs.filter((job: { status: string }) => job.status === "done");
      assert.ok(done.length > 0 && done.length < 30, `${done.length} done`);
      assert.equal(result.counts.done + result.counts.pending, 30);
      const images = (await listDir(`${dir}/out`)).filter((name) => !name.startsWith("."));
      assert.deepEqual(
        images.sort(),
        done.map((job: { image_path: string }) => basename(job.image_path)).sort(),
      );
      assert.equal(upstream.requests.length, done.length, "every request sent made an image");
      const parts = (await listDir(`${dir}/out`)).filter((name) => name.endsWith(".img2-part"));
      assert.deepEqual(parts, []);

      // Every request was journaled before it was sent: the next run adopts what was made.
      const resumed = await runBatch(target, args);
      assert.equal(resumed.code, 0, resumed.stdout);
      assert.equal(upstream.requests.length, 30);
    });
  },
);
