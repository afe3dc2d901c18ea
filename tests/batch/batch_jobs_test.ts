import assert from "node:assert/strict";
import { JobInputError, readJobs } from "../../lib/batch/jobs.ts";
import { parseBatchArgs } from "../../lib/batch/options.ts";

const SHARED = {
  base_url: "http://127.0.0.1:1/v1",
  api_key: "sk-shared-0000",
  model: "gpt-image-2",
  size: "1024x1024",
  timeout_ms: 1000,
};

function inputError(fn: () => unknown): JobInputError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof JobInputError, String(error));
    return error;
  }
  assert.fail("expected an input error");
}

Deno.test("readJobs counts physical lines, comments and blank lines included", () => {
  const text = '# header\n\n{"prompt": "a"}\n  # indented comment\n{"prompt": "b", "id": "x"}\n';
  const { jobs } = readJobs(text, "cats", SHARED, { skipInvalid: false });
  assert.deepEqual(jobs.map((job) => [job.id, job.line, job.params.task_name]), [
    ["cats-3", 3, "cats-3"],
    ["x", 5, "cats-5"],
  ]);
  assert.equal("id" in jobs[1]!.input, false);
});

Deno.test("readJobs reads a JSON array by 1-based index", () => {
  const { jobs } = readJobs('[{"prompt": "a"}, {"prompt": "b"}]', "set", SHARED, {
    skipInvalid: false,
  });
  assert.deepEqual(jobs.map((job) => job.id), ["set-1", "set-2"]);
  assert.equal(
    inputError(() => readJobs('[{"prompt": "a"}, 3]', "s", SHARED, { skipInvalid: false })).line,
    2,
  );
});

Deno.test("readJobs lets a job's own field win over the shared ones", () => {
  const { jobs } = readJobs(
    '{"prompt": "a", "size": "512x512", "api_key": "sk-own-1111"}',
    "s",
    SHARED,
    {
      skipInvalid: false,
    },
  );
  assert.deepEqual([jobs[0]!.params.size, jobs[0]!.params.api_key, jobs[0]!.params.model], [
    "512x512",
    "sk-own-1111",
    "gpt-image-2",
  ]);
});

Deno.test("readJobs leaves max_retries at 0 unless a job or flag sets it", () => {
  const { jobs } = readJobs('{"prompt": "a"}\n{"prompt": "b", "max_retries": 2}', "s", SHARED, {
    skipInvalid: false,
  });
  assert.deepEqual(jobs.map((job) => job.params.max_retries), [0, 2]);
});

Deno.test("readJobs rejects two task names that give the same file name", () => {
  const error = inputError(() =>
    readJobs(
      '{"prompt": "a", "task_name": "cover/1"}\n{"prompt": "b", "task_name": "cover_1"}',
      "s",
      SHARED,
      { skipInvalid: false },
    )
  );
  assert.equal(error.line, 2);
  assert.equal(
    error.message,
    `Task name "cover_1" gives the same file name "cover_1" as "cover/1" on line 1`,
  );
});

Deno.test("readJobs rejects an id that is not a string or an integer", () => {
  const error = inputError(() =>
    readJobs('{"prompt": "a", "id": {"x": 1}}', "s", SHARED, { skipInvalid: false })
  );
  assert.equal(error.line, 1);
  assert.match(error.message, /^Invalid id/);
});

Deno.test("readJobs does not quote the key of a line that is not JSON", () => {
  const error = inputError(() =>
    readJobs('{"prompt": "a", "api_key": sk-live-secret}', "s", SHARED, { skipInvalid: false })
  );
  assert.ok(!error.message.includes("sk-live-secret"), error.message);
});

Deno.test("parseBatchArgs reads the scheduler's options and the image flags", () => {
  const options = parseBatchArgs([
    "jobs.jsonl",
    "--concurrency=8",
    "--rpm",
    "30",
    "--max_attempts",
    "5",
    "--keep-going",
    "--base-url",
    "http://x/v1",
    "--return-base64",
    "--extra-body",
    '{"seed": 1}',
  ]);
  assert.equal(options.jobsPath, "jobs.jsonl");
  assert.deepEqual([options.concurrency, options.rpm, options.maxAttempts, options.keepGoing], [
    8,
    30,
    5,
    true,
  ]);
  assert.deepEqual(options.flags, {
    base_url: "http://x/v1",
    return_base64: "true",
    extra_body: { seed: 1 },
  });
});

Deno.test("parseBatchArgs() never quotes an unknown option that might be the key", () => {
  const key = "sk-proj-" + "S3cr3tK3y".repeat(6);
  for (const arg of [`-${key}`, `--${key}`, `--${key}=x`, `--size-${key}`]) {
    let message = "";
    try {
      parseBatchArgs(["jobs.jsonl", arg]);
    } catch (error) {
      message = (error as Error).message;
    }
    assert.match(message, /^Unknown (option|parameter)/);
    assert.ok(!message.includes("S3cr3tK3y"), message);
  }
});

Deno.test("parseBatchArgs() lets --help and --version win over mistakes", () => {
  assert.equal(parseBatchArgs(["--bogus", "--help"]).help, true);
  assert.equal(parseBatchArgs(["a", "b", "-h"]).help, true);
  assert.equal(parseBatchArgs(["--concurrency", "0", "--version"]).version, true);
  assert.throws(() => parseBatchArgs(["--bogus", "--", "--help"]), /Unknown parameter "bogus"/);
});

Deno.test("parseBatchArgs rejects what it cannot run", () => {
  for (
    const [argv, message] of [
      [[], /Expected one argument/],
      [["a", "b"], /Expected one argument/],
      [["a", "--concurrency", "0"], /Invalid --concurrency "0"/],
      [["a", "--rpm", "fast"], /Invalid --rpm "fast"/],
      [["a", "--timeout"], /Unknown parameter "timeout": did you mean "timeout_ms"\?/],
      [["a", "--size", "1", "--size=2"], /Option "--size" is given twice/],
      [["a", "--run-dir", "x", "--run_dir", "y"], /Option "--run-dir" is given twice/],
      [["a", "--events"], /Option "--events" needs a value/],
      [["a", "--api-key", "k", "--api-key-file", "f"], /either --api_key or --api-key-file/],
      [["a", "--force=yes"], /takes no value/],
    ] as const
  ) {
    assert.throws(() => parseBatchArgs([...argv]), message);
  }
});
