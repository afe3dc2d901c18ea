import assert from "node:assert/strict";
import {
  Journal,
  type JournalEvent,
  MAX_JOURNAL_LINE_BYTES,
  replayJournal,
  replayJournalChunks,
} from "../../lib/batch/journal.ts";
import { canonicalJson, planHash } from "../../lib/batch/plan.ts";
import type { GenerationResult } from "../../lib/mod.ts";
import { randomCuts, withTempDir } from "../_helpers.ts";

const end = (
  id: string,
  status: "done" | "failed",
  attempts: number,
  result: GenerationResult | null = null,
): JournalEvent => ({
  event: "end",
  time: 2000,
  id,
  status,
  attempts,
  category: status === "done" ? null : "upstream_failure",
  retryable: status === "failed",
  image_path: status === "done" ? `/out/${id}.png` : null,
  params_hash: "h",
  result,
});

/** A journal read before it existed. */
const NEW = { size: 0, lineOpen: false };

const lines = (events: JournalEvent[]) => events.map((e) => JSON.stringify(e) + "\n").join("");

Deno.test("replayJournal rebuilds each job's last state and the last plan", () => {
  const replay = replayJournal(lines([
    { event: "run", time: 0, plan_hash: "old", jobs_sha256: "s" },
    { event: "start", time: 1000, id: "a" },
    { event: "start", time: 1000, id: "b", attempt: 1 },
    { event: "start", time: 1200, id: "b", attempt: 2 },
    end("a", "failed", 2),
    { event: "run", time: 1500, plan_hash: "new", jobs_sha256: "s" },
    { event: "start", time: 1600, id: "a" },
    end("a", "done", 3),
  ]));
  assert.equal(replay.planHash, "new");
  assert.deepEqual(
    [replay.jobs.get("a")?.status, replay.jobs.get("a")?.attempts, replay.jobs.get("a")?.startedAt],
    ["done", 3, 1600],
  );
  assert.equal(replay.jobs.get("a")?.imagePath, "/out/a.png");
  const cut = replay.jobs.get("b");
  assert.deepEqual([cut?.status, cut?.startedAt, cut?.attempts], ["running", 1200, 2]);
});

Deno.test("replayJournal ignores a last line cut short by a crash, and lines that are not events", () => {
  const text = lines([{ event: "start", time: 1, id: "a" }, end("a", "done", 1)]);
  const replay = replayJournal(text + 'null\n"end"\n{"event":"end","id":"b","sta');
  assert.equal(replay.jobs.get("a")?.status, "done");
  assert.equal(replay.jobs.has("b"), false);
});

Deno.test("Journal appends after a cut line without gluing onto it, and syncs events together", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/journal.jsonl`;
    const torn = lines([{ event: "start", time: 1, id: "a" }]) + '{"event":"end","id":"a"';
    await Deno.writeTextFile(path, torn);
    const journal = await Journal.open(path, {
      size: new TextEncoder().encode(torn).length,
      lineOpen: true,
    });
    await Promise.all([end("b", "done", 1), end("c", "done", 1)].map((e) => journal.append(e)));
    await journal.close();
    const replay = replayJournal(await Deno.readTextFile(path));
    assert.deepEqual([...replay.jobs.keys()], ["a", "b", "c"]);
    assert.equal(replay.jobs.get("a")?.status, "running");
  });
});

Deno.test("Journal refuses a journal another run holds, or one that grew since it was read", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/journal.jsonl`;
    const held = await Journal.open(path, NEW);
    await assert.rejects(Journal.open(path, NEW), /^InputError: Another img2-batch is running/);
    await held.append({ event: "start", time: 1, id: "a" });
    await held.close();
    await assert.rejects(Journal.open(path, NEW), /Another img2-batch is running/);
    const text = await Deno.readTextFile(path);
    const again = await Journal.open(path, { size: text.length, lineOpen: false });
    await again.close();
  });
});

Deno.test("planHash leaves the key out and does not depend on the order of the settings", async () => {
  const base = await planHash("jobs", { model: "m", size: "1024x1024", api_key: "sk-one" });
  assert.equal(base, await planHash("jobs", { api_key: "sk-two", size: "1024x1024", model: "m" }));
  assert.notEqual(base, await planHash("jobs", { model: "m", size: "512x512" }));
  assert.notEqual(base, await planHash("other jobs", { model: "m", size: "1024x1024" }));
  assert.equal(canonicalJson({ b: 1, a: { d: 2, c: [3] } }), '{"a":{"c":[3],"d":2},"b":1}');
});

Deno.test("Journal.open waits out the instant a status check holds a shared lock", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/journal.jsonl`;
    await Deno.writeTextFile(path, "");
    using peek = await Deno.open(path, { read: true });
    assert.equal(await peek.tryLock(false), true);
    const released = new Promise((resolve) => setTimeout(resolve, 30)).then(() => peek.unlock());
    const journal = await Journal.open(path, NEW);
    await released;
    await journal.close();
  });
});

Deno.test("Journal.open refuses a journal another run holds", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/journal.jsonl`;
    using holder = await Deno.open(path, { write: true, create: true });
    await holder.lock(true);
    await assert.rejects(Journal.open(path, NEW), /Another img2-batch is running/);
  });
});

/** A result whose texts recur from job to job, as the replay keeps them once. */
const REFUSED = {
  ok: false,
  stage: "request",
  error: "The upstream answered HTTP 400: Your request was rejected by the safety system.",
  diagnosis: {
    category: "content_rejected",
    human_reason: "上游的内容审核拒绝了这个提示词；请修改提示词后再试。",
    retryable: false,
  },
  attempts: [{ category: "content_rejected", error: "rejected by the safety system, again" }],
} as unknown as GenerationResult;

/** A journal of every kind of line: events with text beyond ASCII, lines that are not events. */
const MIXED = lines([
  { event: "run", time: 0, plan_hash: "p", jobs_sha256: "s", jobs_file: "/jobs/é.jsonl" },
  { event: "start", time: 1, id: "猫", attempt: 1 },
  { event: "file", time: 2, id: "猫", part: ".猫.1.img2-part", dev: 1, ino: 2 },
  { event: "start", time: 3, id: "b", attempt: 1 },
  end("b", "done", 1),
  { event: "start", time: 4, id: "c", attempt: 1 },
  end("d", "failed", 1, REFUSED),
]) + "null\n\n[1]\n" +
  lines([end("c", "failed", 1), end("e", "failed", 2, REFUSED)]);

async function* chunksOf(bytes: Uint8Array, cuts: number[]): AsyncGenerator<Uint8Array> {
  let start = 0;
  for (const cut of [...cuts, bytes.length]) {
    // Each chunk in its own buffer, reused once handed over, as a reader may do.
    const chunk = bytes.slice(start, cut);
    yield chunk;
    chunk.fill(0x41);
    start = cut;
  }
}

const replayed = (replay: ReturnType<typeof replayJournal>) => ({
  ...replay,
  jobs: [...replay.jobs],
});

Deno.test("replayJournalChunks gives what replayJournal gives, whatever the chunks, with CRLF and a torn last line", async () => {
  const encoder = new TextEncoder();
  const torn = '{"event":"end","id":"d","status":"done","attem';
  for (const text of [MIXED, MIXED.replaceAll("\n", "\r\n"), MIXED + torn, ""]) {
    const bytes = encoder.encode(text);
    const expected = replayed(replayJournal(text));
    const cutsList = [[], ...Array.from({ length: bytes.length }, (_, i) => [i])];
    cutsList.push(Array.from({ length: Math.max(0, bytes.length - 1) }, (_, i) => i + 1));
    for (const seed of [1, 2, 3]) cutsList.push(randomCuts(bytes.length, 17, seed));
    for (const cuts of cutsList) {
      const read = await replayJournalChunks(chunksOf(bytes, cuts));
      assert.deepEqual(replayed(read.replay), expected, `cut at ${cuts}`);
      assert.equal(read.size, bytes.length);
      assert.equal(read.lineOpen, text.endsWith(torn));
    }
  }
  const read = await replayJournalChunks(chunksOf(encoder.encode(MIXED), []));
  assert.equal(read.replay.jobsFile, "/jobs/é.jsonl");
  assert.equal(read.replay.jobs.get("猫")?.file?.part, ".猫.1.img2-part");
  assert.deepEqual(read.replay.jobs.get("e")?.result, REFUSED);
});

Deno.test("replayJournalChunks skips a line longer than MAX_JOURNAL_LINE_BYTES without holding it", async () => {
  const encoder = new TextEncoder();
  const before = encoder.encode(lines([{ event: "start", time: 1, id: "a" }]));
  const after = encoder.encode(lines([end("a", "done", 1)]));
  const piece = new Uint8Array(1024 * 1024).fill(0x20);
  async function* journal(): AsyncGenerator<Uint8Array> {
    yield before;
    // A valid event padded with spaces past the limit: skipped whole, not read in part.
    yield encoder.encode(JSON.stringify(end("a", "failed", 9)).slice(0, -1));
    for (let sent = 0; sent <= MAX_JOURNAL_LINE_BYTES; sent += piece.length) yield piece;
    yield encoder.encode("}\n");
    yield after;
  }
  const read = await replayJournalChunks(journal());
  assert.equal(read.replay.jobs.get("a")?.status, "done");
  assert.equal(read.replay.jobs.get("a")?.attempts, 1);
  assert.equal(read.lineOpen, false);
});
