import { VERSION } from "../mod.ts";
import {
  DEFAULT_CONCURRENCY,
  DEFAULT_MAX_ATTEMPTS,
  DEFAULT_POLL_SECONDS,
  MIN_POLL_SECONDS,
} from "./options.ts";

export function batchHelpText(): string {
  return `img2-batch ${VERSION}: generate many images, resumably, exactly as img2-generate makes one.

Usage:
  img2-batch JOBS [options] [--PARAM VALUE …]
  img2-batch status RUN_DIR|JOBS [--watch] [--html] [the run's options]
JOBS is a JSONL file (one job per line; blank lines and lines starting with # are ignored), a
JSON array file, or - for standard input. Each job holds img2-generate's parameters (prompt,
size, task_name, …) and optionally an "id". Shared parameters come from --defaults FILE and from
img2-generate's flags (--base-url, --model, --timeout-ms, --output-dir, …): a job's own field
wins over a flag, a flag over --defaults. A missing task_name is {jobs file stem}-{line}.

Options:
  --defaults FILE        JSON object of parameters shared by every job
  --api-key-file FILE    read api_key from FILE (one trailing newline is stripped)
  --concurrency N        at most N requests in flight (default ${DEFAULT_CONCURRENCY}); lowered while rate limited
  --rpm N                start at most N jobs per minute, evenly spaced
  --max-attempts N       requests per job for retryable failures (default ${DEFAULT_MAX_ATTEMPTS}); 429s do not count
  --keep-going           do not stop after auth_failed, quota_exceeded or model_unavailable
  --run-dir DIR          state.json, journal.jsonl and batch_result.json (default
                         {output_dir}/.img2-batch/{jobs file stem})
  --events FILE|-        append one JSON line per event to FILE, or to standard error
  --force                run a changed plan, keeping done jobs whose parameters did not change
  --redo-missing         make again the images of done jobs that have been deleted
  --retry-failed         also rerun jobs that failed for a non-retryable reason
  --skip-invalid         record invalid jobs as failed (invalid_input) and run the rest
  --dry-run              validate and print the plan (key masked); create and send nothing
  --batch-api            send the jobs through the provider's Batch API (OpenAI: half price,
                         answered within 24 h) and wait for them; see docs/batch.md
  --detach               with --batch-api: submit, look once, collect what is finished, exit
                         (3 while jobs are still at the provider; run again to collect)
  --cancel               with --batch-api: cancel the run's open batches, collect what they made
  --poll-seconds N       with --batch-api: look at the batches every N s (default ${DEFAULT_POLL_SECONDS}, at least ${MIN_POLL_SECONDS})
  --help, -h             this text
  --version, -V          the version

status reads a run dir (given, or found from JOBS and the run's own options, as a run finds it)
without changing it, while the run goes or after, and prints one JSON object: whether a run is
live, counts, failure categories, rate, ETA, last events. It needs no key and sends nothing.
  --watch                redraw a one-line summary on standard error until the run ends
  --html                 print the path of the run's contact sheet, index.html
Its exit codes: 0 every job done, 1 some failed or missing, 3 work left (pending, running or at
the provider), 2 not a run dir.

Running the same command again resumes: done jobs are never sent again. Prints one JSON object,
also saved as batch_result.json. Exit codes: 0 every job done, 1 some failed, not started or
missing, 2 invalid input (nothing sent), 3 jobs still at the provider (--batch-api), 129/130/131/143 interrupted by
SIGHUP/SIGINT/SIGQUIT/SIGTERM.
`;
}
