import { Cancelled } from "../upstream/deadline.ts";

/** The signals that stop a call; each is answered with its own exit code. */
export const STOP_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"] as const;
export type StopSignal = (typeof STOP_SIGNALS)[number];

/** 128 plus the signal's number, as a shell reports a process the signal ended. */
const EXIT_BY_SIGNAL: Record<StopSignal, number> = {
  SIGHUP: 129,
  SIGINT: 130,
  SIGQUIT: 131,
  SIGTERM: 143,
};

/** The exit codes by signal, as help texts list them. */
export function signalExitCodes(): string {
  const bySignal = Object.entries(EXIT_BY_SIGNAL).sort(([, a], [, b]) => a - b);
  const codes = bySignal.map(([, code]) => code).join("/");
  return `${codes} interrupted by ${bySignal.map(([signal]) => signal).join("/")}`;
}

/**
 * SIGINT, SIGTERM, SIGHUP and SIGQUIT, listened to from the start until the last byte is
 * written: before the generation they cancel reading the parameters, during it they abort the
 * request, and after it they let the result be written, for a short grace (see stdout.ts).
 */
export class StopSignals {
  readonly #controller = new AbortController();
  readonly #removers: (() => void)[] = [];
  #received: StopSignal | null = null;

  constructor() {
    for (const signal of STOP_SIGNALS) {
      const stop = () => {
        this.#received ??= signal;
        this.#controller.abort();
      };
      Deno.addSignalListener(signal, stop);
      this.#removers.push(() => Deno.removeSignalListener(signal, stop));
    }
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** The exit code of the first signal received, or null while none has come. */
  get exitCode(): number | null {
    return this.#received === null ? null : EXIT_BY_SIGNAL[this.#received];
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
