import type { FailureFacts, LocalCause, Stage } from "./types.ts";

/** The error an upstream sent, as far as it could be read. */
export interface UpstreamError {
  type: string | null;
  message: string | null;
  code: string | null;
  param: string | null;
}

export interface FailureDetails {
  httpStatus?: number | null;
  upstream?: UpstreamError | null;
  cause?: LocalCause | null;
  retryAfterMs?: number | null;
  retryRefused?: boolean;
  requestId?: string | null;
}

/** A failure at a known stage, with the facts the diagnosis reads. Thrown by every lib stage. */
export class GenerationError extends Error {
  override name = "GenerationError";
  readonly stage: Exclude<Stage, "done">;
  readonly details: FailureDetails;

  constructor(stage: Exclude<Stage, "done">, message: string, details: FailureDetails = {}) {
    super(message);
    this.stage = stage;
    this.details = details;
  }
}

/** Invalid parameters or arguments: nothing was sent. */
export class InputError extends GenerationError {
  override name = "InputError";
  constructor(message: string) {
    super("input", message);
  }
}

/** The facts of a failure in the shape the diagnosis reads. */
export function factsOf(failure: GenerationError): FailureFacts {
  const { httpStatus = null, upstream = null, cause = null, retryAfterMs = null } = failure.details;
  const retryRefused = failure.details.retryRefused ?? false;
  return {
    stage: failure.stage,
    httpStatus,
    upstreamType: upstream?.type ?? null,
    upstreamMessage: upstream?.message ?? null,
    upstreamCode: upstream?.code ?? null,
    cause,
    retryAfterMs,
    retryRefused,
  };
}

/**
 * An error no stage expected, such as a bug: a fault of this program, which is never blamed on
 * the upstream nor retried.
 */
export function unexpectedFailure(
  stage: Exclude<Stage, "done">,
  error: unknown,
  facts: FailureDetails = {},
): GenerationError {
  return new GenerationError(stage, `Unexpected error in img2-generate: ${errorMessage(error)}`, {
    ...facts,
    cause: "internal",
  });
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
