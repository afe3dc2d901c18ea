import type { Deadline } from "./deadline.ts";
import { GenerationError, type UpstreamError } from "./errors.ts";
import type { GenerationParams } from "./params.ts";
import { parseUpstreamError, readTextCapped, requestIdOf, retryAfterMs } from "./upstream_error.ts";
import { VERSION } from "./version.ts";

const ENDPOINT_PATH = "/images/generations";
export const USER_AGENT = `img2-generate/${VERSION} (Deno ${Deno.version.deno})`;

/** `{base_url}/images/generations`, trailing slashes trimmed; a full endpoint is kept as is. */
export function endpointOf(baseUrl: string): URL {
  const url = new URL(baseUrl);
  const path = url.pathname.replace(/\/+$/, "");
  url.pathname = path.endsWith(ENDPOINT_PATH) ? path : path + ENDPOINT_PATH;
  return url;
}

/** The body of the request: the fixed fields, the passthroughs given, extra_body, minus `omit`. */
export function requestBody(
  params: GenerationParams,
  omit: ReadonlySet<string> = new Set(),
): Record<string, unknown> {
  const body: Record<string, unknown> = {
    model: params.model,
    prompt: params.prompt,
    size: params.size,
    n: params.n,
    response_format: params.response_format,
    ...params.passthrough,
    ...params.extra_body,
  };
  for (const name of omit) delete body[name];
  return body;
}

export function requestHeaders(apiKey: string): Record<string, string> {
  return {
    "Authorization": `Bearer ${apiKey}`,
    "Content-Type": "application/json",
    "Accept": "application/json",
    "User-Agent": USER_AGENT,
  };
}

/** The fields an upstream may refuse without harm, so that the request is repeated without them. */
function optionalFields(params: GenerationParams): Set<string> {
  return new Set([
    "response_format",
    ...Object.keys(params.passthrough),
    ...Object.keys(params.extra_body),
  ]);
}

export interface AcceptedRequest {
  response: Response;
  /** Optional fields the upstream refused as unknown, left out of the request that succeeded. */
  droppedParams: string[];
}

/**
 * POSTs the request and returns the 2xx response with its body unread. A 4xx that names an
 * optional field as unknown or unsupported is answered at once by the same request without it.
 */
export async function sendImageRequest(
  params: GenerationParams,
  deadline: Deadline,
): Promise<AcceptedRequest> {
  const endpoint = endpointOf(params.base_url);
  const optional = optionalFields(params);
  const dropped = new Set<string>();
  while (true) {
    const body = requestBody(params, dropped);
    const response = await fetchOrFail("request", endpoint, deadline, {
      method: "POST",
      headers: requestHeaders(params.api_key),
      body: JSON.stringify(body),
      redirect: "manual",
    });
    if (response.ok) return { response, droppedParams: [...dropped] };

    const failure = await httpFailure("request", response, deadline);
    const refused = refusedOptionalField(failure.details.upstream ?? null, optional, dropped);
    if (response.status >= 400 && response.status < 500 && refused !== null) {
      dropped.add(refused);
      continue;
    }
    throw failure;
  }
}

/** The optional field a 4xx error says the upstream does not know or support, if any. */
export function refusedOptionalField(
  upstream: UpstreamError | null,
  optional: ReadonlySet<string>,
  alreadyDropped: ReadonlySet<string> = new Set(),
): string | null {
  if (upstream === null) return null;
  const text = `${upstream.code ?? ""} ${upstream.message ?? ""}`;
  const refusal = /unknown|unrecogni[sz]ed|unsupported|not supported|not allowed|extra/i;
  const message = upstream.message ?? "";
  const named = upstream.param ??
    /(?:parameter|argument|field)s?(?: supplied)?\W{0,4}['"`]?([a-z_]+)/i.exec(message)?.[1] ??
    /['"`]([a-z_]+)['"`] (?:parameter|argument|field)/i.exec(message)?.[1] ??
    null;
  if (named === null || !optional.has(named) || alreadyDropped.has(named)) return null;
  return refusal.test(text) ? named : null;
}

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

/** A failure of the connection or of the deadline, while sending or while reading. */
export function transportFailure(
  stage: "request" | "response" | "download",
  error: unknown,
  deadline: Deadline,
  what: string,
): GenerationError {
  if (error instanceof GenerationError) return error;
  const cause = deadline.cause();
  if (cause !== null) {
    const reason = (deadline.signal.reason as Error).message;
    return new GenerationError(stage, `${what}: ${reason}`, { cause });
  }
  return new GenerationError(stage, `${what}: ${describeNetworkError(error)}`, {
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
      const failure = transportFailure(stage, error, deadline, "Reading the error");
      failure.details.httpStatus = response.status;
      throw failure;
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
    retryAfterMs: retryAfterMs(response.headers),
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
