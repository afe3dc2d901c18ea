import assert from "node:assert/strict";
import { jsonPieces } from "../../lib/batch/json_pieces.ts";
import { StateFile, writeAtomically } from "../../lib/batch/state.ts";
import { withTempDir } from "../_helpers.ts";

const head = { ok: true, counts: { done: 2, failed: 0 }, note: "two\nlines", empty: {} };
const job = (i: number) => ({ id: `job-${i}`, result: { path: `/out/${i}.png`, sizes: [i, []] } });

Deno.test("jsonPieces gives the text JSON.stringify gives, with a newline, for any indent and length", () => {
  for (const indent of [1, 2]) {
    for (const length of [0, 1, 3]) {
      const jobs = Array.from({ length }, (_, i) => job(i));
      const pieces = [...jsonPieces(head, "jobs", jobs, indent)];
      assert.equal(pieces.join(""), JSON.stringify({ ...head, jobs }, null, indent) + "\n");
    }
  }
});

Deno.test("jsonPieces cuts a long list into pieces of some 64 KiB", () => {
  const jobs = Array.from({ length: 5000 }, (_, i) => job(i));
  const pieces = [...jsonPieces(head, "jobs", jobs, 2)];
  assert.ok(pieces.length > 4, `${pieces.length} pieces`);
  assert.ok(pieces.every((piece) => piece.length < 65 * 1024));
  assert.equal(pieces.join(""), JSON.stringify({ ...head, jobs }, null, 2) + "\n");
});

Deno.test("writeAtomically writes the pieces of a text in order", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/out.json`;
    await writeAtomically(path, ["[1", ",", "2]\n"]);
    assert.equal(await Deno.readTextFile(path), "[1,2]\n");
    assert.deepEqual([...Deno.readDirSync(dir)].map((entry) => entry.name), ["out.json"]);
  });
});

Deno.test("StateFile spaces its writes ten times as far apart as the last one took, at least a second", async () => {
  await withTempDir(async (dir) => {
    const header = { jobs_file: "/j.jsonl", jobs_sha256: "s", plan_hash: "p", settings: {} };
    let slow = false;
    const state = new StateFile(`${dir}/state.json`, header, [], async () => {
      if (slow) await new Promise((resolve) => setTimeout(resolve, 150));
    });
    assert.equal(state.intervalMs, 1000);
    slow = true;
    await state.flush();
    assert.ok(state.intervalMs >= 1500, String(state.intervalMs));
  });
});
