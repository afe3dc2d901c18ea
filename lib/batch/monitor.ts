/** What a run tells while it goes: `--events` lines, and one progress line on a terminal. */
import { errorMessage, InputError } from "../mod.ts";
import { unlessStopped } from "./input_files.ts";
import { LineQueue } from "./line_queue.ts";
import { openWithoutLinks, refuseEventsOfAnother, selfUid } from "./run_files.ts";
import type { BatchEvent } from "./scheduler.ts";
import type { BatchApiEvent } from "./batch_api_journal.ts";

export interface ProgressCounts {
  done: number;
  failed: number;
  running: number;
  queued: number;
  concurrency: number;
  /** The batch-api mode: the batches' statuses, shown in place of the concurrency. */
  batches?: string;
}

const PROGRESS_INTERVAL_MS = 250;

export interface MonitorIo {
  /** A stop signal: from then on, a write the reader does not take is given up after a grace. */
  signal: AbortSignal;
  /** Told once when the events can no longer be written. */
  warn(message: string): void;
}

export class Monitor {
  readonly #file: Deno.FsFile | null;
  /** Never waits on the caller: a stalled reader holds up neither the run nor its end. */
  readonly #events: LineQueue | null;
  readonly #progress: boolean;
  readonly #startedAt = performance.now();
  readonly #encoder = new TextEncoder();
  #doneAtStart: number | null = null;
  #lastProgressAt = -Infinity;
  #progressShown = false;

  private constructor(
    file: Deno.FsFile | null,
    toStderr: boolean,
    io: MonitorIo,
    progress: boolean,
  ) {
    this.#file = file;
    const target = toStderr ? Deno.stderr : file;
    this.#events = target === null ? null : new LineQueue(target, io.signal, (error) => {
      io.warn(`Cannot write the events, so no more are written: ${errorMessage(error)}`);
    });
    this.#progress = progress;
  }

  /**
   * `eventsPath` "-" is standard error; a file is appended to, across runs, and a FIFO is written
   * whether or not a reader has opened it yet. Opening gives way to a stop signal.
   */
  static async open(
    eventsPath: string | null,
    progressOnTerminal: boolean,
    io: MonitorIo,
  ): Promise<Monitor> {
    const file = eventsPath === null || eventsPath === "-" ? null : await unlessStopped(
      openWithoutLinks(eventsPath, { append: true, create: true, special: true }),
      io.signal,
      () => new InputError(`Cannot open the --events file "${eventsPath}": cancelled`),
    );
    if (file !== null) await refuseEventsOfAnother(file, eventsPath!, await selfUid());
    const progress = progressOnTerminal && eventsPath !== "-" && Deno.stderr.isTerminal();
    return new Monitor(file, eventsPath === "-", io, progress);
  }

  emit(event: BatchEvent | BatchApiEvent): void {
    if (this.#events === null) return;
    const { event: name, ...fields } = event;
    this.#clearProgress();
    this.#events.write(
      JSON.stringify({ event: name, time: new Date().toISOString(), ...fields }) + "\n",
    );
  }

  progress(countsNow: () => ProgressCounts, force = false): void {
    if (!this.#progress) return;
    const now = performance.now();
    if (!force && now - this.#lastProgressAt < PROGRESS_INTERVAL_MS) return;
    this.#lastProgressAt = now;
    const counts = countsNow();
    this.#doneAtStart ??= counts.done;
    const doneNow = counts.done - this.#doneAtStart;
    const perMinute = doneNow / Math.max(1, now - this.#startedAt) * 60_000;
    const left = counts.queued + counts.running;
    const eta = perMinute > 0 ? formatDuration(left / perMinute * 60_000) : "?";
    const line = `img2-batch: ${counts.done} done, ${counts.failed} failed, ${counts.running} ` +
      `running, ${counts.queued} queued · ${perMinute.toFixed(1)}/min · ETA ${eta} · ` +
      (counts.batches ?? `concurrency ${counts.concurrency}`);
    writeAllSync(Deno.stderr, this.#encoder.encode(`\r\x1b[K${line}`));
    this.#progressShown = true;
  }

  /**
   * Waits for the events still being written, no longer than about DRAIN_MS (see LineQueue), and
   * leaves the last progress line in place.
   */
  async close(): Promise<void> {
    await this.#events?.close();
    if (this.#progressShown) writeAllSync(Deno.stderr, this.#encoder.encode("\n"));
    this.#progressShown = false;
    // A write given up still holds the file: the process is about to end.
    if (!this.#events?.abandoned) this.#file?.close();
  }

  #clearProgress(): void {
    if (!this.#progressShown) return;
    writeAllSync(Deno.stderr, this.#encoder.encode("\r\x1b[K"));
    this.#progressShown = false;
  }
}

export function formatDuration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m${String(seconds % 60).padStart(2, "0")}s`;
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, "0")}m`;
}

export function writeAllSync(
  target: { writeSync(bytes: Uint8Array): number },
  bytes: Uint8Array,
): void {
  let offset = 0;
  while (offset < bytes.length) offset += target.writeSync(bytes.subarray(offset));
}
