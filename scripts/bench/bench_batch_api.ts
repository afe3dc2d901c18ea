/**
 * The Batch API part of `deno task bench`: img2-batch --batch-api against the offline upstream's
 * Batch API (scripts/mock/mock_batch_api.ts, in this process).
 *
 * - collect: one batch of 200 jobs whose output file holds 200 images of some 2 MB each (about
 *   530 MB of JSONL), read by img2-batch (the whole run: upload, create, one look, the output),
 *   next to a Python script reading it as the SDK does (the whole content, split into lines,
 *   each parsed and decoded) and `curl -o /dev/null` of the same file.
 * - submit: 50 000 jobs cut, written, uploaded and submitted with --detach (exit 3).
 */
import { join } from "node:path";
import { MockUpstream } from "../mock/mock.ts";
import { encodePng } from "../mock/png.ts";
import { fmt, round, skipped, type TargetCheck } from "./bench_report.ts";
import { type TimedRun, timeProcess } from "./bench_time.ts";

const API_KEY = "sk-bench";
const MODEL = "gpt-image-2";
const COLLECT_JOBS = 200;
const SUBMIT_JOBS = 50_000;
const BATCH_API = "img2-batch --batch-api";
const SDK_WAY = "python3, the SDK way";
const CURL = "curl -o /dev/null";
const SUBMIT = "img2-batch --batch-api --detach";
/** A PNG of noise compresses to nothing: about 2 MB at this size. */
const IMAGE_SIDE = 820;

/** Reads a Batch API output as the OpenAI SDK leaves it to: whole, then line by line. */
const SDK_WAY_PY = `import base64, json, os, sys, urllib.request
url, key, out = sys.argv[1], sys.argv[2], sys.argv[3]
request = urllib.request.Request(url, headers={"Authorization": "Bearer " + key})
content = urllib.request.urlopen(request).read()  # client.files.content(id).content
for n, line in enumerate(content.decode().splitlines()):
    if not line.strip():
        continue
    record = json.loads(line)
    image = base64.b64decode(record["response"]["body"]["data"][0]["b64_json"])
    with open(os.path.join(out, record["custom_id"] + ".png"), "wb") as f:
        f.write(image)
`;

export interface BatchApiRow {
  case: "collect" | "submit";
  contender: string;
  jobs: number;
  wall_ms: number;
  max_rss_mib: number;
  exit_code: number;
}

export interface BatchApiOptions {
  batchBundle: string;
  env: Record<string, string>;
  workDir: string;
  progress: (message: string) => void;
  python: boolean;
  curl: boolean;
}

export async function measureBatchApi(options: BatchApiOptions): Promise<BatchApiRow[]> {
  const { workDir, progress } = options;
  const mock = new MockUpstream({ port: 0, batchCompleteMs: 0 });
  const rows: BatchApiRow[] = [];
  try {
    mock.batchApi.image = noisePng(IMAGE_SIDE);
    const baseUrl = mock.baseUrl("batch");
    const run = (argv: string[], name: string) =>
      timeProcess(argv, { env: options.env, reportPath: join(workDir, `${name}.time`) });
    const row = (c: BatchApiRow["case"], contender: string, jobs: number, t: TimedRun) => {
      const measured = {
        case: c,
        contender,
        jobs,
        wall_ms: Math.round(t.wallMs),
        max_rss_mib: Math.round(t.maxRssKiB / 1024 * 10) / 10,
        exit_code: t.exitCode,
      };
      rows.push(measured);
      progress(`${c} ${contender}: ${measured.wall_ms} ms, ${measured.max_rss_mib} MiB`);
    };

    const collectDir = join(workDir, "batch-api-collect");
    await Deno.mkdir(join(collectDir, "out"), { recursive: true });
    const jobs = join(collectDir, "jobs.jsonl");
    await writeJobs(jobs, COLLECT_JOBS);
    progress(`batch-api collect: ${COLLECT_JOBS} images of ${mock.batchApi.image.length} bytes`);
    const batch = await run(
      [options.batchBundle, jobs, "--batch-api", ...common(baseUrl, join(collectDir, "out"))],
      "collect",
    );
    const result = JSON.parse(new TextDecoder().decode(batch.stdout));
    if (result.counts?.done !== COLLECT_JOBS) {
      throw new Error(`img2-batch --batch-api saved ${result.counts?.done} of ${COLLECT_JOBS}`);
    }
    row("collect", BATCH_API, COLLECT_JOBS, batch);
    const url = `${baseUrl}/files/${result.batches[0].output_file_id}/content`;
    if (options.curl) {
      const curl = await run(
        ["curl", "-sS", "-o", "/dev/null", "-H", `Authorization: Bearer ${API_KEY}`, url],
        "curl",
      );
      row("collect", CURL, COLLECT_JOBS, curl);
    }
    if (options.python) {
      const script = join(collectDir, "sdk_way.py");
      await Deno.writeTextFile(script, SDK_WAY_PY);
      await Deno.mkdir(join(collectDir, "py"));
      const python = await run(["python3", script, url, API_KEY, join(collectDir, "py")], "py");
      row("collect", SDK_WAY, COLLECT_JOBS, python);
    }
    await Deno.remove(collectDir, { recursive: true });

    const submitDir = join(workDir, "batch-api-submit");
    await Deno.mkdir(join(submitDir, "out"), { recursive: true });
    const many = join(submitDir, "jobs.jsonl");
    await writeJobs(many, SUBMIT_JOBS);
    mock.batchApi.completeMs = 24 * 3_600_000;
    progress(`batch-api submit: ${SUBMIT_JOBS} jobs, --detach`);
    const submit = await run(
      [
        options.batchBundle,
        many,
        "--batch-api",
        "--detach",
        ...common(baseUrl, join(submitDir, "out")),
      ],
      "submit",
    );
    row("submit", SUBMIT, SUBMIT_JOBS, submit);
    if (submit.exitCode !== 3) {
      throw new Error(`img2-batch --batch-api --detach exited ${submit.exitCode}, not 3`);
    }
    await Deno.remove(submitDir, { recursive: true });
  } finally {
    await mock.shutdown();
  }
  return rows;
}

function common(baseUrl: string, outputDir: string): string[] {
  return [
    "--base-url",
    baseUrl,
    "--api-key",
    API_KEY,
    "--model",
    MODEL,
    "--size",
    "1024x1024",
    "--timeout-ms",
    "300000",
    "--output-dir",
    outputDir,
  ];
}

async function writeJobs(path: string, count: number): Promise<void> {
  const lines = Array.from(
    { length: count },
    (_, i) =>
      JSON.stringify({ prompt: `a quiet valley at dusk, number ${i + 1}`, id: `j${i + 1}` }),
  );
  await Deno.writeTextFile(path, lines.join("\n") + "\n");
}

function noisePng(side: number): Uint8Array {
  const pixels = new Uint8Array(side * side * 3);
  for (let i = 0; i < pixels.length; i += 65536) {
    crypto.getRandomValues(pixels.subarray(i, Math.min(pixels.length, i + 65536)));
  }
  return encodePng(side, side, pixels);
}

/** The targets: against the SDK way and curl, and the memory bounds. */
export function checkBatchApiTargets(rows: readonly BatchApiRow[]): TargetCheck[] {
  const find = (contender: string) => rows.find((row) => row.contender === contender);
  const batch = find(BATCH_API);
  const python = find(SDK_WAY);
  const curl = find(CURL);
  const submit = find(SUBMIT);
  const checks: TargetCheck[] = [];
  const within = (target: string, measured: number, limit: number, unit: string) =>
    checks.push({
      target,
      pass: measured <= limit,
      measured,
      limit,
      unit,
      detail: `${unit === "×" ? measured.toFixed(2) : fmt(measured)}${unit} vs ${
        unit === "×" ? limit.toFixed(1) : fmt(limit)
      }${unit} allowed`,
    });
  if (batch !== undefined) {
    const collect = `collecting ${batch.jobs} images of 2 MB`;
    if (python === undefined) {
      checks.push(skipped(`${collect} at most 0.5× the SDK way's time`, "×"));
    } else {
      within(
        `${collect} at most 0.5× the SDK way's time`,
        round(batch.wall_ms / python.wall_ms, 2),
        0.5,
        "×",
      );
      within(
        `${collect} at most 0.3× the SDK way's peak RSS`,
        round(batch.max_rss_mib / python.max_rss_mib, 2),
        0.3,
        "×",
      );
    }
    if (curl === undefined) checks.push(skipped(`${collect} within 3× curl -o /dev/null`, "×"));
    else {within(
        `${collect} within 3× curl -o /dev/null`,
        round(batch.wall_ms / curl.wall_ms, 2),
        3,
        "×",
      );}
    within(`${collect} peaks at most 150 MiB`, batch.max_rss_mib, 150, " MiB");
  }
  if (submit !== undefined) {
    within(`submitting ${submit.jobs} jobs peaks at most 250 MiB`, submit.max_rss_mib, 250, " MiB");
  }
  return checks;
}

export function renderBatchApiTable(rows: readonly BatchApiRow[]): string {
  const header =
    "| case | contender | jobs | wall (ms) | peak RSS (MiB) |\n|---|---|---:|---:|---:|";
  return [
    header,
    ...rows.map((row) =>
      `| ${row.case} | ${row.contender} | ${row.jobs} | ${row.wall_ms} | ${row.max_rss_mib} |`
    ),
  ].join("\n");
}
