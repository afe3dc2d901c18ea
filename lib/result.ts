import { diagnose } from "./diagnosis.ts";
import { factsOf, GenerationError } from "./errors.ts";
import type { ImageInfo } from "./image_type.ts";
import { maskBaseUrl, redact, secretsOf } from "./redact.ts";
import type { Category, Diagnosis, Lang, Stage } from "./types.ts";

export interface Attempt {
  http_status: number | null;
  /** null for the attempt that succeeded */
  category: Category | null;
}

interface Common {
  base_url: string | null;
  model: string | null;
  size: string | null;
  task_name: string | null;
  elapsed_ms: number;
  request_id?: string;
  dropped_params?: string[];
  attempts?: Attempt[];
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
  usage?: unknown;
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

/** The context of a call, read from its input before (or without) validation. */
export function callContext(input: Record<string, unknown>): CallContext {
  return {
    base_url: input.base_url,
    model: input.model,
    size: input.size,
    task_name: input.task_name,
    lang: input.lang === "en" ? "en" : "zh",
    secrets: secretsOf(input.api_key, input.base_url),
    startedAt: performance.now(),
  };
}

export interface CallExtras {
  requestId?: string | null;
  droppedParams?: string[];
  attempts?: Attempt[];
}

/** The one place where a failure, of any kind and at any stage, becomes the result object. */
export function failureResult(
  error: unknown,
  context: CallContext,
  extras: CallExtras = {},
): FailureResult {
  const failure = error instanceof GenerationError ? error : new GenerationError(
    "response",
    `Unexpected error: ${String((error as Error)?.message ?? error)}`,
  );
  const { httpStatus = null, upstream = null } = failure.details;
  const diagnosis = diagnose(factsOf(failure), context.lang);
  const result: FailureResult = {
    ok: false,
    stage: failure.stage,
    http_status: httpStatus,
    upstream_error_type: upstream?.type ?? null,
    upstream_error_message: upstream?.message ?? null,
    upstream_error_code: upstream?.code ?? null,
    error: failure.message,
    diagnosis,
    ...commonFields(context, {
      ...extras,
      requestId: extras.requestId ?? failure.details.requestId,
    }),
  };
  return redact(result, context.secrets);
}

export function successResult(
  image: { path: string; bytes: number; info: ImageInfo },
  answer: { revisedPrompt: string | null; usage: unknown },
  context: CallContext,
  extras: CallExtras,
): SuccessResult {
  const result: SuccessResult = {
    ok: true,
    stage: "done",
    image_path: image.path,
    bytes: image.bytes,
    ...commonFields(context, {}),
    mime_type: image.info.mimeType,
    width: image.info.width,
    height: image.info.height,
  };
  result.elapsed_ms = elapsedSince(context.startedAt);
  if (extras.requestId) result.request_id = extras.requestId;
  if (answer.revisedPrompt !== null) result.revised_prompt = answer.revisedPrompt;
  if (answer.usage !== null && answer.usage !== undefined) result.usage = answer.usage;
  if (extras.droppedParams?.length) result.dropped_params = extras.droppedParams;
  if (extras.attempts) result.attempts = extras.attempts;
  return redact(result, context.secrets);
}

function commonFields(context: CallContext, extras: CallExtras): Common {
  const common: Common = {
    base_url: typeof context.base_url === "string" ? maskBaseUrl(context.base_url) : null,
    model: textOrNull(context.model),
    size: textOrNull(context.size),
    task_name: textOrNull(context.task_name),
    elapsed_ms: elapsedSince(context.startedAt),
  };
  if (extras.requestId) common.request_id = extras.requestId;
  if (extras.droppedParams?.length) common.dropped_params = extras.droppedParams;
  if (extras.attempts) common.attempts = extras.attempts;
  return common;
}

function textOrNull(value: unknown): string | null {
  return typeof value === "string" ? value : null;
}

function elapsedSince(startedAt: number): number {
  return Math.round(performance.now() - startedAt);
}

const BASE64_SLICE = 3 << 20;

/**
 * Writes a result as 2-space indented JSON. A `b64` field is written in slices, so that a large
 * image's base64 is never copied into one more string.
 */
export async function writeResult(
  result: GenerationResult,
  write: (bytes: Uint8Array) => Promise<void>,
): Promise<void> {
  const encoder = new TextEncoder();
  if (!result.ok || result.b64 === undefined) {
    await write(encoder.encode(JSON.stringify(result, null, 2) + "\n"));
    return;
  }
  const { b64, ...rest } = result;
  const head = JSON.stringify(rest, null, 2);
  await write(encoder.encode(`${head.slice(0, -2)},\n  "b64": "`));
  for (let offset = 0; offset < b64.length; offset += BASE64_SLICE) {
    await write(encoder.encode(b64.slice(offset, offset + BASE64_SLICE)));
  }
  await write(encoder.encode(`"\n}\n`));
}
