import { isJsonObject } from "./shared/json.ts";
import { type Answer, readAnswer } from "./upstream/answer.ts";
import { type EventImageTarget, readEventStream } from "./upstream/event_stream.ts";
import { sniffAnswer } from "./upstream/answer_format.ts";
import { Deadline } from "./upstream/deadline.ts";
import { downloadImage } from "./upstream/download.ts";
import { errorMessage, GenerationError, InputError, unexpectedFailure } from "./failure/errors.ts";
import { type ImageInfo, sniffImage } from "./image/image_type.ts";
import { ImageFile, type TemporaryFile } from "./image/output_file.ts";
import { PartialImages } from "./image/partial_images.ts";
import {
  type GenerationInput,
  type GenerationParams,
  MAX_PARTIAL_IMAGES,
  validateParams,
} from "./params/params.ts";
import {
  type AnswerFacts,
  credentialHeaders,
  endpointOf,
  readGivenAnswer,
  sendImageRequest,
} from "./upstream/request.ts";
import { transportFailure } from "./upstream/http_failure.ts";
import { MAX_FIELD_CHARS } from "./upstream/upstream_error.ts";
import { maskThenClip } from "./shared/redact.ts";
import {
  type Attempt,
  base64Of,
  type CallContext,
  callContext,
  type CallExtras,
  failureResult,
  type GenerationResult,
  ResultCutShort,
  type SavedImage,
  successResult,
} from "./result.ts";
import { withRetries } from "./upstream/retry.ts";

export interface GenerateOptions {
  /**
   * Aborting it cancels the call: the result is a `cancelled` failure and no file is left, unless
   * the image was already complete and being moved into place, which then finishes.
   */
  signal?: AbortSignal;
  /** Told of each step, for progress on a terminal; upstream text in it is already masked. */
  onProgress?: (message: string) => void;
  /**
   * Told of the temporary file once it is made, before the request is sent: a caller that keeps
   * records (img2-batch) notes which file is its own. If it rejects, nothing is sent and the
   * call fails at the save stage.
   */
  onFile?: (file: TemporaryFile) => Promise<void>;
  /**
   * The answer to this call's request, already received by other means (a line of a provider's
   * Batch API output): nothing is sent, and it is read, decoded, saved and diagnosed exactly as
   * a fresh answer would be. Read once, so never retried.
   */
  answered?: Response;
}

/**
 * What becomes of the result while the saved image is still open: written out, or given its
 * base64. `image` is null for a failure. If it throws, the image is removed and a failure is
 * delivered instead, unless it threw a ResultCutShort (then it is only removed): a success is
 * reported whole or the image does not stay.
 */
export type Deliver = (result: GenerationResult, image: SavedImage | null) => Promise<void>;

/**
 * Generates one image and saves it: validates the input, sends the request, reads the answer,
 * decodes or downloads the image, checks its bytes and moves it into place. Never throws: every
 * failure comes back as a result with its stage and diagnosis.
 */
export async function generateImage(
  input: GenerationInput,
  options: GenerateOptions = {},
): Promise<GenerationResult> {
  if (!isJsonObject(input)) {
    return failureResult(new InputError("Expected the parameters as an object"), callContext({}));
  }
  let params: GenerationParams;
  try {
    params = validateParams(input);
  } catch (error) {
    return failureResult(error, callContext(input));
  }
  return await generateValidated(params, options);
}

/**
 * generateImage() for parameters validateParams() returned, for a caller that validated them
 * already (img2-batch, for every job before the first request). Never throws.
 */
export async function generateValidated(
  params: GenerationParams,
  options: GenerateOptions = {},
): Promise<GenerationResult> {
  return await generateFromParams(params, options, async (result, image) => {
    if (result.ok && image !== null && params.return_base64) {
      result.b64 = (await Array.fromAsync(base64Of(image))).join("");
    }
  });
}

/**
 * generateImage() for parameters validated already (return_base64 is then the deliverer's to
 * honour). Returns the result delivered last. Throws only what `deliver` throws when it cannot
 * write a result at all.
 */
export async function generateFromParams(
  params: GenerationParams,
  options: GenerateOptions,
  deliver: Deliver,
): Promise<GenerationResult> {
  const context = callContext(params);
  const deadline = new Deadline(params.timeout_ms, options.signal);
  const report = options.onProgress;
  // A caller's progress callback that throws must not fail the generation.
  const onProgress = report &&
    ((message: string) => {
      try {
        report(message);
      } catch { /* ignored */ }
    });
  let file: ImageFile | null = null;
  const partials = new PartialImages(params.save_partials ? params.partial_images ?? 0 : 0);
  try {
    let saved: SavedOutcome;
    try {
      file = await ImageFile.create(params.output_dir, params.task_name, deadline.signal);
      if (options.onFile) await options.onFile(await file.identity());
      const cause = deadline.cause();
      if (cause !== null) {
        throw new GenerationError(
          "save",
          `Preparing output_dir: ${deadline.stopReason()}, before the request was sent`,
          { cause },
        );
      }
      saved = await saveImage(
        file,
        partials,
        params,
        deadline,
        context,
        onProgress,
        options.answered,
      );
    } catch (error) {
      saved = { ok: false, result: failureResult(asFailure(error, deadline), context) };
    } finally {
      deadline.dispose();
    }
    if (!saved.ok) {
      await deliver(saved.result, null);
      return saved.result;
    }
    return await deliverSuccess(file!, partials, saved.outcome, params, context, deliver);
  } finally {
    await file?.discard();
    await partials.discard();
  }
}

type SavedImageOutcome = AttemptOutcome & {
  path: string;
  attempts: Attempt[];
  partialPaths: string[];
};
type SavedOutcome =
  | { ok: true; outcome: SavedImageOutcome }
  | { ok: false; result: GenerationResult };

/** The attempts, then the move into place; a failure of either as a failure result. */
async function saveImage(
  file: ImageFile,
  partials: PartialImages,
  params: GenerationParams,
  deadline: Deadline,
  context: CallContext,
  onProgress: GenerateOptions["onProgress"],
  answered?: Response,
): Promise<SavedOutcome> {
  const attempt = () => attemptOnce(params, deadline, file, partials, onProgress, answered);
  const attempted = await withRetries(attempt, {
    maxRetries: answered === undefined ? params.max_retries : 0,
    lang: params.lang,
    deadline,
    asFailure: (error) => asFailure(error, deadline),
    beforeRetry: async (failure, wait, attempt) => {
      onProgress?.(
        `attempt ${attempt + 1} failed (${
          maskThenClip(failure.message, context.secrets, MAX_FIELD_CHARS)
        }); retrying in ${wait} ms`,
      );
      await file.reset();
      await partials.discard();
    },
  });
  if (!attempted.ok) {
    const { failure, diagnosis, attempts } = attempted;
    return {
      ok: false,
      result: failureResult(failure, context, { diagnosis, ...attemptsListed(params, attempts) }),
    };
  }
  const outcome = attempted.value;
  try {
    const path = await file.commit(outcome.info.extension);
    const partialPaths = await partials.commitBeside(path);
    return { ok: true, outcome: { ...outcome, path, attempts: attempted.attempts, partialPaths } };
  } catch (error) {
    const extras = outcomeExtras({ ...outcome, attempts: attempted.attempts }, params);
    return { ok: false, result: failureResult(error, context, extras) };
  }
}

/** The attempts, listed in a result only when there could be more than one. */
function attemptsListed(params: GenerationParams, attempts: Attempt[]): { attempts?: Attempt[] } {
  return params.max_retries > 0 ? { attempts } : {};
}

/** What a result reports of the attempts that got an image, success or not. */
function outcomeExtras(
  outcome: Pick<SavedImageOutcome, "requestId" | "droppedParams" | "attempts">,
  params: GenerationParams,
): CallExtras {
  const { requestId, droppedParams, attempts } = outcome;
  return { requestId, droppedParams, ...attemptsListed(params, attempts) };
}

/**
 * Builds the success and delivers it while the image is open. Whatever fails from here on, the
 * image does not stay without its success reported.
 */
async function deliverSuccess(
  file: ImageFile,
  partials: PartialImages,
  outcome: SavedImageOutcome,
  params: GenerationParams,
  context: CallContext,
  deliver: Deliver,
): Promise<GenerationResult> {
  const extras = outcomeExtras(outcome, params);
  const streamed = {
    ...(params.stream ? { partialImages: outcome.answer.partialImages ?? 0 } : {}),
    ...(params.save_partials ? { partialPaths: outcome.partialPaths } : {}),
  };
  try {
    const result = successResult(
      { path: outcome.path, bytes: file.bytes, info: outcome.info },
      outcome.answer,
      context,
      { ...extras, ...streamed },
    );
    await deliver(result, file);
    return result;
  } catch (error) {
    await file.withdraw();
    await partials.withdraw();
    if (error instanceof ResultCutShort) throw error;
    const failure = new GenerationError(
      "response",
      `The image was saved but its result could not be made, so it was removed: ${
        errorMessage(error)
      }`,
      { httpStatus: outcome.status },
    );
    const result = failureResult(failure, context, extras);
    await deliver(result, null);
    return result;
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
  partials: PartialImages,
  onProgress: GenerateOptions["onProgress"],
  answered?: Response,
): Promise<AttemptOutcome> {
  onProgress?.(`requesting ${params.model} ${params.size} (timeout ${params.timeout_ms} ms)`);
  // A streamed answer's partial images pass through the image file on their way.
  const events: EventImageTarget = {
    write: file.write,
    partial: async (index) => {
      onProgress?.(`partial image ${index + 1} received`);
      await partials.take(file, index);
    },
    drop: () => file.reset(),
  };
  const read = async (response: Response, facts: AnswerFacts) => {
    try {
      const { format, chunks } = await sniffAnswer(response.body, response.headers);
      return format === "events"
        ? await readEventStream(chunks, events, facts, {
          headers: response.headers,
          partialImagesAsked: params.partial_images ?? MAX_PARTIAL_IMAGES,
        })
        : await readAnswer(chunks, file.write, facts, response.headers);
    } catch (error) {
      throw transportFailure("response", error, deadline, "Reading the answer", facts);
    }
  };
  const { facts, answer, droppedParams } = answered === undefined
    ? await sendImageRequest(params, deadline, read)
    : await readGivenAnswer(answered, deadline, read);
  if (answer.source.kind === "url") {
    onProgress?.("downloading the image");
    // Bytes are here only when a later item of the answer carried base64 as well.
    if (file.bytes > 0) await file.reset();
    await downloadImage(
      answer.source.url,
      endpointOf(params.base_url).origin,
      credentialHeaders(params),
      deadline,
      file.write,
    );
  }
  const info = sniffImage(file.head);
  if (info === null) {
    throw new GenerationError(
      "decode",
      `The bytes received are not a PNG, JPEG, WebP or GIF image`,
      facts,
    );
  }
  return { status: facts.httpStatus, answer, info, requestId: facts.requestId, droppedParams };
}

/** Any error as a stage failure; one that is not yet is an abort, or else a fault of this side. */
function asFailure(error: unknown, deadline: Deadline): GenerationError {
  if (error instanceof GenerationError) return error;
  if (deadline.cause() !== null) return transportFailure("response", error, deadline, "Stopped");
  return unexpectedFailure("response", error);
}
