/**
 * The run's durable memory: an append-only file of JSON lines, one per event, each fsynced
 * before the event counts. Lines written together are synced together (group commit), so a
 * hundred jobs ending at once cost one sync, and the work per event stays constant.
 */
import { writeAll } from "../shared/bytes.ts";
import type { ImageProof } from "./proof.ts";
import { openWithoutLinks } from "./run_files.ts";
import { type Category, dirname, type GenerationResult, InputError } from "../mod.ts";

import type { BatchJournalEvent } from "./batch_api_journal.ts";

/** `submitted`: at the provider, in a batch of a --batch-api run. */
export type JobStatus =
  | "pending"
  | "running"
  | "submitted"
  | "done"
  | "failed"
  | "not_started"
  | "missing";

export type JournalEvent =
  | { event: "run"; time: number; plan_hash: string; jobs_sha256: string; jobs_file?: string }
  /** Written before each request: `attempt` counts it, in case the run dies before its end. */
  | { event: "start"; time: number; id: string; attempt?: number }
  /**
   * Written once the request's temporary file is made, before the request is sent: what ties an
   * image found after a crash to this job (the image keeps the file's inode once in place).
   */
  | { event: "file"; time: number; id: string; part: string; dev: number; ino: number | null }
  | {
    event: "end";
    time: number;
    id: string;
    status: "done" | "failed";
    attempts: number;
    category: Category | null;
    retryable: boolean;
    image_path: string | null;
    /** The image's size and fingerprint (see proof.ts), for a done job. */
    image_bytes?: number;
    image_fingerprint?: string;
    params_hash: string;
    adopted?: boolean;
    result: GenerationResult | null;
  }
  | BatchJournalEvent;

/** What the journal says of one job. */
export interface JournaledJob {
  status: "running" | "done" | "failed";
  /** When the job's latest request was started (epoch ms). */
  startedAt: number;
  endedAt: number | null;
  attempts: number;
  category: Category | null;
  retryable: boolean;
  imagePath: string | null;
  /** What the image recorded was, to be checked before the job counts as done. */
  proof: ImageProof | null;
  paramsHash: string | null;
  adopted: boolean;
  result: GenerationResult | null;
  /** The temporary file of the latest request, while the job is running. */
  file: FileMarker | null;
}

/** A temporary file the journal ties to a job, and when it was made. */
export interface FileMarker {
  part: string;
  dev: number;
  ino: number | null;
  time: number;
}

export interface Replay {
  /** The plan of the last run, or null for a new run dir. */
  planHash: string | null;
  /** The jobs file of the last run, when the journal says ("-" for standard input). */
  jobsFile: string | null;
  jobs: Map<string, JournaledJob>;
}

/** Rebuilds the state from the journal's text; a line cut short by a crash, or not an event, is ignored. */
export function replayJournal(text: string): Replay {
  const replay: Replay = { planHash: null, jobsFile: null, jobs: new Map() };
  for (const line of text.split("\n")) {
    if (line === "") continue;
    let event: JournalEvent | null;
    try {
      event = JSON.parse(line);
    } catch {
      continue;
    }
    if (typeof event === "object" && event !== null) applyEvent(replay, event);
  }
  return replay;
}

/** Applies one event of the journal to what is known of its jobs. */
export function applyEvent(replay: Replay, event: JournalEvent): void {
  switch (event.event) {
    case "run":
      replay.planHash = event.plan_hash;
      replay.jobsFile = typeof event.jobs_file === "string" ? event.jobs_file : null;
      return;
    case "start": {
      const previous = replay.jobs.get(event.id);
      replay.jobs.set(event.id, {
        status: "running",
        startedAt: event.time,
        endedAt: null,
        attempts: Math.max(previous?.attempts ?? 0, event.attempt ?? 0),
        category: previous?.category ?? null,
        retryable: previous?.retryable ?? false,
        imagePath: null,
        proof: null,
        paramsHash: previous?.paramsHash ?? null,
        adopted: false,
        result: null,
        file: null,
      });
      return;
    }
    case "file": {
      const job = replay.jobs.get(event.id);
      if (job?.status === "running" && typeof event.part === "string") {
        job.file = { part: event.part, dev: event.dev, ino: event.ino, time: event.time };
      }
      return;
    }
    case "end": {
      const previous = replay.jobs.get(event.id);
      replay.jobs.set(event.id, {
        status: event.status,
        startedAt: previous?.startedAt ?? event.time,
        endedAt: event.time,
        attempts: event.attempts,
        category: event.category,
        retryable: event.retryable,
        imagePath: event.image_path,
        proof: typeof event.image_bytes === "number" && typeof event.image_fingerprint === "string"
          ? { bytes: event.image_bytes, fingerprint: event.image_fingerprint }
          : null,
        paramsHash: event.params_hash,
        adopted: event.adopted === true,
        result: event.result,
        file: null,
      });
      return;
    }
  }
}

/** `img2-batch status` holds a shared lock for an instant to see whether a run holds it. */
const LOCK_TRIES = 5;
const LOCK_RETRY_MS = 20;

async function tryLockAwhile(file: Deno.FsFile): Promise<boolean> {
  for (let i = 1; i < LOCK_TRIES; i++) {
    if (await file.tryLock(true)) return true;
    await new Promise((resolve) => setTimeout(resolve, LOCK_RETRY_MS));
  }
  return await file.tryLock(true);
}

export class Journal {
  readonly #file: Deno.FsFile;
  #queued: string[] = [];
  #waiters: PromiseWithResolvers<void>[] = [];
  #writing: Promise<void> | null = null;
  /** The error of the write that failed: no more is written (a line may have been cut short). */
  #broken: unknown = null;

  private constructor(file: Deno.FsFile) {
    this.#file = file;
  }

  /**
   * Opens the journal for appending and holds it locked until the process ends, so that a second
   * run of the same run dir cannot send the same jobs again. `existing` is the text read before
   * (`size` bytes): if the journal has grown since, another run wrote to it in between. A line
   * left unfinished by a crash is closed first.
   */
  static async open(path: string, existing: string, size: number): Promise<Journal> {
    const file = await openWithoutLinks(path, { append: true, create: true });
    if (file === null) throw new Error(`Cannot open the journal "${path}"`);
    if (!await tryLockAwhile(file) || (await file.stat()).size !== size) {
      file.close();
      throw new InputError(
        `Another img2-batch is running in "${
          dirname(path)
        }": wait for it to end, or give --run-dir for a separate run`,
      );
    }
    const journal = new Journal(file);
    if (existing !== "" && !existing.endsWith("\n")) journal.#queued.push("");
    return journal;
  }

  /** Resolves once the event is on disk. */
  append(event: JournalEvent): Promise<void> {
    if (this.#broken !== null) return Promise.reject(this.#broken);
    const waiter = Promise.withResolvers<void>();
    this.#queued.push(JSON.stringify(event));
    this.#waiters.push(waiter);
    this.#writing ??= this.#drain();
    return waiter.promise;
  }

  async #drain(): Promise<void> {
    const encoder = new TextEncoder();
    while (this.#queued.length > 0) {
      const lines = this.#queued;
      const waiters = this.#waiters;
      this.#queued = [];
      this.#waiters = [];
      try {
        if (this.#broken !== null) throw this.#broken;
        await writeAll(this.#file, encoder.encode(lines.join("\n") + "\n"));
        await this.#file.syncData();
        for (const waiter of waiters) waiter.resolve();
      } catch (error) {
        this.#broken ??= error;
        for (const waiter of waiters) waiter.reject(error);
      }
    }
    this.#writing = null;
  }

  async close(): Promise<void> {
    await this.#writing;
    this.#file.close();
  }
}
