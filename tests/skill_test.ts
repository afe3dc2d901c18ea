/**
 * skill/SKILL.md: its frontmatter reads as OpenClaw 2026.9 reads it (YAML with the `yaml` package
 * and core schema, `metadata` as JSON5 under `openclaw`), within the limits its loader and its
 * `skills info` display have; its body says what an agent on OpenClaw needs; it names every
 * parameter and category the command knows, and its examples are what the command prints.
 */
import assert from "node:assert/strict";
// The parsers OpenClaw 2026.9.6 reads skills with, at its versions (pinned in deno.json).
import { isMap, parseDocument } from "yaml";
import JSON5 from "json5";
import { CATEGORIES } from "../lib/failure/diagnosis.ts";
import { categoryTableMarkdown } from "../scripts/build/docs.ts";
import { dryRunReport } from "../lib/cli/dry_run.ts";
import { generateImage } from "../lib/generate.ts";
import { PARAM_NAMES, validateParams } from "../lib/params/params.ts";
import { encodePng } from "../scripts/mock/png.ts";

const SKILL_PATH = new URL("../skill/SKILL.md", import.meta.url);
const SKILL = await Deno.readTextFile(SKILL_PATH);

/** The frontmatter text and the body after it. */
function splitSkill(text: string): { frontmatter: string; body: string } {
  assert.ok(text.startsWith("---\n"), "SKILL.md starts with a --- line");
  const end = text.indexOf("\n---\n", 4);
  assert.ok(end > 0, "the frontmatter ends with a --- line");
  return { frontmatter: text.slice(4, end), body: text.slice(end + 5) };
}

const { body: BODY } = splitSkill(SKILL);

/**
 * The frontmatter's fields as OpenClaw's loader keeps them: each a string, an object or array
 * turned into its JSON text. Unlike OpenClaw, which falls back to reading `key: value` lines, a
 * YAML error fails here.
 */
function openclawFields(block: string): Record<string, string> {
  const doc = parseDocument(block, { schema: "core", prettyErrors: false });
  assert.deepEqual(doc.errors.map((error) => error.message), [], "the frontmatter is valid YAML");
  assert.ok(isMap(doc.contents), "the frontmatter is a YAML mapping");
  const fields: Record<string, string> = {};
  for (const [key, value] of Object.entries(doc.toJS() as Record<string, unknown>)) {
    if (value === null || value === undefined) continue;
    fields[key.trim()] = typeof value === "object" ? JSON.stringify(value) : String(value).trim();
  }
  return fields;
}

/** `metadata.openclaw` as OpenClaw reads it: JSON, or else JSON5. */
function openclawManifest(metadata: string | undefined): Record<string, unknown> {
  assert.ok(metadata, "metadata is present");
  let parsed: unknown;
  try {
    parsed = JSON.parse(metadata);
  } catch {
    parsed = JSON5.parse(metadata);
  }
  const manifest = (parsed as { openclaw?: unknown }).openclaw;
  assert.ok(manifest !== null && typeof manifest === "object", "metadata.openclaw is an object");
  return manifest as Record<string, unknown>;
}

/** The field each install kind needs, and the values OpenClaw's installer accepts for it. */
const INSTALL_KINDS: Record<string, { field: string; pattern: RegExp }> = {
  brew: { field: "formula", pattern: /^[a-z0-9][a-z0-9+._@-]*(\/[a-z0-9][a-z0-9+._@-]*){0,2}$/ },
  node: { field: "package", pattern: /^(@[a-z0-9._-]+\/)?[a-z0-9._-]+(@[a-z0-9^~>=<.*|-]+)?$/ },
  go: { field: "module", pattern: /^[a-zA-Z0-9][a-zA-Z0-9._/-]*@[a-z0-9v._-]+$/ },
  uv: { field: "package", pattern: /^[a-z0-9][a-z0-9._-]*(\[[a-z0-9,._-]+\])?/i },
  download: { field: "url", pattern: /^https?:\/\/\S+$/ },
};

/** Both skills, img2-generate's and img2-batch's, as OpenClaw loads them. */
const SKILLS = [
  { name: "img2-generate", path: "skill/SKILL.md", text: SKILL },
  {
    name: "img2-batch",
    path: "skill/batch/SKILL.md",
    text: await Deno.readTextFile(new URL("../skill/batch/SKILL.md", import.meta.url)),
  },
];

for (const skill of SKILLS) {
  const fields = openclawFields(splitSkill(skill.text).frontmatter);
  const manifest = openclawManifest(fields.metadata);

  Deno.test(`${skill.path} frontmatter: the name, and a one-line description that leads with when to use it`, () => {
    assert.equal(fields.name, skill.name);
    assert.match(fields.name!, /^[a-z0-9]+(?:-[a-z0-9]+)*$/);
    const description = fields.description!;
    const chars = [...description].length;
    // Under context pressure the list of skills keeps only the start of each description.
    assert.ok(chars > 0 && chars < 160, `description has ${chars} characters, fewer than 160`);
    assert.ok(!/[\n<>]/.test(description), "one line, no angle brackets");
    assert.match(description, /^[^:]{4,40}时使用:/, "it starts by saying when to use the skill");
  });

  Deno.test(`${skill.path} frontmatter: homepage, if any, is a URL`, () => {
    if (fields.homepage === undefined) return;
    assert.match(new URL(fields.homepage).protocol, /^https?:$/);
  });

  Deno.test(`${skill.path} frontmatter: it requires the command and claims no key variable the command does not read`, () => {
    const requires = manifest.requires as Record<string, unknown>;
    assert.deepEqual(requires.bins, [skill.name]);
    // The commands take api_key only as a parameter; an environment variable would be ignored.
    assert.equal(requires.env, undefined);
    assert.equal(manifest.primaryEnv, undefined);
    if ("emoji" in manifest) assert.equal(typeof manifest.emoji, "string");
  });

  Deno.test(`${skill.path} frontmatter: the install entry survives OpenClaw's checks and its label shows the fix`, () => {
    const install = manifest.install as Record<string, unknown>[];
    assert.ok(Array.isArray(install) && install.length > 0, "metadata.openclaw.install is a list");
    // `skills info` shows one entry (the one it prefers), unless every entry is a download.
    assert.equal(install.length, 1);
    const [entry] = install as [Record<string, unknown>];
    const kind = INSTALL_KINDS[entry.kind as string];
    assert.ok(kind, `install kind "${entry.kind}" is one OpenClaw knows`);
    assert.match(String(entry[kind.field]), kind.pattern);
    // For kind node, OpenClaw shows its own label; for the others it shows this one.
    assert.notEqual(entry.kind, "node");
    assert.equal(typeof entry.label, "string");
    assert.match(entry.label as string, /deno task install -- --to /);
  });

  Deno.test(`${skill.path} tells the agent timeoutSeconds, the key in a file, and how to install the skill`, () => {
    assert.match(skill.text, /`timeoutSeconds`/);
    assert.match(skill.text, /--(input|api-key-file) FILE/);
    assert.match(skill.text, /openclaw skills install /);
  });
}

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

Deno.test("SKILL.md lists every category with its retryable flag, as lib/failure/diagnosis.ts has it", () => {
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
      "openclaw skills install ",
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

Deno.test("SKILL.md gives the exec tool's timeoutSeconds, longer than timeout_ms", () => {
  const example = /`timeout_ms` 为 `(\d+)` 时,`timeoutSeconds` 至少设为 `(\d+)`/.exec(BODY);
  assert.ok(example, "an example pairs timeout_ms with timeoutSeconds");
  assert.ok(Number(example[2]) * 1000 > Number(example[1]), "timeoutSeconds outlasts timeout_ms");
  // OpenClaw's exec refuses a "timeout" parameter outright.
  assert.ok(!/exec[^\n]*`timeout` 至少/.test(BODY), "no exec `timeout` advice is left");
});

Deno.test("SKILL.md recommends --input FILE for the key, not a heredoc that lands in the transcript", () => {
  const recommended = BODY.split("\n").filter((line) =>
    line.startsWith("#") && line.includes("推荐")
  );
  assert.ok(recommended.some((line) => line.includes("参数文件")), recommended.join("\n"));
  assert.ok(!recommended.some((line) => line.includes("标准输入")), recommended.join("\n"));
  assert.match(BODY, /heredoc[^\n]*会话记录/);
  assert.match(
    BODY,
    /img2-generate --input [^\n]*\\\n *--prompt /,
    "a call with the key in a file",
  );
});

Deno.test("SKILL.md says how an agent on OpenClaw 2026.9 attaches the image", () => {
  // 2026.9 does not read MEDIA: lines from a command's output: the agent attaches the file.
  assert.match(BODY, /不读取命令输出里的 `MEDIA:` 行/);
  assert.match(BODY, /单独写一行 `MEDIA:<image_path>`/);
  assert.match(BODY, /`message` 工具/);
  // With tools.fs.workspaceOnly, only workspace files may be attached.
  assert.match(BODY, /`tools\.fs\.workspaceOnly`[^\n]*`\/tmp\/generated-images`[^\n]*`output_dir`/);
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
