/** `deno task demo`, run black-box as a new user would. */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { COMMAND_PERMISSIONS } from "../../scripts/mock/demo.ts";
import { listDir } from "../_fake_upstream.ts";
import { withTempDir } from "../_helpers.ts";

const DEMO = fileURLToPath(new URL("../../scripts/mock/demo.ts", import.meta.url));

async function runDemo(args: string[]) {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    // The demo runs the command as a subprocess: it needs what the command needs, and to run it.
    args: ["run", ...COMMAND_PERMISSIONS, "--allow-run", DEMO, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

Deno.test("demo --scenario cut-after-100s shows the plain call cut and the streamed one saving the image", async () => {
  await withTempDir(async (dir) => {
    const run = await runDemo([
      "--scenario",
      "cut-after-100s",
      "--cut-ms",
      "400",
      "--output-dir",
      dir,
    ]);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const results = run.stdout.trim().split(/\n(?=\{)/).map((text) => JSON.parse(text));
    assert.equal(results.length, 2, run.stdout);
    const [cut, streamed] = results;
    assert.equal(cut.ok, false);
    assert.equal(cut.http_status, 524);
    assert.equal(cut.diagnosis.category, "upstream_failure");
    assert.match(cut.diagnosis.human_reason, /stream: true/);
    assert.equal(streamed.ok, true);
    assert.equal(streamed.partial_images_received, 2);
    assert.deepEqual(await listDir(dir), [streamed.image_path.slice(dir.length + 1)]);
    assert.match(run.stderr, /scaled\s+down/);
    assert.match(run.stderr, /the streamed one saved the image/);
  });
});
