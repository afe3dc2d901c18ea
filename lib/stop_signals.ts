import { Cancelled } from "./deadline.ts";

/** The signals that stop a call; each is answered with its own exit code (see main.ts). */
export const STOP_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"] as const;
export type StopSignal = (typeof STOP_SIGNALS)[number];

/**
 * How long a write to standard output may take once a signal has come. A reader that never reads
 * would otherwise hold the process for ever; by then the temporary file is already gone.
 */
export const WRITE_GRACE_MS = 500;

/** A write given up after a signal, because standard output did not take it in time. */
export class WriteAbandoned extends Error {
  override name = "WriteAbandoned";
}

/**
 * SIGINT, SIGTERM, SIGHUP and SIGQUIT, listened to from the start until the last byte is
 * written: before the generation they cancel reading the parameters, during it they abort the
 * request, and after it they let the result be written, for a short grace.
 */
export class StopSignals {
  readonly #controller = new AbortController();
  readonly #removers: (() => void)[] = [];
  received: StopSignal | null = null;

  constructor() {
    for (const signal of STOP_SIGNALS) {
      const stop = () => {
        this.received ??= signal;
        this.#controller.abort();
      };
      Deno.addSignalListener(signal, stop);
      this.#removers.push(() => Deno.removeSignalListener(signal, stop));
    }
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** `promise`, or a rejection as soon as a signal arrives. */
  race<T>(promise: Promise<T>): Promise<T> {
    const signal = this.signal;
    return new Promise<T>((resolve, reject) => {
      const onStop = () => reject(new Cancelled("Cancelled while reading the parameters"));
      if (signal.aborted) onStop();
      signal.addEventListener("abort", onStop, { once: true });
      promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onStop));
    });
  }

  /**
   * A write to standard output, which may take as long as it needs until a signal comes; from
   * then on (or from its start, if the signal came first) it has WRITE_GRACE_MS, after which it
   * is abandoned with a WriteAbandoned rejection. The abandoned write stays pending: the caller
   * is expected to exit.
   */
  bounded<T>(write: Promise<T>): Promise<T> {
    const signal = this.signal;
    return new Promise<T>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const startGrace = () => {
        timer = setTimeout(
          () => reject(new WriteAbandoned("Standard output took no more after a signal")),
          WRITE_GRACE_MS,
        );
      };
      if (signal.aborted) startGrace();
      else signal.addEventListener("abort", startGrace, { once: true });
      write.then(resolve, reject).finally(() => {
        clearTimeout(timer);
        signal.removeEventListener("abort", startGrace);
      });
    });
  }

  dispose(): void {
    for (const remove of this.#removers) remove();
  }
}
