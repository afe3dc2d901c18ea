/**
 * A new user's first calls with a provider's own words, through the command: Seedream's size
 * `2K` and a quality newer than the command, shown by --dry-run and sent as given to the offline
 * upstream, which answers them with an image.
 */
import assert from "node:assert/strict";
import { runTarget, testEachTarget } from "../_command.ts";
import { inputFor, listDir, startFakeUpstream } from "../_fake_upstream.ts";
import { withTempDir } from "../_helpers.ts";

const WORDS = { model: "doubao-seedream-4-0-250828", size: "2K", quality: "xhigh" };

testEachTarget(
  "--dry-run shows a size word and a new quality word as they will be sent",
  async (target) => {
    await using upstream = startFakeUpstream();
    await withTempDir(async (dir) => {
      const input = inputFor(upstream, "ok", dir, WORDS);
      const run = await runTarget(target, [JSON.stringify(input), "--dry-run"]);
      assert.equal(run.code, 0, run.stdout);
      const body = JSON.parse(run.stdout).request.body;
      assert.equal(body.size, "2K");
      assert.equal(body.quality, "xhigh");
      assert.equal(upstream.requests.length, 0);
    });
  },
);

testEachTarget(
  "sends size 2K and quality xhigh as given to the offline upstream, and saves its image",
  async (target) => {
    await using upstream = startFakeUpstream();
    await withTempDir(async (dir) => {
      // The upstream's own API at /v1, which checks a request as the official one does.
      const input = inputFor(upstream, "ok", dir, { ...WORDS, base_url: `${upstream.origin}/v1` });
      const run = await runTarget(target, [JSON.stringify(input)]);
      assert.equal(run.code, 0, run.stdout);
      assert.equal(JSON.parse(run.stdout).ok, true);
      assert.equal(upstream.requests.length, 1);
      assert.equal(upstream.requests[0]?.body?.size, "2K");
      assert.equal(upstream.requests[0]?.body?.quality, "xhigh");
      assert.equal((await listDir(dir)).length, 1);
    });
  },
);

testEachTarget(
  "refuses a clear typo of a known quality, naming it, and sends nothing",
  async (target) => {
    await using upstream = startFakeUpstream();
    await withTempDir(async (dir) => {
      const input = inputFor(upstream, "ok", dir, { quality: "hight" });
      const run = await runTarget(target, [JSON.stringify(input)]);
      assert.equal(run.code, 2);
      const result = JSON.parse(run.stdout);
      assert.equal(result.stage, "input");
      assert.match(result.error, /did you mean "high"\?/);
      assert.equal(upstream.requests.length, 0);
    });
  },
);
