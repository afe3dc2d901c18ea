#!/usr/bin/env -S deno run --no-config --allow-net --allow-read --allow-write --allow-env=HOME
import { batchHelpText } from "./lib/batch/help.ts";
import { LineQueue } from "./lib/batch/line_queue.ts";
import { markInterrupted, runBatch } from "./lib/batch/run.ts";
import { runStatus, statusExitCode } from "./lib/batch/status.ts";
import { resultJsonPieces } from "./lib/batch/summary.ts";
import { VERSION } from "./lib/mod.ts";
import { isWriteAbandoned, Stdout } from "./lib/cli/stdout.ts";
import { unwrittenExitCode } from "./lib/result.ts";
import { StopSignals } from "./lib/cli/stop_signals.ts";

const EXIT_FAILURE = 1;
const EXIT_INVALID_INPUT = 2;
/** --batch-api: some jobs are still at the provider. */
const EXIT_AT_PROVIDER = 3;

export async function main(argv: string[]): Promise<number> {
  const stop = new StopSignals();
  const stdout = new Stdout(stop.signal);
  // Standard error may be a pipe nobody reads: a warning must not hold the run, nor its signal.
  const stderr = new LineQueue(Deno.stderr, stop.signal, () => {});
  try {
    if (argv[0] === "status") return await status(argv.slice(1), stop, stdout);
    const io = {
      stdin: () => Deno.stdin.readable,
      signal: stop.signal,
      warn: (message: string) => stderr.write(`img2-batch: ${message}\n`),
    };
    const outcome = await runBatch(argv, io);
    switch (outcome.kind) {
      case "help":
        await stdout.text(batchHelpText());
        return 0;
      case "version":
        await stdout.text(`img2-batch ${VERSION}\n`);
        return 0;
      case "input_error":
        await stdout.json(outcome.result);
        return stop.exitCode ?? EXIT_INVALID_INPUT;
      case "failed":
        await stdout.json(outcome.result);
        return EXIT_FAILURE;
      case "dry_run":
        await stdout.json(outcome.report);
        return 0;
      case "ran":
        try {
          // In pieces: with many jobs the whole text is tens of megabytes.
          for (const piece of resultJsonPieces(outcome.result)) await stdout.text(piece);
        } catch (error) {
          if (isWriteAbandoned(error)) await markInterrupted(outcome.result, io);
          throw error;
        }
        // A signal that came once the result was written and printed whole changes nothing.
        if (outcome.result.interrupted) return stop.exitCode ?? EXIT_FAILURE;
        if (outcome.result.ok) return 0;
        // --batch-api: jobs still at the provider; a rerun collects them.
        return (outcome.result.counts.submitted ?? 0) > 0 ? EXIT_AT_PROVIDER : EXIT_FAILURE;
    }
  } catch (error) {
    return unwrittenExitCode(error, stop.exitCode);
  } finally {
    await stderr.close();
    stop.dispose();
  }
}

/** `img2-batch status`: reads a run dir, never writes it. */
async function status(argv: string[], stop: StopSignals, stdout: Stdout): Promise<number> {
  const outcome = await runStatus(argv, { stdin: () => Deno.stdin.readable, signal: stop.signal });
  switch (outcome.kind) {
    case "help":
      await stdout.text(batchHelpText());
      return 0;
    case "input_error":
      await stdout.json(outcome.result);
      return stop.exitCode ?? EXIT_INVALID_INPUT;
    case "html":
      await stdout.text(`${outcome.path}\n`);
      return 0;
    case "status":
      await stdout.json(outcome.status);
      return stop.exitCode ?? statusExitCode(outcome.status);
  }
}

if (import.meta.main) {
  // Deno.exit: a read of standard input cut short by a signal would keep the process alive.
  Deno.exit(await main(Deno.args));
}
