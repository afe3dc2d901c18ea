/**
 * `img2-batch status`: what a run dir says of its run, read without changing a byte of it, while
 * the run goes or after it ended. The journal is the truth and is read incrementally (a watch
 * reads only what was appended since); state.json gives the jobs file's order, the jobs not yet
 * started and, for a --batch-api run, the provider's batches.
 */
import {
  absolutePath,
  callContext,
  DEFAULT_OUTPUT_DIR,
  errorMessage,
  type FailureResult,
  failureResult,
  inFolder,
  InputError,
  isJsonObject,
  parseJsonObject,
  readCapped,
  resolveFolder,
} from "../mod.ts";
import { concat } from "../shared/bytes.ts";
import { CONTACT_SHEET_FILE } from "./contact_sheet.ts";
import { stoppedInputError } from "./input_files.ts";
import { applyEvent, type JournalEvent, type Replay } from "./journal.ts";
import { formatDuration, writeAllSync } from "./monitor.ts";
import { sleep } from "./pacing.ts";
import { type BatchOptions, parseBatchArgs } from "./options.ts";
import { sha256Hex } from "./plan.ts";
import {
  defaultRunDir,
  JOBS_LIMIT,
  JOURNAL_FILE,
  readSmallFile,
  RESULT_FILE,
  STATE_FILE,
} from "./run.ts";
import { isoOrNull } from "./state.ts";
import { openWithoutLinks } from "./run_files.ts";

export interface StatusIo {
  stdin(): ReadableStream<Uint8Array>;
  /** A stop signal: a watch ends with the status as it is. */
  signal: AbortSignal;
}

export type StatusOutcome =
  | { kind: "help" }
  /** A wrong command line, or a folder that is not a run dir: exit code 2. */
  | { kind: "input_error"; result: FailureResult }
  | { kind: "html"; path: string }
  | { kind: "status"; status: RunStatus };

const WATCH_INTERVAL_MS = 1000;

/** `img2-batch status …`: reads, and with --watch reads again, until the run ends. */
export async function runStatus(argv: string[], io: StatusIo): Promise<StatusOutcome> {
  let runDir: string;
  let watch: boolean;
  let html: boolean;
  try {
    const parsed = parseStatusArgs(argv);
    if (parsed.options.help) return { kind: "help" };
    ({ watch, html } = parsed);
    runDir = await locateRunDir(parsed.options, io.stdin, io.signal);
  } catch (error) {
    if (!(error instanceof InputError)) throw error;
    const failure = stoppedInputError(error, io.signal);
    return { kind: "input_error", result: failureResult(failure, callContext({})) };
  }
  const reader = new RunDirReader(runDir);
  const display = watch ? new WatchLine() : null;
  try {
    while (true) {
      const status = await reader.read();
      if (status === null) {
        return notRunDir(
          `"${runDir}" is not the run dir of an img2-batch run: ` +
            `it holds neither ${JOURNAL_FILE} nor ${STATE_FILE}`,
        );
      }
      if (html) {
        if (status.contact_sheet !== null) return { kind: "html", path: status.contact_sheet };
        return notRunDir(
          `No contact sheet in "${runDir}" yet: a run writes ${CONTACT_SHEET_FILE} there`,
        );
      }
      display?.show(statusLine(status));
      if (display === null || !status.live || io.signal.aborted) return { kind: "status", status };
      await sleep(WATCH_INTERVAL_MS, io.signal);
    }
  } finally {
    display?.end();
  }
}

function notRunDir(message: string): StatusOutcome {
  return { kind: "input_error", result: failureResult(new InputError(message), callContext({})) };
}

/** The summary on standard error: redrawn in place on a terminal, one line per change elsewhere. */
class WatchLine {
  readonly #terminal = Deno.stderr.isTerminal();
  readonly #encoder = new TextEncoder();
  #last: string | null = null;

  show(line: string): void {
    if (line === this.#last) return;
    this.#last = line;
    const text = this.#terminal ? `\r\x1b[K${line}` : `${line}\n`;
    writeAllSync(Deno.stderr, this.#encoder.encode(text));
  }

  end(): void {
    if (this.#terminal && this.#last !== null) {
      writeAllSync(Deno.stderr, this.#encoder.encode("\n"));
    }
  }
}

export const STATUS_EXIT = { done: 0, failed: 1, notRunDir: 2, workLeft: 3 } as const;

/** Statuses after which a job needs nothing more from this run. */
const FINAL = new Set(["done", "failed", "not_started", "missing"]);
const RECENT_EVENTS = 10;
const READ_CHUNK = 1024 * 1024;

export interface StatusOptions {
  options: BatchOptions;
  watch: boolean;
  html: boolean;
}

/** The status command line: a run's own arguments, with `--watch` and `--html`. */
export function parseStatusArgs(argv: string[]): StatusOptions {
  let watch = false;
  let html = false;
  const rest: string[] = [];
  for (const [i, arg] of argv.entries()) {
    if (arg === "--") {
      rest.push(...argv.slice(i));
      break;
    }
    if (arg === "--watch" || arg === "--html") {
      if ((arg === "--watch" && watch) || (arg === "--html" && html)) {
        throw new InputError(`Option "${arg}" is given twice`);
      }
      if (arg === "--watch") watch = true;
      else html = true;
    } else {
      rest.push(arg);
    }
  }
  const options = parseBatchArgs(rest, `the run dir or the jobs file of a run`);
  return { options, watch, html };
}

/**
 * The run dir that `status` reads: a folder given as it is, or the one a run of the jobs file
 * with the same options would use.
 */
export async function locateRunDir(
  options: BatchOptions,
  stdin: () => ReadableStream<Uint8Array>,
  signal: AbortSignal,
): Promise<string> {
  if (options.runDir !== null) return resolveFolder("--run-dir", options.runDir);
  const path = options.jobsPath!;
  let sha256 = "";
  if (path === "-") {
    const source = "the jobs from standard input";
    sha256 = await sha256Hex(await readCapped(stdin(), source, JOBS_LIMIT, signal));
  } else {
    const info = await Deno.stat(path).catch((error) => {
      throw new InputError(`Cannot read "${path}": ${errorMessage(error)}`);
    });
    if (info.isDirectory) return absolutePath(path);
  }
  let outputDir: unknown = options.flags.output_dir;
  if (outputDir === undefined && options.defaultsPath !== null) {
    const source = `the --defaults file "${options.defaultsPath}"`;
    outputDir = parseJsonObject(await readSmallFile(options.defaultsPath, source, signal), source)
      .output_dir;
  }
  const folder = resolveFolder("output_dir", outputDir ?? DEFAULT_OUTPUT_DIR);
  return defaultRunDir(folder, path, sha256);
}

export interface RunStatus {
  ok: boolean;
  /** A run holds the journal's lock now. */
  live: boolean;
  mode: string;
  run_dir: string;
  jobs_file: string | null;
  total: number;
  counts: Record<string, number>;
  categories: Record<string, number>;
  /** Jobs still to be done by a run: pending, running or at the provider. */
  work_left: number;
  started_at: string | null;
  updated_at: string | null;
  elapsed_ms: number;
  images_per_minute: number;
  eta_ms: number | null;
  /** From batch_result.json, when the last run wrote it. */
  interrupted?: boolean;
  stopped_reason?: string | null;
  batches?: Record<string, unknown>[];
  last_events: Record<string, unknown>[];
  contact_sheet: string | null;
}

interface StateJob {
  id: string;
  status: string;
  category: string | null;
  image_path: string | null;
}

interface StateSnapshot {
  jobsFile: string | null;
  updatedAt: number | null;
  jobs: StateJob[];
  batches: Record<string, unknown>[] | null;
  /** To read state.json again only once it has been replaced. */
  stamp: string;
}

/** Reads a run dir again and again; each read takes only what changed since the last. */
export class RunDirReader {
  readonly runDir: string;
  #offset = 0;
  #pending = new Uint8Array();
  #replay: Replay = { planHash: null, jobsFile: null, jobs: new Map() };
  #runStartedAt: number | null = null;
  #doneThisRun = 0;
  #lastEventAt: number | null = null;
  #recent: Record<string, unknown>[] = [];
  #state: StateSnapshot | null = null;

  constructor(runDir: string) {
    this.runDir = runDir;
  }

  /** The status now, or null when the folder holds neither a journal nor a state.json. */
  async read(now = Date.now()): Promise<RunStatus | null> {
    const journalPath = inFolder(this.runDir, JOURNAL_FILE);
    const hasJournal = await this.#readJournal(journalPath);
    const state = await this.#readState();
    if (!hasJournal && state === null) return null;
    const live = hasJournal && await isLocked(journalPath);
    const result = await resultHead(inFolder(this.runDir, RESULT_FILE));

    const counts: Record<string, number> = {
      pending: 0,
      running: 0,
      submitted: 0,
      done: 0,
      failed: 0,
      not_started: 0,
      missing: 0,
    };
    const categories: Record<string, number> = {};
    const jobs = state?.jobs ?? [...this.#replay.jobs.keys()].map((id) => ({
      id,
      status: "pending",
      category: null,
      image_path: null,
    }));
    for (const job of jobs) {
      let { status, category, image_path: image } = job;
      const journaled = this.#replay.jobs.get(job.id);
      if (journaled !== undefined) {
        const at = journaled.endedAt ?? journaled.startedAt;
        if (state?.updatedAt == null || at >= state.updatedAt) {
          ({ status, category, imagePath: image } = journaled);
        }
      }
      // Nothing runs in a run dir no run holds: a job cut short waits for the next run.
      if (status === "running" && !live) status = "pending";
      if (status === "done" && !await isFile(image)) status = "missing";
      counts[status] = (counts[status] ?? 0) + 1;
      if (status === "failed" && category !== null) {
        categories[category] = (categories[category] ?? 0) + 1;
      }
    }
    const workLeft = jobs.length - Object.entries(counts)
      .filter(([status]) => FINAL.has(status))
      .reduce((sum, [, n]) => sum + n, 0);

    const lastAt = Math.max(this.#lastEventAt ?? -Infinity, state?.updatedAt ?? -Infinity);
    const startedAt = this.#runStartedAt;
    const elapsed = startedAt === null ? 0 : Math.max(0, (live ? now : lastAt) - startedAt);
    const perMinute = elapsed > 0 ? this.#doneThisRun / elapsed * 60_000 : 0;
    const sheet = inFolder(this.runDir, CONTACT_SHEET_FILE);
    const status: RunStatus = {
      ok: jobs.length > 0 && counts.done === jobs.length,
      live,
      mode: state?.batches != null ? "batch-api" : stringOr(result?.mode, "sync"),
      run_dir: this.runDir,
      jobs_file: state?.jobsFile ?? this.#replay.jobsFile,
      total: jobs.length,
      counts,
      categories,
      work_left: workLeft,
      started_at: isoOrNull(startedAt),
      updated_at: isoOrNull(Number.isFinite(lastAt) ? lastAt : null),
      elapsed_ms: Math.round(elapsed),
      images_per_minute: Math.round(perMinute * 10) / 10,
      eta_ms: live && perMinute > 0 && workLeft > 0
        ? Math.round(workLeft / perMinute * 60_000)
        : null,
    } as RunStatus;
    // What the last run said of its end, unless a run started since.
    if (result !== null && !live && (startedAt === null || result.mtime >= startedAt)) {
      if (typeof result.interrupted === "boolean") status.interrupted = result.interrupted;
      if (result.stopped_reason !== undefined) {
        status.stopped_reason = typeof result.stopped_reason === "string"
          ? result.stopped_reason
          : null;
      }
    }
    if (state?.batches != null) status.batches = state.batches;
    status.last_events = [...this.#recent];
    status.contact_sheet = await isFile(sheet) ? sheet : null;
    return status;
  }

  async #readJournal(path: string): Promise<boolean> {
    const file = await openRegularFile(path);
    if (file === null) return false;
    using _file = file;
    if ((await file.stat()).size < this.#offset) this.#restart();
    await file.seek(this.#offset, Deno.SeekMode.Start);
    const buffer = new Uint8Array(READ_CHUNK);
    while (true) {
      const n = await file.read(buffer);
      if (n === null) break;
      const bytes = concat([this.#pending, buffer.subarray(0, n)]);
      // Only whole lines: a line being written is read once it ends.
      const end = bytes.lastIndexOf(0x0a) + 1;
      this.#offset += end;
      this.#pending = bytes.slice(end);
      if (end > 0) this.#apply(new TextDecoder().decode(bytes.subarray(0, end)));
    }
    return true;
  }

  #restart(): void {
    this.#offset = 0;
    this.#pending = new Uint8Array();
    this.#replay = { planHash: null, jobsFile: null, jobs: new Map() };
    this.#runStartedAt = null;
    this.#doneThisRun = 0;
    this.#lastEventAt = null;
    this.#recent = [];
  }

  #apply(text: string): void {
    for (const line of text.split("\n")) {
      if (line === "") continue;
      let event: JournalEvent;
      try {
        event = JSON.parse(line);
      } catch {
        continue;
      }
      if (!isJsonObject(event) || typeof event.time !== "number") continue;
      applyEvent(this.#replay, event);
      this.#lastEventAt = Math.max(this.#lastEventAt ?? -Infinity, event.time);
      if (event.event === "run") {
        this.#runStartedAt = event.time;
        this.#doneThisRun = 0;
      } else if (event.event === "end") {
        // The results stay in the journal: a status needs only the statuses.
        const job = this.#replay.jobs.get(event.id);
        if (job !== undefined) job.result = null;
        if (event.status === "done" && event.adopted !== true) this.#doneThisRun++;
      }
      // A file marker is the run's own bookkeeping for adoption, not news for a watcher.
      if (event.event === "file") continue;
      this.#recent.push(briefEvent(event));
      if (this.#recent.length > RECENT_EVENTS) this.#recent.shift();
    }
  }

  async #readState(): Promise<StateSnapshot | null> {
    const path = inFolder(this.runDir, STATE_FILE);
    const info = await Deno.lstat(path).catch(() => null);
    if (info === null || !info.isFile) return this.#state = null;
    const stamp = `${info.mtime?.getTime()}:${info.size}:${info.ino}`;
    if (this.#state?.stamp === stamp) return this.#state;
    let parsed: unknown;
    try {
      const file = await openRegularFile(path);
      if (file === null) return this.#state;
      parsed = JSON.parse(await new Response(file.readable).text());
    } catch {
      // Replaced between the stat and the read, or not ours: keep what was read before.
      return this.#state;
    }
    if (!isJsonObject(parsed) || !Array.isArray(parsed.jobs)) return this.#state;
    const updatedAt = Date.parse(String(parsed.updated_at));
    return this.#state = {
      jobsFile: typeof parsed.jobs_file === "string" ? parsed.jobs_file : null,
      updatedAt: Number.isFinite(updatedAt) ? updatedAt : null,
      jobs: parsed.jobs.filter(isJsonObject).map((job) => ({
        id: String(job.id),
        status: typeof job.status === "string" ? job.status : "pending",
        category: typeof job.category === "string" ? job.category : null,
        image_path: typeof job.image_path === "string" ? job.image_path : null,
      })),
      batches: Array.isArray(parsed.batches)
        ? parsed.batches.filter(isJsonObject).map(batchOf)
        : null,
      stamp,
    };
  }
}

/** A part sent to a provider's batch API, as state.json last knew it. */
function batchOf(batch: Record<string, unknown>): Record<string, unknown> {
  const fields = [
    "id",
    "status",
    "request_counts",
    "input_file_id",
    "output_file_id",
    "error_file_id",
    "created_at",
    "completed_at",
  ];
  return Object.fromEntries(fields.filter((field) => field in batch).map((f) => [f, batch[f]]));
}

function briefEvent(event: JournalEvent): Record<string, unknown> {
  const brief: Record<string, unknown> = { event: event.event, time: isoOrNull(event.time) };
  if (event.event === "start") {
    brief.id = event.id;
    if (event.attempt !== undefined) brief.attempt = event.attempt;
  } else if (event.event === "end") {
    Object.assign(brief, { id: event.id, status: event.status, attempts: event.attempts });
    if (event.category !== null) brief.category = event.category;
  } else if (event.event === "run") {
    brief.plan_hash = event.plan_hash;
  } else {
    // An event of another kind of run: its name and id, if any.
    const id = (event as Record<string, unknown>).id;
    if (typeof id === "string") brief.id = id;
  }
  return brief;
}

/** The one-line summary `--watch` shows. */
export function statusLine(status: RunStatus): string {
  const { counts } = status;
  const parts = Object.entries(counts)
    .filter(([name, n]) => n > 0 || name === "done" || name === "failed")
    .map(([name, n]) => `${n} ${name.replaceAll("_", " ")}`);
  const eta = status.eta_ms === null ? "" : ` · ETA ${formatDuration(status.eta_ms)}`;
  return `img2-batch: ${status.live ? "live" : "not running"} · ${parts.join(", ")} of ` +
    `${status.total} · ${status.images_per_minute.toFixed(1)}/min${eta}`;
}

export function statusExitCode(status: RunStatus): number {
  if (status.ok) return STATUS_EXIT.done;
  return status.work_left > 0 ? STATUS_EXIT.workLeft : STATUS_EXIT.failed;
}

/**
 * Whether a run holds the journal's lock: a shared lock is tried and given back at once (a run
 * that starts in that instant waits for it; see Journal.open).
 */
async function isLocked(path: string): Promise<boolean> {
  const file = await openRegularFile(path);
  if (file === null) return false;
  using _file = file;
  if (!await file.tryLock(false)) return true;
  await file.unlock();
  return false;
}

interface ResultHead {
  mtime: number;
  mode?: unknown;
  interrupted?: unknown;
  stopped_reason?: unknown;
}

/** batch_result.json's fields before its jobs (it can be tens of megabytes; they come first). */
async function resultHead(path: string): Promise<ResultHead | null> {
  const file = await openRegularFile(path);
  if (file === null) return null;
  using _file = file;
  const info = await file.stat();
  const buffer = new Uint8Array(64 * 1024);
  const n = await file.read(buffer) ?? 0;
  const text = new TextDecoder().decode(buffer.subarray(0, n));
  const jobs = text.indexOf(',\n  "jobs": [');
  try {
    const head = JSON.parse(jobs === -1 ? text : `${text.slice(0, jobs)}\n}`);
    if (!isJsonObject(head)) return null;
    return { ...head, mtime: info.mtime?.getTime() ?? 0 };
  } catch {
    return null;
  }
}

/**
 * A run dir's file opened for reading, or null when it is missing, a link or not a regular file:
 * opening a FIFO planted under a run file's name would wait for a writer for ever, and a link
 * would show another file as this run's.
 */
async function openRegularFile(path: string): Promise<Deno.FsFile | null> {
  return await openWithoutLinks(path, { read: true }).catch(() => null);
}

/** Whether `path` is a regular file itself, not a link to one: as a resumed run counts images. */
async function isFile(path: string | null): Promise<boolean> {
  if (path === null) return false;
  return await Deno.lstat(path).then((info) => info.isFile, () => false);
}

function stringOr(value: unknown, fallback: string): string {
  return typeof value === "string" ? value : fallback;
}
