/**
 * Opening the files a run is given (the jobs, `--defaults`, `--api-key-file`, `--events`) so that
 * a stop signal is never held up: opening a FIFO waits for its other end, for ever if nobody
 * comes, and the open itself cannot be cancelled. The wait is given up instead; the process is
 * about to answer and exit.
 */
import { errorMessage, GenerationError, InputError } from "../mod.ts";

/** What a read given up on a signal says, as readCapped() says it of a read cut short. */
export function cancelledRead(source: string): InputError {
  return new InputError(`Cannot read ${source}: cancelled`);
}

/**
 * An input error met once a stop signal has come (a read or an open given up), as the cancelled
 * failure img2-generate answers with then; any other input error as it is.
 */
export function stoppedInputError(error: InputError, signal: AbortSignal): GenerationError {
  return signal.aborted
    ? new GenerationError("input", error.message, { cause: "cancelled" })
    : error;
}

/**
 * `opening`, or `cancelled()` as a rejection as soon as `signal` aborts; a file the open still
 * yields after that is closed at once.
 */
export function unlessStopped<T extends Deno.FsFile | null>(
  opening: Promise<T>,
  signal: AbortSignal,
  cancelled: () => Error,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const onStop = () => {
      if (!settled) reject(cancelled());
      settled = true;
    };
    opening.then(
      (file) => {
        signal.removeEventListener("abort", onStop);
        if (settled) file?.close();
        else resolve(file);
        settled = true;
      },
      (error) => {
        signal.removeEventListener("abort", onStop);
        if (!settled) reject(error);
        settled = true;
      },
    );
    if (signal.aborted) onStop();
    else signal.addEventListener("abort", onStop, { once: true });
  });
}

/** The file at `path` opened for reading, giving way to `signal`; an input error when it cannot be. */
export async function openToRead(
  path: string,
  source: string,
  signal: AbortSignal,
): Promise<ReadableStream<Uint8Array>> {
  try {
    const file = await unlessStopped(Deno.open(path), signal, () => cancelledRead(source));
    return file.readable;
  } catch (error) {
    if (error instanceof InputError) throw error;
    throw new InputError(`Cannot read ${source}: ${errorMessage(error)}`);
  }
}
