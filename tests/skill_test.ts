/**
 * skill/SKILL.md: its frontmatter is the YAML OpenClaw and AgentSkills loaders read, its body
 * names every parameter and category the command knows, and its examples are what the command
 * prints.
 */
import assert from "node:assert/strict";
import { CATEGORIES } from "../lib/diagnosis.ts";
import { categoryTableMarkdown } from "../scripts/docs.ts";
import { dryRunReport } from "../lib/dry_run.ts";
import { generateImage } from "../lib/generate.ts";
import { PARAM_NAMES, validateParams } from "../lib/params.ts";
import { encodePng } from "../scripts/png.ts";

const SKILL_PATH = new URL("../skill/SKILL.md", import.meta.url);
const SKILL = await Deno.readTextFile(SKILL_PATH);

/** The frontmatter text and the body after it. */
function splitSkill(text: string): { frontmatter: string; body: string } {
  assert.ok(text.startsWith("---\n"), "SKILL.md starts with a --- line");
  const end = text.indexOf("\n---\n", 4);
  assert.ok(end > 0, "the frontmatter ends with a --- line");
  return { frontmatter: text.slice(4, end), body: text.slice(end + 5) };
}

const { frontmatter: FRONTMATTER, body: BODY } = splitSkill(SKILL);

/** Plain scalars YAML would read as something other than a string. */
const NON_STRING_PLAIN =
  /^(?:~|null|true|false|yes|no|on|off|y|n|[-+]?(?:\d[\d_]*(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?|0x[\da-f]+|0o[0-7]+|[-+]?\.inf|\.nan)$/i;

/**
 * A strict reading of the subset of YAML a skill frontmatter needs, one `key: value` per line
 * (the form OpenClaw's single-line fallback parser also reads): a value is a double-quoted string
 * or a JSON object or array (both JSON and YAML, with the same meaning in each), or a plain
 * scalar that YAML reads as the same string. Anything else is refused rather than guessed at.
 */
function parseFrontmatter(text: string): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const [index, line] of text.split("\n").entries()) {
    const where = `frontmatter line ${index + 1} ${JSON.stringify(line)}`;
    const match = /^([a-z][a-z0-9-]*): (\S.*)$/.exec(line);
    if (!match) throw new Error(`Cannot read ${where}: expected "key: value" on one line`);
    const [, key, value] = match as unknown as [string, string, string];
    if (Object.hasOwn(fields, key)) throw new Error(`Cannot read ${where}: "${key}" is repeated`);
    if (/\s$/.test(value)) throw new Error(`Cannot read ${where}: trailing whitespace`);
    if (value.startsWith('"') || value.startsWith("{") || value.startsWith("[")) {
      try {
        fields[key] = JSON.parse(value);
      } catch (error) {
        throw new Error(`Cannot read ${where}: ${(error as Error).message}`);
      }
      if (value.startsWith('"') && typeof fields[key] !== "string") {
        throw new Error(`Cannot read ${where}: expected one quoted string`);
      }
      continue;
    }
    if (/^[-?:,[\]{}#&*!|>'"%@`]/.test(value) || /: | #/.test(value)) {
      throw new Error(`Cannot read ${where}: quote this value`);
    }
    if (NON_STRING_PLAIN.test(value)) {
      throw new Error(`Cannot read ${where}: YAML would not read this as a string`);
    }
    fields[key] = value;
  }
  return fields;
}

Deno.test("parseFrontmatter() reads strings and JSON objects and refuses what it cannot vouch for", () => {
  assert.deepEqual(
    parseFrontmatter(
      'name: a-b\ndescription: "x: y"\nmetadata: {"k": [1]}\nhomepage: https://e.x/a',
    ),
    { name: "a-b", description: "x: y", metadata: { k: [1] }, homepage: "https://e.x/a" },
  );
  for (
    const bad of [
      "name: a\nname: b",
      "description: one: two",
      "description: >",
      "metadata:\n  openclaw: {}",
      "version: 1.0",
      "enabled: yes",
      "metadata: {'k': 1}",
      'description: "unterminated',
      "name: a ",
      "",
    ]
  ) {
    assert.throws(() => parseFrontmatter(bad), Error, JSON.stringify(bad));
  }
});

const FIELDS = parseFrontmatter(FRONTMATTER);

Deno.test("SKILL.md frontmatter has the name, description, homepage and metadata a skill needs", () => {
  assert.equal(FIELDS.name, "img2-generate");
  assert.match(FIELDS.name as string, /^[a-z0-9]+(?:-[a-z0-9]+)*$/);

  const description = FIELDS.description;
  assert.equal(typeof description, "string");
  const chars = [...(description as string).trim()].length;
  assert.ok(chars > 0 && chars <= 1024, `description has ${chars} characters, at most 1024`);
  assert.ok(!/[<>]/.test(description as string), "no angle brackets in the description");

  const homepage = FIELDS.homepage;
  assert.equal(typeof homepage, "string");
  // The project's own README, named relative to the skill folder, until it has a public address.
  const readme = new URL(homepage as string, new URL("../skill/SKILL.md", import.meta.url));
  assert.ok(Deno.statSync(readme).isFile, `homepage ${homepage} names a file`);

  // OpenClaw reads metadata as a JSON object written on the one frontmatter line.
  const metadataLine = FRONTMATTER.split("\n").find((line) => line.startsWith("metadata: "));
  assert.ok(metadataLine?.startsWith("metadata: {"), "metadata is a one-line JSON object");
  const openclaw = (FIELDS.metadata as { openclaw?: Record<string, unknown> }).openclaw;
  assert.ok(openclaw, "metadata.openclaw is present");
  const requires = openclaw.requires as { bins?: unknown };
  assert.ok(Array.isArray(requires.bins) && requires.bins.includes("img2-generate"));
  if ("emoji" in openclaw) assert.equal(typeof openclaw.emoji, "string");
});

const PYTHON_YAML = (() => {
  try {
    return new Deno.Command("python3", {
      args: ["-c", "import yaml"],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).outputSync().success;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "SKILL.md frontmatter reads the same with a full YAML parser (PyYAML)",
  ignore: !PYTHON_YAML,
  fn: async () => {
    const child = new Deno.Command("python3", {
      args: ["-c", "import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin.read())))"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(FRONTMATTER));
    await writer.close();
    const output = await child.output();
    assert.ok(output.success, new TextDecoder().decode(output.stderr));
    assert.deepEqual(JSON.parse(new TextDecoder().decode(output.stdout)), FIELDS);
  },
});

Deno.test("SKILL.md names every parameter the command knows", () => {
  const missing = PARAM_NAMES.filter((name) => !BODY.includes(`\`${name}\``));
  assert.deepEqual(missing, [], `parameters not mentioned as \`name\`: ${missing.join(", ")}`);
});

/** Table rows compared cell by cell, since the formatter pads cells to align the columns. */
function tableRows(markdown: string): string[] {
  return markdown.split("\n")
    .filter((line) => line.startsWith("|"))
    .map((line) => line.split("|").map((cell) => cell.trim().replace(/^-+$/, "---")).join("|"));
}

Deno.test("SKILL.md lists every category with its retryable flag, as lib/diagnosis.ts has it", () => {
  const missing = CATEGORIES.filter(({ category }) => !BODY.includes(`\`${category}\``));
  assert.deepEqual(missing, []);
  const expected = tableRows(categoryTableMarkdown("zh"));
  const body = tableRows(BODY);
  const start = body.indexOf(expected[0]!);
  assert.ok(start >= 0, "the category table is in SKILL.md");
  assert.deepEqual(body.slice(start, start + expected.length), expected);
});

Deno.test("SKILL.md covers the input forms, the timeout, the MEDIA line and the exit codes", () => {
  for (
    const phrase of [
      "img2-generate - <<'EOF'",
      "--input FILE",
      "--dry-run",
      "--media-line",
      "MEDIA:",
      "timeout_ms",
      "exec",
      "os.execv",
      "diagnosis.retryable",
    ]
  ) {
    assert.ok(BODY.includes(phrase), `SKILL.md mentions ${phrase}`);
  }
  for (const code of ["0", "1", "2", "130", "143"]) {
    assert.match(BODY, new RegExp(`\\| \`${code}\` +\\|`), `exit code ${code} is in the table`);
  }
});

/** Every ```json block of the body, parsed. */
function jsonExamples(): Record<string, unknown>[] {
  return [...BODY.matchAll(/```json\n([\s\S]*?)\n```/g)].map((match) => JSON.parse(match[1]!));
}

function example(predicate: (value: Record<string, unknown>) => boolean): Record<string, unknown> {
  const found = jsonExamples().find(predicate);
  assert.ok(found, "the example is in SKILL.md");
  return found;
}

const DOC_BASE_URL = "https://your-api.example.com/v1";

/** A result as the documentation shows it: the documented base_url and no timing. */
function asDocumented(result: object, baseUrl: string): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...result };
  if (copy.base_url === baseUrl) copy.base_url = DOC_BASE_URL;
  if ("elapsed_ms" in copy) copy.elapsed_ms = 0;
  return copy;
}

/** Runs `fn` with a local upstream that answers every request with `answer()`. */
async function withUpstream(
  answer: () => Response,
  fn: (baseUrl: string, outputDir: string) => Promise<void>,
): Promise<void> {
  const outputDir = await Deno.makeTempDir({ prefix: "img2-skill-test-" });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    await req.text();
    return answer();
  });
  try {
    await fn(`http://127.0.0.1:${server.addr.port}/v1`, outputDir);
  } finally {
    await server.shutdown();
    await Deno.remove(outputDir, { recursive: true });
  }
}

const ORANGE_CAT = {
  prompt: "一只毛茸茸的橘猫坐在窗边,真实摄影风格,阳光柔和,无文字,无水印",
  api_key: "sk-xxxx",
  model: "gpt-image-2",
  size: "1024x1024",
  task_name: "orange-cat-window",
  timeout_ms: 300000,
};

Deno.test("SKILL.md's failure example is what the command answers to the upstream's 502", async () => {
  const documented = example((value) => value.http_status === 502);
  await withUpstream(
    () =>
      Response.json(
        { error: { message: "Upstream request failed", type: "upstream_error" } },
        { status: 502 },
      ),
    async (baseUrl, outputDir) => {
      const result = await generateImage({
        ...ORANGE_CAT,
        base_url: baseUrl,
        output_dir: outputDir,
      });
      assert.deepEqual(asDocumented(result, baseUrl), asDocumented(documented, DOC_BASE_URL));
    },
  );
});

Deno.test("SKILL.md's success example has the fields, in the order, that a success carries", async () => {
  const documented = example((value) => value.ok === true && value.stage === "done");
  const png = encodePng(8, 8, new Uint8Array(8 * 8 * 3).fill(90));
  await withUpstream(
    () =>
      Response.json(
        { data: [{ b64_json: png.toBase64() }], usage: documented.usage },
        { headers: { "x-request-id": "req_skill_test" } },
      ),
    async (baseUrl, outputDir) => {
      const result = await generateImage({
        ...ORANGE_CAT,
        base_url: baseUrl,
        output_dir: outputDir,
      });
      assert.equal(result.ok, true, JSON.stringify(result));
      assert.deepEqual(Object.keys(result), Object.keys(documented));
      for (const [key, value] of Object.entries(documented)) {
        assert.equal(typeof (result as unknown as Record<string, unknown>)[key], typeof value, key);
      }
      assert.match(
        documented.image_path as string,
        /^\/tmp\/generated-images\/orange-cat-window-\d{8}-\d{6}\.png$/,
      );
    },
  );
});

Deno.test("SKILL.md's invalid-input example is what the command answers", async () => {
  const documented = example((value) => value.stage === "input");
  const result = await generateImage({
    prompt: "猫",
    base_url: DOC_BASE_URL,
    api_key: "sk-xxxx",
    model: "gpt-image-2",
    size: "1024*1024",
    task_name: "cat",
    timeout: 300000,
  });
  assert.deepEqual(asDocumented(result, DOC_BASE_URL), asDocumented(documented, DOC_BASE_URL));
  // The command line shown above the example carries the same input.
  assert.ok(BODY.includes(`"size": "1024*1024", "task_name": "cat", "timeout": 300000}'`));
});

Deno.test("SKILL.md's --dry-run example is what the command prints", () => {
  const documented = example((value) => value.dry_run === true);
  const report = dryRunReport(validateParams({
    ...ORANGE_CAT,
    base_url: DOC_BASE_URL,
    size: "1536x1024",
    quality: "high",
    output_format: "jpeg",
    output_compression: 85,
  }));
  const userAgent = /^img2-generate\/[^ ]+ \(Deno [^)]+\)$/;
  const documentedHeaders = (documented.request as { headers: Record<string, string> }).headers;
  assert.match(report.request.headers["User-Agent"]!, userAgent);
  assert.match(documentedHeaders["User-Agent"]!, userAgent);
  report.request.headers["User-Agent"] = documentedHeaders["User-Agent"]!;
  assert.deepEqual(report, documented);
});
