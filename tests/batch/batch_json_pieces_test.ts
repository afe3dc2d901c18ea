import assert from "node:assert/strict";
import { jsonPieces } from "../../lib/batch/json_pieces.ts";
import { writeAtomically } from "../../lib/batch/state.ts";
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
