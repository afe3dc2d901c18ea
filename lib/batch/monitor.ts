/** What a run tells while it goes: `--events` lines, and one progress line on a terminal. */
import type { BatchEvent } from "./scheduler.ts";

export interface ProgressCounts {
  done: number;
  failed: number;
  running: number;
  queued: number;
  concurrency: number;
}

const PROGRESS_INTERVAL_MS = 250;

export class Monitor {
  readonly #events: Deno.FsFile | typeof Deno.stderr | null;
  readonly #progress: boolean;
  readonly #startedAt = performance.now();
  readonly #encoder = new TextEncoder();
  #doneAtStart: number | null = null;
  #lastProgressAt = -Infinity;
  #progressShown = false;

  private constructor(events: Deno.FsFile | typeof Deno.stderr | null, progress: boolean) {
    this.#events = events;
    this.#progress = progress;
  }

  /** `eventsPath` "-" is standard error; a file is appended to, across runs. */
  static async open(eventsPath: string | null, progressOnTerminal: boolean): Promise<Monitor> {
    const events = eventsPath === null
      ? null
      : eventsPath === "-"
      ? Deno.stderr
      : await Deno.open(eventsPath, { append: true, create: true, mode: 0o600 });
    const progress = progressOnTerminal && eventsPath !== "-" && Deno.stderr.isTerminal();
    return new Monitor(events, progress);
  }

  emit(event: BatchEvent): void {
    if (this.#events === null) return;
    const { event: name, ...fields } = event;
    const line = JSON.stringify({ event: name, time: new Date().toISOString(), ...fields });
    this.#clearProgress();
    writeAllSync(this.#events, this.#encoder.encode(line + "\n"));
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
      `concurrency ${counts.concurrency}`;
    writeAllSync(Deno.stderr, this.#encoder.encode(`\r\x1b[K${line}`));
    this.#progressShown = true;
  }

  /** Leaves the last progress line in place. */
  close(): void {
    if (this.#progressShown) writeAllSync(Deno.stderr, this.#encoder.encode("\n"));
    this.#progressShown = false;
    if (this.#events !== null && this.#events !== Deno.stderr) {
      (this.#events as Deno.FsFile).close();
    }
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

function writeAllSync(target: { writeSync(bytes: Uint8Array): number }, bytes: Uint8Array): void {
  let offset = 0;
  while (offset < bytes.length) offset += target.writeSync(bytes.subarray(offset));
}
