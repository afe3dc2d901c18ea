import type { Answer, UpstreamSettings } from "./upstream/answer.ts";
import { diagnose } from "./failure/diagnosis.ts";
import { errorMessage, factsOf, GenerationError, unexpectedFailure } from "./failure/errors.ts";
import type { ImageInfo } from "./image/image_type.ts";
import { maskBaseUrl, maskThenClip, redact, redactText, secretsOf } from "./shared/redact.ts";
import { MAX_FIELD_CHARS, MAX_REQUEST_ID_CHARS } from "./upstream/upstream_error.ts";
import type { Attempt, Diagnosis, Lang, Stage } from "./failure/types.ts";
import { isWriteAbandoned } from "./cli/stdout.ts";

export type { Attempt };

interface Common {
  base_url: string | null;
  model: string | null;
  size: string | null;
  task_name: string | null;
  elapsed_ms: number;
  request_id?: string;
  dropped_params?: string[];
  attempts?: Attempt[];
  /** Set by img2-batch --batch-api: the provider's batch whose output answered the call. */
  batch_id?: string;
}

export interface SuccessResult extends Common {
  ok: true;
  stage: "done";
  image_path: string;
  bytes: number;
  mime_type: ImageInfo["mimeType"];
  width: number | null;
  height: number | null;
  revised_prompt?: string;
  /** The settings the upstream says it used, when its answer says them. */
  upstream_size?: string;
  upstream_quality?: string;
  upstream_output_format?: string;
  upstream_background?: string;
  usage?: unknown;
  /** With stream: the partial images the stream sent. */
  partial_images_received?: number;
  /** With save_partials: where they were saved. */
  partial_paths?: string[];
  b64?: string;
}

export interface FailureResult extends Common {
  ok: false;
  stage: Exclude<Stage, "done">;
  http_status: number | null;
  upstream_error_type: string | null;
  upstream_error_message: string | null;
  upstream_error_code: string | null;
  error: string;
  diagnosis: Diagnosis;
}

export type GenerationResult = SuccessResult | FailureResult;

/** What every result repeats of the call, taken from the input even when it was invalid. */
export interface CallContext {
  base_url: unknown;
  model: unknown;
  size: unknown;
  task_name: unknown;
  lang: Lang;
  secrets: readonly string[];
  startedAt: number;
}

/** The fields of a call's input (or of its validated parameters) that every result repeats. */
export type ContextSource = {
  readonly [
    name in "base_url" | "model" | "size" | "task_name" | "lang" | "api_key" | "extra_headers"
  ]?: unknown;
};

/** The context of a call, read from its input before (or without) validation. */
export function callContext(input: ContextSource): CallContext {
  return {
    base_url: input.base_url,
    model: input.model,
    size: input.size,
    task_name: input.task_name,
    lang: input.lang === "en" ? "en" : "zh",
    secrets: secretsOf(input.api_key, input.base_url, input.extra_headers),
    startedAt: performance.now(),
  };
}

export interface CallExtras {
  requestId?: string | null;
  droppedParams?: string[];
  attempts?: Attempt[];
  partialImages?: number;
  partialPaths?: string[];
}

export interface FailureExtras extends CallExtras {
  /** The diagnosis already made of this failure (by the retry loop), so it is made once. */
  diagnosis?: Diagnosis;
}

/** The one place where a failure, of any kind and at any stage, becomes the result object. */
export function failureResult(
  error: unknown,
  context: CallContext,
  { diagnosis, ...extras }: FailureExtras = {},
): FailureResult {
  const failure = error instanceof GenerationError ? error : unexpectedFailure("response", error);
  const { httpStatus = null, upstream = null } = failure.details;
  const shown = shownText(context.secrets);
  return {
    ok: false,
    stage: failure.stage,
    http_status: httpStatus,
    upstream_error_type: shown(upstream?.type ?? null),
    upstream_error_message: shown(upstream?.message ?? null),
    upstream_error_code: shown(upstream?.code ?? null),
    error: shown(failure.message),
    diagnosis: diagnosis ?? diagnose(factsOf(failure), context.lang),
    ...commonFields(context, true, {
      ...extras,
      requestId: extras.requestId ?? failure.details.requestId,
    }),
  };
}

export function successResult(
  image: { path: string; bytes: number; info: ImageInfo },
  answer: Pick<Answer, "revisedPrompt" | "usage" | "settings">,
  context: CallContext,
  extras: CallExtras,
): SuccessResult {
  const { request_id, dropped_params, attempts, ...common } = commonFields(context, false, extras);
  const shown = shownText(context.secrets);
  const result: SuccessResult = {
    ok: true,
    stage: "done",
    image_path: image.path,
    bytes: image.bytes,
    ...common,
    mime_type: image.info.mimeType,
    width: image.info.width,
    height: image.info.height,
  };
  if (request_id !== undefined) result.request_id = request_id;
  // What the upstream wrote is masked like its errors; what this side built is left exact.
  if (answer.revisedPrompt !== null) {
    result.revised_prompt = redactText(answer.revisedPrompt, context.secrets);
  }
  for (const [name, value] of Object.entries(answer.settings)) {
    result[`upstream_${name as keyof UpstreamSettings}`] = shown(value);
  }
  if (answer.usage !== null && answer.usage !== undefined) {
    result.usage = redact(answer.usage, context.secrets);
  }
  if (extras.partialImages !== undefined) result.partial_images_received = extras.partialImages;
  if (extras.partialPaths !== undefined) result.partial_paths = extras.partialPaths;
  if (dropped_params !== undefined) result.dropped_params = dropped_params;
  if (attempts !== undefined) result.attempts = attempts;
  return result;
}

/**
 * The call's own fields. A failure may come from any input, a careless one holding the key or an
 * extra header's value in any field, so it masks them; a success's input passed validation, which
 * refuses the key in them, and shows them as given, exact like the image_path they make.
 */
function commonFields(context: CallContext, failed: boolean, extras: CallExtras): Common {
  const shown = (value: unknown) =>
    typeof value !== "string" ? null : failed ? redactText(value, context.secrets) : value;
  const common: Common = {
    base_url: isHttpUrl(context.base_url) ? shown(maskBaseUrl(context.base_url)) : null,
    model: shown(context.model),
    size: shown(context.size),
    task_name: shown(context.task_name),
    elapsed_ms: elapsedSince(context.startedAt),
  };
  if (extras.requestId) {
    common.request_id = maskThenClip(extras.requestId, context.secrets, MAX_REQUEST_ID_CHARS);
  }
  if (extras.droppedParams?.length) common.dropped_params = extras.droppedParams;
  if (extras.attempts) common.attempts = extras.attempts;
  return common;
}

/** Text that came from outside, as a field may show it: masked, then clipped. */
function shownText(secrets: readonly string[]): <T extends string | null>(text: T) => T {
  return <T extends string | null>(text: T) =>
    (text === null ? null : maskThenClip(text, secrets, MAX_FIELD_CHARS)) as T;
}

/**
 * Only a base_url that is an http(s) URL is repeated: anything else may be the key given in its
 * place (`--base-url "$KEY" --api-key https://…`), which no secret of the call would mask.
 */
function isHttpUrl(value: unknown): value is string {
  return typeof value === "string" && URL.canParse(value) &&
    /^https?:$/.test(new URL(value).protocol);
}

function elapsedSince(startedAt: number): number {
  return Math.round(performance.now() - startedAt);
}

/** Bytes of image per piece of base64: a multiple of 3, so that the pieces join without padding. */
const BASE64_PIECE_BYTES = 3 << 20;

/** A saved image, read back in pieces of a given size (see ImageFile). */
export interface SavedImage {
  pieces(size: number): AsyncIterable<Uint8Array>;
}

/**
 * Writing a result failed after its first byte was written: standard output holds part of a
 * JSON object, and nothing more may be written after it.
 */
export class ResultCutShort extends Error {
  override name = "ResultCutShort";
}

/**
 * The exit code of a command whose answer could not be written: the signal's when a signal came
 * and standard output took nothing more, 1 when its reader closed it or the result broke off
 * (there is no one left to tell). Any other error is thrown again.
 */
export function unwrittenExitCode(error: unknown, signalExitCode: number | null): number {
  if (isWriteAbandoned(error) && signalExitCode !== null) return signalExitCode;
  if (error instanceof Deno.errors.BrokenPipe || error instanceof ResultCutShort) return 1;
  throw error;
}

/**
 * Writes a result as 2-space indented JSON. With `image`, a success carries the image as `b64`,
 * read from it and written a piece at a time, so that it is never held as one string. Everything
 * that can fail before the first byte (JSON.stringify) is done before it; a failure after it is
 * a ResultCutShort.
 */
export async function writeResult(
  result: GenerationResult,
  write: (bytes: Uint8Array) => Promise<void>,
  image: SavedImage | null = null,
): Promise<void> {
  const encoder = new TextEncoder();
  if (!result.ok || image === null) {
    const text = encoder.encode(JSON.stringify(result, null, 2) + "\n");
    await cutShortOnFailure(() => write(text));
    return;
  }
  const { b64: _b64, ...rest } = result;
  const head = encoder.encode(`${JSON.stringify(rest, null, 2).slice(0, -2)},\n  "b64": "`);
  await cutShortOnFailure(async () => {
    await write(head);
    const buffer = new Uint8Array((BASE64_PIECE_BYTES / 3) * 4);
    for await (const piece of base64Of(image)) {
      const { written } = encoder.encodeInto(piece, buffer);
      await write(buffer.subarray(0, written));
    }
    await write(encoder.encode(`"\n}\n`));
  });
}

async function cutShortOnFailure(writing: () => Promise<void>): Promise<void> {
  try {
    await writing();
  } catch (error) {
    throw new ResultCutShort(`The result was cut short: ${errorMessage(error)}`, { cause: error });
  }
}

/** The image as base64, a piece at a time. */
export async function* base64Of(image: SavedImage): AsyncGenerator<string> {
  for await (const piece of image.pieces(BASE64_PIECE_BYTES)) yield piece.toBase64();
}

/**
 * `MEDIA:<path>` and a line break, or null when the path would not stay on that one line (a line
 * break in it could forge a second MEDIA line) or would not be printed as it is named.
 */
export function mediaLine(path: string): string | null {
  if (!path.isWellFormed() || /[\p{Cc}\u2028\u2029]/u.test(path)) return null;
  return `MEDIA:${path}\n`;
}
