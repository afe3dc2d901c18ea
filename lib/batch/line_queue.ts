/**
 * Lines written in order to a stream whose reader may fall behind or stop reading (the events,
 * the warnings on standard error): a write never waits on the caller, so a stalled reader holds
 * up neither the run, nor its end, nor a stop signal.
 */
import { isWriteAbandoned, Stdout } from "../mod.ts";
import type { Writable } from "../shared/bytes.ts";

/**
 * The lines a reader that falls behind may leave waiting in memory; the ones that come beyond
 * that are dropped until it catches up.
 */
export const MAX_WAITING_BYTES = 1024 * 1024;
/**
 * How long the lines still waiting when the run ends (or when a stop signal comes) may take to
 * be written, in all; the ones the reader has not taken by then are dropped.
 */
export const DRAIN_MS = 500;

export class LineQueue {
  readonly #target: Stdout;
  readonly #onFailure: (error: unknown) => void;
  readonly #encoder = new TextEncoder();
  #written: Promise<void> = Promise.resolve();
  /** The bytes of the lines queued but not yet written. */
  #waitingBytes = 0;
  /** Aborted by a stop signal or by close(): from then on writes have a deadline. */
  readonly #ending = new AbortController();
  #deadline = Infinity;
  #failed = false;
  #abandoned = false;

  /**
   * `onFailure` is told once of a write that failed (not of one given up): nothing more is
   * written after it.
   */
  constructor(target: Writable, signal: AbortSignal, onFailure: (error: unknown) => void) {
    this.#target = new Stdout(this.#ending.signal, target);
    this.#onFailure = onFailure;
    if (signal.aborted) this.#end();
    else signal.addEventListener("abort", () => this.#end(), { once: true });
  }

  /** Whether a write given up is still pending, holding the target: the process is to end. */
  get abandoned(): boolean {
    return this.#abandoned;
  }

  /** Queues `text` (whole lines), or drops it when too much is waiting already. */
  write(text: string): void {
    if (this.#failed) return;
    const bytes = this.#encoder.encode(text);
    if (this.#waitingBytes + bytes.length > MAX_WAITING_BYTES) return;
    this.#waitingBytes += bytes.length;
    this.#written = this.#written.then(async () => {
      try {
        if (performance.now() > this.#deadline) this.#failed = true;
        if (this.#failed) return;
        await this.#target.write(bytes);
      } catch (error) {
        this.#failed = true;
        this.#abandoned = isWriteAbandoned(error);
        if (!this.#abandoned) this.#onFailure(error);
      } finally {
        this.#waitingBytes -= bytes.length;
      }
    });
  }

  /** Waits for the lines still waiting, no longer than about DRAIN_MS. */
  async close(): Promise<void> {
    this.#end();
    await this.#written;
  }

  #end(): void {
    if (this.#ending.signal.aborted) return;
    this.#deadline = performance.now() + DRAIN_MS;
    this.#ending.abort();
  }
}
