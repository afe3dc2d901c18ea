/**
 * Runs the jobs: at most `concurrency` requests in flight (fewer while rate limited), starts
 * paced by `rpm`, retries with backoff, an early stop where going on is pointless, and a clean
 * stop on a signal. Each job's end is made durable (through `onEnd`) before it counts.
 */
import type { Category, GenerationParams, GenerationResult } from "../mod.ts";
import { AdaptiveLimit, Pacer, retryDelayMs } from "./pacing.ts";
import { type JobRecord, markDone } from "./state.ts";

/** Failures that every other job would meet too. */
export const STOP_CATEGORIES: readonly Category[] = [
  "auth_failed",
  "quota_exceeded",
  "model_unavailable",
];

/** The longest a timer can wait: 2^31 - 1 ms, some 24 days. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A job gives up after this many rate-limited answers in a row. */
export const MAX_RATE_LIMITED_IN_A_ROW = 10;

export type BatchEvent =
  | { event: "job_started"; id: string; task_name: string | null; attempt: number }
  | {
    event: "job_done";
    id: string;
    task_name: string | null;
    attempts: number;
    image_path: string;
  }
  | {
    event: "job_failed";
    id: string;
    task_name: string | null;
    attempts: number;
    category: Category;
    error: string;
  }
  | {
    event: "job_retry";
    id: string;
    task_name: string | null;
    attempts: number;
    category: Category;
    delay_ms: number;
  }
  | { event: "paused_rate_limited"; pause_ms: number; concurrency: number }
  | { event: "stopped"; reason: Category | "signal" };

export interface SchedulerSettings {
  concurrency: number;
  rpm: number | null;
  maxAttempts: number;
  keepGoing: boolean;
}

export interface SchedulerHooks {
  generate(
    params: GenerationParams,
    signal: AbortSignal,
    record: JobRecord,
  ): Promise<GenerationResult>;
  /** Called before each request of a job; resolves once that is durable. */
  onStart(record: JobRecord): Promise<void>;
  /** Called when a job's status is final for this run; resolves once that is durable. */
  onEnd(record: JobRecord): Promise<void>;
  onEvent(event: BatchEvent): void;
  /** Any change of the counts, for the progress line and state.json. */
  onChange(): void;
  now?: () => number;
  random?: () => number;
}

export interface ScheduleOutcome {
  stoppedReason: Category | null;
  /** Why the journal could not be written, which stopped the run (see run()). */
  journalFailure: unknown;
  rateLimitedResponses: number;
  /** Jobs done in this run. */
  doneNow: number;
}

interface Task {
  record: JobRecord;
  /** Requests of this run that were not answered 429. */
  counted: number;
  rateLimitedInARow: number;
  notBefore: number;
  startedThisRun: boolean;
}

export class Scheduler {
  readonly limit: AdaptiveLimit;
  readonly #pacer: Pacer;
  readonly #settings: SchedulerSettings;
  readonly #hooks: SchedulerHooks;
  readonly #signal: AbortSignal;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #ready: Task[];
  #head = 0;
  readonly #delayed: Task[] = [];
  #inFlight = 0;
  #pausedUntil = 0;
  /** After a pause, starts are spread out until `#spreadUntil`, one every `#spreadMs`. */
  #spreadUntil = 0;
  #spreadMs = 0;
  #lastStartAt = -Infinity;
  #stoppedReason: Category | null = null;
  #rateLimited = 0;
  #doneNow = 0;
  #wake = Promise.withResolvers<void>();
  #failure: unknown = null;

  constructor(
    records: JobRecord[],
    settings: SchedulerSettings,
    hooks: SchedulerHooks,
    signal: AbortSignal,
  ) {
    this.#settings = settings;
    this.#hooks = hooks;
    this.#signal = signal;
    this.#now = hooks.now ?? (() => performance.now());
    this.#random = hooks.random ?? Math.random;
    this.limit = new AdaptiveLimit(settings.concurrency);
    this.#pacer = new Pacer(settings.rpm);
    this.#ready = records.map((record) => ({
      record,
      counted: 0,
      rateLimitedInARow: 0,
      notBefore: 0,
      startedThisRun: false,
    }));
  }

  get running(): number {
    return this.#inFlight;
  }

  get queued(): number {
    return this.#ready.length - this.#head + this.#delayed.length;
  }

  async run(): Promise<ScheduleOutcome> {
    const onAbort = () => this.#wakeUp();
    this.#signal.addEventListener("abort", onAbort, { once: true });
    try {
      await this.#loop();
    } finally {
      this.#signal.removeEventListener("abort", onAbort);
    }
    const leftStatus = this.#stoppedReason !== null && this.#failure === null
      ? "not_started"
      : "pending";
    for (const task of [...this.#ready.slice(this.#head), ...this.#delayed]) {
      task.record.status = leftStatus;
      task.record.reason = this.#stoppedReason === null
        ? null
        : `The run stopped early after ${this.#stoppedReason}`;
    }
    this.#hooks.onChange();
    return {
      stoppedReason: this.#stoppedReason,
      journalFailure: this.#failure,
      rateLimitedResponses: this.#rateLimited,
      doneNow: this.#doneNow,
    };
  }

  /**
   * Starts jobs until none is left or the run stops: on a signal, an early stop, or a journal
   * that can no longer be written. Then waits for the jobs in flight, which finish into their
   * images (or leave nothing), so that no request paid for is abandoned half way.
   */
  async #loop(): Promise<void> {
    while (true) {
      const stopping = this.#signal.aborted || this.#stoppedReason !== null ||
        this.#failure !== null;
      if (stopping || this.queued === 0 || this.#inFlight >= this.limit.current) {
        if (this.#inFlight === 0 && (stopping || this.queued === 0)) return;
        await this.#sleep(Infinity);
        continue;
      }
      const now = this.#now();
      const spread = now < this.#spreadUntil ? this.#lastStartAt + this.#spreadMs : 0;
      const gate = Math.max(this.#pausedUntil, spread, now + this.#pacer.waitMs(now));
      if (gate > now) {
        await this.#sleep(gate - now);
        continue;
      }
      const next = this.#takeNext(now);
      if (typeof next === "number") {
        await this.#sleep(next - now);
        continue;
      }
      this.#start(next, now);
    }
  }

  /** The task to start now (a retry that is due, else the next new one), or when one will be due. */
  #takeNext(now: number): Task | number {
    let earliest = -1;
    for (let i = 0; i < this.#delayed.length; i++) {
      if (earliest === -1 || this.#delayed[i]!.notBefore < this.#delayed[earliest]!.notBefore) {
        earliest = i;
      }
    }
    if (earliest !== -1 && this.#delayed[earliest]!.notBefore <= now) {
      return this.#delayed.splice(earliest, 1)[0]!;
    }
    if (this.#head < this.#ready.length) return this.#ready[this.#head++]!;
    return this.#delayed[earliest]!.notBefore;
  }

  #start(task: Task, now: number): void {
    this.#inFlight++;
    this.#lastStartAt = now;
    this.#pacer.started(now);
    task.record.status = "running";
    this.#runTask(task, now).catch((error) => {
      // The journal could not be written: nothing more may be started. The job's end is not
      // journaled: one that made its image stays done (the image is kept and the result lists
      // it), any other is left to the next run.
      this.#failure ??= error;
      if (task.record.status !== "done") task.record.status = "pending";
    }).finally(() => {
      this.#inFlight--;
      this.#hooks.onChange();
      this.#wakeUp();
    });
  }

  async #runTask(task: Task, startedAt: number): Promise<void> {
    const { record } = task;
    if (!task.startedThisRun) {
      task.startedThisRun = true;
      record.startedAt = Date.now();
    }
    await this.#hooks.onStart(record);
    this.#hooks.onEvent({
      event: "job_started",
      id: record.id,
      task_name: record.taskName,
      attempt: record.attempts + 1,
    });
    this.#hooks.onChange();
    const result = await this.#hooks.generate(record.job!.params, this.#signal, record);
    const sent = result.attempts?.length ?? 1;
    record.attempts += sent;
    record.result = result;
    this.#rateLimited += result.attempts?.filter((a) => a.category === "rate_limited").length ??
      (!result.ok && result.diagnosis.category === "rate_limited" ? 1 : 0);

    if (result.ok) {
      this.limit.succeeded(startedAt);
      this.#pacer.succeeded();
      this.#doneNow++;
      markDone(record, result);
      await this.#hooks.onEnd(record);
      this.#hooks.onEvent({
        event: "job_done",
        id: record.id,
        task_name: record.taskName,
        attempts: record.attempts,
        image_path: result.image_path,
      });
      return;
    }

    const { category, retryable, retry_after_ms } = result.diagnosis;
    record.category = category;
    record.retryable = retryable;
    if (category === "cancelled" && this.#signal.aborted) {
      // Back in the queue for the next run; no file was left.
      record.status = "pending";
      return;
    }

    const now = this.#now();
    let delay: number | null = null;
    if (category === "rate_limited") {
      task.rateLimitedInARow++;
      const pause = retryDelayMs(task.rateLimitedInARow - 1, retry_after_ms, this.#random);
      // Down to one request at a time, the starts themselves have to be spaced out.
      if (this.limit.rateLimited(startedAt, now) && this.limit.current === 1) {
        this.#pacer.slowDown(pause);
      }
      if (now + pause > this.#pausedUntil) {
        this.#pausedUntil = now + pause;
        // The limit's tokens come back over time: the slots free when the pause ends restart
        // over as long again, not all at once into the few tokens there are.
        this.#spreadUntil = this.#pausedUntil + pause;
        this.#spreadMs = pause / this.limit.current;
        this.#hooks.onEvent({
          event: "paused_rate_limited",
          pause_ms: pause,
          concurrency: this.limit.current,
        });
      }
      if (task.rateLimitedInARow < MAX_RATE_LIMITED_IN_A_ROW) delay = pause;
    } else {
      task.rateLimitedInARow = 0;
      task.counted += sent;
      if (retryable && task.counted < this.#settings.maxAttempts) {
        delay = retryDelayMs(task.counted - 1, retry_after_ms, this.#random);
      }
    }

    if (delay !== null) {
      record.status = "pending";
      if (this.#signal.aborted) return;
      task.notBefore = now + delay;
      this.#delayed.push(task);
      this.#hooks.onEvent({
        event: "job_retry",
        id: record.id,
        task_name: record.taskName,
        attempts: record.attempts,
        category,
        delay_ms: delay,
      });
      return;
    }

    Object.assign(record, { status: "failed", imagePath: null, endedAt: Date.now() });
    await this.#hooks.onEnd(record);
    this.#hooks.onEvent({
      event: "job_failed",
      id: record.id,
      task_name: record.taskName,
      attempts: record.attempts,
      category,
      error: result.error,
    });
    if (
      STOP_CATEGORIES.includes(category) && !this.#settings.keepGoing &&
      this.#stoppedReason === null
    ) {
      this.#stoppedReason = category;
      this.#hooks.onEvent({ event: "stopped", reason: category });
    }
  }

  #wakeUp(): void {
    this.#wake.resolve();
    this.#wake = Promise.withResolvers<void>();
  }

  /** Waits `ms`, or until a job ends or a signal arrives. */
  async #sleep(ms: number): Promise<void> {
    const wake = this.#wake.promise;
    if (ms === Infinity) return await wake;
    // A longer timer would fire at once (and warn), turning a long wait into a busy loop; the
    // loop looks at the time again when this one ends.
    const wait = Math.min(ms, MAX_TIMER_MS);
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([wake, new Promise<void>((resolve) => (timer = setTimeout(resolve, wait)))]);
    clearTimeout(timer);
  }
}
