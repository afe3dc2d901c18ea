#!/usr/bin/env -S deno run --no-config --allow-net --allow-read --allow-write --allow-env=HOME
// deno-lint-ignore-file no-console
import { type InputSources, parseInvocation } from "./lib/cli/args.ts";
import { dryRunReport } from "./lib/cli/dry_run.ts";
import { errorMessage, GenerationError } from "./lib/failure/errors.ts";
import { generateFromParams } from "./lib/generate.ts";
import { helpText } from "./lib/cli/help.ts";
import { StopSignals } from "./lib/cli/stop_signals.ts";
import { Stdout } from "./lib/cli/stdout.ts";
import { type GenerationParams, validateParams } from "./lib/params/params.ts";
import {
  callContext,
  failureResult,
  type GenerationResult,
  mediaLine,
  unwrittenExitCode,
  writeResult,
} from "./lib/result.ts";
import { VERSION } from "./lib/shared/version.ts";

const EXIT_FAILURE = 1;
const EXIT_INVALID_INPUT = 2;

export async function main(argv: string[]): Promise<number> {
  const stop = new StopSignals();
  try {
    return await run(argv, stop, new Stdout(stop.signal));
  } catch (error) {
    return unwrittenExitCode(error, stop.exitCode);
  } finally {
    stop.dispose();
  }
}

const INPUT_SOURCES: InputSources = {
  stdin: () => Deno.stdin.readable,
  openFile: async (path) => (await Deno.open(path)).readable,
};

async function run(argv: string[], stop: StopSignals, stdout: Stdout): Promise<number> {
  const print = (result: GenerationResult) => writeResult(result, stdout.write);
  let invocation;
  try {
    invocation = await stop.race(parseInvocation(argv, INPUT_SOURCES));
  } catch (error) {
    if (stop.exitCode !== null) {
      const cancelled = new GenerationError("input", errorMessage(error), { cause: "cancelled" });
      await print(failureResult(cancelled, callContext({})));
      return stop.exitCode;
    }
    await print(failureResult(error, callContext({})));
    return EXIT_INVALID_INPUT;
  }
  if (invocation.help) {
    await stdout.text(helpText());
    return 0;
  }
  if (invocation.version) {
    await stdout.text(`img2-generate ${VERSION}\n`);
    return 0;
  }
  let params: GenerationParams;
  try {
    params = validateParams(invocation.input);
  } catch (error) {
    await print(failureResult(error, callContext(invocation.input)));
    return EXIT_INVALID_INPUT;
  }
  if (invocation.dryRun) {
    let report: string;
    try {
      report = JSON.stringify(dryRunReport(params), null, 2) + "\n";
    } catch (error) {
      await print(failureResult(error, callContext(invocation.input)));
      return EXIT_INVALID_INPUT;
    }
    await stdout.text(report);
    return 0;
  }

  const result = await generateFromParams(params, {
    signal: stop.signal,
    onProgress: Deno.stderr.isTerminal()
      ? (message) => console.error(`img2-generate: ${message}`)
      : undefined,
  }, (result, image) => writeResult(result, stdout.write, params.return_base64 ? image : null));
  if (result.ok) {
    const line = params.media_line ? mediaLine(result.image_path) : null;
    if (line !== null) await stdout.text(line);
    return 0;
  }
  if (result.stage === "input") return EXIT_INVALID_INPUT;
  if (result.diagnosis.category === "cancelled" && stop.exitCode !== null) return stop.exitCode;
  return EXIT_FAILURE;
}

if (import.meta.main) {
  // Deno.exit rather than Deno.exitCode: after a signal, a read of standard input or a write to
  // standard output may still be pending, and it would keep the process alive.
  Deno.exit(await main(Deno.args));
}
