#!/usr/bin/env -S deno run --no-config --allow-net --allow-read --allow-write --allow-env=HOME
// deno-lint-ignore-file no-console
import { parseInvocation } from "./lib/args.ts";
import { dryRunReport } from "./lib/dry_run.ts";
import { Cancelled } from "./lib/deadline.ts";
import { errorMessage, GenerationError } from "./lib/errors.ts";
import { generateImage } from "./lib/generate.ts";
import { helpText } from "./lib/help.ts";
import { type GenerationInput, validateParams } from "./lib/params.ts";
import { callContext, failureResult, type GenerationResult, writeResult } from "./lib/result.ts";
import { VERSION } from "./lib/version.ts";

const EXIT_FAILURE = 1;
const EXIT_INVALID_INPUT = 2;
const EXIT_BY_SIGNAL = { SIGINT: 130, SIGTERM: 143 } as const;
type StopSignal = keyof typeof EXIT_BY_SIGNAL;

/**
 * SIGINT and SIGTERM, listened to from the start until the last byte is written: before the
 * generation they cancel reading the parameters, during it they abort the request, and after it
 * they let the result be written whole.
 */
class StopSignals {
  readonly #controller = new AbortController();
  readonly #removers: (() => void)[] = [];
  received: StopSignal | null = null;

  constructor() {
    for (const signal of Object.keys(EXIT_BY_SIGNAL) as StopSignal[]) {
      const stop = () => {
        this.received ??= signal;
        this.#controller.abort();
      };
      Deno.addSignalListener(signal, stop);
      this.#removers.push(() => Deno.removeSignalListener(signal, stop));
    }
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** `promise`, or a rejection as soon as a signal arrives. */
  race<T>(promise: Promise<T>): Promise<T> {
    const signal = this.signal;
    return new Promise<T>((resolve, reject) => {
      const onStop = () => reject(new Cancelled("Cancelled while reading the parameters"));
      if (signal.aborted) onStop();
      signal.addEventListener("abort", onStop, { once: true });
      promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onStop));
    });
  }

  dispose(): void {
    for (const remove of this.#removers) remove();
  }
}

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

async function run(argv: string[], stop: StopSignals): Promise<number> {
  let invocation;
  try {
    invocation = await parseInvocation(argv, {
      readStdin: () => stop.race(new Response(Deno.stdin.readable).text()),
      readFile: (path) => stop.race(Deno.readTextFile(path)),
    });
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
