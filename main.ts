#!/usr/bin/env -S deno run --no-config --allow-net --allow-read --allow-write --allow-env=HOME
// deno-lint-ignore-file no-console
import { type InputSources, parseInvocation } from "./lib/args.ts";
import { dryRunReport } from "./lib/dry_run.ts";
import { errorMessage, GenerationError } from "./lib/errors.ts";
import { generateImage } from "./lib/generate.ts";
import { helpText } from "./lib/help.ts";
import { type StopSignal, StopSignals } from "./lib/stop_signals.ts";
import { type GenerationInput, validateParams } from "./lib/params.ts";
import { callContext, failureResult, type GenerationResult, writeResult } from "./lib/result.ts";
import { VERSION } from "./lib/version.ts";

const EXIT_FAILURE = 1;
const EXIT_INVALID_INPUT = 2;
const EXIT_BY_SIGNAL: Record<StopSignal, number> = { SIGINT: 130, SIGTERM: 143 };

export async function main(argv: string[]): Promise<number> {
  const stop = new StopSignals();
  try {
    return await run(argv, stop);
  } catch (error) {
    // Standard output was closed by its reader: there is no one left to tell.
    if (error instanceof Deno.errors.BrokenPipe) return EXIT_FAILURE;
    throw error;
  } finally {
    stop.dispose();
  }
}

const INPUT_SOURCES: InputSources = {
  stdin: () => Deno.stdin.readable,
  openFile: async (path) => (await Deno.open(path)).readable,
};

async function run(argv: string[], stop: StopSignals): Promise<number> {
  let invocation;
  try {
    invocation = await stop.race(parseInvocation(argv, INPUT_SOURCES));
  } catch (error) {
    if (stop.received) {
      const cancelled = new GenerationError("input", errorMessage(error), { cause: "cancelled" });
      await print(failureResult(cancelled, callContext({})));
      return EXIT_BY_SIGNAL[stop.received];
    }
    await print(failureResult(error, callContext({})));
    return EXIT_INVALID_INPUT;
  }
  if (invocation.help) {
    await writeStdout(helpText());
    return 0;
  }
  if (invocation.version) {
    await writeStdout(`img2-generate ${VERSION}\n`);
    return 0;
  }
  if (invocation.dryRun) {
    try {
      await writeStdout(
        JSON.stringify(dryRunReport(validateParams(invocation.input)), null, 2) + "\n",
      );
      return 0;
    } catch (error) {
      await print(failureResult(error, callContext(invocation.input)));
      return EXIT_INVALID_INPUT;
    }
  }

  const result = await generateImage(invocation.input, {
    signal: stop.signal,
    deferBase64: true,
    onProgress: Deno.stderr.isTerminal()
      ? (message) => console.error(`img2-generate: ${message}`)
      : undefined,
  });
  const output = outputOptions(invocation.input);
  await writeResult(result, writeAll, { base64FromFile: output.returnBase64 });
  if (result.ok) {
    if (output.mediaLine) await writeStdout(`MEDIA:${result.image_path}\n`);
    return 0;
  }
  if (result.stage === "input") return EXIT_INVALID_INPUT;
  if (result.diagnosis.category === "cancelled" && stop.received) {
    return EXIT_BY_SIGNAL[stop.received];
  }
  return EXIT_FAILURE;
}

/** return_base64 and media_line as validated; both off for an invalid input, which fails anyway. */
function outputOptions(input: GenerationInput): { returnBase64: boolean; mediaLine: boolean } {
  try {
    const params = validateParams(input);
    return { returnBase64: params.return_base64, mediaLine: params.media_line };
  } catch {
    return { returnBase64: false, mediaLine: false };
  }
}

function print(result: GenerationResult): Promise<void> {
  return writeResult(result, writeAll);
}

function writeStdout(text: string): Promise<void> {
  return writeAll(new TextEncoder().encode(text));
}

async function writeAll(bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await Deno.stdout.write(bytes.subarray(offset));
}

if (import.meta.main) {
  // Deno.exit rather than Deno.exitCode: after a signal, a read of standard input may still be
  // pending, and it would keep the process alive.
  Deno.exit(await main(Deno.args));
}
