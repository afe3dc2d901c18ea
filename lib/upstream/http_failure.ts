/**
 * The HTTP exchanges' failures, for the request and for image downloads alike: a connection that
 * cannot be made or that drops, a deadline that passes, or a non-2xx answer read into the
 * upstream's own words (at most MAX_ERROR_BODY_BYTES of it).
 */
import type { Deadline } from "./deadline.ts";
import {
  type FailureDetails,
  GenerationError,
  unexpectedFailure,
  type UpstreamError,
} from "../failure/errors.ts";
import type { LocalCause, Stage } from "../failure/types.ts";
import { concat } from "../shared/bytes.ts";
import { retryAfterMs, retryRefused } from "./retry.ts";
import { parseUpstreamError, requestIdOf } from "./upstream_error.ts";

/**
 * fetch() whose rejections become failures of `stage` that say how far the exchange got: "Cannot
 * reach" only when no connection was made.
 */
export async function fetchOrFail(
  stage: "request" | "download",
  url: URL,
  deadline: Deadline,
  init: RequestInit,
): Promise<Response> {
  try {
    return await fetch(url, { ...init, signal: deadline.signal });
  } catch (error) {
    const cause = deadline.cause();
    if (cause !== null) {
      // fetch() does not tell whether the connection was made before it was stopped.
      throw new GenerationError(
        stage,
        `${deadline.stopReason()}, waiting for ${url.origin} to answer`,
        { cause },
      );
    }
    const detail = describeNetworkError(error);
    if (NOT_CONNECTED.test(fullMessage(error))) {
      throw new GenerationError(stage, `Cannot reach ${url.origin}: ${detail}`, {
        cause: "network",
      });
    }
    throw new GenerationError(
      stage,
      `The connection to ${url.origin} was made, then failed before the answer came: ${detail}`,
      { cause: droppedCause(stage) },
    );
  }
}

/** An error that came from reading a body off the connection, not from what was done with it. */
class BodyReadError extends Error {
  override name = "BodyReadError";
}

/** A response body, or its chunks as bodyChunks() gives them (after sniffAnswer() read its start). */
export type Body = ReadableStream<Uint8Array> | AsyncIterable<Uint8Array> | null;

/**
 * The chunks of a response body. A failure to read one is thrown as the connection's, so that
 * transportFailure() tells it from a fault in the code that handles the chunks.
 */
export async function* bodyChunks(
  body: Body,
): AsyncGenerator<Uint8Array> {
  if (body === null) return;
  if (!(body instanceof ReadableStream)) return yield* body;
  const reader = body.getReader();
  try {
    while (true) {
      let next: ReadableStreamReadResult<Uint8Array>;
      try {
        next = await reader.read();
      } catch (error) {
        throw new BodyReadError(describeNetworkError(error), { cause: error });
      }
      if (next.done) return;
      yield next.value;
    }
  } finally {
    // Stops the upstream when the reading ends early; a no-op on a finished body.
    await reader.cancel().catch(() => {});
  }
}

/**
 * A failure while reading an answer (`what` says which), after the request was sent: the
 * deadline, the connection, or else a fault of this program, never blamed on the upstream.
 * `facts` are those of the answer being read (its status and request id).
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
    return new GenerationError(
      stage,
      `${what}: ${deadline.stopReason()}, after the request was sent, while the answer arrived`,
      { ...facts, cause },
    );
  }
  if (error instanceof BodyReadError) {
    return new GenerationError(
      stage,
      `${what}: the connection dropped after the request was sent: ${error.message}`,
      { ...facts, cause: droppedCause(stage) },
    );
  }
  return unexpectedFailure(stage, error, facts);
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
  const redirect = response.status >= 300 && response.status < 400;
  let message = `The upstream answered HTTP ${response.status}${said}`;
  if (stage === "download") {
    // Redirects with a location are followed; one without is the image host's fault.
    message = redirect
      ? `The image URL redirects (HTTP ${response.status}) without saying where to: the image host's link is broken`
      : `The image download answered HTTP ${response.status}${said}`;
  } else if (redirect) {
    message = `The upstream redirects (HTTP ${response.status}) to "${
      location ?? "?"
    }"; use that address`;
  }
  return new GenerationError(stage, message, upstreamErrorDetails(response, upstream));
}

/**
 * What an upstream's error tells a failure, whether it came as a non-2xx answer or inside a 2xx
 * one: its words, its id for the request, and when (or whether) to try again, from the answer's
 * headers and the words.
 */
export function upstreamErrorDetails(
  answer: { status: number; headers: Headers },
  upstream: UpstreamError,
): FailureDetails {
  return {
    httpStatus: answer.status,
    upstream,
    retryAfterMs: retryAfterMs(answer.headers, upstream.message),
    retryRefused: retryRefused(answer.headers),
    requestId: requestIdOf(answer.headers, upstream.message),
  };
}

/** How much of an error body is read; the rest is cancelled. */
export const MAX_ERROR_BODY_BYTES = 64 * 1024;

/**
 * Reads at most `maxBytes` of a body as text and cancels the rest. A text cut short ends in "…",
 * never in half a character, so that a secret cut in two is still recognised and masked.
 */
export async function readTextCapped(
  body: ReadableStream<Uint8Array> | null,
  maxBytes = MAX_ERROR_BODY_BYTES,
): Promise<string> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of bodyChunks(body)) {
    const room = maxBytes - total;
    chunks.push(chunk.length > room ? chunk.subarray(0, room) : chunk);
    total += Math.min(chunk.length, room);
    if (total >= maxBytes) break;
  }
  const bytes = concat(chunks);
  if (total < maxBytes) return new TextDecoder().decode(bytes);
  // Streaming leaves out a character whose bytes are cut.
  return `${new TextDecoder().decode(bytes, { stream: true })}…`;
}

/**
 * Deno's fetch() errors that mean no connection was made: its connector failed (DNS, TCP, TLS
 * handshake, a proxy's CONNECT). Anything later, "client error (SendRequest): connection closed
 * before message completed" or a reset, happened on an open connection.
 */
const NOT_CONNECTED = /client error \(Connect\)|tcp connect error|dns error/i;

/** A request dropped mid-call may still be billed; a download is free to repeat. */
function droppedCause(stage: Exclude<Stage, "done">): LocalCause {
  return stage === "download" ? "network" : "dropped";
}

/** Every message in an error's chain of causes, joined. */
function fullMessage(error: unknown): string {
  const parts: string[] = [];
  for (let current = error, depth = 0; current instanceof Error && depth < 8; depth++) {
    parts.push(current.message);
    current = current.cause;
  }
  return parts.length > 0 ? parts.join(": ") : String(error);
}

function describeNetworkError(error: unknown): string {
  // Deno's fetch says "fetch failed" and keeps the reason in `cause`: "error sending request from
  // 127.0.0.1:50312 for http://… (…): client error (SendRequest): connection closed before
  // message completed", or "error sending request for url (…): client error (Connect): tcp
  // connect error: Connection refused (os error 111)".
  const detail = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  const message = detail instanceof Error ? detail.message : String(detail);
  return message.replace(/^error sending request (for url|from \S+ for \S+) \([^)]*\):\s*/, "")
    .replace(/^client error \((Connect|SendRequest)\):\s*/, "");
}
