/**
 * The start-up part of `deno task bench` (`--only batch-startup`): how long img2-batch takes, and
 * how much memory, before its first request reaches the upstream, for a huge jobs file and for a
 * resume over a huge journal.
 *
 * - startup: 200 000 jobs, none run before.
 * - resume: 380 000 jobs already failed for good in a journal of some 520 MiB (each with its two
 *   requests' start and file lines and a real failure result, as a run writes them), and one job
 *   left to run.
 *
 * The upstream (scripts/mock/mock.ts, in this process) notes the moment the first generation
 * request arrives; the peak RSS until then is the batch process's VmHWM read at that moment. The
 * run is then stopped with SIGTERM, and its whole peak RSS (writing state.json, index.html and
 * batch_result.json for every job included) comes from `/usr/bin/time -v`.
 */
import { join } from "node:path";
import { RUN_PERMISSIONS } from "../build/build.ts";
import { MockUpstream } from "../mock/mock.ts";
import { generateImage } from "../../lib/mod.ts";
import { parseTimeReport, TIME_BINARY } from "./bench_time.ts";
import { fmt, round, type TargetCheck } from "./bench_report.ts";

export type StartupCaseName = "startup" | "resume";

export interface StartupMeasurement {
  case: StartupCaseName;
  /** Jobs in the jobs file */
  jobs: number;
  /** The journal's size before the run, in MiB (0 for a new run) */
  journal_mib: number;
  /** From the start of the process to the first request's arrival */
  first_request_ms: number;
  /** Peak RSS of the batch process until the first request arrived */
  first_request_rss_mib: number;
  /** Peak RSS of the whole run, stopped by SIGTERM after the first request */
  peak_rss_mib: number;
  exit_code: number;
}

export interface StartupBenchOptions {
  batchBundle: string;
  env: Record<string, string>;
  workDir: string;
  progress: (message: string) => void;
}

export const STARTUP_JOBS = 200_000;
/** Enough jobs for a journal of more than 512 MiB, longer than a string can be. */
export const RESUME_JOBS = 380_000;
/** The targets on this machine: the first request within this time and peak memory. */
export const STARTUP_MAX_MS = 5000;
export const STARTUP_MAX_RSS_MIB = 400;

const API_KEY = "sk-bench-startup-0123";
const MODEL = "mock-image-1";
const ROUTE = "startup";

export async function measureStartup(
  options: StartupBenchOptions,
): Promise<StartupMeasurement[]> {
  const measurements: StartupMeasurement[] = [];
  for (const name of ["startup", "resume"] as const) {
    options.progress(
      `batch start-up: ${name}, ${name === "startup" ? STARTUP_JOBS : RESUME_JOBS + 1} jobs`,
    );
    measurements.push(await measureCase(name, options));
  }
  return measurements;
}

async function measureCase(
  name: StartupCaseName,
  options: StartupBenchOptions,
): Promise<StartupMeasurement> {
  const dir = await Deno.makeTempDir({ dir: options.workDir, prefix: `startup-${name}-` });
  const arrived = Promise.withResolvers<number>();
  await using upstream = new MockUpstream({ port: 0 });
  upstream.route(ROUTE, async () => {
    arrived.resolve(performance.now());
    await new Promise((resolve) => setTimeout(resolve, 50));
    return Response.json({ error: { message: "held", type: "server_error" } }, { status: 503 });
  });
  const shared = {
    base_url: upstream.baseUrl(ROUTE),
    api_key: API_KEY,
    model: MODEL,
    size: "16x16",
    timeout_ms: 120_000,
    output_dir: join(dir, "out"),
  };
  const defaultsPath = join(dir, "defaults.json");
  await Deno.writeTextFile(defaultsPath, JSON.stringify(shared));
  const runDir = join(dir, "run");
  const jobs = name === "startup" ? STARTUP_JOBS : RESUME_JOBS + 1;
  const jobsPath = join(dir, "jobs.jsonl");
  await writeJobs(jobsPath, jobs);
  let journalBytes = 0;
  if (name === "resume") {
    await Deno.mkdir(runDir, { mode: 0o700 });
    journalBytes = await writeJournal(
      join(runDir, "journal.jsonl"),
      RESUME_JOBS,
      await failureResult(upstream, shared),
    );
  }

  const report = join(dir, "time.txt");
  const started = performance.now();
  const child = new Deno.Command(TIME_BINARY, {
    args: [
      "-v",
      "-o",
      report,
      Deno.execPath(),
      "run",
      "--no-config",
      ...RUN_PERMISSIONS,
      options.batchBundle,
      jobsPath,
      "--defaults",
      defaultsPath,
      "--run-dir",
      runDir,
      "--concurrency",
      "1",
    ],
    clearEnv: true,
    env: options.env,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    const batchPid = await childPid(child.pid);
    const firstAt = await Promise.race([
      arrived.promise,
      child.status.then(() => {
        throw new Error(`batch start-up ${name}: img2-batch ended before its first request`);
      }),
    ]);
    const firstRss = await peakRssKiB(batchPid);
    Deno.kill(batchPid, "SIGTERM");
    const status = await child.status;
    const timed = parseTimeReport(await Deno.readTextFile(report));
    return {
      case: name,
      jobs,
      journal_mib: round(journalBytes / 1024 / 1024, 1),
      first_request_ms: Math.round(firstAt - started),
      first_request_rss_mib: round(firstRss / 1024, 1),
      peak_rss_mib: round(timed.maxRssKiB / 1024, 1),
      exit_code: status.success ? 0 : timed.exitCode,
    };
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* already ended */ }
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
}

async function writeJobs(path: string, count: number): Promise<void> {
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  const encoder = new TextEncoder();
  let text = "";
  for (let i = 1; i <= count; i++) {
    text += JSON.stringify({ prompt: `A lighthouse on a cliff, study ${i}`, task_name: `s-${i}` }) +
      "\n";
    if (text.length > 1 << 20 || i === count) {
      await writeAll(file, encoder.encode(text));
      text = "";
    }
  }
}

/** A real failure result, as img2-generate makes it for a refused prompt. */
async function failureResult(
  upstream: MockUpstream,
  shared: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  upstream.route("refuse", () =>
    Response.json({
      error: {
        message:
          "Your request was rejected as a result of our safety system. Your prompt may contain text that is not allowed by our safety system.",
        type: "image_generation_user_error",
        code: "moderation_blocked",
        param: null,
      },
    }, { status: 400, headers: { "x-request-id": "req_0123456789abcdef0123456789abcdef" } }));
  const result = await generateImage({
    ...shared,
    base_url: upstream.baseUrl("refuse"),
    prompt: "A lighthouse on a cliff, study 0",
    task_name: "s-0",
  });
  return result as unknown as Record<string, unknown>;
}

/**
 * `jobs` jobs that failed for good, each after two requests: start, file, start, file, end, as
 * a run writes them. Returns the journal's size.
 */
async function writeJournal(
  path: string,
  jobs: number,
  result: Record<string, unknown>,
): Promise<number> {
  using file = await Deno.open(path, { write: true, createNew: true, mode: 0o600 });
  const encoder = new TextEncoder();
  let size = 0;
  let text = "";
  const time = Date.now() - 3_600_000;
  for (let i = 1; i <= jobs; i++) {
    const id = `s-${i}`;
    for (const attempt of [1, 2]) {
      text += JSON.stringify({ event: "start", time, id, attempt }) + "\n";
      text += JSON.stringify({
        event: "file",
        time,
        id,
        part: `.${id}.0123abcd.img2-part`,
        dev: 2049,
        ino: 1_000_000 + i * 2 + attempt,
      }) + "\n";
    }
    text += JSON.stringify({
      event: "end",
      time,
      id,
      status: "failed",
      attempts: 2,
      category: "content_rejected",
      retryable: false,
      image_path: null,
      params_hash: "0".repeat(64),
      result: { ...result, task_name: id, request_id: `req_${i.toString(16).padStart(32, "0")}` },
    }) + "\n";
    if (text.length > 1 << 20 || i === jobs) {
      const bytes = encoder.encode(text);
      await writeAll(file, bytes);
      size += bytes.length;
      text = "";
    }
  }
  return size;
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await file.write(bytes.subarray(written));
}

/** The process `time` started: its only child, once it has one. */
async function childPid(timePid: number): Promise<number> {
  for (let tries = 0; tries < 1000; tries++) {
    const pid = Number((await output("ps", ["-o", "pid=", "--ppid", String(timePid)])).trim());
    if (Number.isInteger(pid) && pid > 0) return pid;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error("batch start-up: cannot find the img2-batch process under time");
}

/** A process's peak resident set size so far (VmHWM), in KiB. */
async function peakRssKiB(pid: number): Promise<number> {
  // Through cat: Deno lets a script read /proc only with every permission.
  const status = await output("cat", [`/proc/${pid}/status`]);
  const line = status.split("\n").find((candidate) => candidate.startsWith("VmHWM:"));
  if (line === undefined) throw new Error(`Cannot read VmHWM of process ${pid}`);
  return Number(line.replace(/\D+/g, ""));
}

async function output(command: string, args: string[]): Promise<string> {
  const { stdout } = await new Deno.Command(command, { args, stdout: "piped", stderr: "null" })
    .output();
  return new TextDecoder().decode(stdout);
}

export function renderStartupTable(measurements: readonly StartupMeasurement[]): string {
  const lines = [
    "| Case | Jobs | Journal MiB | First request s | Peak RSS MiB until then | Peak RSS MiB, whole run |",
    "|---|--:|--:|--:|--:|--:|",
  ];
  for (const m of measurements) {
    const cells = [
      m.case === "startup" ? "new run" : "resume",
      String(m.jobs),
      m.journal_mib.toFixed(1),
      (m.first_request_ms / 1000).toFixed(2),
      m.first_request_rss_mib.toFixed(1),
      m.peak_rss_mib.toFixed(1),
    ];
    lines.push(`| ${cells.join(" | ")} |`);
  }
  return lines.join("\n");
}

export function checkStartupTargets(measurements: readonly StartupMeasurement[]): TargetCheck[] {
  const startup = measurements.find((m) => m.case === "startup");
  if (startup === undefined) return [];
  const within = (target: string, measured: number, limit: number, unit: string) => ({
    target,
    pass: measured <= limit,
    measured,
    limit,
    unit,
    detail: `${fmt(measured)} ${unit} vs ${fmt(limit)} ${unit} allowed (${
      fmt(Math.abs(limit - measured))
    } ${unit} ${measured <= limit ? "to spare" : "over"})`,
  });
  return [
    within(
      `img2-batch with ${STARTUP_JOBS} jobs sends its first request within ${
        STARTUP_MAX_MS / 1000
      } s`,
      round(startup.first_request_ms / 1000, 2),
      STARTUP_MAX_MS / 1000,
      "s",
    ),
    within(
      `img2-batch with ${STARTUP_JOBS} jobs peaks at most ${STARTUP_MAX_RSS_MIB} MiB until then`,
      startup.first_request_rss_mib,
      STARTUP_MAX_RSS_MIB,
      "MiB",
    ),
  ];
}
