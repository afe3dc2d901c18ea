/**
 * A run through the provider's Batch API (--batch-api): the jobs left to do are cut into parts,
 * each uploaded as a JSONL file and submitted as one batch; the batches are waited for, and
 * their output and error files read line by line into the same images and results a call of
 * img2-generate gives. Every step is journaled the moment it is known, so that a run killed
 * anywhere submits no job twice: a batch whose creation was not journaled is found again by
 * its metadata before any other is created.
 */
import {
  callContext,
  type Category,
  type FailureResult,
  failureResult,
  generateValidated,
  GenerationError,
  type GenerationParams,
  requestBody,
} from "../mod.ts";
import { type Batch, BATCH_ENDPOINT, BatchApi, FINAL_STATUSES, summaryOf } from "./batch_api.ts";
import {
  applyBatchEvent,
  type BatchJournalEvent,
  type BatchReplay,
  type BatchSummary,
  newPart,
  type PartRecord,
  replayBatchParts,
} from "./batch_api_journal.ts";
import { doneWith, type OutputLine, outputLines } from "./batch_api_lines.ts";
import type { Journal } from "./journal.ts";
import type { Monitor } from "./monitor.ts";
import { sleep } from "./pacing.ts";
import type { BatchOptions } from "./options.ts";
import { type JobRecord, markDone, type StateFile, writeAtomically } from "./state.ts";

/** The provider's limits for one batch's input file. */
export const MAX_PART_LINES = 50_000;
export const MAX_PART_BYTES = 200 * 1024 * 1024;
/** The parameters a batch line cannot carry: it is answered whole, once. */
export const LEFT_OUT = ["stream", "partial_images", "save_partials", "max_retries"] as const;
/**
 * A line of an output file held whole, its fields in an unusual order: one answer, its image in
 * base64 and the rest. A line in the usual order is streamed, whatever its size.
 */
const MAX_LINE_BYTES = 400 * 1024 * 1024;
/** Lines of an output file saved at once: a line's memory is its image's, once or twice. */
const LINES_AT_ONCE = 4;
/** Tries of a part's upload and creation, for failures that may pass, and the wait between. */
const SUBMIT_ATTEMPTS = 3;
const SUBMIT_RETRY_MS = 2000;
/**
 * Waits between looks at a batch, after an answer 429 or 5xx or no answer: a batch changes over
 * minutes, and an upstream asking for no wait at all is not asked again in a loop.
 */
const MIN_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 10 * 60_000;
/** The provider's clock and this one may differ; a batch listed this much older is still looked at. */
const CLOCK_SLACK_S = 300;

export interface BatchApiContext {
  options: BatchOptions;
  runDir: string;
  records: JobRecord[];
  journal: Journal;
  journalText: string;
  monitor: Monitor;
  state: StateFile;
  signal: AbortSignal;
  /** Journals a job's end as the sync mode does. */
  journalEnd(record: JobRecord): Promise<void>;
  /** Journals a job's start; `file` ties the image's temporary file to it. */
  journalStart(record: JobRecord): Promise<void>;
  journalFile(
    record: JobRecord,
    file: { name: string; dev: number; ino: number | null },
  ): Promise<void>;
}

export interface BatchApiOutcome {
  /** The category that stopped the run (the Batch API refused or is missing), or null. */
  stoppedReason: Category | null;
  journalFailure: unknown;
  doneNow: number;
  batches: BatchSummary[];
  error: FailureResult | null;
}

/** One part of this run: its record in the journal, its jobs and its batch as last seen. */
interface Part {
  record: PartRecord;
  jobs: JobRecord[];
  api: BatchApi;
  params: GenerationParams;
}

/** What a batch line is, for the dry run. */
export function batchDryRun(records: readonly { params: GenerationParams }[]): unknown {
  return {
    endpoint: BATCH_ENDPOINT,
    completion_window: "24h",
    left_out: LEFT_OUT.filter((name) => records.some((job) => isSet(job.params, name))),
    note:
      `stream, partial_images, save_partials and max_retries are left out: a batch answers each job once, whole`,
  };
}

function isSet(params: GenerationParams, name: (typeof LEFT_OUT)[number]): boolean {
  const value = params[name];
  return name === "max_retries" ? (value as number) > 0 : value !== null && value !== false &&
    value !== undefined;
}

/**
 * Jobs cut, in their order, into parts of at most MAX_PART_LINES lines and MAX_PART_BYTES bytes;
 * `lineBytes` is the size of a job's line, its newline included.
 */
export function cutParts<T>(jobs: Iterable<T>, lineBytes: (job: T) => number): T[][] {
  const parts: T[][] = [];
  let part: T[] = [];
  let bytes = 0;
  for (const job of jobs) {
    const size = lineBytes(job);
    if (part.length >= MAX_PART_LINES || (part.length > 0 && bytes + size > MAX_PART_BYTES)) {
      parts.push(part);
      part = [];
      bytes = 0;
    }
    part.push(job);
    bytes += size;
  }
  if (part.length > 0) parts.push(part);
  return parts;
}

/** The line of a job in a part's input file. */
export function batchLine(id: string, params: GenerationParams): string {
  return JSON.stringify(batchRequest(id, requestBody(params)));
}

/** A job's request in a batch: its body without what a batch cannot carry. */
export function batchRequest(id: string, body: Record<string, unknown>) {
  const { stream: _stream, partial_images: _partialImages, ...kept } = body;
  return { custom_id: id, method: "POST", url: BATCH_ENDPOINT, body: kept };
}

export async function runBatchApi(ctx: BatchApiContext): Promise<BatchApiOutcome> {
  return await new BatchApiRun(ctx).run();
}

class BatchApiRun {
  readonly #ctx: BatchApiContext;
  readonly #replay: BatchReplay;
  readonly #run: string;
  readonly #byId: Map<string, JobRecord>;
  readonly #parts: Part[] = [];
  readonly #seen = new Map<string, Batch>();
  #error: FailureResult | null = null;
  #stoppedReason: BatchApiOutcome["stoppedReason"] = null;
  #journalFailure: unknown = null;
  #doneNow = 0;

  constructor(ctx: BatchApiContext) {
    this.#ctx = ctx;
    this.#replay = replayBatchParts(ctx.journalText);
    this.#run = this.#replay.run ?? crypto.randomUUID();
    this.#byId = new Map(ctx.records.filter((r) => r.job !== null).map((r) => [r.id, r]));
    ctx.state.batches = () => this.#summaries();
  }

  async run(): Promise<BatchApiOutcome> {
    const { options, signal } = this.#ctx;
    await this.#removeTemporaryFiles();
    this.#takeUpParts();
    try {
      if (!options.cancel) {
        this.#makeParts();
        for (const part of this.#parts) {
          if (signal.aborted || this.#error !== null) break;
          if (part.record.batchId === null) await this.#submit(part);
        }
      } else {
        await this.#cancelAll();
      }
      await this.#wait();
    } catch (error) {
      if (!isJournalError(error)) throw error;
      this.#journalFailure = error;
    }
    for (const part of this.#parts) {
      if (part.record.batchId === null && !part.record.collected) {
        for (const job of part.jobs) if (job.status === "submitted") job.status = "pending";
      }
    }
    this.#ctx.state.changed();
    return {
      stoppedReason: this.#stoppedReason,
      journalFailure: this.#journalFailure,
      doneNow: this.#doneNow,
      batches: this.#summaries(),
      error: this.#error,
    };
  }

  /** The open parts of earlier runs: their jobs wait at the provider (or for their upload). */
  #takeUpParts(): void {
    for (const record of this.#replay.parts.values()) {
      if (record.collected) continue;
      const jobs = record.ids.map((id) => this.#byId.get(id)).filter((job) => job !== undefined);
      if (jobs.length === 0) continue;
      const params = jobs[0]!.job!.params;
      this.#parts.push({ record, jobs, params, api: new BatchApi(params, this.#ctx.signal) });
      for (const job of jobs) if (job.status === "pending") markSubmitted(job, record);
    }
    // A job a finished batch answered is not sent again on its own: --retry-failed sends it.
    if (!this.#ctx.options.retryFailed) {
      for (const job of this.#byId.values()) {
        if (job.status === "pending" && job.result !== null && "batch_id" in job.result) {
          job.status = "failed";
        }
      }
    }
  }

  /** Parts for the jobs neither done nor at the provider: by upstream, key and model, cut to size. */
  #makeParts(): void {
    const groups = new Map<string, JobRecord[]>();
    for (const job of this.#byId.values()) {
      if (job.status !== "pending") continue;
      const p = job.job!.params;
      const key = JSON.stringify([p.base_url, p.api_key, p.auth_header, p.extra_headers, p.model]);
      const group = groups.get(key) ?? [];
      if (group.length === 0) groups.set(key, group);
      group.push(job);
    }
    let next = Math.max(0, ...[...this.#replay.parts.keys()].map(Number).filter(Number.isFinite));
    const encoder = new TextEncoder();
    const lineBytes = (job: JobRecord) =>
      encoder.encode(batchLine(job.id, job.job!.params)).length + 1;
    for (const group of groups.values()) {
      for (const jobs of cutParts(group, lineBytes)) {
        const record = newPart(String(++next), jobs.map((job) => job.id));
        const params = jobs[0]!.job!.params;
        this.#parts.push({ record, jobs, params, api: new BatchApi(params, this.#ctx.signal) });
      }
    }
  }

  async #journal(event: BatchJournalEvent): Promise<void> {
    await journaled(this.#ctx.journal.append(event));
    applyBatchEvent(this.#replay, event);
  }

  /**
   * Upload (unless done), then adopt the part's batch if one was made, else create it; a
   * failure that may pass (429, 5xx, no answer) is tried again a few times, each time from what
   * is journaled, so that a create answered but lost is found, not repeated.
   */
  async #submit(part: Part): Promise<void> {
    for (let attempt = 1;; attempt++) {
      const failure = await this.#submitOnce(part);
      if (failure === null || this.#ctx.signal.aborted) return;
      const result = failureResult(failure, callContext(part.params));
      const wait = result.diagnosis.retry_after_ms ?? SUBMIT_RETRY_MS * attempt;
      // Asked to wait longer than a look at a batch ever waits: the part is left to a rerun.
      if (!result.diagnosis.retryable || attempt >= SUBMIT_ATTEMPTS || wait > MAX_BACKOFF_MS) {
        this.#fail(part, failure);
        return;
      }
      await sleep(wait, this.#ctx.signal);
    }
  }

  /** One try of #submit(); what failed, or null. */
  async #submitOnce(part: Part): Promise<unknown> {
    const { record } = part;
    try {
      if (!this.#replay.parts.has(record.part)) {
        await this.#journal({
          event: "batch_part",
          time: Date.now(),
          part: record.part,
          run: this.#run,
          ids: record.ids,
        });
        part.record = this.#replay.parts.get(record.part)!;
      }
      if (part.record.inputFileId === null) {
        const name = `batch-input-${record.part}.jsonl`;
        const path = `${this.#ctx.runDir}/${name}`;
        await writeAtomically(
          path,
          part.jobs.map((job) => batchLine(job.id, job.job!.params) + "\n"),
        );
        const fileId = await part.api.upload(path, name);
        await this.#journal({
          event: "batch_upload",
          time: Date.now(),
          part: record.part,
          input_file_id: fileId,
        });
      }
      const metadata = { img2_batch_run: this.#run, img2_batch_part: record.part };
      const since = Math.floor(part.record.uploadedAt! / 1000) - CLOCK_SLACK_S;
      let batch = await part.api.find(metadata, since);
      const adopted = batch !== null;
      batch ??= await part.api.create(part.record.inputFileId!, metadata);
      await this.#journal({
        event: "batch_created",
        time: Date.now(),
        part: record.part,
        batch_id: batch.id,
        ...(adopted ? { adopted: true as const } : {}),
      });
      this.#seen.set(record.part, batch);
      for (const job of part.jobs) if (job.status === "pending") markSubmitted(job, part.record);
      this.#ctx.monitor.emit({
        event: "batch_submitted",
        part: record.part,
        batch_id: batch.id,
        jobs: part.jobs.length,
        adopted,
      });
      this.#ctx.state.changed();
      return null;
    } catch (error) {
      if (isJournalError(error)) throw error;
      return error;
    }
  }

  /** A failure of the Batch API itself: the run stops, the part's jobs wait, nothing was paid. */
  #fail(part: Part, error: unknown): void {
    if (this.#ctx.signal.aborted) return;
    const result = failureResult(error, callContext(part.params));
    // A batch made there shows the Batch API is there: a 404 later is of that batch, not of it.
    if (result.diagnosis.category === "endpoint_not_found" && part.record.batchId === null) {
      const en = "This upstream has no Batch API; run without --batch-api";
      const zh = "这个上游没有 Batch API,请去掉 --batch-api 再运行";
      result.error = `${en}: ${result.error}`;
      result.diagnosis.human_reason = part.params.lang === "en" ? en : zh;
    }
    this.#error ??= result;
    this.#stoppedReason ??= result.diagnosis.category;
  }

  async #cancelAll(): Promise<void> {
    for (const part of this.#parts) {
      if (this.#ctx.signal.aborted) return;
      try {
        if (part.record.batchId === null && part.record.uploadedAt !== null) {
          const metadata = { img2_batch_run: this.#run, img2_batch_part: part.record.part };
          const found = await part.api.find(
            metadata,
            Math.floor(part.record.uploadedAt / 1000) - CLOCK_SLACK_S,
          );
          if (found !== null) {
            await this.#journal({
              event: "batch_created",
              time: Date.now(),
              part: part.record.part,
              batch_id: found.id,
              adopted: true,
            });
          }
        }
        if (part.record.batchId === null) {
          // Never created: nothing to cancel, its jobs are pending again.
          await this.#journal({
            event: "batch_collected",
            time: Date.now(),
            part: part.record.part,
            released: part.jobs.length,
          });
          for (const job of part.jobs) if (job.status === "submitted") job.status = "pending";
          continue;
        }
        if (part.record.final) continue;
        const batch = await part.api.cancel(part.record.batchId);
        this.#seen.set(part.record.part, batch);
      } catch (error) {
        if (isJournalError(error)) throw error;
        this.#fail(part, error);
      }
    }
  }

  /** Looks at each open batch until all are collected (once with --detach, or until a signal). */
  async #wait(): Promise<void> {
    const { options, signal } = this.#ctx;
    const pollMs = options.pollSeconds * 1000;
    let backoffMs = 0;
    while (!signal.aborted) {
      const open = this.#parts.filter((p) => p.record.batchId !== null && !p.record.collected);
      if (open.length === 0) return;
      const troubles: { part: Part; result: FailureResult }[] = [];
      for (const part of open) {
        if (signal.aborted) return;
        try {
          if (!part.record.final || !this.#seen.has(part.record.part)) {
            const batch = await part.api.get(part.record.batchId!);
            this.#observe(part, batch);
            if (isFinished(batch) && !part.record.final) {
              await this.#journal({
                event: "batch_final",
                time: Date.now(),
                part: part.record.part,
                batch: summaryOf(batch),
              });
            }
          }
          if (part.record.final) await this.#collect(part);
        } catch (error) {
          if (isJournalError(error)) throw error;
          if (signal.aborted) return;
          const result = failureResult(error, callContext(part.params));
          if (!result.diagnosis.retryable) {
            this.#fail(part, error);
            return;
          }
          troubles.push({ part, result });
        }
      }
      this.#progress(true);
      if (options.detach) return;
      // One wait for the round: the longest any of its failed looks calls for.
      backoffMs = troubles.reduce(
        (ms, { result }) => Math.max(ms, pollBackoffMs(backoffMs, pollMs, result.diagnosis)),
        0,
      );
      for (const { part, result } of troubles) {
        this.#ctx.monitor.emit({
          event: "batch_poll_retry",
          part: part.record.part,
          batch_id: part.record.batchId!,
          category: result.diagnosis.category,
          http_status: result.http_status,
          delay_ms: backoffMs,
        });
      }
      if (this.#parts.every((p) => p.record.batchId === null || p.record.collected)) return;
      await sleep(backoffMs > 0 ? backoffMs : pollMs, signal);
    }
  }

  #observe(part: Part, batch: Batch): void {
    const before = this.#seen.get(part.record.part);
    this.#seen.set(part.record.part, batch);
    const counts = JSON.stringify(batch.request_counts);
    if (before?.status === batch.status && JSON.stringify(before.request_counts) === counts) return;
    this.#ctx.monitor.emit({
      event: "batch_status",
      part: part.record.part,
      batch_id: batch.id,
      status: batch.status,
      request_counts: batch.request_counts,
    });
    this.#ctx.state.changed();
  }

  /** Reads a final batch's files into its jobs; those left unanswered are pending again. */
  async #collect(part: Part): Promise<void> {
    const batch = this.#seen.get(part.record.part) ?? part.record.batch!;
    const answered = new Set<string>();
    const ids = new Set(part.record.ids);
    const fileIds = [batch.output_file_id, batch.error_file_id].filter((id) => id !== null);
    for (const fileId of fileIds) {
      const { response, done } = await part.api.content(fileId);
      // A few lines are saved at once: each image's fsync, and the journal's, overlap the next.
      const saving = new Set<Promise<void>>();
      try {
        for await (const line of outputLines(chunksOf(response.body), MAX_LINE_BYTES)) {
          const saved: Promise<void> = this.#takeLine(part, ids, batch.id, line, answered)
            .finally(() => {
              doneWith(line);
              saving.delete(saved);
            });
          saving.add(saved);
          if (saving.size >= LINES_AT_ONCE) await Promise.race(saving);
          if (this.#ctx.signal.aborted) break;
        }
        await Promise.all(saving);
        if (this.#ctx.signal.aborted) return;
      } catch (error) {
        await Promise.allSettled(saving);
        throw error;
      } finally {
        done();
        await response.body?.cancel().catch(() => {});
      }
    }
    if ("errors" in batch) this.#takeErrors(part, batch as Batch);
    for (const job of part.jobs) await this.#settle(job);
    let pending = 0;
    for (const job of part.jobs) {
      if (job.status !== "submitted") continue;
      job.status = "pending";
      job.reason = unansweredReason(batch);
      pending++;
    }
    await this.#journal({
      event: "batch_collected",
      time: Date.now(),
      part: part.record.part,
      released: pending,
    });
    this.#ctx.monitor.emit({
      event: "batch_collected",
      part: part.record.part,
      batch_id: batch.id,
      status: batch.status,
      done: part.jobs.filter((job) => job.status === "done").length,
      failed: part.jobs.filter((job) => job.status === "failed").length,
      pending,
    });
    this.#ctx.state.changed();
  }

  /** A failed batch's errors: those naming a line fail its job with the provider's words. */
  #takeErrors(part: Part, batch: Batch): void {
    for (const error of batch.errors) {
      if (error.line === null) continue;
      const id = part.record.ids[error.line - 1];
      const job = id === undefined ? undefined : this.#byId.get(id);
      if (job === undefined || job.status !== "submitted") continue;
      const message = error.message ?? error.code ?? "refused";
      const failure = new GenerationError(
        "request",
        `The Batch API refused the job's line ${error.line}: ${message}`,
        { upstream: { type: null, code: error.code, message: error.message, param: null } },
      );
      this.#failWith(job, {
        ...failureResult(failure, callContext(job.job!.params)),
        batch_id: batch.id,
      });
    }
  }

  /** Fails a job by what its line said, without reading on. */
  async #failLine(job: JobRecord, batchId: string, failure: GenerationError): Promise<void> {
    const result = failureResult(failure, callContext(job.job!.params));
    this.#failWith(job, { ...result, batch_id: batchId });
    await this.#settle(job);
    this.#ctx.state.changed();
  }

  #failWith(job: JobRecord, result: FailureResult): void {
    Object.assign(job, {
      status: "failed",
      category: result.diagnosis.category,
      retryable: result.diagnosis.retryable,
      result,
      imagePath: null,
      endedAt: Date.now(),
      toJournal: true,
    });
  }

  /** Journals a job the files or the errors ended without an image. */
  async #settle(job: JobRecord): Promise<void> {
    const marked = job as JobRecord & { toJournal?: boolean };
    if (!marked.toJournal) return;
    delete marked.toJournal;
    await journaled(this.#ctx.journalEnd(job));
    this.#ctx.monitor.emit({
      event: "job_failed",
      id: job.id,
      task_name: job.taskName,
      attempts: job.attempts,
      category: job.category!,
      error: (job.result as FailureResult).error,
    });
  }

  async #takeLine(
    part: Part,
    ids: ReadonlySet<string>,
    batchId: string,
    line: OutputLine,
    answered: Set<string>,
  ) {
    const ignore = (reason: string) =>
      this.#ctx.monitor.emit({
        event: "batch_line_ignored",
        part: part.record.part,
        batch_id: batchId,
        line: line.number,
        custom_id: line.customId,
        reason,
      });
    if (line.problem !== null) return ignore(line.problem);
    const id = line.customId;
    const job = id === null ? undefined : this.#byId.get(id);
    if (job === undefined || !ids.has(id!)) {
      return ignore("its custom_id is none of this batch's jobs");
    }
    if (answered.has(id!)) return ignore("a second line for the same job");
    answered.add(id!);
    // Answered already, by this file read before the run was stopped.
    if (job.status !== "submitted") return;
    const params = job.job!.params;
    if (line.body === null) {
      const code = typeof line.error?.code === "string" ? line.error.code : null;
      // Not run: the batch ended (expired or cancelled) before it came to this job.
      if (code === "batch_expired" || code === "batch_cancelled") return;
      if (line.error === null) return ignore("the line has neither a response body nor an error");
      const message = typeof line.error.message === "string" ? line.error.message : code;
      return await this.#failLine(
        job,
        batchId,
        new GenerationError(
          "request",
          `The Batch API answered the job with an error: ${message ?? "no message"}`,
          { upstream: { type: null, code, message, param: null }, requestId: line.requestId },
        ),
      );
    }
    const status = line.statusCode;
    // No status an answer with a body can have: nothing of the body is believed.
    if (status === null || status < 200 || status > 599 || [204, 205, 304].includes(status)) {
      return await this.#failLine(
        job,
        batchId,
        new GenerationError(
          "response",
          `The Batch API's line for the job has ${
            status === null ? "no usable status_code" : `status_code ${status}`
          }, which no answer with a body has`,
          { requestId: line.requestId },
        ),
      );
    }
    const headers = new Headers();
    if (line.requestId !== null) headers.set("x-request-id", line.requestId);
    job.startedAt ??= Date.now();
    await journaled(this.#ctx.journalStart(job));
    job.status = "running";
    const result = await generateValidated(params, {
      signal: this.#ctx.signal,
      answered: new Response(line.body, { status, headers }),
      onFile: (file) => this.#ctx.journalFile(job, file),
    });
    // Cut while its body was read: no answer, whatever its reader made of the part it had.
    if (line.problem !== null) {
      job.status = "submitted";
      return ignore(line.problem);
    }
    job.attempts++;
    if (!result.ok && result.diagnosis.category === "cancelled" && this.#ctx.signal.aborted) {
      job.status = "submitted";
      return;
    }
    if (result.ok) {
      this.#doneNow++;
      markDone(job, { ...result, batch_id: batchId });
      await journaled(this.#ctx.journalEnd(job));
      this.#ctx.monitor.emit({
        event: "job_done",
        id: job.id,
        task_name: job.taskName,
        attempts: job.attempts,
        image_path: result.image_path,
      });
    } else {
      this.#failWith(job, { ...result, batch_id: batchId });
      await this.#settle(job);
    }
    this.#ctx.state.changed();
    this.#progress();
  }

  #progress(force = false): void {
    const records = this.#ctx.records;
    this.#ctx.monitor.progress(() => ({
      done: records.filter((r) => r.status === "done").length,
      failed: records.filter((r) => r.status === "failed").length,
      running: records.filter((r) => r.status === "running").length,
      queued: records.filter((r) => r.status === "submitted").length,
      concurrency: 0,
      batches: this.#parts.filter((p) => p.record.batchId !== null).map((p) => {
        const batch = this.#seen.get(p.record.part) ?? p.record.batch;
        const counts = batch?.request_counts;
        return `batch ${p.record.part} ${batch?.status ?? "submitted"}` +
          (counts ? ` ${counts.completed + counts.failed}/${counts.total}` : "");
      }).join(", "),
    }), force);
  }

  /** Every part that has a batch, in this run or before, as last seen. */
  #summaries(): BatchSummary[] {
    const summaries: BatchSummary[] = [];
    for (const record of this.#replay.parts.values()) {
      if (record.batchId === null) continue;
      const seen = this.#seen.get(record.part);
      summaries.push(
        seen !== undefined ? summaryOf(seen) : record.batch ?? {
          id: record.batchId,
          status: "submitted",
          input_file_id: record.inputFileId,
          output_file_id: null,
          error_file_id: null,
          request_counts: null,
          created_at: null,
          completed_at: null,
        },
      );
    }
    return summaries;
  }

  async #removeTemporaryFiles(): Promise<void> {
    const temporary = /^batch-input-\d+\.jsonl\.[0-9a-f]{8}\.tmp$/;
    for await (const entry of Deno.readDir(this.#ctx.runDir)) {
      if (entry.isFile && temporary.test(entry.name)) {
        await Deno.remove(`${this.#ctx.runDir}/${entry.name}`).catch(() => {});
      }
    }
  }
}

/**
 * The wait before the next look after a look that failed in a way that may pass (429, 5xx, no
 * answer): what the upstream asked for (Retry-After), else twice the last wait, from twice the
 * poll interval; at least MIN_BACKOFF_MS and at most MAX_BACKOFF_MS.
 */
export function pollBackoffMs(
  previousMs: number,
  pollMs: number,
  diagnosis: { retry_after_ms?: number },
): number {
  const wait = diagnosis.retry_after_ms ?? Math.max(previousMs, pollMs) * 2;
  return Math.min(MAX_BACKOFF_MS, Math.max(MIN_BACKOFF_MS, wait));
}

/**
 * The batch is final and names the files of what it answered. A provider may say `completed`
 * a while before it names the output file (LiteLLM's BerriAI/litellm#37713 saw it of OpenAI):
 * its counts then tell of answers in no file yet, and the batch is looked at again, not taken
 * as having answered nothing, since its jobs would then be sent (and paid) a second time.
 */
function isFinished(batch: Batch): boolean {
  if (!FINAL_STATUSES.has(batch.status)) return false;
  const counts = batch.request_counts;
  if (counts === null) return true;
  return (counts.completed === 0 || batch.output_file_id !== null) &&
    (counts.failed === 0 || batch.error_file_id !== null);
}

/** The job is in the part's batch, or in its upload about to become one. */
function markSubmitted(job: JobRecord, part: PartRecord): void {
  job.status = "submitted";
  job.reason = part.batchId === null
    ? `In part ${part.part} of the run, not yet submitted: a run with --batch-api submits it`
    : `At the provider, in batch ${part.batchId}: a run with --batch-api collects it`;
}

/**
 * For a run without --batch-api in a run dir whose batches are still open: their jobs stay at
 * the provider (`submitted`) and are not sent a second time.
 */
export function keepAtProvider(records: readonly JobRecord[], journalText: string): void {
  const replay = replayBatchParts(journalText);
  if (replay.parts.size === 0) return;
  const byId = new Map(records.map((record) => [record.id, record]));
  for (const part of replay.parts.values()) {
    if (part.collected) continue;
    for (const id of part.ids) {
      const job = byId.get(id);
      if (job?.status === "pending") markSubmitted(job, part);
    }
  }
}

function unansweredReason(batch: BatchSummary & Partial<Batch>): string {
  switch (batch.status) {
    case "expired":
      return "The batch expired before this job was answered: the next run submits it again";
    case "cancelled":
      return "The batch was cancelled before this job was answered: the next run submits it again";
    case "failed": {
      const unlined = (batch.errors ?? []).filter((error) => error.line === null)
        .map((error) => error.message ?? error.code).filter((text) => text !== null);
      return unlined.length > 0
        ? `The batch failed: ${unlined.join("; ")}; the next run submits the job again`
        : "The batch failed on other lines: the next run submits this job again";
    }
    default:
      return "The batch ended without answering this job: the next run submits it again";
  }
}

/** The journal could not be written: the run stops (as the sync mode does), nothing is lost. */
class JournalFailure extends Error {
  override name = "JournalFailure";
}

async function journaled(write: Promise<void>): Promise<void> {
  try {
    await write;
  } catch (error) {
    throw new JournalFailure(`Cannot write the journal: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

function isJournalError(error: unknown): boolean {
  return error instanceof JournalFailure;
}

async function* chunksOf(body: ReadableStream<Uint8Array> | null): AsyncGenerator<Uint8Array> {
  if (body === null) return;
  for await (const chunk of body) yield chunk;
}
