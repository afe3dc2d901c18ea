import type { LocalCause } from "../failure/types.ts";

/** The abort reason when timeout_ms runs out. */
class DeadlineExceeded extends Error {
  override name = "DeadlineExceeded";
}

/** The abort reason when the caller's signal fires (SIGINT, SIGTERM, or a library caller). */
export class Cancelled extends Error {
  override name = "Cancelled";
}

/**
 * One signal for the whole call: it fires when timeout_ms has passed since the start or when the
 * caller's signal fires, whichever comes first. Every network step and wait takes `signal`.
 */
export class Deadline {
  readonly #controller = new AbortController();
  readonly #timer: ReturnType<typeof setTimeout>;
  readonly #endsAt: number;
  readonly #callerSignal: AbortSignal | undefined;
  readonly #onCallerAbort = () => this.#controller.abort(new Cancelled("Cancelled by the caller"));

  constructor(timeoutMs: number, callerSignal?: AbortSignal) {
    this.#endsAt = performance.now() + timeoutMs;
    this.#timer = setTimeout(() => {
      this.#controller.abort(new DeadlineExceeded(`No image within timeout_ms (${timeoutMs} ms)`));
    }, timeoutMs);
    this.#callerSignal = callerSignal;
    if (callerSignal?.aborted) this.#onCallerAbort();
    callerSignal?.addEventListener("abort", this.#onCallerAbort, { once: true });
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  remainingMs(): number {
    return Math.max(0, this.#endsAt - performance.now());
  }

  /** Why the signal fired, in words: "No image within timeout_ms (… ms)", "Cancelled by …". */
  stopReason(): string {
    return (this.signal.reason as Error).message;
  }

  /** Why the signal fired, or null while it has not. */
  cause(): LocalCause | null {
    if (!this.signal.aborted) return null;
    return this.signal.reason instanceof Cancelled ? "cancelled" : "timeout";
  }

  /** Waits `ms`, or less if the signal fires first (then throws its reason). */
  sleep(ms: number): Promise<void> {
    const signal = this.signal;
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal.reason);
      };
      const timer = setTimeout(() => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      }, ms);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  dispose(): void {
    clearTimeout(this.#timer);
    this.#callerSignal?.removeEventListener("abort", this.#onCallerAbort);
  }
}
