// deno-lint-ignore-file no-console
/**
 * `deno task demo`: a first run of img2-generate with no key and no network.
 *
 * Starts the offline upstream on a free loopback port, runs `main.ts` as a subprocess with the
 * request on standard input, prints the command's JSON result to standard output, stops the
 * upstream and exits with the command's exit code. Notes for the reader go to standard error.
 *
 * Options: `--prompt TEXT`, `--size WxH`, `--output-dir DIR` (default `demo-output` in the
 * project), `--scenario NAME` to rehearse a failure from scripts/mock_scenarios.ts.
 */
import { parseFlags } from "./_flags.ts";
import { fileURLToPath } from "node:url";
import { MOCK_MODEL, startMockUpstream } from "./mock.ts";
import { FAILURE_SCENARIO_NAMES, isFailureScenarioName, scenarioModel } from "./mock_scenarios.ts";

const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));
const DEFAULT_OUTPUT_DIR = fileURLToPath(new URL("../demo-output", import.meta.url));
const DEFAULT_PROMPT = "一只毛茸茸的橘猫坐在窗边，真实摄影风格，阳光柔和，无文字，无水印";

const HELP =
  `Usage: deno task demo [--prompt TEXT] [--size WxH] [--output-dir DIR] [--scenario NAME]

Runs img2-generate against a local offline upstream and prints its JSON result.

Options:
  --prompt TEXT     The prompt (default: the orange cat of the skill document)
  --size WxH        Image size (default 1024x1024)
  --output-dir DIR  Where the image goes (default ${DEFAULT_OUTPUT_DIR})
  --scenario NAME   Rehearse a failure instead: ${FAILURE_SCENARIO_NAMES.join(", ")}
  -h, --help        Show this help
`;

async function main(args: string[]): Promise<number> {
  const parsed = parseFlags(args, {
    prompt: { type: "string" },
    size: { type: "string" },
    "output-dir": { type: "string" },
    scenario: { type: "string" },
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

  // Stalls would otherwise outlast the 30 s the demo gives the command.
  const mock = startMockUpstream({ hostname: "127.0.0.1", port: 0, stallMs: 40_000 });
  try {
    const request = {
      prompt: values.prompt ?? DEFAULT_PROMPT,
      base_url: mock.url,
      api_key: "sk-demo",
      model: scenario === undefined ? MOCK_MODEL : scenarioModel(scenario),
      size: values.size ?? "1024x1024",
      task_name: "demo",
      timeout_ms: 30_000,
      output_dir: values["output-dir"] ?? DEFAULT_OUTPUT_DIR,
    };
    console.error(
      `offline upstream at ${mock.url}; running img2-generate with model "${request.model}"`,
    );

    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-net=127.0.0.1",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        MAIN,
        "-",
      ],
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

if (import.meta.main) {
  Deno.exitCode = await main(Deno.args);
}
