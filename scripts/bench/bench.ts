// deno-lint-ignore-file no-console
/**
 * `deno task bench`: how much img2-generate adds on top of the transfer, next to the Python
 * script it replaces and to the shell way, in wall time and peak memory.
 *
 * A local upstream on 127.0.0.1 (scripts/bench/bench_upstream.ts, its own process) serves one prebuilt
 * answer per case: a 1024x1024 picture of about 1.5 MB ("small") and a 4096x4096 PNG of noise,
 * 48 MiB, 64 MiB of base64 ("large"). Every contender is a whole process timed under
 * `/usr/bin/time -v`, run in turn with the others after a warm-up, and checked: the file it
 * saved must hold the image's exact bytes, its JSON must say so. It prints one markdown table of
 * medians and the targets, and writes both as JSON to bench-results/.
 *
 * Then img2-batch (scripts/bench/bench_batch.ts): many jobs against the offline upstream with a
 * generation latency and an images-per-minute limit, next to a shell loop and `xargs -P 20` over
 * img2-generate; and the input rows (scripts/bench/bench_input.ts): validation of hostile input and
 * base64 decoding at two sizes, in process; and img2-batch's start-up (scripts/bench/bench_startup.ts):
 * the time and memory until the first request, for 200 000 jobs and for a resume over a journal of
 * 380 000 jobs (over 512 MiB); and img2-batch --batch-api (scripts/bench/bench_batch_api.ts):
 * collecting an output file of 200 images of 2 MB and submitting 50 000 jobs. IMG2_BENCH_BATCH
 * names another img2-batch bundle.
 *
 * Options: --runs N (default 5), --warmup N (default 1),
 * --only small|large|batch|batch-startup|batch-api|input, --help.
 */
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  BUNDLE,
  bundle,
  bundlePath,
  ENTRIES,
  MAIN,
  ROOT,
  RUN_PERMISSIONS,
} from "../build/build.ts";
import { type BatchMeasurement, measureBatches } from "./bench_batch.ts";
import {
  type BatchApiRow,
  checkBatchApiTargets,
  measureBatchApi,
  renderBatchApiTable,
} from "./bench_batch_api.ts";
import { checkBatchTargets, renderBatchTable } from "./bench_batch_report.ts";
import {
  checkInputTargets,
  type InputMeasurement,
  measureInput,
  renderInputTable,
} from "./bench_input.ts";
import { describeMachine, machineLine, versionOf } from "./bench_machine.ts";
import {
  checkStartupTargets,
  measureStartup,
  renderStartupTable,
  type StartupMeasurement,
} from "./bench_startup.ts";
import {
  type CaseInfo,
  type CaseName,
  checkTargets,
  type ContenderId,
  type Measurement,
  mib,
  renderTable,
  renderTargets,
  type RunRecord,
  summarize,
} from "./bench_report.ts";
import { TIME_BINARY, type TimedRun, timeProcess } from "./bench_time.ts";
import { ANSWER_PATH, startUpstream } from "./bench_upstream.ts";
import { encodePng, renderNoise, renderPicture } from "../mock/png.ts";

/** The Python script compared against: IMG2_BENCH_PYTHON names it, else the copy beside the clone. */
const PYTHON_SCRIPT = Deno.env.get("IMG2_BENCH_PYTHON") ??
  join(ROOT, "..", "shared", "anchors", "img2_generate_only.py");
const RESULTS_DIR = join(ROOT, "bench-results");
const API_KEY = "sk-bench";
const MODEL = "gpt-image-2";
const PROMPT = "A quiet valley at dusk, soft clouds, no text";
const TIMEOUT_MS = 300_000;
/** Start-up runs last some 20 ms, where noise weighs most: they get this many times the runs. */
const STARTUP_RUN_FACTOR = 4;

const HELP =
  `Usage: deno task bench [--runs N] [--warmup N] [--only small|large|batch|batch-startup|batch-api|input]

Times img2-generate (the bundle and main.ts), the Python script and curl | jq | base64 -d
against a local upstream serving a prebuilt answer; img2-batch, a shell loop and xargs -P 20
against the offline upstream with a latency and a rate limit; validation and base64 decoding of
hostile input; img2-batch's time and memory until its first request for 200 000 jobs and for a
resume over a journal of 380 000 jobs; img2-batch --batch-api collecting a 530 MB output file
and submitting 50 000 jobs; and checks the targets.

Options:
  --runs N          Measured runs of every single-image contender (default 5; 4 times that for
                    start-up); each batch run is made once
  --warmup N        Unmeasured runs before them (default 1)
  --only PART       Only the "small" (1024x1024) or the "large" (4096x4096) image case, the
                    "batch" runs, the "batch-startup" runs, the "batch-api" runs or the
                    "input" rows
  -h, --help        Show this help
`;

type ImageCase = Exclude<CaseName, "startup">;
type Part = ImageCase | "batch" | "batch-startup" | "batch-api" | "input";
const PARTS: readonly Part[] = ["small", "large", "batch", "batch-startup", "batch-api", "input"];
const BATCH_NAME = "img2-batch";

const BATCH_NOTES =
  "One run each, against the offline upstream (scripts/mock/mock.ts) in a process of " +
  "its own, started afresh for every run. Wall time and peak RSS are the contender's whole " +
  "process tree's under /usr/bin/time (peak RSS of its largest process); requests and 429s are " +
  "counted in the upstream's log. The shell contenders run the bundle of img2-generate once per " +
  "job, with max_retries 3; the loop runs fewer jobs where all of them would take minutes.";

const STARTUP_NOTES =
  "One run each of the img2-batch bundle against the offline upstream, held in the benchmark's " +
  "process, which notes when the first generation request arrives; the peak RSS until then is " +
  "the batch process's VmHWM at that moment. The run is then stopped with SIGTERM; the whole " +
  "run's peak RSS (from /usr/bin/time) includes writing state.json, index.html and " +
  "batch_result.json for every job. The resume's journal holds, for each of its 380 000 jobs, " +
  "two requests' start and file lines and the end line of a real failure result.";

const BATCH_API_NOTES =
  "One run each of the img2-batch bundle with --batch-api against the offline upstream's Files " +
  "and Batches API, held in the benchmark's process, its batches complete at once. collect: the " +
  "whole run (upload, create, one look, the output file of about 530 MB read and every image " +
  "saved and fsynced), next to curl -o /dev/null of the same file and a Python script reading " +
  "it as the OpenAI SDK leaves it to (the content whole, split into lines, each decoded and " +
  "written). submit: 50 000 jobs written, uploaded and submitted with --detach.";

const TABLE_NOTES =
  "Medians of whole processes. Wall time is taken around /usr/bin/time; peak RSS is its " +
  '"Maximum resident set size", for the pipeline that of its largest process (jq), not the sum. ' +
  "img2-generate also fsyncs the image before it names it; the others do not.";

/** How each case's image is made. Level 1 brings the 1024x1024 picture to about 1.5 MB. */
const CASE_SPECS: Record<ImageCase, {
  width: number;
  height: number;
  level: number;
  render: (width: number, height: number, seed: string) => Uint8Array;
}> = {
  small: { width: 1024, height: 1024, level: 1, render: renderPicture },
  large: { width: 4096, height: 4096, level: 0, render: renderNoise },
};

interface Options {
  runs: number;
  warmup: number;
  cases: ImageCase[];
  batch: boolean;
  startup: boolean;
  batchApi: boolean;
  input: boolean;
}

/** One process to time and the check that its run did the job. */
interface Contender {
  id: ContenderId;
  argv: string[];
  cwd?: string;
  /** Throws when the run's output is wrong; removes what the run saved. */
  verify(run: TimedRun): Promise<void>;
}

interface Tools {
  python: boolean;
  pipeline: boolean;
  floor: boolean;
}

export async function main(args: string[]): Promise<number> {
  let options: Options;
  try {
    const parsed = parseOptions(args);
    if (parsed === null) {
      console.log(HELP);
      return 0;
    }
    options = parsed;
  } catch (error) {
    console.error((error as Error).message);
    console.error("Run with --help for usage");
    return 2;
  }

  const env = childEnv();
  if ((await versionOf([TIME_BINARY, "--version"], env)) === null) {
    console.error(`Cannot time processes: ${TIME_BINARY} (GNU time) is missing`);
    return 1;
  }
  const tools = await findTools(env);
  await ensureBundle();

  const startedAt = new Date();
  const workDir = await Deno.makeTempDir({ prefix: "img2-bench-" });
  const onSignal = () => {
    Deno.removeSync(workDir, { recursive: true });
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", onSignal);
  try {
    const measurements: Measurement[] = [];
    const cases: CaseInfo[] = [];
    if (options.cases.length > 0) {
      progress("start-up: empty deno run and bundle --version");
      const startupOptions = { ...options, runs: options.runs * STARTUP_RUN_FACTOR };
      measurements.push(
        ...await measureAll("startup", startupContenders(workDir), startupOptions, env, workDir),
      );
    }
    for (const name of options.cases) {
      const { info, contenders, stop } = await prepareCase(name, workDir, tools, env);
      cases.push(info);
      try {
        measurements.push(...await measureAll(name, contenders, options, env, workDir));
      } finally {
        await stop();
      }
    }

    let batch: BatchMeasurement[] = [];
    if (options.batch) {
      const batchBundle = batchBundlePath();
      if (batchBundle === null) progress(`${BATCH_NAME} is not built here: only the shell runs`);
      batch = await measureBatches({
        batchBundle,
        generateBundle: BUNDLE,
        env,
        workDir,
        progress,
      });
    }
    let startup: StartupMeasurement[] = [];
    if (options.startup) {
      const batchBundle = batchBundlePath();
      if (batchBundle === null) progress(`${BATCH_NAME} is not built here: no start-up runs`);
      else startup = await measureStartup({ batchBundle, env, workDir, progress });
    }
    let batchApi: BatchApiRow[] = [];
    if (options.batchApi) {
      const batchBundle = batchBundlePath();
      if (batchBundle === null) progress(`${BATCH_NAME} is not built here: no Batch API runs`);
      else {
        batchApi = await measureBatchApi({
          batchBundle,
          env,
          workDir,
          progress,
          python: tools.python,
          curl: tools.floor,
        });
      }
    }
    const input: InputMeasurement[] = options.input ? await measureInput(progress) : [];

    const machine = await describeMachine(env);
    const table = measurements.length === 0 ? "" : renderTable(measurements, cases);
    const batchTable = batch.length === 0 ? "" : renderBatchTable(batch);
    const startupTable = startup.length === 0 ? "" : renderStartupTable(startup);
    const batchApiTable = batchApi.length === 0 ? "" : renderBatchApiTable(batchApi);
    const inputTable = input.length === 0 ? "" : renderInputTable(input);
    const targets = [
      ...checkTargets(measurements, cases),
      ...options.batch ? checkBatchTargets(batch) : [],
      ...checkStartupTargets(startup),
      ...checkBatchApiTargets(batchApi),
      ...checkInputTargets(input),
    ];
    for (
      const [text, notes] of [
        [table, TABLE_NOTES],
        [batchTable, BATCH_NOTES],
        [startupTable, STARTUP_NOTES],
        [batchApiTable, BATCH_API_NOTES],
        [inputTable, ""],
      ]
    ) {
      if (text === "") continue;
      console.log(text);
      console.log();
      if (notes !== "") {
        console.log(notes);
        console.log();
      }
    }
    console.log(`Machine: ${machineLine(machine)}`);
    console.log();
    console.log("Targets:");
    console.log(renderTargets(targets));

    const report = {
      date: startedAt.toISOString(),
      options: {
        runs: options.runs,
        warmup: options.warmup,
        cases: options.cases,
        batch: options.batch,
        startup: options.startup,
        batch_api: options.batchApi,
        input: options.input,
      },
      machine,
      machine_line: machineLine(machine),
      cases,
      measurements,
      batch,
      startup,
      batch_api: batchApi,
      input,
      targets,
      table,
      batch_table: batchTable,
      startup_table: startupTable,
      batch_api_table: batchApiTable,
      input_table: inputTable,
      notes: TABLE_NOTES,
      batch_notes: BATCH_NOTES,
      startup_notes: STARTUP_NOTES,
      batch_api_notes: BATCH_API_NOTES,
    };
    const written = await writeReport(report, startedAt);
    console.log();
    console.log(`Wrote ${written}`);
    return 0;
  } catch (error) {
    console.error(`bench: ${(error as Error).message}`);
    return 1;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    await Deno.remove(workDir, { recursive: true });
  }
}

function parseOptions(args: string[]): Options | null {
  const { values } = parseArgs({
    args,
    options: {
      runs: { type: "string" },
      warmup: { type: "string" },
      only: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return null;
  const count = (name: string, text: string | undefined, fallback: number, min: number) => {
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!/^\d+$/.test(text) || value < min) {
      throw new Error(`Cannot use --${name} "${text}": expected an integer of at least ${min}`);
    }
    return value;
  };
  const only = values.only;
  if (only !== undefined && !PARTS.includes(only as Part)) {
    throw new Error(
      `Cannot use --only "${only}": expected ${PARTS.map((p) => `"${p}"`).join(", ")}`,
    );
  }
  const parts = only === undefined ? PARTS : [only as Part];
  return {
    runs: count("runs", values.runs, 5, 1),
    warmup: count("warmup", values.warmup, 1, 0),
    cases: parts.filter((part): part is ImageCase => part === "small" || part === "large"),
    batch: parts.includes("batch"),
    startup: parts.includes("batch-startup"),
    batchApi: parts.includes("batch-api"),
    input: parts.includes("input"),
  };
}

/**
 * The environment of every process started: no proxy variables (so nothing leaves 127.0.0.1),
 * no update check, and what the tools need to find themselves and their caches.
 */
function childEnv(): Record<string, string> {
  const env: Record<string, string> = {
    DENO_NO_UPDATE_CHECK: "1",
    NO_COLOR: "1",
    NO_PROXY: "127.0.0.1",
    no_proxy: "127.0.0.1",
  };
  for (const name of ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME", "TMPDIR", "LANG", "LC_ALL"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  return env;
}

async function findTools(env: Record<string, string>): Promise<Tools> {
  const has = async (argv: string[]) => (await versionOf(argv, env)) !== null;
  const python = await has(["python3", "--version"]) && await exists(PYTHON_SCRIPT);
  const curl = await has(["curl", "--version"]);
  const pipeline = curl && await has(["jq", "--version"]) && await has(["base64", "--version"]) &&
    await has(["bash", "--version"]);
  if (!python) progress(`python3 or ${PYTHON_SCRIPT} is missing: the Python script is left out`);
  if (!pipeline) progress("curl, jq, base64 or bash is missing: the shell pipeline is left out");
  return { python, pipeline, floor: curl };
}

/** The img2-batch bundle measured: IMG2_BENCH_BATCH, else this project's, if it builds one. */
function batchBundlePath(): string | null {
  const entry = ENTRIES.find((candidate) => candidate.name === BATCH_NAME);
  return Deno.env.get("IMG2_BENCH_BATCH") ?? (entry === undefined ? null : bundlePath(entry));
}

/** Builds every bundle that is missing or older than any of its sources. */
async function ensureBundle(): Promise<void> {
  let newest = 0;
  for (const entry of ENTRIES) newest = Math.max(newest, await mtimeOf(entry.main) ?? 0);
  newest = Math.max(newest, await newestIn(join(ROOT, "lib")));
  for (const entry of ENTRIES) {
    const built = await mtimeOf(bundlePath(entry));
    if (built !== null && built >= newest) continue;
    progress(`${built === null ? "building" : "rebuilding"} the ${entry.name} bundle`);
    await bundle(bundlePath(entry), entry);
  }
}

/** The latest modification time of any file under `dir`. */
async function newestIn(dir: string): Promise<number> {
  let newest = 0;
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) newest = Math.max(newest, await newestIn(path));
    else if (entry.isFile) newest = Math.max(newest, await mtimeOf(path) ?? 0);
  }
  return newest;
}

async function mtimeOf(path: string): Promise<number | null> {
  try {
    return (await Deno.stat(path)).mtime?.getTime() ?? null;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

async function exists(path: string): Promise<boolean> {
  return (await mtimeOf(path)) !== null;
}

function startupContenders(workDir: string): Contender[] {
  const empty = join(workDir, "empty.js");
  Deno.writeTextFileSync(empty, "");
  const decoder = new TextDecoder();
  return [
    {
      id: "empty",
      argv: [Deno.execPath(), "run", "--no-config", empty],
      verify(run) {
        expectExit(run, 0);
        if (run.stdout.length !== 0) throw new Error("The empty program printed something");
        return Promise.resolve();
      },
    },
    {
      id: "version",
      argv: [Deno.execPath(), "run", "--no-config", ...RUN_PERMISSIONS, BUNDLE, "--version"],
      verify(run) {
        expectExit(run, 0);
        const text = decoder.decode(run.stdout);
        if (!text.startsWith("img2-generate ")) throw new Error(`Unexpected version: ${text}`);
        return Promise.resolve();
      },
    },
  ];
}

/**
 * Makes the case's image and answer, starts the upstream serving it, and lists the contenders,
 * each with its own output folder.
 */
async function prepareCase(
  name: ImageCase,
  workDir: string,
  tools: Tools,
  env: Record<string, string>,
): Promise<{ info: CaseInfo; contenders: Contender[]; stop: () => Promise<void> }> {
  const spec = CASE_SPECS[name];
  progress(`${name}: rendering a ${spec.width}x${spec.height} PNG`);
  const image = encodePng(
    spec.width,
    spec.height,
    spec.render(spec.width, spec.height, `bench-${name}`),
    { level: spec.level },
  );
  const base64 = image.toBase64();
  const answer = answerBytes(base64);
  const caseDir = join(workDir, name);
  await Deno.mkdir(caseDir);
  const answerPath = join(caseDir, "answer.json");
  await Deno.writeFile(answerPath, answer);
  const eventsPath = join(caseDir, "answer.sse");
  await Deno.writeFile(eventsPath, eventStreamBytes(base64));
  const requestPath = join(caseDir, "request.json");
  await Deno.writeTextFile(
    requestPath,
    JSON.stringify({
      model: MODEL,
      prompt: PROMPT,
      size: `${spec.width}x${spec.height}`,
      n: 1,
      response_format: "b64_json",
    }),
  );
  const info: CaseInfo = {
    name,
    width: spec.width,
    height: spec.height,
    png_level: spec.level,
    image_bytes: image.length,
    base64_chars: base64.length,
    answer_bytes: answer.length,
  };
  progress(
    `${name}: ${mib(image.length)} MiB image, ${
      mib(answer.length)
    } MiB answer; starting the upstream`,
  );

  const upstream = await startUpstream(answerPath, eventsPath, env);
  try {
    await checkUpstream(upstream.baseUrl, answer);
  } catch (error) {
    await upstream.stop();
    throw error;
  }
  const endpoint = `${upstream.baseUrl}/images/generations`;
  const answerLength = answer.length;
  const outDir = (id: ContenderId) => join(caseDir, `out-${id}`);
  const input = (id: ContenderId, extra: Record<string, unknown> = {}) =>
    JSON.stringify({
      prompt: PROMPT,
      base_url: upstream.baseUrl,
      api_key: API_KEY,
      model: MODEL,
      size: `${spec.width}x${spec.height}`,
      task_name: `bench-${id}`,
      timeout_ms: TIMEOUT_MS,
      output_dir: outDir(id),
      ...extra,
    });
  const curlRequest = [
    "-X",
    "POST",
    "-H",
    "Content-Type: application/json",
    "-H",
    `Authorization: Bearer ${API_KEY}`,
    "--data-binary",
    `@${requestPath}`,
  ];
  const denoRun = [Deno.execPath(), "run"];

  const contenders: Contender[] = [
    {
      id: "bundle",
      argv: [...denoRun, "--no-config", ...RUN_PERMISSIONS, BUNDLE, input("bundle")],
      verify: (run) => verifyResult(run, image, outDir("bundle")),
    },
    {
      id: "main",
      argv: [...denoRun, ...RUN_PERMISSIONS, MAIN, input("main")],
      cwd: ROOT,
      verify: (run) => verifyResult(run, image, outDir("main")),
    },
    {
      id: "bundle_stream",
      argv: [
        ...denoRun,
        "--no-config",
        ...RUN_PERMISSIONS,
        BUNDLE,
        input("bundle_stream", { stream: true }),
      ],
      verify: (run) => verifyResult(run, image, outDir("bundle_stream")),
    },
  ];
  if (name === "large") {
    contenders.push({
      id: "bundle_b64",
      argv: [
        ...denoRun,
        "--no-config",
        ...RUN_PERMISSIONS,
        BUNDLE,
        input("bundle_b64", { return_base64: true }),
      ],
      verify: (run) => verifyResult(run, image, outDir("bundle_b64"), base64),
    });
  }
  if (tools.python) {
    contenders.push({
      id: "python",
      argv: ["python3", PYTHON_SCRIPT, input("python")],
      verify: (run) => verifyResult(run, image, outDir("python")),
    });
  }
  if (tools.pipeline) {
    const saved = join(caseDir, "pipeline.png");
    contenders.push({
      id: "pipeline",
      argv: [
        "bash",
        "-c",
        'set -o pipefail; curl -s "${@:3}" "$1" | jq -r ".data[0].b64_json" | base64 -d > "$2"',
        "bench",
        endpoint,
        saved,
        ...curlRequest,
      ],
      async verify(run) {
        expectExit(run, 0);
        await expectFile(saved, image);
        await Deno.remove(saved);
      },
    });
  }
  if (tools.floor) {
    contenders.push({
      id: "floor",
      argv: [
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{size_download}",
        ...curlRequest,
        endpoint,
      ],
      verify(run) {
        expectExit(run, 0);
        const said = new TextDecoder().decode(run.stdout);
        if (said !== `200 ${answerLength}`) {
          throw new Error(`curl received "${said}", expected "200 ${answerLength}"`);
        }
        return Promise.resolve();
      },
    });
  }
  return { info, contenders, stop: upstream.stop };
}

/** The answer an images endpoint gives, as bytes: the base64 is written once, not copied. */
function answerBytes(base64: string): Uint8Array<ArrayBuffer> {
  const head = `{"created":${Math.floor(Date.now() / 1000)},"data":[{"b64_json":"`;
  return framedBytes(head, base64, `"}]}`);
}

/** The same image streamed, as OpenAI sends it: one completed event, its image in one line. */
function eventStreamBytes(base64: string): Uint8Array<ArrayBuffer> {
  const type = "image_generation.completed";
  const head = `event: ${type}\ndata: {"type":"${type}","b64_json":"`;
  const tail = `","created_at":${Math.floor(Date.now() / 1000)},"usage":{"total_tokens":1}}\n\n`;
  return framedBytes(head, base64, tail);
}

function framedBytes(head: string, base64: string, tail: string): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(head.length + base64.length + tail.length);
  const encoder = new TextEncoder();
  encoder.encodeInto(head, bytes);
  encoder.encodeInto(base64, bytes.subarray(head.length));
  encoder.encodeInto(tail, bytes.subarray(head.length + base64.length));
  return bytes;
}

/** The upstream's GET route must give the very bytes it was handed. */
async function checkUpstream(baseUrl: string, answer: Uint8Array): Promise<void> {
  const response = await fetch(new URL(ANSWER_PATH, baseUrl));
  const body = new Uint8Array(await response.arrayBuffer());
  if (!response.ok || !equalBytes(body, answer)) {
    throw new Error(`The benchmark upstream serves a wrong answer (HTTP ${response.status})`);
  }
}

/**
 * Runs every contender `warmup` times, then `runs` times, one after the other in turn so that
 * drift on the machine touches them all alike. Every run is checked.
 */
async function measureAll(
  caseName: CaseName,
  contenders: readonly Contender[],
  options: Options,
  env: Record<string, string>,
  workDir: string,
): Promise<Measurement[]> {
  const reportPath = join(workDir, "time-report.txt");
  const records = new Map<ContenderId, RunRecord[]>(contenders.map((c) => [c.id, []]));
  for (let round = 0; round < options.warmup + options.runs; round++) {
    const warm = round < options.warmup;
    const which = warm
      ? `warm-up ${round + 1}/${options.warmup}`
      : `run ${round - options.warmup + 1}/${options.runs}`;
    progress(`${caseName}: ${which}`);
    for (const contender of contenders) {
      const run = await timeProcess(contender.argv, { env, cwd: contender.cwd, reportPath });
      try {
        await contender.verify(run);
      } catch (error) {
        const stderr = new TextDecoder().decode(run.stderr).trim().slice(-2000);
        throw new Error(
          `${caseName}: ${contender.id} did not do the job: ${(error as Error).message}` +
            (stderr === "" ? "" : `\n${stderr}`),
        );
      }
      if (warm) continue;
      records.get(contender.id)!.push({
        wall_ms: Math.round(run.wallMs * 10) / 10,
        max_rss_kib: run.maxRssKiB,
        user_s: run.userS,
        system_s: run.systemS,
      });
    }
  }
  return contenders.map((c) =>
    summarize(caseName, c.id, displayCommand(c.argv), records.get(c.id)!)
  );
}

/**
 * Checks a run of img2-generate or of the Python script: exit 0, a JSON result that is ok and
 * names a file in `outDir` holding exactly `image`, nothing else left there, and with
 * `base64`, a `b64` field equal to it. Removes the file.
 */
async function verifyResult(
  run: TimedRun,
  image: Uint8Array,
  outDir: string,
  base64?: string,
): Promise<void> {
  expectExit(run, 0);
  const text = new TextDecoder().decode(run.stdout);
  let result: Record<string, unknown>;
  try {
    result = JSON.parse(text);
  } catch {
    throw new Error(`Its output is not JSON: ${text.slice(0, 300)}`);
  }
  if (result.ok !== true || typeof result.image_path !== "string") {
    throw new Error(`Its result is not a success: ${text.slice(0, 600)}`);
  }
  if (result.bytes !== image.length) {
    throw new Error(`Its result says ${result.bytes} bytes, the image has ${image.length}`);
  }
  if (base64 !== undefined && result.b64 !== base64) {
    throw new Error("Its b64 field is not the image's base64");
  }
  const names = [];
  for await (const entry of Deno.readDir(outDir)) names.push(entry.name);
  if (names.length !== 1 || join(outDir, names[0]!) !== result.image_path) {
    throw new Error(`Its output folder holds ${JSON.stringify(names)}, expected only the image`);
  }
  await expectFile(result.image_path, image);
  await Deno.remove(result.image_path);
}

function expectExit(run: TimedRun, code: number): void {
  if (run.exitCode !== code) throw new Error(`It exited with ${run.exitCode}, expected ${code}`);
}

async function expectFile(path: string, image: Uint8Array): Promise<void> {
  const saved = await Deno.readFile(path);
  if (!equalBytes(saved, image)) {
    throw new Error(`"${path}" holds ${saved.length} bytes that are not the image's`);
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length &&
    Buffer.from(a.buffer, a.byteOffset, a.length).equals(
      Buffer.from(b.buffer, b.byteOffset, b.length),
    );
}

/** A command as it could be typed, with the long JSON argument elided. */
function displayCommand(argv: readonly string[]): string {
  return argv.map((arg) => {
    const shown = arg.startsWith("{") ? "'<json>'" : arg;
    return /^[\w@%+=:,./<>'-]+$/.test(shown) ? shown : `'${shown.replaceAll("'", `'\\''`)}'`;
  }).join(" ");
}

async function writeReport(report: unknown, date: Date): Promise<string> {
  await Deno.mkdir(RESULTS_DIR, { recursive: true });
  const stamp = date.toISOString().replace(/\.\d+Z$/, "Z").replaceAll(":", "-");
  const path = join(RESULTS_DIR, `bench-${stamp}.json`);
  const text = JSON.stringify(report, null, 2) + "\n";
  await Deno.writeTextFile(path, text);
  await Deno.writeTextFile(join(RESULTS_DIR, "latest.json"), text);
  return path;
}

function progress(message: string): void {
  console.error(`bench: ${message}`);
}

if (import.meta.main) {
  Deno.exitCode = await main(Deno.args);
}
