import { writeAll } from "../shared/bytes.ts";
import type { Category, GenerationResult } from "../mod.ts";
import type { Job } from "./jobs.ts";
import { jsonPieces } from "./json_pieces.ts";
import type { JobStatus } from "./journal.ts";

/** One job as the run knows it, from the journal and from what happens now. */
export interface JobRecord {
  id: string;
  line: number;
  taskName: string | null;
  /** Null for a job that failed validation (kept with --skip-invalid). */
  job: Job | null;
  status: JobStatus;
  /** Every request sent for the job, over all runs. */
  attempts: number;
  category: Category | null;
  retryable: boolean;
  imagePath: string | null;
  startedAt: number | null;
  endedAt: number | null;
  adopted: boolean;
  /** Why a job was not started, or why a done job is missing. */
  reason: string | null;
  result: GenerationResult | null;
}

/** A job as it stands before the journal or the run says anything of it. */
/** A job's record once its image is saved, by a request of its own or a provider batch. */
export function markDone(record: JobRecord, result: GenerationResult & { ok: true }): void {
  Object.assign(record, {
    status: "done",
    category: null,
    retryable: false,
    imagePath: result.image_path,
    endedAt: Date.now(),
    reason: null,
    result,
  });
}

export function newRecord(job: Job | null): JobRecord {
  return {
    id: job?.id ?? "",
    line: job?.line ?? 0,
    taskName: job?.params.task_name ?? null,
    job,
    status: "pending",
    attempts: 0,
    category: null,
    retryable: false,
    imagePath: null,
    startedAt: null,
    endedAt: null,
    adopted: false,
    reason: null,
    result: null,
  };
}

export interface StateHeader {
  mode?: "sync" | "batch-api";
  jobs_file: string;
  jobs_sha256: string;
  plan_hash: string;
  settings: Record<string, unknown>;
}

export type StateView = (header: StateHeader, records: readonly JobRecord[]) => Promise<void>;

const MIN_INTERVAL_MS = 1000;
/**
 * Writes are this many times as far apart as the last one took: each costs time in proportion to
 * the jobs (some 4 µs a job for state.json and the contact sheet together), so a run of 200 000
 * jobs rewrites them every few seconds instead of spending most of its time on them.
 */
const INTERVAL_PER_WRITE_TIME = 10;

/**
 * `state.json`, a readable view of the journal: rewritten whole and atomically (temporary file,
 * sync, rename), at most once a second while the run goes (less often for many jobs: see
 * INTERVAL_PER_WRITE_TIME), and once more at its end.
 */
export class StateFile {
  readonly path: string;
  readonly #header: StateHeader;
  readonly #records: readonly JobRecord[];
  #lastWriteAt = -Infinity;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #writing: Promise<void> = Promise.resolve();
  /** How long the last write took, both views included. */
  #lastWriteMs = 0;
  readonly #alongside: StateView | null;
  /** The batch-api mode: the parts' batches, written with the jobs. */
  batches: (() => unknown[]) | null = null;

  /** `alongside` writes another view of the same state (the contact sheet) after each write. */
  constructor(
    path: string,
    header: StateHeader,
    records: readonly JobRecord[],
    alongside: StateView | null = null,
  ) {
    this.path = path;
    this.#header = header;
    this.#records = records;
    this.#alongside = alongside;
  }

  /** Something changed: write soon, but no sooner than intervalMs after the last write. */
  changed(): void {
    if (this.#timer !== null) return;
    const wait = Math.max(0, this.#lastWriteAt + this.intervalMs - performance.now());
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#write();
    }, wait);
  }

  /** Writes the final state now. */
  async flush(): Promise<void> {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#write();
    await this.#writing;
  }

  /** The least time from one write to the next while the run goes. */
  get intervalMs(): number {
    return Math.max(MIN_INTERVAL_MS, this.#lastWriteMs * INTERVAL_PER_WRITE_TIME);
  }

  #write(): void {
    this.#lastWriteAt = performance.now();
    this.#writing = this.#writing.then(async () => {
      const started = performance.now();
      try {
        await writeAtomically(this.path, this.#text());
        await this.#alongside?.(this.#header, this.#records);
      } finally {
        this.#lastWriteMs = performance.now() - started;
      }
    });
    // A failed periodic write is retried by the next one; the journal holds the truth meanwhile.
    this.#writing = this.#writing.catch(() => {});
  }

  #text(): Iterable<string> {
    const header = {
      ...this.#header,
      ...(this.batches === null ? {} : { batches: this.batches() }),
      updated_at: new Date().toISOString(),
    };
    return jsonPieces(header, "jobs", this.#jobs(), 1);
  }

  *#jobs(): Generator<unknown> {
    for (const record of this.#records) {
      yield {
        id: record.id,
        task_name: record.taskName,
        status: record.status,
        attempts: record.attempts,
        category: record.category,
        image_path: record.imagePath,
        started_at: isoOrNull(record.startedAt),
        ended_at: isoOrNull(record.endedAt),
      };
    }
  }
}

export function isoOrNull(time: number | null): string | null {
  return time === null ? null : new Date(time).toISOString();
}

/**
 * Writes `text` (a string, or its pieces in order) to `path` so that a reader sees the old file
 * or the new one, never a part.
 */
export async function writeAtomically(
  path: string,
  text: string | Iterable<string>,
): Promise<void> {
  const temp = `${path}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  const encoder = new TextEncoder();
  try {
    using file = await Deno.open(temp, { createNew: true, write: true, mode: 0o600 });
    for (const piece of typeof text === "string" ? [text] : text) {
      await writeAll(file, encoder.encode(piece));
    }
    await file.syncData();
    await Deno.rename(temp, path);
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
}
