/** The batch skill document and docs/batch.md name every option img2-batch takes. */
import assert from "node:assert/strict";
import { batchHelpText } from "../../lib/batch/help.ts";
import { signalExitCodes } from "../../lib/cli/stop_signals.ts";

const OPTIONS = [...batchHelpText().matchAll(/^ {2}(--[a-z-]+)/gm)].map((match) => match[1]!);

Deno.test("the batch help lists the scheduler's options", () => {
  assert.ok(OPTIONS.includes("--concurrency") && OPTIONS.includes("--redo-missing"), `${OPTIONS}`);
});

Deno.test("the batch help gives the exit code of every signal that stops a run", () => {
  assert.ok(batchHelpText().replaceAll("\n", " ").includes(signalExitCodes()), signalExitCodes());
});

for (
  const [name, url] of [
    ["skill/batch/SKILL.md", new URL("../../skill/batch/SKILL.md", import.meta.url)],
    ["docs/batch.md", new URL("../../docs/batch.md", import.meta.url)],
  ] as const
) {
  Deno.test(`${name} names every option of img2-batch`, async () => {
    const text = await Deno.readTextFile(url);
    const missing = OPTIONS.filter((option) => !["--help", "--version"].includes(option))
      .filter((option) => !text.includes(`\`${option}`));
    assert.deepEqual(missing, []);
  });
}

Deno.test("skill/batch/SKILL.md has the frontmatter of a skill", async () => {
  const text = await Deno.readTextFile(new URL("../../skill/batch/SKILL.md", import.meta.url));
  assert.match(text, /^---\nname: img2-batch\ndescription: "[^"\n]+"\n/);
  assert.match(text, /"requires": \{ "bins": \["img2-batch"\] \}/);
});

Deno.test("skill/batch/SKILL.md gives the exit code of every signal that stops a run", async () => {
  const text = await Deno.readTextFile(new URL("../../skill/batch/SKILL.md", import.meta.url));
  const [codes, signals] = signalExitCodes().split(" interrupted by ");
  const spaced = (list: string) => list!.split("/").map((item) => `\`${item}\``).join(" / ");
  assert.ok(text.includes(spaced(codes!)), spaced(codes!));
  assert.ok(text.includes(signals!.split("/").join(" / ")), signals);
});
