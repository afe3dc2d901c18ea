/**
 * Standard output for a command's answer: every write taken whole and, once a stop signal has
 * come, given up after a short grace, so that a reader that never reads cannot hold the process.
 */
import { type Writable, writeAll } from "../shared/bytes.ts";

/**
 * How long a write to standard output may take once a signal has come. By then the temporary
 * file is already gone; only the answer is left to give.
 */
const WRITE_GRACE_MS = 500;

/** A write given up after a signal, because standard output did not take it in time. */
class WriteAbandoned extends Error {
  override name = "WriteAbandoned";
}

/** Whether `error`, or the error it wraps, is a write given up after a signal. */
export function isWriteAbandoned(error: unknown): boolean {
  return error instanceof WriteAbandoned ||
    (error instanceof Error && error.cause instanceof WriteAbandoned);
}

export class Stdout {
  readonly #stopped: AbortSignal;
  readonly #target: Writable;
  readonly #encoder = new TextEncoder();

  /**
   * `stopped` is aborted when a stop signal comes (StopSignals.signal). `target` is standard
   * output unless another stream (standard error, a file) is to be written the same way.
   */
  constructor(stopped: AbortSignal, target: Writable = Deno.stdout) {
    this.#stopped = stopped;
    this.#target = target;
  }

  /**
   * Writes all of `bytes`. Until a signal comes a write may take as long as it needs; from then
   * on (or from its start, if the signal came first) it has WRITE_GRACE_MS, after which it is
   * given up with a WriteAbandoned rejection. The abandoned write stays pending: the caller is
   * expected to exit.
   */
  readonly write = (bytes: Uint8Array): Promise<void> =>
    writeAll({ write: (piece) => this.#withGrace(this.#target.write(piece)) }, bytes);

  text(text: string): Promise<void> {
    return this.write(this.#encoder.encode(text));
  }

  /** `value` as 2-space indented JSON, on a line of its own. */
  json(value: unknown): Promise<void> {
    return this.text(JSON.stringify(value, null, 2) + "\n");
  }

  #withGrace<T>(write: Promise<T>): Promise<T> {
    const stopped = this.#stopped;
    return new Promise<T>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const startGrace = () => {
        timer = setTimeout(
          () => reject(new WriteAbandoned("Standard output took no more after a signal")),
          WRITE_GRACE_MS,
        );
      };
      if (stopped.aborted) startGrace();
      else stopped.addEventListener("abort", startGrace, { once: true });
      write.then(resolve, reject).finally(() => {
        clearTimeout(timer);
        stopped.removeEventListener("abort", startGrace);
      });
    });
  }
}
