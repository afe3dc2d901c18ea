/**
 * A journal larger than one string can be (V8's limit is about 512 MiB), as a run of a few
 * hundred thousand jobs leaves: the resume reads it line by line. The padding is a hole in a
 * sparse file, so the test writes almost nothing to disk.
 */
import assert from "node:assert/strict";
import { startFakeUpstream } from "../_fake_upstream.ts";
import { withTempDir } from "../_helpers.ts";
import {
  parseJson,
  promptJobs,
  runBatch,
  sharedFlags,
  testEachBatchTarget,
  writeJobs,
} from "./batch_command.ts";

/** More than the longest string V8 makes (2^29 - 24 characters). */
const PADDING_BYTES = 600 * 1024 * 1024;

/** Puts a line of PADDING_BYTES zero bytes after the journal's first line (its run event). */
async function padJournal(path: string): Promise<void> {
  const text = await Deno.readTextFile(path);
  const firstEnd = text.indexOf("\n") + 1;
  const encoder = new TextEncoder();
  using file = await Deno.open(path, { write: true, truncate: true });
  await file.write(encoder.encode(text.slice(0, firstEnd)));
  await file.truncate(firstEnd + PADDING_BYTES);
  await file.seek(0, Deno.SeekMode.End);
  const rest = encoder.encode("\n" + text.slice(firstEnd));
  let written = 0;
  while (written < rest.length) written += await file.write(rest.subarray(written));
}

testEachBatchTarget(
  "resumes from a journal of more than 600 MB, read line by line, in one JSON answer",
  async (target) => {
    await using upstream = startFakeUpstream();
    upstream.route("refuse", () =>
      Response.json({
        error: {
          message: "Your request was rejected by the safety system.",
          type: "image_generation_user_error",
          code: "moderation_blocked",
        },
      }, { status: 400 }));
    await withTempDir(async (dir) => {
      const jobs = await writeJobs(`${dir}/jobs.jsonl`, promptJobs(2));
      const runDir = `${dir}/run`;
      const args = [jobs, "--run-dir", runDir, ...sharedFlags(upstream, "refuse", dir)];
      const first = await runBatch(target, args);
      assert.equal(first.code, 1, first.stdout + first.stderr);
      await padJournal(`${runDir}/journal.jsonl`);
      assert.ok((await Deno.stat(`${runDir}/journal.jsonl`)).size > PADDING_BYTES);

      // Failed for good in the journal, before and after the padding: nothing is sent again.
      const again = await runBatch(target, args);
      assert.equal(again.code, 1, again.stdout + again.stderr);
      assert.equal(again.stderr, "");
      const result = parseJson(again.stdout);
      assert.deepEqual(result.counts, {
        done: 0,
        failed: 2,
        not_started: 0,
        pending: 0,
        missing: 0,
      });
      assert.deepEqual(result.jobs.map((job: { attempts: number }) => job.attempts), [1, 1]);
      assert.equal(result.jobs[0].result.diagnosis.category, "content_rejected");
      assert.equal(upstream.requests.length, 2);
    });
  },
);
