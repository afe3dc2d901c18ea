/**
 * The run's durable memory: an append-only file of JSON lines, one per event, each fsynced
 * before the event counts. Lines written together are synced together (group commit), so a
 * hundred jobs ending at once cost one sync, and the work per event stays constant.
 */
import { concat, writeAll } from "../shared/bytes.ts";
import type { ImageProof } from "./proof.ts";
import { openWithoutLinks } from "./run_files.ts";
import { type Category, dirname, type GenerationResult, InputError } from "../mod.ts";

const LF = 0x0a;
const BATCH_EVENT_START = '{"event":"batch_';

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
  const replay = emptyReplay();
  for (const line of text.split("\n")) applyLine(replay, line);
  return replay;
}

function emptyReplay(): Replay {
  return { planHash: null, jobsFile: null, jobs: new Map() };
}

/**
 * Applies a line of the journal, unless it is empty, cut short or not an event; gives the result
 * an end event brought.
 */
function applyLine(replay: Replay, line: string): GenerationResult | null {
  if (line === "") return null;
  let event: JournalEvent | null;
  try {
    event = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof event !== "object" || event === null) return null;
  applyEvent(replay, event);
  return event.event === "end" && typeof event.result === "object" ? event.result : null;
}

/**
 * One copy of each text the results of a replay repeat: a diagnosis's human_reason, an upstream's
 * message, the model and base_url recur in thousands of results, and each parse makes its own.
 * Unique texts (paths, request ids) come and go: the pool is emptied whenever it is full.
 */
class TextPool {
  static readonly MAX_TEXTS = 4096;
  static readonly MIN_CHARS = 16;
  static readonly MAX_CHARS = 4096;
  /** Objects walked into, at most this deep: a result's diagnosis and attempts lie within. */
  static readonly MAX_DEPTH = 4;
  #texts = new Map<string, string>();

  /** Replaces, in place, each text of `value` already seen by its first copy. */
  shareIn(value: unknown, depth = 0): void {
    if (typeof value !== "object" || value === null || depth > TextPool.MAX_DEPTH) return;
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      const item = record[key];
      if (typeof item === "string") record[key] = this.#share(item);
      else this.shareIn(item, depth + 1);
    }
  }

  #share(text: string): string {
    if (text.length < TextPool.MIN_CHARS || text.length > TextPool.MAX_CHARS) return text;
    const known = this.#texts.get(text);
    if (known !== undefined) return known;
    if (this.#texts.size >= TextPool.MAX_TEXTS) this.#texts.clear();
    this.#texts.set(text, text);
    return text;
  }
}

/**
 * The longest line a replay reads. Every event this program writes is far shorter (a result's
 * texts are clipped, its usage bounded by the answer's 1 MiB outside the image); a longer line is
 * skipped, as is any line that is not an event, without being held.
 */
export const MAX_JOURNAL_LINE_BYTES = 16 * 1024 * 1024;

/** A journal as a replay read it: what it says, its size, and whether its last line is cut. */
export interface JournalRead {
  replay: Replay;
  /** Its size in bytes when it was read. */
  size: number;
  /** The last line lacks its line feed: a crash cut it short. */
  lineOpen: boolean;
  /** The lines of the --batch-api parts (replayBatchParts() reads them): a few per part. */
  batchLines: string[];
}

/**
 * Rebuilds the state from the journal's bytes as they are read, a line at a time: memory grows
 * with the jobs, not with the journal, which a run of a few hundred thousand jobs makes larger
 * than a string can be. A line cut short by a crash, or not an event, is ignored as by
 * replayJournal(); CRLF line ends are read as LF ones.
 */
export async function replayJournalChunks(chunks: AsyncIterable<Uint8Array>): Promise<JournalRead> {
  const replay = emptyReplay();
  const decoder = new TextDecoder();
  const pool = new TextPool();
  /** The line being read, while it is within MAX_JOURNAL_LINE_BYTES; null once it is not. */
  let line: Uint8Array[] | null = [];
  let lineBytes = 0;
  let size = 0;
  let lastByte = LF;
  const take = (piece: Uint8Array, kept: boolean) => {
    if (line === null) return;
    lineBytes += piece.length;
    if (lineBytes > MAX_JOURNAL_LINE_BYTES) line = null;
    // A piece kept past this chunk is copied: the reader may reuse the chunk's memory.
    else if (piece.length > 0) line.push(kept ? piece.slice() : piece);
  };
  const batchLines: string[] = [];
  const apply = (text: string) => {
    if (text.startsWith(BATCH_EVENT_START)) batchLines.push(text);
    pool.shareIn(applyLine(replay, text));
  };
  const endLine = () => {
    if (line !== null) apply(decoder.decode(line.length === 1 ? line[0] : concat(line)));
    line = [];
    lineBytes = 0;
  };
  for await (const chunk of chunks) {
    if (chunk.length === 0) continue;
    size += chunk.length;
    lastByte = chunk[chunk.length - 1]!;
    const first = chunk.indexOf(LF);
    if (first === -1) {
      take(chunk, true);
      continue;
    }
    take(chunk.subarray(0, first), false);
    endLine();
    const last = chunk.lastIndexOf(LF);
    if (last > first) {
      const whole = chunk.subarray(first + 1, last);
      if (whole.length <= MAX_JOURNAL_LINE_BYTES) {
        // Every line in between is shorter than the limit: decoded at once, far faster.
        for (const text of decoder.decode(whole).split("\n")) apply(text);
      } else {
        for (let start = first + 1; start <= last;) {
          const lf = chunk.indexOf(LF, start);
          take(chunk.subarray(start, lf), false);
          endLine();
          start = lf + 1;
        }
      }
    }
    take(chunk.subarray(last + 1), true);
  }
  endLine();
  return { replay, size, lineOpen: lastByte !== LF, batchLines };
}

/**
 * Replays the journal at `path` (see replayJournalChunks), opened without following a link; an
 * empty replay when there is none.
 */
export async function replayJournalFile(path: string): Promise<JournalRead> {
  const file = await openWithoutLinks(path, { read: true });
  if (file === null) return { replay: emptyReplay(), size: 0, lineOpen: false, batchLines: [] };
  // The stream closes the file once read, or once the replay fails.
  return await replayJournalChunks(file.readable);
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
   * run of the same run dir cannot send the same jobs again. `read` is what was read of it
   * before: if the journal has grown since, another run wrote to it in between. A line left
   * unfinished by a crash is closed first.
   */
  static async open(path: string, read: Pick<JournalRead, "size" | "lineOpen">): Promise<Journal> {
    const file = await openWithoutLinks(path, { append: true, create: true });
    if (file === null) throw new Error(`Cannot open the journal "${path}"`);
    if (!await tryLockAwhile(file) || (await file.stat()).size !== read.size) {
      file.close();
      throw new InputError(
        `Another img2-batch is running in "${
          dirname(path)
        }": wait for it to end, or give --run-dir for a separate run`,
      );
    }
    const journal = new Journal(file);
    if (read.lineOpen) journal.#queued.push("");
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
