import { type Answer, readAnswer } from "./answer.ts";
import { Deadline } from "./deadline.ts";
import { diagnose } from "./diagnosis.ts";
import { downloadImage } from "./download.ts";
import { errorMessage, factsOf, GenerationError, InputError } from "./errors.ts";
import { type ImageInfo, sniffImage } from "./image_type.ts";
import { ImageFile } from "./output_file.ts";
import { type GenerationInput, type GenerationParams, validateParams } from "./params.ts";
import { endpointOf, sendImageRequest } from "./request.ts";
import { transportFailure } from "./transport.ts";
import { MAX_FIELD_CHARS, requestIdOf } from "./upstream_error.ts";
import { maskThenClip } from "./redact.ts";
import {
  type Attempt,
  callContext,
  failureResult,
  type GenerationResult,
  successResult,
} from "./result.ts";
import { backoffMs } from "./retry.ts";
import type { Diagnosis } from "./types.ts";

export interface GenerateOptions {
  /**
   * Aborting it cancels the call: the result is a `cancelled` failure and no file is left, unless
   * the image was already complete and being moved into place, which then finishes.
   */
  signal?: AbortSignal;
  /**
   * Leaves `b64` out of the result even with return_base64, for a caller that writes it from
   * `image_path` in pieces (see writeResult), so that it is never held as one string.
   */
  deferBase64?: boolean;
  /** Told of each step, for progress on a terminal; upstream text in it is already masked. */
  onProgress?: (message: string) => void;
}

/**
 * Generates one image and saves it: validates the input, sends the request, reads the answer,
 * decodes or downloads the image, checks its bytes and moves it into place. Never throws: every
 * failure comes back as a result with its stage and diagnosis.
 */
export async function generateImage(
  input: GenerationInput,
  options: GenerateOptions = {},
): Promise<GenerationResult> {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    return failureResult(new InputError("Expected the parameters as an object"), callContext({}));
  }
  const context = callContext(input);
  let params: GenerationParams;
  try {
    params = validateParams(input);
  } catch (error) {
    return failureResult(error, context);
  }

  const deadline = new Deadline(params.timeout_ms, options.signal);
  const report = options.onProgress;
  // A caller's progress callback that throws must not fail the generation.
  const onProgress = report &&
    ((message: string) => {
      try {
        report(message);
      } catch { /* ignored */ }
    });
  const attempts: Attempt[] = [];
  const retries = { params, deadline, attempts, secrets: context.secrets, onProgress };
  let file: ImageFile | null = null;
  let extras: { requestId?: string | null; droppedParams?: string[] } = {};
  try {
    file = await ImageFile.create(params.output_dir, params.task_name);
    const outcome = await attemptWithRetries(file, retries);
    extras = outcome;
    const path = await file.commit(outcome.info.extension);
    const result = successResult(
      { path, bytes: file.bytes, info: outcome.info },
      outcome.answer,
      context,
      { ...extras, ...(params.max_retries > 0 ? { attempts } : {}) },
    );
    if (params.return_base64 && !options.deferBase64) {
      result.b64 = (await file.readAll()).toBase64();
    }
    return result;
  } catch (error) {
    return failureResult(asFailure(error, deadline), context, {
      ...extras,
      ...(params.max_retries > 0 ? { attempts } : {}),
    });
  } finally {
    deadline.dispose();
    await file?.discard();
  }
}

interface RetryState {
  params: GenerationParams;
  deadline: Deadline;
  /** Filled in as attempts end, when max_retries asks for retries. */
  attempts: Attempt[];
  secrets: readonly string[];
  onProgress: GenerateOptions["onProgress"];
}

/** Attempts until one succeeds, or a failure is not to be retried, which is thrown. */
async function attemptWithRetries(file: ImageFile, state: RetryState): Promise<AttemptOutcome> {
  const { params, deadline, attempts, onProgress } = state;
  for (let attempt = 0;; attempt++) {
    try {
      const outcome = await attemptOnce(params, deadline, file, onProgress);
      if (params.max_retries > 0) attempts.push({ http_status: outcome.status, category: null });
      return outcome;
    } catch (error) {
      const failure = asFailure(error, deadline);
      const diagnosis = diagnose(factsOf(failure), params.lang);
      if (params.max_retries > 0) {
        attempts.push({
          http_status: failure.details.httpStatus ?? null,
          category: diagnosis.category,
        });
      }
      const wait = retryWait(diagnosis, params.max_retries - attempt, attempt, deadline);
      if (wait === null) throw failure;
      onProgress?.(
        `attempt ${attempt + 1} failed (${
          maskThenClip(failure.message, state.secrets, MAX_FIELD_CHARS)
        }); retrying in ${wait} ms`,
      );
      await file.reset();
      await deadline.sleep(wait).catch(() => {
        throw new GenerationError(
          failure.stage,
          `${failure.message}; then, waiting to retry: ${
            (deadline.signal.reason as Error).message
          }`,
          { ...failure.details, cause: deadline.cause() },
        );
      });
    }
  }
}

interface AttemptOutcome {
  status: number;
  answer: Answer;
  info: ImageInfo;
  requestId: string | null;
  droppedParams: string[];
}

async function attemptOnce(
  params: GenerationParams,
  deadline: Deadline,
  file: ImageFile,
  onProgress: GenerateOptions["onProgress"],
): Promise<AttemptOutcome> {
  onProgress?.(`requesting ${params.model} ${params.size} (timeout ${params.timeout_ms} ms)`);
  const { response, droppedParams } = await sendImageRequest(params, deadline);
  const requestId = requestIdOf(response.headers, null);
  let answer: Answer;
  try {
    answer = await readAnswer(response.body, file.write);
  } catch (error) {
    const failure = transportFailure("response", error, deadline, "Reading the answer");
    throw withAnswerFacts(failure, response.status, requestId);
  }
  if (answer.source.kind === "url") {
    onProgress?.("downloading the image");
    // Bytes are here only when a later item of the answer carried base64 as well.
    if (file.bytes > 0) await file.reset();
    await downloadImage(
      answer.source.url,
      endpointOf(params.base_url).origin,
      params.api_key,
      deadline,
      file.write,
    );
  }
  const info = sniffImage(file.head);
  if (info === null) {
    throw new GenerationError(
      "decode",
      `The bytes received are not a PNG, JPEG, WebP or GIF image`,
      {
        httpStatus: response.status,
        requestId,
      },
    );
  }
  return { status: response.status, answer, info, requestId, droppedParams };
}

/** The answer's status and request id, on a failure that does not carry its own. */
function withAnswerFacts(
  error: GenerationError,
  status: number,
  requestId: string | null,
): GenerationError {
  if (requestId !== null && !error.details.requestId) error.details.requestId = requestId;
  error.details.httpStatus ??= status;
  return error;
}

/** How long to wait before the next attempt, or null when there is to be none. */
function retryWait(
  diagnosis: Diagnosis,
  retriesLeft: number,
  attempt: number,
  deadline: Deadline,
): number | null {
  if (retriesLeft <= 0 || !diagnosis.retryable) return null;
  const wait = diagnosis.retry_after_ms ?? backoffMs(attempt);
  return wait < deadline.remainingMs() ? wait : null;
}

/** Any error as a stage failure; one that is not yet is an abort, or else a fault of this side. */
function asFailure(error: unknown, deadline: Deadline): GenerationError {
  if (error instanceof GenerationError) return error;
  if (deadline.cause() !== null) return transportFailure("response", error, deadline, "Stopped");
  return new GenerationError("response", `Unexpected error: ${errorMessage(error)}`);
}
