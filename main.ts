#!/usr/bin/env -S deno run --no-config --allow-net --allow-read --allow-write --allow-env=HOME
// deno-lint-ignore-file no-console
import { parseInvocation } from "./lib/args.ts";
import { dryRunReport } from "./lib/dry_run.ts";
import { generateImage } from "./lib/generate.ts";
import { helpText } from "./lib/help.ts";
import { type GenerationInput, validateParams } from "./lib/params.ts";
import { callContext, failureResult, type GenerationResult, writeResult } from "./lib/result.ts";
import { VERSION } from "./lib/version.ts";

const EXIT_FAILURE = 1;
const EXIT_INVALID_INPUT = 2;
const EXIT_BY_SIGNAL = { SIGINT: 130, SIGTERM: 143 } as const;
type StopSignal = keyof typeof EXIT_BY_SIGNAL;

export async function main(argv: string[]): Promise<number> {
  let invocation;
  try {
    invocation = await parseInvocation(argv, {
      readStdin: () => new Response(Deno.stdin.readable).text(),
      readFile: (path) => Deno.readTextFile(path),
    });
  } catch (error) {
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

  const controller = new AbortController();
  let received: StopSignal | null = null;
  const stoppers = (Object.keys(EXIT_BY_SIGNAL) as StopSignal[]).map((signal) => {
    const stop = () => {
      received ??= signal;
      controller.abort();
    };
    Deno.addSignalListener(signal, stop);
    return () => Deno.removeSignalListener(signal, stop);
  });
  const showProgress = Deno.stderr.isTerminal();
  let result: GenerationResult;
  try {
    result = await generateImage(invocation.input, {
      signal: controller.signal,
      deferBase64: true,
      onProgress: showProgress
        ? (message) => console.error(`img2-generate: ${message}`)
        : undefined,
    });
  } finally {
    for (const remove of stoppers) remove();
  }

  const output = outputOptions(invocation.input);
  await writeResult(result, writeAll, { base64FromFile: output.returnBase64 });
  if (result.ok) {
    if (output.mediaLine) await writeStdout(`MEDIA:${result.image_path}\n`);
    return 0;
  }
  if (result.stage === "input") return EXIT_INVALID_INPUT;
  if (result.diagnosis.category === "cancelled" && received) return EXIT_BY_SIGNAL[received];
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
  Deno.exitCode = await main(Deno.args);
}
