/**
 * The batch part of `deno task bench`: img2-batch against the offline upstream (scripts/mock/mock.ts in
 * a process of its own, started afresh for every run, so every run meets a full rate-limit
 * bucket), next to a plain shell loop over img2-generate and `xargs -P 20` over it.
 *
 * - latency: 200 jobs, each generation taking 1 s, `--concurrency 20`; the ideal is 10 s.
 * - rate: 300 jobs, 1 s each, against 600 images a minute, `--concurrency 32`, without and with
 *   `--rpm 600`; the ideal is 30 s.
 * - throughput: 10 000 and 1 000 jobs of a 16x16 image answered at once, `--concurrency 64`.
 *
 * Every contender is a whole process under `/usr/bin/time -v`; what it saved is counted, and the
 * mock's own log says how many requests it answered and how many of them were 429s.
 */
import { join } from "node:path";
import { RUN_PERMISSIONS } from "../build/build.ts";
import { type MockProcess, spawnMock } from "../mock/mock_process.ts";
import { type TimedRun, timeProcess } from "./bench_time.ts";

export type BatchCaseName = "latency" | "rate" | "throughput";
export type BatchContenderId = "batch" | "batch_rpm" | "xargs" | "loop";

const API_KEY = "sk-bench";
const MODEL = "mock-image-1";
const SIZE = "16x16";
const TIMEOUT_MS = 120_000;
/** img2-generate in the shell contenders retries a 429 this many times, honouring Retry-After. */
const SHELL_MAX_RETRIES = 3;
const XARGS_PARALLEL = 20;

export const BATCH_LABELS: Record<BatchContenderId, string> = {
  batch: "img2-batch",
  batch_rpm: "img2-batch --rpm 600",
  xargs: `xargs -P ${XARGS_PARALLEL} img2-generate`,
  loop: "shell loop over img2-generate",
};

interface CaseSpec {
  name: BatchCaseName;
  summary: string;
  /** The mock's flags */
  mock: string[];
  concurrency: number;
  /** Each contender and how many jobs it runs */
  contenders: { id: BatchContenderId; jobs: number }[];
}

const CASES: CaseSpec[] = [
  {
    name: "latency",
    summary: "1 s per generation, --concurrency 20",
    mock: ["--latency-ms", "1000"],
    concurrency: 20,
    contenders: [
      { id: "batch", jobs: 200 },
      { id: "xargs", jobs: 200 },
      { id: "loop", jobs: 20 },
    ],
  },
  {
    name: "rate",
    summary: "1 s per generation, 600 images per minute, --concurrency 32",
    mock: ["--latency-ms", "1000", "--images-per-minute", "600"],
    concurrency: 32,
    contenders: [
      { id: "batch", jobs: 300 },
      { id: "batch_rpm", jobs: 300 },
      { id: "xargs", jobs: 300 },
    ],
  },
  {
    name: "throughput",
    summary: `${SIZE} image answered at once, --concurrency 64`,
    mock: ["--quiet"],
    concurrency: 64,
    contenders: [
      { id: "batch", jobs: 10_000 },
      { id: "batch", jobs: 1_000 },
      { id: "xargs", jobs: 1_000 },
      { id: "loop", jobs: 200 },
    ],
  },
];

export interface BatchMeasurement {
  case: BatchCaseName;
  case_summary: string;
  contender: BatchContenderId;
  label: string;
  jobs: number;
  /** Images found in the output folder afterwards */
  saved: number;
  exit_code: number;
  wall_ms: number;
  max_rss_mib: number;
  cpu_s: number;
  jobs_per_s: number;
  /** Generation requests the mock answered, and how many with 429; null under `--quiet` */
  requests: number | null;
  rate_limited: number | null;
  /** What img2-batch itself reported, when it ran */
  batch_elapsed_ms: number | null;
  batch_rate_limited: number | null;
}

export interface BatchBenchOptions {
  /** dist/img2-batch.js, or null when img2-batch is not built here */
  batchBundle: string | null;
  /** dist/img2-generate.js */
  generateBundle: string;
  env: Record<string, string>;
  workDir: string;
  progress: (message: string) => void;
}

/** Runs every case once, contender after contender, and returns what was measured. */
export async function measureBatches(options: BatchBenchOptions): Promise<BatchMeasurement[]> {
  const measurements: BatchMeasurement[] = [];
  for (const spec of CASES) {
    for (const { id, jobs } of spec.contenders) {
      if (id.startsWith("batch") && options.batchBundle === null) continue;
      options.progress(`batch ${spec.name}: ${BATCH_LABELS[id]}, ${jobs} jobs`);
      measurements.push(await measureOne(spec, id, jobs, options));
    }
  }
  return measurements;
}

async function measureOne(
  spec: CaseSpec,
  id: BatchContenderId,
  jobs: number,
  options: BatchBenchOptions,
): Promise<BatchMeasurement> {
  const dir = await Deno.makeTempDir({ dir: options.workDir, prefix: `${spec.name}-${id}-` });
  const outputDir = join(dir, "out");
  const mock = await spawnMock(spec.mock, options.env);
  let run: TimedRun;
  try {
    const argv = await contenderArgv(spec, id, jobs, dir, outputDir, mock, options);
    run = await timeProcess(argv, { env: options.env, reportPath: join(dir, "time.txt") });
  } finally {
    await mock.stop();
  }
  const saved = await countImages(outputDir);
  const summary = id.startsWith("batch") ? batchSummary(run.stdout) : null;
  await Deno.remove(dir, { recursive: true });
  if (saved === 0) {
    const stderr = new TextDecoder().decode(run.stderr).trim().slice(-2000);
    throw new Error(`batch ${spec.name}: ${id} saved no image (exit ${run.exitCode})\n${stderr}`);
  }
  const tally = spec.mock.includes("--quiet") ? null : mock.tally();
  return {
    case: spec.name,
    case_summary: spec.summary,
    contender: id,
    label: BATCH_LABELS[id],
    jobs,
    saved,
    exit_code: run.exitCode,
    wall_ms: Math.round(run.wallMs),
    max_rss_mib: Math.round(run.maxRssKiB / 1024 * 10) / 10,
    cpu_s: Math.round((run.userS + run.systemS) * 100) / 100,
    jobs_per_s: Math.round(jobs / (run.wallMs / 1000) * 10) / 10,
    requests: tally?.total ?? null,
    rate_limited: tally === null ? null : tally.byStatus["429"] ?? 0,
    batch_elapsed_ms: summary?.elapsed_ms ?? null,
    batch_rate_limited: summary?.rate_limited_responses ?? null,
  };
}

/** Writes the case's jobs and gives the command line of the contender. */
async function contenderArgv(
  spec: CaseSpec,
  id: BatchContenderId,
  jobs: number,
  dir: string,
  outputDir: string,
  mock: MockProcess,
  options: BatchBenchOptions,
): Promise<string[]> {
  const shared = {
    base_url: mock.url,
    api_key: API_KEY,
    model: MODEL,
    size: SIZE,
    timeout_ms: TIMEOUT_MS,
    output_dir: outputDir,
  };
  const prompt = (i: number) => `A lighthouse on a cliff, study ${i}`;
  const taskName = (i: number) => `${spec.name}-${i}`;
  const lines = Array.from({ length: jobs }, (_, i) => i + 1);
  const deno = [Deno.execPath(), "run", "--no-config", ...RUN_PERMISSIONS];

  if (id === "batch" || id === "batch_rpm") {
    const jobsPath = join(dir, "jobs.jsonl");
    const defaultsPath = join(dir, "defaults.json");
    await Deno.writeTextFile(
      jobsPath,
      lines.map((i) => JSON.stringify({ prompt: prompt(i), task_name: taskName(i) })).join("\n") +
        "\n",
    );
    await Deno.writeTextFile(defaultsPath, JSON.stringify(shared));
    return [
      ...deno,
      options.batchBundle!,
      jobsPath,
      "--defaults",
      defaultsPath,
      "--concurrency",
      String(spec.concurrency),
      "--run-dir",
      join(dir, "run"),
      ...id === "batch_rpm" ? ["--rpm", "600"] : [],
    ];
  }

  const inputsPath = join(dir, "inputs.txt");
  await Deno.writeTextFile(
    inputsPath,
    lines.map((i) =>
      JSON.stringify({
        ...shared,
        prompt: prompt(i),
        task_name: taskName(i),
        max_retries: SHELL_MAX_RETRIES,
      })
    ).join("\n") + "\n",
  );
  const generate = [...deno, options.generateBundle];
  if (id === "xargs") {
    return [
      "bash",
      "-c",
      'xargs -a "$1" -d "\\n" -n 1 -P "$2" "${@:3}" > /dev/null',
      "xargs",
      inputsPath,
      String(XARGS_PARALLEL),
      ...generate,
    ];
  }
  return [
    "bash",
    "-c",
    'while IFS= read -r job; do "${@:2}" "$job" > /dev/null; done < "$1"',
    "loop",
    inputsPath,
    ...generate,
  ];
}

async function countImages(dir: string): Promise<number> {
  let count = 0;
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isFile && entry.name.endsWith(".png")) count++;
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return count;
}

function batchSummary(
  stdout: Uint8Array,
): { elapsed_ms: number; rate_limited_responses: number } | null {
  try {
    const result = JSON.parse(new TextDecoder().decode(stdout));
    return typeof result.elapsed_ms === "number"
      ? { elapsed_ms: result.elapsed_ms, rate_limited_responses: result.rate_limited_responses }
      : null;
  } catch {
    return null;
  }
}
