#!/usr/bin/env -S deno run --no-config --allow-net --allow-read --allow-write --allow-env=HOME
// deno-lint-ignore-file no-console
import { batchHelpText } from "./lib/batch/help.ts";
import { runBatch } from "./lib/batch/run.ts";
import { VERSION } from "./lib/mod.ts";
import { type StopSignal, StopSignals } from "./lib/stop_signals.ts";

const EXIT_FAILURE = 1;
const EXIT_INVALID_INPUT = 2;
const EXIT_BY_SIGNAL: Record<StopSignal, number> = {
  SIGHUP: 129,
  SIGINT: 130,
  SIGQUIT: 131,
  SIGTERM: 143,
};

export async function main(argv: string[]): Promise<number> {
  const stop = new StopSignals();
  try {
    const outcome = await runBatch(argv, {
      stdin: () => Deno.stdin.readable,
      signal: stop.signal,
      warn: (message) => console.error(`img2-batch: ${message}`),
    });
    switch (outcome.kind) {
      case "help":
        await writeStdout(batchHelpText());
        return 0;
      case "version":
        await writeStdout(`img2-batch ${VERSION}\n`);
        return 0;
      case "input_error":
        await printJson(outcome.result);
        return stop.received ? EXIT_BY_SIGNAL[stop.received] : EXIT_INVALID_INPUT;
      case "failed":
        await printJson(outcome.result);
        return EXIT_FAILURE;
      case "dry_run":
        await printJson(outcome.report);
        return 0;
      case "ran":
        await printJson(outcome.result);
        if (stop.received) return EXIT_BY_SIGNAL[stop.received];
        return outcome.result.ok ? 0 : EXIT_FAILURE;
    }
  } catch (error) {
    if (error instanceof Deno.errors.BrokenPipe) return EXIT_FAILURE;
    throw error;
  } finally {
    stop.dispose();
  }
}

function printJson(value: unknown): Promise<void> {
  return writeStdout(JSON.stringify(value, null, 2) + "\n");
}

async function writeStdout(text: string): Promise<void> {
  const bytes = new TextEncoder().encode(text);
  let offset = 0;
  while (offset < bytes.length) offset += await Deno.stdout.write(bytes.subarray(offset));
}

if (import.meta.main) {
  // Deno.exit: a read of standard input cut short by a signal would keep the process alive.
  Deno.exit(await main(Deno.args));
}
