import assert from "node:assert/strict";
import { CATEGORIES, DIAGNOSIS_RULES } from "../lib/failure/diagnosis.ts";
import {
  CATEGORIES_DOC,
  categoryTableMarkdown,
  diagnosisTableMarkdown,
  readmeWithCategories,
  RULES_DOC,
  rulesDocument,
  sourcesMarkdown,
  upstreamsOf,
} from "../scripts/build/docs.ts";

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

Deno.test("docs/output.md shows the current category table (deno task docs)", async () => {
  const readme = withoutTablePadding(await Deno.readTextFile(CATEGORIES_DOC));
  assert.match(readme, /<!-- categories:start -->\n\n\|Category\|/);
  assert.equal(readme, withoutTablePadding(readmeWithCategories(readme)));
});

function cellsOf(row: string): string[] {
  return row.replaceAll("\\|", "").split("|").slice(1, -1);
}

Deno.test("diagnosisTableMarkdown() renders one row per rule with the columns intact", () => {
  for (const lang of ["zh", "en"] as const) {
    const lines = diagnosisTableMarkdown(lang).split("\n");
    assert.equal(lines.length, DIAGNOSIS_RULES.length + 2);
    const width = cellsOf(lines[0] ?? "").length;
    for (const line of lines) assert.equal(cellsOf(line).length, width, line);
  }
});

Deno.test("diagnosisTableMarkdown() shows the conditions, category and reason of each rule", () => {
  const table = diagnosisTableMarkdown("en");
  assert.match(table, /\| When \|/);
  assert.match(table, /status 500–599/);
  assert.match(table, /`upstream_failure`/);
  assert.match(table, /anything else/);
  assert.match(table, /无可用渠道/);
  const zh = diagnosisTableMarkdown("zh");
  assert.ok(zh.includes("图片模型上游服务失败或临时不可用;不是本地脚本问题。"));
});

Deno.test("rulesDocument() names the source of every rule that reads the upstream's words", () => {
  const sources = sourcesMarkdown().split("\n");
  DIAGNOSIS_RULES.forEach((rule, index) => {
    if (rule.type || rule.code || rule.message) {
      assert.ok(sources.includes(`- Rule ${index + 1}: ${rule.source}`), `rule ${index + 1}`);
    }
  });
  assert.match(rulesDocument(), /^- Rule \d+: platform\.openai\.com/m);
});

Deno.test("categoryTableMarkdown() lists every category with its retryable flag", () => {
  const lines = categoryTableMarkdown("en").split("\n");
  assert.equal(lines.length, CATEGORIES.length + 2);
  assert.ok(lines.includes("| `rate_limited` | yes | Rate limited (not a quota problem) |"));
  assert.ok(categoryTableMarkdown("zh").includes("| `quota_exceeded` | 否 |"));
});

Deno.test("categoryTableMarkdown() for docs/output.md says which upstreams each category was checked against", () => {
  const table = categoryTableMarkdown("en", true);
  assert.match(table, /\| Checked against \|/);
  assert.match(table, /`quota_exceeded` \| no \| [^|]+\| [^|]*SiliconFlow[^|]*sub2api/);
  assert.match(table, /`timeout` \| yes \| [^|]+\| decided locally \|/);
  assert.equal(
    upstreamsOf("content_rejected").split(", ").length,
    new Set(upstreamsOf("content_rejected").split(", ")).size,
  );
});
