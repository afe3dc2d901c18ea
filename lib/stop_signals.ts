import { Cancelled } from "./deadline.ts";

export const STOP_SIGNALS = ["SIGINT", "SIGTERM"] as const;
export type StopSignal = (typeof STOP_SIGNALS)[number];

/**
 * SIGINT and SIGTERM, listened to from the start until the last byte is written: before the
 * generation they cancel reading the parameters, during it they abort the request, and after it
 * they let the result be written whole.
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

  dispose(): void {
    for (const remove of this.#removers) remove();
  }
}
