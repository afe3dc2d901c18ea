/**
 * The HTTP exchanges' failures, for the request and for image downloads alike: a connection that
 * fails, a deadline that passes, or a non-2xx answer read into the upstream's own words.
 */
import type { Deadline } from "./deadline.ts";
import { type FailureDetails, GenerationError } from "./errors.ts";
import {
  parseUpstreamError,
  readTextCapped,
  requestIdOf,
  retryAfterMs,
  retryRefused,
} from "./upstream_error.ts";

/** fetch() whose rejections become failures of `stage` that say whether time ran out. */
export async function fetchOrFail(
  stage: "request" | "download",
  url: URL,
  deadline: Deadline,
  init: RequestInit,
): Promise<Response> {
  try {
    return await fetch(url, { ...init, signal: deadline.signal });
  } catch (error) {
    throw transportFailure(stage, error, deadline, `Cannot reach ${url.origin}`);
  }
}

/**
 * A failure of the connection or of the deadline, while sending or while reading; `facts` are
 * those of an answer being read (its status and request id).
 */
export function transportFailure(
  stage: "request" | "response" | "download",
  error: unknown,
  deadline: Deadline,
  what: string,
  facts: FailureDetails = {},
): GenerationError {
  if (error instanceof GenerationError) return error;
  const cause = deadline.cause();
  if (cause !== null) {
    const reason = (deadline.signal.reason as Error).message;
    return new GenerationError(stage, `${what}: ${reason}`, { ...facts, cause });
  }
  return new GenerationError(stage, `${what}: ${describeNetworkError(error)}`, {
    ...facts,
    cause: "network",
  });
}

/** Reads a non-2xx answer (at most 64 KiB of it) into a failure carrying the upstream's words. */
export async function httpFailure(
  stage: "request" | "download",
  response: Response,
  deadline: Deadline,
): Promise<GenerationError> {
  let text = "";
  try {
    text = await readTextCapped(response.body);
  } catch (error) {
    if (deadline.cause() !== null) {
      throw transportFailure(stage, error, deadline, "Reading the error", {
        httpStatus: response.status,
      });
    }
  }
  const upstream = parseUpstreamError(text);
  const location = response.headers.get("location");
  const said = upstream.message ? `: ${upstream.message}` : "";
  const message = response.status >= 300 && response.status < 400
    ? `The upstream redirects (HTTP ${response.status}) to "${location ?? "?"}"; use that address`
    : `${
      stage === "download" ? "The image download" : "The upstream"
    } answered HTTP ${response.status}${said}`;
  return new GenerationError(stage, message, {
    httpStatus: response.status,
    upstream,
    retryAfterMs: retryAfterMs(response.headers, upstream.message),
    retryRefused: retryRefused(response.headers),
    requestId: requestIdOf(response.headers, upstream.message),
  });
}

function describeNetworkError(error: unknown): string {
  // Deno's fetch says "fetch failed" and keeps the reason in `cause`: "error sending request for
  // url (…): client error (Connect): tcp connect error: Connection refused (os error 111)".
  const detail = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  const message = detail instanceof Error ? detail.message : String(detail);
  return message.replace(/^error sending request for url \([^)]*\):\s*/, "");
}
