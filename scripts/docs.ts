// deno-lint-ignore-file no-console
/**
 * Writes the generated parts of the documentation from the diagnosis table, so that they cannot
 * drift from the code: docs/diagnosis-rules.md and the category table in README.md.
 */
import { join } from "node:path";
import { categoryTableMarkdown, diagnosisTableMarkdown } from "../lib/diagnosis.ts";
import { ROOT } from "./build.ts";

export const RULES_DOC = join(ROOT, "docs", "diagnosis-rules.md");
export const README = join(ROOT, "README.md");

export function rulesDocument(): string {
  return `# Diagnosis rules

Generated from \`lib/diagnosis.ts\` by \`deno task docs\`. The rules are tried in order and the
first that matches decides; every condition of a rule must hold. Status, type, code and message
come from the upstream's answer; stage and cause from what this side saw.

${diagnosisTableMarkdown("en")}

## 中文说明

${diagnosisTableMarkdown("zh")}
`;
}

/** README.md with the block between the category markers replaced by the current table. */
export function readmeWithCategories(readme: string): string {
  return readme.replace(
    /(<!-- categories:start -->\n)[\s\S]*?(<!-- categories:end -->)/,
    `$1\n${categoryTableMarkdown("en").trimEnd()}\n\n$2`,
  );
}

if (import.meta.main) {
  await Deno.writeTextFile(RULES_DOC, rulesDocument());
  await Deno.writeTextFile(README, readmeWithCategories(await Deno.readTextFile(README)));
  console.error(`wrote ${RULES_DOC} and the category table in ${README}`);
}
