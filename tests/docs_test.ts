import assert from "node:assert/strict";
import { README, readmeWithCategories, RULES_DOC, rulesDocument } from "../scripts/docs.ts";

/** Table rows compared cell by cell, since the formatter pads the cells to align columns. */
function withoutTablePadding(markdown: string): string {
  return markdown.split("\n").map((line) =>
    line.startsWith("|")
      ? line.split("|").map((cell) => cell.trim().replace(/^-+$/, "---")).join("|")
      : line
  ).join("\n");
}

Deno.test("docs/diagnosis-rules.md is the current diagnosis table (deno task docs)", async () => {
  assert.equal(
    withoutTablePadding(await Deno.readTextFile(RULES_DOC)),
    withoutTablePadding(rulesDocument()),
  );
});

Deno.test("README.md shows the current category table (deno task docs)", async () => {
  const readme = withoutTablePadding(await Deno.readTextFile(README));
  assert.match(readme, /<!-- categories:start -->\n\n\|Category\|/);
  assert.equal(readme, withoutTablePadding(readmeWithCategories(readme)));
});
