/** `img2-batch status`, black-box: on live, finished, killed and provider-batch runs. */
import assert from "node:assert/strict";
import { type FakeUpstream, PNG_64, startFakeUpstream } from "../_fake_upstream.ts";
import { withTempDir } from "../_helpers.ts";
import type { CommandTarget } from "../_command.ts";
import { RunDirReader } from "../../lib/batch/status.ts";
import {
  BATCH_TARGETS,
  delay,
  imageAnswer,
  parseJson,
  runBatch,
  sharedFlags,
  testEachBatchTarget,
  writeJobs,
} from "./batch_command.ts";

/** Answers once `open` is called (or the upstream shuts down); counts the requests waiting. */
function gate(upstream: FakeUpstream, name: string) {
  const opened = Promise.withResolvers<void>();
  let waiting = 0;
  upstream.route(name, async (_request, _body, server) => {
    waiting++;
    await Promise.race([opened.promise, server.untilClosed()]);
    return imageAnswer();
  });
  return { open: () => opened.resolve(), waiting: () => waiting };
}

async function until(condition: () => boolean | Promise<boolean>): Promise<void> {
  while (!await condition()) await delay(20);
}

/** Every file of a folder, by name, with its bytes. */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for await (const entry of Deno.readDir(dir)) {
    files.set(entry.name, (await Deno.readFile(`${dir}/${entry.name}`)).toBase64());
  }
  return files;
}

async function status(target: CommandTarget, args: string[]) {
  const output = await runBatch(target, ["status", ...args]);
  return { code: output.code, json: parseJson(output.stdout), stdout: output.stdout };
}

/**
 * Runs three jobs one at a time in `dir`: the first is answered at once, the other two wait at a
 * gate; `whileHeld` is called once the second waits there, with the child and what opens the gate.
 */
async function gatedRun(
  target: CommandTarget,
  dir: string,
  whileHeld: (child: Deno.ChildProcess, open: () => void, runDir: string) => Promise<void>,
) {
  await using upstream = startFakeUpstream();
  upstream.route("count", () => imageAnswer());
  const door = gate(upstream, "gate");
  const jobs = await writeJobs(`${dir}/article.jsonl`, [
    { prompt: "p1", task_name: "p1", base_url: upstream.baseUrl("count") },
    { prompt: "p2", task_name: "p2" },
    { prompt: "p3", task_name: "p3" },
  ]);
  const runDir = `${dir}/out/.img2-batch/article`;
  const flags = [...sharedFlags(upstream, "gate", dir), "--concurrency", "1"];
  const run = await runBatch(target, [jobs, ...flags], {
    whileRunning: async (child) => {
      await until(() => door.waiting() === 1);
      await whileHeld(child, door.open, runDir);
    },
  });
  return { run, runDir };
}

testEachBatchTarget(
  "status on a live run: live, work left (exit 3), and not a byte of the run dir changed",
  async (target) => {
    await withTempDir(async (dir) => {
      const { run, runDir } = await gatedRun(target, dir, async (_child, open, runDir) => {
        // The run writes nothing more until the gate opens, once its state shows p2 running.
        await until(async () => {
          const sheet = await Deno.readTextFile(`${runDir}/index.html`).catch(() => "");
          return sheet.includes(`<span class="badge running">1 running</span>`) &&
            sheet.includes(`<span class="badge done">1 done</span>`);
        });
        const before = await snapshot(runDir);
        const live = await status(target, [runDir]);
        assert.equal(live.code, 3, live.stdout);
        assert.equal(live.json.live, true);
        assert.equal(live.json.run_dir, runDir);
        assert.equal(live.json.total, 3);
        assert.deepEqual(
          [live.json.counts.done, live.json.counts.running, live.json.counts.pending],
          [1, 1, 1],
        );
        assert.equal(live.json.work_left, 2);
        assert.equal(live.json.mode, "sync");
        assert.deepEqual(live.json.last_events.at(-1), {
          event: "start",
          time: live.json.last_events.at(-1).time,
          id: "p2",
          attempt: 1,
        });
        // Found from the jobs file as the run found it, with the same options.
        const byJobs = await status(target, [`${dir}/article.jsonl`, "--output-dir", `${dir}/out`]);
        assert.equal(byJobs.json.run_dir, runDir);
        assert.deepEqual(await snapshot(runDir), before);
        open();
      });
      assert.equal(run.code, 0, run.stdout);

      const before = await snapshot(runDir);
      const done = await status(target, [runDir]);
      assert.equal(done.code, 0, done.stdout);
      assert.equal(done.json.ok, true);
      assert.equal(done.json.live, false);
      assert.deepEqual(done.json.counts, {
        pending: 0,
        running: 0,
        submitted: 0,
        done: 3,
        failed: 0,
        not_started: 0,
        missing: 0,
      });
      assert.equal(done.json.eta_ms, null);
      assert.equal(done.json.interrupted, false);
      assert.equal(done.json.contact_sheet, `${runDir}/index.html`);
      const html = await runBatch(target, ["status", runDir, "--html"]);
      assert.deepEqual([html.code, html.stdout], [0, `${runDir}/index.html\n`]);
      assert.deepEqual(await snapshot(runDir), before);
    });
  },
);

Deno.test("status on a run killed by SIGKILL: not live, the cut job pending again (exit 3)", async () => {
  const target = BATCH_TARGETS[0]!;
  await withTempDir(async (dir) => {
    const { run, runDir } = await gatedRun(target, dir, async (child) => {
      child.kill("SIGKILL");
      await child.status;
    });
    assert.equal(run.code, 137);
    const before = await snapshot(runDir);
    const killed = await status(target, [runDir]);
    assert.equal(killed.code, 3, killed.stdout);
    assert.equal(killed.json.live, false);
    const { done, running, pending } = killed.json.counts;
    assert.deepEqual({ done, running, pending }, { done: 1, running: 0, pending: 2 });
    assert.equal(killed.json.eta_ms, null);
    assert.equal("interrupted" in killed.json, false, "no batch_result.json was written");
    assert.deepEqual(await snapshot(runDir), before);
  });
});

Deno.test("status of a run with failures: exit 1, and the failures counted by category", async () => {
  const target = BATCH_TARGETS[0]!;
  await using upstream = startFakeUpstream();
  upstream.route("count", () => imageAnswer());
  await withTempDir(async (dir) => {
    const jobs = await writeJobs(`${dir}/mixed.jsonl`, [
      { prompt: "fine", task_name: "fine" },
      { prompt: "blocked", task_name: "blocked", base_url: upstream.baseUrl("moderation") },
    ]);
    assert.equal((await runBatch(target, [jobs, ...sharedFlags(upstream, "count", dir)])).code, 1);
    const failed = await status(target, [jobs, "--output-dir", `${dir}/out`]);
    assert.equal(failed.code, 1, failed.stdout);
    assert.deepEqual(failed.json.categories, { content_rejected: 1 });
    assert.equal(failed.json.counts.failed, 1);
    assert.equal(failed.json.work_left, 0);

    // An image replaced by a link, or deleted since, is missing, as the next run would find it.
    const runDir = `${dir}/out/.img2-batch/mixed`;
    const state = parseJson(await Deno.readTextFile(`${runDir}/state.json`));
    await Deno.rename(state.jobs[0].image_path, `${dir}/elsewhere.png`);
    await Deno.symlink(`${dir}/elsewhere.png`, state.jobs[0].image_path);
    const linked = await status(target, [runDir]);
    assert.equal(linked.json.counts.missing, 1);
    await Deno.remove(state.jobs[0].image_path);
    const missing = await status(target, [runDir]);
    assert.equal(missing.json.counts.missing, 1);
    assert.equal(missing.code, 1);
  });
});

Deno.test("status on a folder that is not a run dir, or a path that does not exist: exit 2", async () => {
  const target = BATCH_TARGETS[0]!;
  await withTempDir(async (dir) => {
    const empty = await status(target, [dir]);
    assert.equal(empty.code, 2);
    assert.equal(empty.json.ok, false);
    assert.match(empty.json.error, /is not the run dir of an img2-batch run/);
    assert.deepEqual(await snapshot(dir), new Map());
    const absent = await status(target, [`${dir}/nothing`]);
    assert.equal(absent.code, 2);
    assert.match(absent.json.error, /Cannot read/);
    const none = await status(target, []);
    assert.equal(none.code, 2);
    assert.match(none.json.error, /the run dir or the jobs file of a run/);
  });
});

Deno.test("status --watch redraws its summary while the run goes and ends with it", async () => {
  const target = BATCH_TARGETS[0]!;
  await withTempDir(async (dir) => {
    let watched: { code: number; stdout: string; stderr: string } | null = null;
    const { run } = await gatedRun(target, dir, async (_child, open, runDir) => {
      const [command, ...args] = target.argv!;
      const watch = new Deno.Command(command!, {
        args: [...args, "status", runDir, "--watch"],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      // Its first line, read while the run waits at the gate, says the run is live.
      const stdout = new Response(watch.stdout).text();
      const lines = watch.stderr.pipeThrough(new TextDecoderStream()).getReader();
      let first = "";
      while (!first.includes("\n")) first += (await lines.read()).value ?? "\n";
      open();
      let rest = "";
      for (let chunk = await lines.read(); !chunk.done; chunk = await lines.read()) {
        rest += chunk.value;
      }
      const { code } = await watch.status;
      watched = { code, stdout: await stdout, stderr: first + rest };
    });
    assert.equal(run.code, 0);
    const { code, stdout, stderr } = watched!;
    assert.equal(code, 0, stdout);
    assert.equal(parseJson(stdout).ok, true);
    const lines = stderr.trimEnd().split("\n");
    assert.match(lines[0]!, /^img2-batch: live · .*1 running/);
    assert.match(lines.at(-1)!, /^img2-batch: not running · 3 done, 0 failed of 3/);
  });
});

Deno.test("status of a --batch-api run reads each part's provider status and request counts", async () => {
  // A run dir written by hand in the shape a --batch-api run leaves: jobs "submitted" while
  // at the provider, and state.json's "batches".
  const target = BATCH_TARGETS[0]!;
  await withTempDir(async (dir) => {
    await Deno.writeFile(`${dir}/a.png`, PNG_64);
    const part = {
      id: "batch_abc123",
      status: "in_progress",
      input_file_id: "file-in1",
      output_file_id: null,
      error_file_id: null,
      request_counts: { total: 2, completed: 1, failed: 0 },
      created_at: 1765100000,
      completed_at: null,
    };
    const state = (jobs: Record<string, unknown>[]) =>
      Deno.writeTextFile(
        `${dir}/state.json`,
        JSON.stringify({
          jobs_file: `${dir}/jobs.jsonl`,
          settings: {},
          updated_at: "2026-12-07T10:00:00.000Z",
          batches: [part],
          jobs,
        }),
      );
    await state([
      { id: "a", status: "done", category: null, image_path: `${dir}/a.png` },
      { id: "b", status: "submitted", category: null, image_path: null },
      { id: "c", status: "submitted", category: null, image_path: null },
    ]);
    const atProvider = await status(target, [dir]);
    assert.equal(atProvider.code, 3, atProvider.stdout);
    assert.equal(atProvider.json.mode, "batch-api");
    assert.equal(atProvider.json.live, false);
    assert.equal(atProvider.json.counts.submitted, 2);
    assert.equal(atProvider.json.work_left, 2);
    assert.deepEqual(atProvider.json.batches, [part]);

    await state([
      { id: "a", status: "done", category: null, image_path: `${dir}/a.png` },
      { id: "b", status: "done", category: null, image_path: `${dir}/a.png` },
      { id: "c", status: "failed", category: "content_rejected", image_path: null },
    ]);
    const ended = await status(target, [dir]);
    assert.equal(ended.code, 1);
    assert.deepEqual(ended.json.categories, { content_rejected: 1 });

    await Deno.remove(`${dir}/state.json`);
    await Deno.writeTextFile(`${dir}/journal.jsonl`, "");
    await Deno.writeTextFile(
      `${dir}/batch_result.json`,
      JSON.stringify({ ok: true, mode: "batch-api", jobs: [] }, null, 2) + "\n",
    );
    assert.equal((await status(target, [dir])).json.mode, "batch-api");
  });
});

Deno.test("status takes each job from state.json, or from the journal when it says more since", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(`${dir}/b.png`, PNG_64);
    const t0 = Date.parse("2026-12-07T10:00:00.000Z");
    await Deno.writeTextFile(
      `${dir}/state.json`,
      JSON.stringify({
        jobs_file: `${dir}/jobs.jsonl`,
        updated_at: new Date(t0).toISOString(),
        jobs: [
          { id: "a", status: "pending", category: null, image_path: null },
          { id: "b", status: "running", category: null, image_path: null },
          { id: "c", status: "not_started", category: null, image_path: null },
        ],
      }),
    );
    const end = { event: "end", attempts: 1, retryable: true, params_hash: "h", result: null };
    await Deno.writeTextFile(
      `${dir}/journal.jsonl`,
      [
        { event: "run", time: t0 - 1000, plan_hash: "p", jobs_sha256: "s" },
        { event: "start", time: t0 - 900, id: "a" },
        // Older than state.json, which already shows the retry it led to.
        {
          ...end,
          time: t0 - 800,
          id: "a",
          status: "failed",
          category: "timeout",
          image_path: null,
        },
        { event: "start", time: t0 - 50, id: "b" },
        {
          ...end,
          time: t0 + 100,
          id: "b",
          status: "done",
          category: null,
          image_path: `${dir}/b.png`,
        },
      ].map((event) => JSON.stringify(event) + "\n").join("") + '{"event": "start", "ti',
    );
    const read = await new RunDirReader(dir).read();
    assert.deepEqual(
      Object.fromEntries(Object.entries(read!.counts).filter(([, n]) => n > 0)),
      { pending: 1, done: 1, not_started: 1 },
    );
    assert.equal(read!.started_at, new Date(t0 - 1000).toISOString());
    assert.equal(read!.updated_at, new Date(t0 + 100).toISOString());
    assert.equal(read!.elapsed_ms, 1100);
    assert.equal(read!.last_events.length, 5, "a line still being written is not read");
  });
});

Deno.test("status - finds the run dir of jobs read from standard input, as the run did", async () => {
  const target = BATCH_TARGETS[0]!;
  await using upstream = startFakeUpstream();
  upstream.route("count", () => imageAnswer());
  await withTempDir(async (dir) => {
    const jobs = JSON.stringify({ prompt: "p1", task_name: "p1" }) + "\n";
    const run = await runBatch(target, ["-", ...sharedFlags(upstream, "count", dir)], {
      stdin: jobs,
    });
    assert.equal(run.code, 0, run.stdout);
    const read = await runBatch(target, ["status", "-", "--output-dir", `${dir}/out`], {
      stdin: jobs,
    });
    assert.equal(read.code, 0, read.stdout);
    assert.equal(parseJson(read.stdout).run_dir, parseJson(run.stdout).run_dir);
  });
});

Deno.test("status opens no FIFO planted as a run file: it answers instead of waiting for a writer", async () => {
  const target = BATCH_TARGETS[0]!;
  await withTempDir(async (dir) => {
    for (const name of ["journal.jsonl", "batch_result.json"]) {
      const made = await new Deno.Command("mkfifo", { args: [`${dir}/${name}`] }).output();
      assert.ok(made.success);
    }
    const alone = await status(target, [dir]);
    assert.equal(alone.code, 2);
    assert.match(alone.json.error, /is not the run dir of an img2-batch run/);
    await Deno.writeTextFile(`${dir}/state.json`, '{"jobs": []}');
    const withState = await status(target, [dir]);
    assert.equal(withState.json.live, false);
    assert.equal(withState.json.total, 0);
  });
});

Deno.test("status follows no link planted as a run file: another file is not shown as the run's", async () => {
  const target = BATCH_TARGETS[0]!;
  await withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/run`);
    await Deno.writeTextFile(
      `${dir}/foreign.json`,
      JSON.stringify({ jobs: [{ id: "x", status: "done" }], batches: [{ id: "batch_foreign" }] }),
    );
    await Deno.writeTextFile(`${dir}/foreign.jsonl`, '{"event":"run","time":1}\n');
    await Deno.symlink(`${dir}/foreign.json`, `${dir}/run/state.json`);
    await Deno.symlink(`${dir}/foreign.jsonl`, `${dir}/run/journal.jsonl`);
    const linked = await status(target, [`${dir}/run`]);
    assert.equal(linked.code, 2, linked.stdout);
    assert.doesNotMatch(linked.stdout, /batch_foreign/);
  });
});
