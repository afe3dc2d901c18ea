import type { Deadline } from "./deadline.ts";
import { EmptyAnswerError } from "./answer.ts";
import type { UpstreamError } from "../failure/errors.ts";
import { authHeaderOf, withHeaders } from "../params/headers.ts";
import type { GenerationParams } from "../params/params.ts";
import { fetchOrFail, httpFailure } from "./http_failure.ts";
import { requestIdOf } from "./upstream_error.ts";
import { VERSION } from "../shared/version.ts";

const ENDPOINT_PATH = "/images/generations";
export const USER_AGENT = `img2-generate/${VERSION} (Deno ${Deno.version.deno})`;

/**
 * `{base_url}/images/generations`, trailing slashes trimmed; a full endpoint is kept as is. A
 * query (Azure's `?api-version=`) stays after the path.
 */
export function endpointOf(baseUrl: string): URL {
  const url = new URL(baseUrl);
  const path = url.pathname.replace(/\/+$/, "");
  url.pathname = path.endsWith(ENDPOINT_PATH) ? path : path + ENDPOINT_PATH;
  return url;
}

/**
 * The body of the request: the fixed fields, the passthroughs given, extra_body, minus `omit`.
 * GPT image models always answer base64 and refuse `response_format`, so they are sent it only
 * to ask for a `url`.
 */
export function requestBody(
  params: GenerationParams,
  omit: ReadonlySet<string> = new Set(),
): Record<string, unknown> {
  const sendsFormat = !isGptImageModel(params.model) || params.response_format !== "b64_json";
  const body: Record<string, unknown> = {
    model: params.model,
    prompt: params.prompt,
    size: params.size,
    n: params.n,
    ...(sendsFormat ? { response_format: params.response_format } : {}),
    ...(params.stream ? { stream: true } : {}),
    ...(params.stream && params.partial_images !== null
      ? { partial_images: params.partial_images }
      : {}),
    ...params.passthrough,
    ...params.extra_body,
  };
  for (const name of omit) delete body[name];
  return body;
}

/** `gpt-image-2`, `gpt-image-2.5`, and the same behind a gateway's prefix (`openai/gpt-image-2`). */
function isGptImageModel(model: string): boolean {
  return /(?:^|\/)gpt-image-/i.test(model);
}

/** The headers; a streamed request asks for server-sent events. */
export function requestHeaders(params: GenerationParams, streamed = false): Record<string, string> {
  return withHeaders({
    "Content-Type": "application/json",
    "Accept": streamed ? "text/event-stream" : "application/json",
    "User-Agent": USER_AGENT,
  }, credentialHeaders(params));
}

/** The key in its header and the extra headers: what only the API's own origin may see. */
export function credentialHeaders(params: GenerationParams): Record<string, string> {
  const [name, value] = authHeaderOf(params.auth_header, params.api_key);
  return { [name]: value, ...params.extra_headers };
}

/** The fields an upstream may refuse without harm, so that the request is repeated without them. */
function optionalFields(params: GenerationParams): Set<string> {
  return new Set([
    "response_format",
    "stream",
    "partial_images",
    ...Object.keys(params.passthrough),
    ...Object.keys(params.extra_body),
  ]);
}

/** What a failure while reading a 2xx answer carries of it. */
export interface AnswerFacts {
  httpStatus: number;
  requestId: string | null;
}

export interface AcceptedRequest<T> {
  facts: AnswerFacts;
  /** What `read` made of the response. */
  answer: T;
  /** Optional fields the upstream refused, left out of the request that succeeded. */
  droppedParams: string[];
}

/**
 * POSTs the request and hands the 2xx response, with its facts, to `read`. A 4xx that names an optional field as
 * unknown or unsupported is answered at once by the same request without it (without
 * `partial_images` too when it is `stream`); so is a 2xx with an empty `data` list (an
 * `EmptyAnswerError` from `read`) to a request that held `response_format`, as some relays answer
 * a parameter they dislike. Both come before any image is made, so they cost nothing.
 */
export async function sendImageRequest<T>(
  params: GenerationParams,
  deadline: Deadline,
  read: (response: Response, facts: AnswerFacts) => Promise<T>,
): Promise<AcceptedRequest<T>> {
  const endpoint = endpointOf(params.base_url);
  const optional = optionalFields(params);
  const dropped = new Set<string>();
  while (true) {
    const body = requestBody(params, dropped);
    const response = await fetchOrFail("request", endpoint, deadline, {
      method: "POST",
      headers: requestHeaders(params, body.stream === true),
      body: JSON.stringify(body),
      redirect: "manual",
    });
    if (response.ok) {
      const facts = { httpStatus: response.status, requestId: requestIdOf(response.headers, null) };
      try {
        return { facts, answer: await read(response, facts), droppedParams: [...dropped] };
      } catch (error) {
        if (!(error instanceof EmptyAnswerError && "response_format" in body)) throw error;
        dropped.add("response_format");
        continue;
      }
    }

    const failure = await httpFailure("request", response, deadline);
    const refused = refusedOptionalField(failure.details.upstream ?? null, optional, dropped);
    if (response.status >= 400 && response.status < 500 && refused !== null) {
      dropped.add(refused);
      if (refused === "stream" && "partial_images" in body) dropped.add("partial_images");
      continue;
    }
    throw failure;
  }
}

/**
 * The answer to the request, received by other means (a provider's Batch API answers each
 * request in a line of its output file): read as sendImageRequest() reads a fresh one, a non-2xx
 * into the same failure. Nothing is sent, and nothing is repeated.
 */
export async function readGivenAnswer<T>(
  response: Response,
  deadline: Deadline,
  read: (response: Response, facts: AnswerFacts) => Promise<T>,
): Promise<AcceptedRequest<T>> {
  if (!response.ok) throw await httpFailure("request", response, deadline);
  const facts = { httpStatus: response.status, requestId: requestIdOf(response.headers, null) };
  return { facts, answer: await read(response, facts), droppedParams: [] };
}

/** The optional field a 4xx error says the upstream does not know or support, if any. */
function refusedOptionalField(
  upstream: UpstreamError | null,
  optional: ReadonlySet<string>,
  alreadyDropped: ReadonlySet<string> = new Set(),
): string | null {
  if (upstream === null) return null;
  const text = `${upstream.code ?? ""} ${upstream.message ?? ""}`;
  const refusal = /unknown|unrecogni[sz]ed|unsupported|not supported|not allowed|extra/i;
  const message = upstream.message ?? "";
  const named = upstream.param ??
    // xAI: "Argument not supported: quality".
    /\b(?:parameter|argument|field)s? (?:is |are )?(?:not supported|unsupported|not allowed)\W{1,4}['"`]?([a-z_]+)/i
      .exec(message)?.[1] ??
    /(?:parameter|argument|field)s?(?: supplied)?\W{0,4}['"`]?([a-z_]+)/i.exec(message)?.[1] ??
    /['"`]([a-z_]+)['"`] (?:parameter|argument|field)/i.exec(message)?.[1] ??
    null;
  if (named === null || !optional.has(named) || alreadyDropped.has(named)) return null;
  return refusal.test(text) ? named : null;
}
