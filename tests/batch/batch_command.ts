/** Black-box runs of img2-batch, and the small things its tests share. */
import { BATCH, BATCH_BUNDLE, RUN_PERMISSIONS } from "../../scripts/build/build.ts";
import {
  builtArtifact,
  type CommandTarget,
  type RunOptions,
  type RunOutput,
  runTarget,
} from "../_command.ts";
import { type FakeUpstream, PNG_64, TEST_KEY } from "../_fake_upstream.ts";

/** batch.ts through `deno run`, and the bundle through its own shebang once built. */
export const BATCH_TARGETS: CommandTarget[] = [
  {
    name: "batch.ts",
    argv: [Deno.execPath(), "run", "--no-config", ...RUN_PERMISSIONS, BATCH.main],
  },
  { name: "batch bundle", argv: builtArtifact(BATCH_BUNDLE) },
];

/** Declares one test per shipped form of img2-batch; one not built is ignored. */
export function testEachBatchTarget(
  name: string,
  fn: (target: CommandTarget) => Promise<void>,
): void {
  for (const target of BATCH_TARGETS) {
    Deno.test({
      name: `[${target.name}] ${name}`,
      ignore: target.argv === null,
      fn: () => fn(target),
    });
  }
}

export function runBatch(
  target: CommandTarget,
  args: string[],
  options: RunOptions = {},
): Promise<RunOutput> {
  return runTarget(target, args, options);
}

/** The flags every test run shares: the upstream scenario, the key, and where images go. */
export function sharedFlags(upstream: FakeUpstream, scenario: string, dir: string): string[] {
  return [
    "--base-url",
    upstream.baseUrl(scenario),
    "--api-key",
    TEST_KEY,
    "--model",
    "gpt-image-2",
    "--size",
    "1024x1024",
    "--timeout-ms",
    "5000",
    "--output-dir",
    `${dir}/out`,
  ];
}

/** A --batch-api run of `jobs` against the offline Batch API, with the shared flags. */
export function batchArgs(upstream: FakeUpstream, dir: string, jobs: string, ...more: string[]) {
  return [jobs, "--batch-api", ...sharedFlags(upstream, "batch", dir), ...more];
}

/** The paths the upstream was asked for, method first, under the Batch API's prefix. */
export function batchApiCalls(upstream: FakeUpstream): string[] {
  return upstream.requests.filter((r) => r.scenario === "batch")
    .map((r) => `${r.method} ${r.path.replace("/batch/v1", "").replace(/\?.*/, "")}`);
}

/** Writes a JSONL jobs file: objects are written as JSON, strings as they are. */
/** The events an --events file holds, one object per line. */
export async function readEvents(path: string): Promise<Record<string, unknown>[]> {
  return (await Deno.readTextFile(path)).trim().split("\n").map((line) => JSON.parse(line));
}

export async function writeJobs(path: string, lines: (Record<string, unknown> | string)[]) {
  await Deno.writeTextFile(
    path,
    lines.map((line) => typeof line === "string" ? line : JSON.stringify(line)).join("\n") + "\n",
  );
  return path;
}

/** `count` jobs whose prompt is their name, p1 … pN. */
export function promptJobs(count: number): Record<string, unknown>[] {
  return Array.from({ length: count }, (_, i) => ({ prompt: `p${i + 1}`, task_name: `p${i + 1}` }));
}

/** The prompts the upstream was asked for under `scenario`, in order of arrival. */
export function promptsSent(upstream: FakeUpstream, scenario: string): string[] {
  return upstream.requests
    .filter((request) => request.scenario === scenario)
    .map((request) => String(request.body?.prompt));
}

export function imageAnswer(): Response {
  return Response.json({ created: 1, data: [{ b64_json: PNG_64.toBase64() }] });
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A JSON document read loosely, as a test looks into it. */
// deno-lint-ignore no-explicit-any
export function parseJson(text: string): Record<string, any> {
  return JSON.parse(text);
}
