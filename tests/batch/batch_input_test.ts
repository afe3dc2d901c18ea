import assert from "node:assert/strict";
import { listDir, startFakeUpstream, TEST_KEY } from "../_fake_upstream.ts";
import { withTempDir } from "../_helpers.ts";
import {
  imageAnswer,
  parseJson,
  promptJobs,
  runBatch,
  sharedFlags,
  testEachBatchTarget,
  writeJobs,
} from "./batch_command.ts";

testEachBatchTarget(
  "an invalid job is reported with its physical line and img2-generate's message; nothing is sent",
  async (target) => {
    await using upstream = startFakeUpstream();
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/bad.jsonl`, [
        "# a comment counts as a line",
        { prompt: "fine" },
        "",
        { prompt: "too big", size: "big" },
      ]);
      const run = await runBatch(target, [jobs, ...sharedFlags(upstream, "ok", dir)]);
      assert.equal(run.code, 2);
      const result = parseJson(run.stdout);
      assert.equal(result.ok, false);
      assert.equal(result.stage, "input");
      assert.equal(result.line, 4);
      assert.equal(result.diagnosis.category, "invalid_input");
      assert.match(result.error, /^Invalid size "big"/);
      assert.equal(result.task_name, "bad-4");
      assert.equal(upstream.requests.length, 0);
      assert.deepEqual(await listDir(dir), ["bad.jsonl"]);
    });
  },
);

testEachBatchTarget(
  "a line that is not JSON, and a JSON array's index, are reported",
  async (target) => {
    await using upstream = startFakeUpstream();
    await withTempDir(async (dir) => {
      const jsonl = await writeJobs(`${dir}/broken.jsonl`, [{ prompt: "a" }, "{not json"]);
      const broken = await runBatch(target, [jsonl, ...sharedFlags(upstream, "ok", dir)]);
      assert.equal(broken.code, 2);
      assert.equal(parseJson(broken.stdout).line, 2);
      assert.match(parseJson(broken.stdout).error, /^Cannot parse the line as JSON/);

      const array = `${dir}/jobs.json`;
      await Deno.writeTextFile(array, JSON.stringify([{ prompt: "a" }, { prompt: "b" }, {}]));
      const missing = await runBatch(target, [array, ...sharedFlags(upstream, "ok", dir)]);
      assert.equal(missing.code, 2);
      assert.equal(parseJson(missing.stdout).line, 3);
      assert.equal(parseJson(missing.stdout).error, "Missing required parameter: prompt");
      assert.equal(upstream.requests.length, 0);
    });
  },
);

testEachBatchTarget("duplicate task names and duplicate ids are input errors", async (target) => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const names = await writeJobs(`${dir}/names.jsonl`, [
      { prompt: "a", task_name: "cover" },
      { prompt: "b", task_name: "cover" },
    ]);
    const sameName = await runBatch(target, [names, ...sharedFlags(upstream, "ok", dir)]);
    assert.equal(sameName.code, 2);
    assert.equal(parseJson(sameName.stdout).line, 2);
    assert.match(parseJson(sameName.stdout).error, /^Duplicate task_name "cover"/);

    const ids = await writeJobs(`${dir}/ids.jsonl`, [
      { prompt: "a", id: "x" },
      { prompt: "b" },
      { prompt: "c", id: "x" },
    ]);
    const sameId = await runBatch(target, [ids, ...sharedFlags(upstream, "ok", dir)]);
    assert.equal(sameId.code, 2);
    assert.equal(parseJson(sameId.stdout).line, 3);
    assert.match(parseJson(sameId.stdout).error, /^Duplicate id "x"/);
    assert.equal(upstream.requests.length, 0);
  });
});

testEachBatchTarget(
  "--skip-invalid records invalid jobs as failed and runs the rest",
  async (target) => {
    await using upstream = startFakeUpstream();
    upstream.route("count", () => imageAnswer());
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/mixed.jsonl`, [
        { prompt: "good", id: "g" },
        { prompt: "", id: "blank" },
      ]);
      const run = await runBatch(target, [
        jobs,
        "--skip-invalid",
        ...sharedFlags(upstream, "count", dir),
      ]);
      assert.equal(run.code, 1);
      const result = parseJson(run.stdout);
      assert.deepEqual(result.counts, {
        done: 1,
        failed: 1,
        not_started: 0,
        pending: 0,
        missing: 0,
      });
      assert.deepEqual(result.categories, { invalid_input: 1 });
      const blank = result.jobs.find((job: { id: string }) => job.id === "blank");
      assert.equal(blank.result.diagnosis.category, "invalid_input");
      assert.equal(upstream.requests.length, 1);
    });
  },
);

testEachBatchTarget(
  "the key and base_url's credentials never reach state.json, the journal, batch_result.json, events or the output",
  async (target) => {
    await using upstream = startFakeUpstream();
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/keys.jsonl`, promptJobs(2));
      const keyFile = `${dir}/key.txt`;
      await Deno.writeTextFile(keyFile, `${TEST_KEY}\n`);
      const flags = sharedFlags(upstream, "echo-key", dir);
      flags.splice(flags.indexOf("--api-key"), 2);
      const gatewayToken = "gw-token-5e6f7a8b9c0d";
      flags[flags.indexOf("--base-url") + 1] += `?token=${gatewayToken}`;
      const run = await runBatch(target, [
        jobs,
        "--api-key-file",
        keyFile,
        "--keep-going",
        "--events",
        "-",
        ...flags,
      ]);
      assert.equal(run.code, 1);
      assert.equal(upstream.requests[0]!.headers.get("authorization"), `Bearer ${TEST_KEY}`);
      assert.equal(parseJson(run.stdout).jobs[0].result.diagnosis.category, "auth_failed");
      assert.match(run.stderr, /"event":"job_failed"/);
      const runDir = `${dir}/out/.img2-batch/keys`;
      const written = await Promise.all(
        ["state.json", "journal.jsonl", "batch_result.json"].map((name) =>
          Deno.readTextFile(`${runDir}/${name}`)
        ),
      );
      for (const text of [run.stdout, run.stderr, ...written]) {
        assert.ok(!text.includes(TEST_KEY), text);
        assert.ok(!text.includes(TEST_KEY.slice(3)), text);
        assert.ok(!text.includes(gatewayToken), text);
      }
    });
  },
);

testEachBatchTarget(
  "--dry-run prints the plan with the key masked and creates nothing",
  async (target) => {
    await using upstream = startFakeUpstream();
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/plan.jsonl`, promptJobs(2));
      const run = await runBatch(target, [
        jobs,
        "--dry-run",
        "--events",
        `${dir}/events.jsonl`,
        ...sharedFlags(upstream, "ok", dir),
      ]);
      assert.equal(run.code, 0, run.stdout);
      assert.ok(!run.stdout.includes(TEST_KEY));
      const plan = parseJson(run.stdout);
      assert.equal(plan.dry_run, true);
      assert.equal(plan.run_dir, `${dir}/out/.img2-batch/plan`);
      assert.deepEqual(plan.jobs.map((job: { id: string }) => job.id), ["p1", "p2"]);
      assert.equal(plan.jobs[0].request.headers.Authorization, "Bearer ***");
      assert.equal(plan.jobs[1].request.body.prompt, "p2");
      assert.deepEqual(await listDir(dir), ["plan.jsonl"]);
      assert.equal(upstream.requests.length, 0);
    });
  },
);

testEachBatchTarget(
  "a job's field wins over a flag, a flag over --defaults, and id is not sent",
  async (target) => {
    await using upstream = startFakeUpstream();
    upstream.route("count", () => imageAnswer());
    await withTempDir(async (dir) => {
      const defaults = `${dir}/defaults.json`;
      await Deno.writeTextFile(
        defaults,
        JSON.stringify({ quality: "low", background: "opaque", api_key: "sk-from-defaults-000" }),
      );
      const jobs = await writeJobs(`${dir}/merge.jsonl`, [
        { prompt: "a", id: 7, quality: "high", api_key: "sk-of-the-job-111" },
        { prompt: "b" },
      ]);
      const flags = sharedFlags(upstream, "count", dir);
      flags.splice(flags.indexOf("--api-key"), 2);
      const run = await runBatch(target, [
        jobs,
        "--defaults",
        defaults,
        "--background",
        "transparent",
        "--quality=medium",
        ...flags,
      ]);
      assert.equal(run.code, 0, run.stdout);
      // Both jobs run at once, so their requests may arrive in either order.
      const [first, second] = ["a", "b"].map((prompt) =>
        upstream.requests.find((request) => request.body?.prompt === prompt)
      );
      assert.deepEqual(
        [first!.body?.quality, first!.body?.background, first!.body?.id],
        ["high", "transparent", undefined],
      );
      assert.equal(first!.headers.get("authorization"), "Bearer sk-of-the-job-111");
      assert.deepEqual([second!.body?.quality, second!.body?.background], [
        "medium",
        "transparent",
      ]);
      assert.equal(second!.headers.get("authorization"), "Bearer sk-from-defaults-000");
      assert.deepEqual(parseJson(run.stdout).jobs.map((job: { id: string }) => job.id), [
        "7",
        "merge-2",
      ]);
    });
  },
);

testEachBatchTarget(
  "jobs from standard input are named job-{line} and run in stdin-{hash}",
  async (target) => {
    await using upstream = startFakeUpstream();
    upstream.route("count", () => imageAnswer());
    await withTempDir(async (dir) => {
      const text = `${JSON.stringify({ prompt: "a" })}\n${JSON.stringify({ prompt: "b" })}\n`;
      const run = await runBatch(target, ["-", ...sharedFlags(upstream, "count", dir)], {
        stdin: text,
      });
      assert.equal(run.code, 0, run.stdout);
      const result = parseJson(run.stdout);
      assert.deepEqual(result.jobs.map((job: { id: string }) => job.id), ["job-1", "job-2"]);
      const hash = new Uint8Array(
        await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)),
      ).toHex();
      assert.equal(result.run_dir, `${dir}/out/.img2-batch/stdin-${hash.slice(0, 12)}`);
    });
  },
);

testEachBatchTarget(
  "a file of the run that cannot be written is one JSON failure with exit code 1; nothing is sent",
  async (target) => {
    await using upstream = startFakeUpstream();
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/blocked.jsonl`, promptJobs(1));
      const run = await runBatch(target, [
        jobs,
        "--events",
        dir,
        ...sharedFlags(upstream, "ok", dir),
      ]);
      assert.equal(run.code, 1);
      assert.equal(run.stderr, "");
      const result = parseJson(run.stdout);
      assert.equal(result.ok, false);
      assert.equal(result.stage, "save");
      assert.match(result.error, /^Cannot write the files of the run: .*directory/i);
      assert.equal(result.diagnosis.category, "save_failed");
      assert.equal(upstream.requests.length, 0);
    });
  },
);

testEachBatchTarget("stops reading /dev/zero given as the jobs at the cap", async (target) => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const run = await runBatch(target, ["/dev/zero", ...sharedFlags(upstream, "ok", dir)]);
    assert.equal(run.code, 2);
    assert.equal(
      parseJson(run.stdout).error,
      `Cannot read the jobs file "/dev/zero": it is larger than 256 MiB, the limit for the jobs`,
    );
    assert.equal(upstream.requests.length, 0);
  });
});

/** Four times the 64 KiB a Linux pipe holds. */
const PIPE_OVERFLOW_BYTES = 256 * 1024;

testEachBatchTarget(
  "SIGTERM while reading the jobs from standard input exits 143",
  async (target) => {
    const [command, ...leading] = target.argv!;
    const child = new Deno.Command(command!, {
      args: [...leading, "-", "--model", "m"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // Blank lines, more than a pipe holds: once they are all taken, the command is reading the
    // jobs, long after its signal handlers were installed, however slow the machine is.
    const writer = child.stdin.getWriter();
    await writer.write(new Uint8Array(PIPE_OVERFLOW_BYTES).fill(0x0a));
    child.kill("SIGTERM");
    const { code, stdout } = await child.output();
    await writer.close().catch(() => {});
    assert.equal(code, 143);
    assert.match(parseJson(new TextDecoder().decode(stdout)).error, /standard input: cancelled/);
  },
);

testEachBatchTarget(
  "an unknown option that holds the key is described, never quoted",
  async (target) => {
    const key = "sk-proj-" + "Q7wErTy9".repeat(8);
    for (const arg of [`-${key}`, `--${key}`, `--${key}=1`]) {
      const run = await runBatch(target, ["jobs.jsonl", arg]);
      assert.equal(run.code, 2);
      assert.match(parseJson(run.stdout).error, /^Unknown option/);
      assert.ok(!`${run.stdout}${run.stderr}`.includes("Q7wErTy9"), run.stdout);
    }
  },
);

testEachBatchTarget("--help and --version win over a mistake on the same line", async (target) => {
  const help = await runBatch(target, ["--bogus", "--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /img2-batch/);
  const version = await runBatch(target, ["a", "b", "-V"]);
  assert.equal(version.code, 0);
  assert.match(version.stdout, /^img2-batch \d/);
});

testEachBatchTarget(
  "--api-key-file and --defaults stop reading /dev/zero at the parameters' limit",
  async (target) => {
    for (const flag of ["--api-key-file", "--defaults"]) {
      const run = await runBatch(target, ["jobs.jsonl", flag, "/dev/zero", "--dry-run"]);
      assert.equal(run.code, 2);
      assert.equal(
        parseJson(run.stdout).error,
        `Cannot read the ${flag}${flag === "--defaults" ? " file" : ""} "/dev/zero": ` +
          `it is larger than 1 MiB (1048576 bytes), the limit for the parameters`,
      );
    }
  },
);

testEachBatchTarget(
  "a --defaults file is parsed with the parser's reason, and must be UTF-8",
  async (target) => {
    await withTempDir(async (dir) => {
      const defaults = `${dir}/defaults.json`;
      await Deno.writeTextFile(defaults, `{"model": gpt}`);
      const broken = await runBatch(target, ["jobs.jsonl", "--defaults", defaults]);
      assert.equal(broken.code, 2);
      assert.match(
        parseJson(broken.stdout).error,
        /^Cannot parse the --defaults file ".*defaults\.json" as JSON: Unexpected token/,
      );
      await Deno.writeFile(defaults, new Uint8Array([0x7b, 0xff, 0x7d]));
      const latin = await runBatch(target, ["jobs.jsonl", "--defaults", defaults]);
      assert.equal(latin.code, 2);
      assert.match(parseJson(latin.stdout).error, /defaults\.json": it is not UTF-8 text$/);
    });
  },
);

testEachBatchTarget(
  "a jobs file that is not UTF-8 is refused rather than sent with its bytes replaced",
  async (target) => {
    await using upstream = startFakeUpstream();
    await withTempDir(async (dir) => {
      const jobs = `${dir}/latin1.jsonl`;
      // "café" in Latin-1: the é is one byte that UTF-8 cannot start with.
      const latin1 = [
        ...new TextEncoder().encode(`{"prompt": "caf`),
        0xe9,
        ...new TextEncoder().encode(`"}\n`),
      ];
      await Deno.writeFile(jobs, new Uint8Array(latin1));
      const run = await runBatch(target, [jobs, ...sharedFlags(upstream, "ok", dir)]);
      assert.equal(run.code, 2);
      assert.equal(
        parseJson(run.stdout).error,
        `Cannot read the jobs file "${jobs}": it is not UTF-8 text`,
      );
      assert.equal(upstream.requests.length, 0);
    });
  },
);

testEachBatchTarget(
  "return_base64 and media_line are refused in a batch, so that no image lands in its records",
  async (target) => {
    await using upstream = startFakeUpstream();
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/b64.jsonl`, [
        { prompt: "a" },
        { prompt: "b", return_base64: true },
      ]);
      const run = await runBatch(target, [jobs, ...sharedFlags(upstream, "ok", dir)]);
      assert.equal(run.code, 2);
      const result = parseJson(run.stdout);
      assert.equal(result.stage, "input");
      assert.equal(result.line, 2);
      assert.match(result.error, /^img2-batch saves images; return_base64 is for img2-generate/);

      const shared = await runBatch(target, [
        await writeJobs(`${dir}/media.jsonl`, [{ prompt: "a" }]),
        "--media-line",
        ...sharedFlags(upstream, "ok", dir),
      ]);
      assert.equal(shared.code, 2);
      assert.match(parseJson(shared.stdout).error, /^img2-batch saves images; media_line/);
      assert.equal(upstream.requests.length, 0);
    });
  },
);

testEachBatchTarget(
  "SIGTERM while reading --api-key-file from a pipe that never ends exits 143",
  async (target) => {
    await withTempDir(async (dir) => {
      const fifo = `${dir}/key.fifo`;
      await new Deno.Command("mkfifo", { args: [fifo] }).output();
      const [command, ...leading] = target.argv!;
      const child = new Deno.Command(command!, {
        args: [...leading, "jobs.jsonl", "--api-key-file", fifo],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      // Opened once the command opens its end, after its signal handlers were installed, and held
      // open so that its read never ends.
      using writer = await Deno.open(fifo, { write: true });
      await writer.write(new TextEncoder().encode("sk-"));
      child.kill("SIGTERM");
      const { code, stdout } = await child.output();
      const result = parseJson(new TextDecoder().decode(stdout));
      assert.equal(code, 143, result.error);
      assert.equal(result.error, `Cannot read the --api-key-file "${fifo}": cancelled`);
    });
  },
);
