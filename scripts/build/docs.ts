// deno-lint-ignore-file no-console
/**
 * Writes the generated parts of the documentation from the diagnosis table, so that they cannot
 * drift from the code: docs/diagnosis-rules.md and the category table in docs/output.md. The Markdown
 * rendering of the table lives here, not in the library.
 */
import { join } from "node:path";
import {
  CATEGORIES,
  DIAGNOSIS_RULES,
  type DiagnosisRule,
  isRange,
  listOf,
  type StatusMatch,
} from "../../lib/failure/diagnosis.ts";
import type { Lang } from "../../lib/failure/types.ts";
import { ROOT } from "./build.ts";

export const RULES_DOC = join(ROOT, "docs", "diagnosis-rules.md");
export const CATEGORIES_DOC = join(ROOT, "docs", "output.md");

const TABLE_WORDS = {
  zh: {
    head: ["#", "条件", "上游", "类别", "可重试", "说明"],
    any: "其他任何情况",
    yes: "是",
    no: "否",
    categoryHead: ["类别", "可重试", "含义"],
    checkedAgainst: "核对过的上游",
    local: "本地判断",
  },
  en: {
    head: ["#", "When", "Seen in", "Category", "Retryable", "Reason"],
    any: "anything else",
    yes: "yes",
    no: "no",
    categoryHead: ["Category", "Retryable", "Meaning"],
    checkedAgainst: "Checked against",
    local: "decided locally",
  },
} as const;

/** The rule table as Markdown, in the order it is read. */
export function diagnosisTableMarkdown(lang: Lang): string {
  const words = TABLE_WORDS[lang];
  const rows = DIAGNOSIS_RULES.map((rule, index) =>
    markdownRow([
      String(index + 1),
      describeConditions(rule) ?? words.any,
      rule.seenIn ?? "",
      `\`${rule.category}\``,
      rule.retryable ? words.yes : words.no,
      rule.reason[lang],
    ])
  );
  return table(words.head, rows);
}

/** Where each rule's text was read, by rule number. */
export function sourcesMarkdown(): string {
  return DIAGNOSIS_RULES.flatMap((rule, index) =>
    rule.source === undefined ? [] : [`- Rule ${index + 1}: ${rule.source}`]
  ).join("\n");
}

/**
 * Every category with its retryable flag and meaning, as Markdown; with `withUpstreams`, also the
 * upstreams whose answers its rules were checked against.
 */
export function categoryTableMarkdown(lang: Lang, withUpstreams = false): string {
  const words = TABLE_WORDS[lang];
  const head = withUpstreams ? [...words.categoryHead, words.checkedAgainst] : words.categoryHead;
  const rows = CATEGORIES.map(({ category, retryable, meaning }) => {
    const cells = [`\`${category}\``, retryable ? words.yes : words.no, meaning[lang]];
    if (withUpstreams) cells.push(upstreamsOf(category) || words.local);
    return markdownRow(cells);
  });
  return table(head, rows);
}

/** The upstreams named by the rules of a category, each once, in the order first named. */
export function upstreamsOf(category: DiagnosisRule["category"]): string {
  const names = DIAGNOSIS_RULES.filter((rule) => rule.category === category)
    .flatMap((rule) => rule.seenIn?.split(", ") ?? []);
  return [...new Set(names)].join(", ");
}

function describeConditions(rule: DiagnosisRule): string | null {
  const parts: string[] = [];
  if (rule.stage !== undefined) parts.push(`stage \`${listOf(rule.stage).join(", ")}\``);
  if (rule.cause !== undefined) parts.push(`cause \`${rule.cause}\``);
  if (rule.status !== undefined) parts.push(`status ${describeStatus(rule.status)}`);
  if (rule.type !== undefined) parts.push(`type \`${rule.type}\``);
  if (rule.code !== undefined) parts.push(`code \`${rule.code}\``);
  if (rule.message !== undefined) parts.push(`message \`${rule.message}\``);
  return parts.length === 0 ? null : parts.join(" + ");
}

function describeStatus(match: StatusMatch): string {
  if (isRange(match)) return `${match.from}–${match.to}`;
  return listOf(match).join(", ");
}

function table(head: readonly string[], rows: readonly string[]): string {
  return [markdownRow(head), markdownRow(head.map(() => "---")), ...rows].join("\n");
}

function markdownRow(cells: readonly string[]): string {
  return `| ${cells.map((cell) => cell.replaceAll("|", "\\|")).join(" | ")} |`;
}

export function rulesDocument(): string {
  return `# Diagnosis rules

Generated from \`lib/failure/diagnosis.ts\` by \`deno task docs\`. The rules are tried in order and the
first that matches decides; every condition of a rule must hold. Status, type, code and message
come from the upstream's answer; stage and cause from what this side saw. An answer with
\`x-should-retry: false\` is never retryable, whatever its rule says, and \`retry_after_ms\` is given
only with a retryable failure.

${diagnosisTableMarkdown("en")}

## Sources

Where the answers each rule matches were read:

${sourcesMarkdown()}

## 中文说明

${diagnosisTableMarkdown("zh")}
`;
}

/** A page with the block between the category markers replaced by the current table. */
export function readmeWithCategories(readme: string): string {
  return readme.replace(
    /(<!-- categories:start -->\n)[\s\S]*?(<!-- categories:end -->)/,
    `$1\n${categoryTableMarkdown("en", true).trimEnd()}\n\n$2`,
  );
}

if (import.meta.main) {
  await Deno.writeTextFile(RULES_DOC, rulesDocument());
  await Deno.writeTextFile(
    CATEGORIES_DOC,
    readmeWithCategories(await Deno.readTextFile(CATEGORIES_DOC)),
  );
  console.error(`wrote ${RULES_DOC} and the category table in ${CATEGORIES_DOC}`);
}
