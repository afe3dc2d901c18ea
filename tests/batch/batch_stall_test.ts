/**
 * img2-batch is never held by the other end of its files: a FIFO given as an input or as
 * `--events`, a standard error nobody reads, a standard output that takes nothing; and
 * `interrupted` says what the exit code says, whenever the signal came.
 */
import assert from "node:assert/strict";
import { type CommandTarget, fullPipe, signalWhileStdoutBlocked } from "../_command.ts";
import { startFakeUpstream, TEST_KEY } from "../_fake_upstream.ts";
import { withTempDir } from "../_helpers.ts";
import {
  delay,
  parseJson,
  promptJobs,
  sharedFlags,
  testEachBatchTarget,
  writeJobs,
} from "./batch_command.ts";

/** How long a process is given to end on its own before it counts as hung. */
const HUNG_AFTER_MS = 10_000;

function mkfifo(path: string): Promise<Deno.CommandOutput> {
  return new Deno.Command("mkfifo", { args: [path] }).output();
}

/** `target` with `args` in `dir`, through `sh` so that a stream can be sent to a file. */
function spawnBatch(
  target: CommandTarget,
  args: string[],
  { stderrTo }: { stderrTo?: string } = {},
): Deno.ChildProcess {
  const deno = Deno.execPath();
  return new Deno.Command("sh", {
    args: ["-c", `exec "$@" 2> "$0"`, stderrTo ?? "/dev/null", ...target.argv!, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
    env: { PATH: `${deno.slice(0, deno.lastIndexOf("/"))}:${Deno.env.get("PATH") ?? ""}` },
  }).spawn();
}

/** Its output once it ends; a process still running after HUNG_AFTER_MS is killed and fails. */
async function ending(child: Deno.ChildProcess, what: string): Promise<Deno.CommandOutput> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<null>((resolve) =>
    timer = setTimeout(() => resolve(null), HUNG_AFTER_MS)
  );
  const output = child.output();
  const ended = await Promise.race([output, hung]);
  clearTimeout(timer);
  if (ended !== null) return ended;
  child.kill("SIGKILL");
  await output;
  throw new Error(`Still running ${HUNG_AFTER_MS / 1000} s after ${what}`);
}

/** Runs `steps`; if they fail, `child` is killed and awaited before the failure goes on. */
async function killedOnFailure(child: Deno.ChildProcess, steps: () => Promise<void>) {
  try {
    await steps();
  } catch (error) {
    try {
      child.kill("SIGKILL");
    } catch {
      // It has ended already.
    }
    await child.output().catch(() => {});
    throw error;
  }
}

/** Waits until `done()` holds; failing after HUNG_AFTER_MS, with `what` it waited for. */
async function until(done: () => Promise<boolean> | boolean, what: string): Promise<void> {
  const giveUpAt = performance.now() + HUNG_AFTER_MS;
  while (!await done()) {
    if (performance.now() > giveUpAt) throw new Error(`Waited in vain for ${what}`);
    await delay(10);
  }
}

/** Whether a thread of process `pid` waits in open() for the other end of a FIFO (Linux). */
async function waitsForFifoPartner(pid: number): Promise<boolean> {
  try {
    for await (const task of Deno.readDir(`/proc/${pid}/task`)) {
      const wchan = await Deno.readTextFile(`/proc/${pid}/task/${task.name}/wchan`);
      if (wchan.trim() === "wait_for_partner") return true;
    }
  } catch {
    // The process or one of its threads has just ended.
  }
  return false;
}

/** The one JSON object standard output holds, whole. */
function oneJsonObject(stdout: Uint8Array): Record<string, unknown> {
  const value = parseJson(new TextDecoder().decode(stdout));
  assert.equal(typeof value, "object");
  return value;
}

/**
 * Sends SIGINT to `child` once it waits in the open of a FIFO (its signal handlers are in place
 * long before it opens its inputs), checks that it ends with 130 and one cancelled failure, and
 * gives that failure.
 */
async function interruptedInOpen(child: Deno.ChildProcess): Promise<Record<string, unknown>> {
  let result: Record<string, unknown> = {};
  await killedOnFailure(child, async () => {
    await until(() => waitsForFifoPartner(child.pid), "the open of the FIFO");
    child.kill("SIGINT");
    const { code, stdout } = await ending(child, "SIGINT");
    result = oneJsonObject(stdout);
    assert.equal(code, 130, String(result.error));
    assert.equal((result.diagnosis as { category: string }).category, "cancelled");
  });
  return result;
}

for (const input of ["the jobs file", "--api-key-file", "--defaults"] as const) {
  testEachBatchTarget(
    `SIGINT while ${input} is a FIFO nobody writes to exits 130 with one JSON answer`,
    async (target) => {
      await using upstream = startFakeUpstream();
      await withTempDir(async (dir) => {
        const fifo = `${dir}/input.fifo`;
        await mkfifo(fifo);
        const jobs = input === "the jobs file"
          ? fifo
          : await writeJobs(`${dir}/jobs.jsonl`, promptJobs(1));
        const shared = sharedFlags(upstream, "ok", dir);
        const args = input === "the jobs file" ? [jobs, ...shared] : input === "--api-key-file"
          ? [
            jobs,
            ...shared.filter((flag) => flag !== "--api-key" && flag !== TEST_KEY),
            input,
            fifo,
          ]
          : [jobs, input, fifo, ...shared];
        const result = await interruptedInOpen(spawnBatch(target, args));
        assert.match(String(result.error), /^Cannot read .*input\.fifo.*: cancelled$/);
        assert.equal(upstream.requests.length, 0);
      });
    },
  );
}

testEachBatchTarget(
  "SIGINT while status reads a --defaults FIFO nobody writes to exits 130 with one JSON answer",
  async (target) => {
    await withTempDir(async (dir) => {
      const fifo = `${dir}/input.fifo`;
      await mkfifo(fifo);
      const jobs = await writeJobs(`${dir}/jobs.jsonl`, promptJobs(1));
      await interruptedInOpen(spawnBatch(target, ["status", jobs, "--defaults", fifo]));
    });
  },
);

testEachBatchTarget(
  "a FIFO as --events is written before anyone reads it, and holds no SIGINT up",
  async (target) => {
    await using upstream = startFakeUpstream();
    await withTempDir(async (dir) => {
      const events = `${dir}/events.fifo`;
      await mkfifo(events);
      const jobs = await writeJobs(`${dir}/stall.jsonl`, promptJobs(1));
      const child = spawnBatch(target, [
        jobs,
        "--events",
        events,
        ...sharedFlags(upstream, "stall-headers", dir),
      ]);
      await killedOnFailure(child, async () => {
        await until(() => upstream.requests.length > 0, "the request");
        // The event written while nobody read waits in the FIFO for the reader that comes now.
        using reader = await Deno.open(events, { read: true });
        const buffer = new Uint8Array(65536);
        const n = await reader.read(buffer);
        const line = new TextDecoder().decode(buffer.subarray(0, n ?? 0)).split("\n")[0]!;
        assert.equal(JSON.parse(line).event, "job_started");
        child.kill("SIGINT");
        const { code, stdout } = await ending(child, "SIGINT");
        const result = oneJsonObject(stdout);
        assert.equal(code, 130);
        assert.equal(result.interrupted, true);
        assert.equal((result.counts as { pending: number }).pending, 1);
      });
    });
  },
);

testEachBatchTarget(
  "a FIFO as --events that nobody reads does not keep the run from ending",
  async (target) => {
    await using upstream = startFakeUpstream();
    await withTempDir(async (dir) => {
      const events = `${dir}/events.fifo`;
      await mkfifo(events);
      // More events than a pipe holds: the writes wait, and are given up when the run ends.
      const jobs = await writeJobs(`${dir}/many.jsonl`, promptJobs(400));
      const child = spawnBatch(target, [
        jobs,
        "--events",
        events,
        "--concurrency",
        "32",
        ...sharedFlags(upstream, "ok", dir),
      ]);
      const { code, stdout } = await ending(child, "its start");
      const result = oneJsonObject(stdout);
      assert.equal(code, 0);
      assert.equal((result.counts as { done: number }).done, 400);
    });
  },
);

testEachBatchTarget(
  "--events - with a standard error nobody reads: the run ends and prints its result",
  async (target) => {
    await using upstream = startFakeUpstream();
    await withTempDir(async (dir) => {
      const stderr = `${dir}/stderr.fifo`;
      await using _full = await fullPipe(stderr);
      const jobs = await writeJobs(`${dir}/jobs.jsonl`, promptJobs(2));
      const child = spawnBatch(
        target,
        [jobs, "--events", "-", ...sharedFlags(upstream, "ok", dir)],
        { stderrTo: stderr },
      );
      const { code, stdout } = await ending(child, "its start");
      const result = oneJsonObject(stdout);
      assert.equal(code, 0);
      assert.equal(result.ok, true);
      assert.equal((result.counts as { done: number }).done, 2);
    });
  },
);

testEachBatchTarget(
  "a warning to a standard error nobody reads holds the run up no more than its events do",
  async (target) => {
    await using upstream = startFakeUpstream();
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/gone.jsonl`, promptJobs(1));
      const args = [jobs, ...sharedFlags(upstream, "ok", dir)];
      const first = await ending(spawnBatch(target, args), "its start");
      assert.equal(first.code, 0);
      const { jobs: done } = parseJson(new TextDecoder().decode(first.stdout));
      await Deno.remove(done[0].image_path);
      // The resumed run warns that the done job's image is gone.
      const stderr = `${dir}/stderr.fifo`;
      await using _full = await fullPipe(stderr);
      const { code, stdout } = await ending(
        spawnBatch(target, args, { stderrTo: stderr }),
        "its start",
      );
      assert.equal(code, 1);
      assert.equal((oneJsonObject(stdout).counts as { missing: number }).missing, 1);
    });
  },
);

testEachBatchTarget(
  "SIGINT once every image is saved, while the result is given: batch_result.json says interrupted",
  async (target) => {
    await using upstream = startFakeUpstream();
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/done.jsonl`, promptJobs(1));
      const resultFile = `${dir}/out/.img2-batch/done/batch_result.json`;
      // Standard output is a full pipe: once batch_result.json is written, the process waits
      // there (or is still writing the last files) until the signal.
      const run = await signalWhileStdoutBlocked(
        target,
        [jobs, ...sharedFlags(upstream, "ok", dir)],
        dir,
        {
          signal: "SIGINT",
          when: () => until(() => Deno.stat(resultFile).then(() => true, () => false), resultFile),
        },
      );
      assert.equal(run.code, 130);
      const written = parseJson(await Deno.readTextFile(resultFile));
      assert.equal(written.interrupted, true);
      assert.equal(written.counts.done, 1);
    });
  },
);

testEachBatchTarget(
  "SIGINT while the last events are written: interrupted agrees with the exit code",
  async (target) => {
    await using upstream = startFakeUpstream();
    await withTempDir(async (dir) => {
      const stderr = `${dir}/stderr.fifo`;
      await using _full = await fullPipe(stderr);
      const jobs = await writeJobs(`${dir}/last.jsonl`, promptJobs(1));
      const resultFile = `${dir}/out/.img2-batch/last/batch_result.json`;
      const child = spawnBatch(
        target,
        [jobs, "--events", "-", ...sharedFlags(upstream, "ok", dir)],
        { stderrTo: stderr },
      );
      // batch_result.json is written first; the events standard error does not take are then
      // waited for, up to half a second: the signal comes in that wait, or after the end.
      await killedOnFailure(child, async () => {
        await until(() => Deno.stat(resultFile).then(() => true, () => false), resultFile);
        child.kill("SIGINT");
        const { code, stdout } = await ending(child, "SIGINT");
        const printed = oneJsonObject(stdout);
        const written = parseJson(await Deno.readTextFile(resultFile));
        assert.ok(code === 130 || code === 0, `exit code ${code}`);
        assert.equal(printed.interrupted, code === 130);
        assert.equal(written.interrupted, code === 130);
      });
    });
  },
);
