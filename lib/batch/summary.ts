import type { Category, FailureResult, GenerationResult } from "../mod.ts";
import type { BatchSummary } from "./batch_api_journal.ts";
import { jsonPieces } from "./json_pieces.ts";
import type { JobStatus } from "./journal.ts";
import type { JobRecord } from "./state.ts";

export interface BatchResult {
  ok: boolean;
  /** "batch-api": through the provider's Batch API (--batch-api). */
  mode: "sync" | "batch-api";
  interrupted: boolean;
  stopped_reason: Category | null;
  run_dir: string;
  /** `submitted` only in the batch-api mode. */
  counts: Partial<Record<Exclude<JobStatus, "running">, number>>;
  categories: Partial<Record<Category, number>>;
  elapsed_ms: number;
  images_per_minute: number;
  rate_limited_responses: number;
  /**
   * Why the journal could not be written, when it stopped the run: the jobs done since are not in
   * it, and this result is their only record (their images are kept).
   */
  journal_error?: string;
  /** The batch-api mode: each part's batch, as the provider last described it. */
  batches?: BatchSummary[];
  /** The batch-api mode: why the Batch API could not be used (nothing of it was paid). */
  batch_error?: FailureResult;
  jobs: {
    id: string;
    task_name: string | null;
    status: Exclude<JobStatus, "running">;
    attempts: number;
    image_path: string | null;
    adopted?: true;
    reason?: string;
    result: GenerationResult | null;
  }[];
}

/** The run's result: `batch_result.json`, and the command's one JSON object on stdout. */
export function batchResult(
  records: readonly JobRecord[],
  run: {
    runDir: string;
    interrupted: boolean;
    stoppedReason: Category | null;
    elapsedMs: number;
    doneNow: number;
    rateLimitedResponses: number;
    journalError?: string | null;
    batchApi?: { batches: BatchSummary[]; error: FailureResult | null };
  },
): BatchResult {
  const counts: Record<Exclude<JobStatus, "running">, number> = {
    done: 0,
    failed: 0,
    not_started: 0,
    pending: 0,
    missing: 0,
    submitted: 0,
  };
  const categories: Partial<Record<Category, number>> = {};
  const jobs: BatchResult["jobs"] = [];
  for (const record of records) {
    const status = record.status === "running" ? "pending" : record.status;
    counts[status]++;
    if (status === "failed" && record.category !== null) {
      categories[record.category] = (categories[record.category] ?? 0) + 1;
    }
    const job: BatchResult["jobs"][number] = {
      id: record.id,
      task_name: record.taskName,
      status,
      attempts: record.attempts,
      image_path: record.imagePath,
      result: record.result,
    };
    if (record.adopted) job.adopted = true;
    if (record.reason !== null) job.reason = record.reason;
    jobs.push(job);
  }
  const minutes = run.elapsedMs / 60_000;
  const journalError = run.journalError ?? null;
  const { submitted, ...syncCounts } = counts;
  return {
    ok: counts.done === records.length && journalError === null,
    mode: run.batchApi === undefined ? "sync" : "batch-api",
    interrupted: run.interrupted,
    stopped_reason: run.stoppedReason,
    run_dir: run.runDir,
    counts: run.batchApi === undefined && submitted === 0
      ? syncCounts
      : { ...syncCounts, submitted },
    categories,
    elapsed_ms: Math.round(run.elapsedMs),
    images_per_minute: minutes > 0 ? Math.round(run.doneNow / minutes * 10) / 10 : 0,
    rate_limited_responses: run.rateLimitedResponses,
    ...(journalError === null ? {} : { journal_error: journalError }),
    ...(run.batchApi === undefined ? {} : { batches: run.batchApi.batches }),
    ...(run.batchApi?.error ? { batch_error: run.batchApi.error } : {}),
    jobs,
  };
}

/** `JSON.stringify(result, null, 2)` and a newline, in pieces (see jsonPieces). */
export function resultJsonPieces(result: BatchResult): Iterable<string> {
  const { jobs, ...head } = result;
  return jsonPieces(head, "jobs", jobs, 2);
}
