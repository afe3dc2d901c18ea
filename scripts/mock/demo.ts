// deno-lint-ignore-file no-console
/**
 * `deno task demo`: a first run of img2-generate with no key and no network.
 *
 * Starts the offline upstream on a free loopback port, runs `main.ts` as a subprocess with the
 * request on standard input, prints the command's JSON result to standard output, stops the
 * upstream and exits with the command's exit code. Notes for the reader go to standard error.
 *
 * Options: `--prompt TEXT`, `--size WxH`, `--output-dir DIR` (default `demo-output` in the
 * project), `--scenario NAME` to rehearse a failure from scripts/mock/mock_scenarios.ts.
 *
 * `--scenario cut-after-100s` runs the command twice: without streaming, cut by the gateway's
 * 524, then with `stream: true`, which gets the image. The gateway's 100 s are scaled down to
 * `--cut-ms` (3 s by default) so that the demo takes seconds.
 */
import { parseFlags } from "../_flags.ts";
import { fileURLToPath } from "node:url";
import { DEFAULT_CUT_MS, MOCK_MODEL, startMockUpstream } from "./mock.ts";
import { FAILURE_SCENARIO_NAMES, isFailureScenarioName, scenarioModel } from "./mock_scenarios.ts";

const MAIN = fileURLToPath(new URL("../../main.ts", import.meta.url));
const BATCH_MAIN = fileURLToPath(new URL("../../batch.ts", import.meta.url));
/** With --batch-api: the offline batch completes after this long; the run looks every 5 s. */
const DEMO_BATCH_COMPLETE_MS = 1000;
const DEFAULT_OUTPUT_DIR = fileURLToPath(new URL("../../demo-output", import.meta.url));
const DEFAULT_PROMPT = "一只毛茸茸的橘猫坐在窗边，真实摄影风格，阳光柔和，无文字，无水印";
/** What the command is run with, as from a clone. */
export const COMMAND_PERMISSIONS = [
  "--allow-net=127.0.0.1",
  "--allow-read",
  "--allow-write",
  "--allow-env",
];
const CUT_SCENARIO = "cut-after-100s";
const DEMO_CUT_MS = 3000;
const TIMEOUT_MS = 30_000;

const HELP =
  `Usage: deno task demo [--prompt TEXT] [--size WxH] [--output-dir DIR] [--scenario NAME] [--cut-ms MS]

Runs img2-generate against a local offline upstream and prints its JSON result.

Options:
  --prompt TEXT     The prompt (default: the orange cat of the skill document)
  --size WxH        Image size (default 1024x1024)
  --output-dir DIR  Where the image goes (default ${DEFAULT_OUTPUT_DIR})
  --scenario NAME   Rehearse a failure instead: ${FAILURE_SCENARIO_NAMES.join(", ")}
  --batch-api       Run img2-batch through the offline Batch API instead: three jobs are
                    submitted as one batch, waited for (it completes after 1 s; the run
                    looks every 5 s, the least it takes) and collected
  --cut-ms MS       With ${CUT_SCENARIO}: how long the gateway waits, scaled down from
                    ${DEFAULT_CUT_MS} ms to ${DEMO_CUT_MS} ms by default (at most ${TIMEOUT_MS / 3})
  -h, --help        Show this help
`;

async function main(args: string[]): Promise<number> {
  const parsed = parseFlags(args, {
    prompt: { type: "string" },
    size: { type: "string" },
    "output-dir": { type: "string" },
    scenario: { type: "string" },
    "cut-ms": { type: "string" },
    "batch-api": { type: "boolean" },
  }, HELP);
  if (!parsed.ok) return parsed.exitCode;
  const { values } = parsed;
  const scenario = values.scenario;
  if (scenario !== undefined && !isFailureScenarioName(scenario)) {
    console.error(
      `Cannot rehearse scenario "${scenario}": expected one of ${
        FAILURE_SCENARIO_NAMES.join(", ")
      }`,
    );
    return 2;
  }

  const cutMs = values["cut-ms"] === undefined ? DEMO_CUT_MS : Number(values["cut-ms"]);
  if (!Number.isInteger(cutMs) || cutMs < 1 || cutMs > TIMEOUT_MS / 3) {
    console.error(
      `Cannot use --cut-ms "${values["cut-ms"]}": expected an integer from 1 to ${TIMEOUT_MS / 3}`,
    );
    return 2;
  }

  // Stalls would otherwise outlast the 30 s the demo gives the command.
  const mock = startMockUpstream({
    hostname: "127.0.0.1",
    port: 0,
    stallMs: 40_000,
    cutMs,
    batchCompleteMs: DEMO_BATCH_COMPLETE_MS,
  });
  try {
    if (values["batch-api"]) {
      return await batchApiDemo(mock.baseUrl("batch"), values["output-dir"] ?? DEFAULT_OUTPUT_DIR);
    }
    const request = {
      prompt: values.prompt ?? DEFAULT_PROMPT,
      base_url: mock.url,
      api_key: "sk-demo",
      model: scenario === undefined ? MOCK_MODEL : scenarioModel(scenario),
      size: values.size ?? "1024x1024",
      task_name: "demo",
      timeout_ms: TIMEOUT_MS,
      output_dir: values["output-dir"] ?? DEFAULT_OUTPUT_DIR,
    };
    if (scenario === CUT_SCENARIO) return await cutThenStream(request, mock.url, cutMs);
    console.error(
      `offline upstream at ${mock.url}; running img2-generate with model "${request.model}"`,
    );
    const code = await runCommand(request);
    console.error(
      code === 0
        ? "img2-generate finished: the image is at image_path above"
        : `img2-generate exited with code ${code}`,
    );
    return code;
  } finally {
    await mock.shutdown();
  }
}

/**
 * The same generation twice behind a gateway that cuts slow answers: without streaming it is
 * cut, with `stream: true` its events keep the connection alive until the image arrives.
 */
async function cutThenStream(
  request: Record<string, unknown>,
  url: string,
  cutMs: number,
): Promise<number> {
  const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  console.error(
    `offline upstream at ${url}, behind a gateway that cuts an answer not started after ` +
      `${seconds(cutMs)} (Cloudflare waits ${seconds(DEFAULT_CUT_MS)}: the time is scaled ` +
      `down, --cut-ms sets it); the generation takes ${seconds(cutMs * 1.5)}.`,
  );
  console.error(`\n1. Without streaming: the gateway gives up first and answers 524.`);
  const cut = await runCommand(request);
  console.error(`\n2. With "stream": true, "partial_images": 2: events keep the bytes flowing.`);
  const streamed = await runCommand({ ...request, stream: true, partial_images: 2 });
  console.error(
    streamed === 0 && cut === 1
      ? "\nThe first call was cut (diagnosis upstream_failure), the streamed one saved the image."
      : `\nUnexpected: the calls exited with ${cut} and ${streamed}`,
  );
  return streamed === 0 && cut === 1 ? 0 : 1;
}

/** img2-batch --batch-api over three jobs: its events on standard error, its result on stdout. */
async function batchApiDemo(baseUrl: string, outputDir: string): Promise<number> {
  await Deno.mkdir(outputDir, { recursive: true });
  const scratch = await Deno.makeTempDir({ prefix: "img2-demo-batch-api-" });
  const jobs = `${scratch}/jobs.jsonl`;
  const prompts = ["an orange cat by the window", "a fishing boat in fog", "a lighthouse at dusk"];
  await Deno.writeTextFile(
    jobs,
    prompts.map((prompt, i) => JSON.stringify({ prompt, task_name: `batch-${i + 1}` })).join("\n"),
  );
  console.error(
    `offline upstream with a Batch API at ${baseUrl}; img2-batch --batch-api submits, waits, collects`,
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...COMMAND_PERMISSIONS,
      BATCH_MAIN,
      jobs,
      "--batch-api",
      "--poll-seconds",
      "5",
      "--events",
      "-",
      "--run-dir",
      // Its own run dir each time: each demo's offline upstream is new and knows no earlier batch.
      `${outputDir}/.img2-batch/demo-batch-api-${Date.now()}`,
      "--size",
      "1024x1024",
      "--timeout-ms",
      String(TIMEOUT_MS),
      "--base-url",
      baseUrl,
      "--api-key",
      "sk-demo",
      "--model",
      MOCK_MODEL,
      "--output-dir",
      outputDir,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const { code, stdout } = await child.output();
  await Deno.remove(scratch, { recursive: true });
  for (let written = 0; written < stdout.length;) {
    written += await Deno.stdout.write(stdout.subarray(written));
  }
  console.error(code === 0 ? "img2-batch collected every image of the batch" : `exit ${code}`);
  return code;
}

/** Runs main.ts with `request` on standard input; its JSON goes to standard output. */
async function runCommand(request: Record<string, unknown>): Promise<number> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...COMMAND_PERMISSIONS, MAIN, "-"],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(JSON.stringify(request)));
  await writer.close();
  const { code, stdout } = await child.output();
  for (let written = 0; written < stdout.length;) {
    written += await Deno.stdout.write(stdout.subarray(written));
  }
  return code;
}

if (import.meta.main) {
  Deno.exitCode = await main(Deno.args);
}
