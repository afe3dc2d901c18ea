/**
 * The provider's other endpoints beside the image one (its Batch API: `/files`, `/batches`),
 * reached with the same key, headers and failures as the image request.
 */
import { Deadline } from "./deadline.ts";
import { fetchOrFail, httpFailure } from "./http_failure.ts";
import { credentialHeaders, USER_AGENT } from "./request.ts";
import { errorMessage, GenerationError } from "../failure/errors.ts";
import { withHeaders } from "../params/headers.ts";
import type { GenerationParams } from "../params/params.ts";

/**
 * `{base_url}{path}`: the path after base_url's own (trailing slashes and a full image endpoint
 * trimmed), its query kept; `path` may hold a query of its own.
 */
export function providerUrl(baseUrl: string, path: string): URL {
  const url = new URL(baseUrl);
  const [pathname, query] = path.split("?", 2) as [string, string | undefined];
  url.pathname = url.pathname.replace(/\/+$/, "").replace(/\/images\/generations$/, "") + pathname;
  if (query !== undefined) {
    for (const [name, value] of new URLSearchParams(query)) url.searchParams.set(name, value);
  }
  return url;
}

/** An answered 2xx exchange; `done()` ends its deadline once the body is read. */
export interface ProviderAnswer {
  response: Response;
  done(): void;
}

/**
 * Sends one request to the provider at `params.base_url` + `path`, within `timeoutMs` and the
 * caller's signal. A non-2xx or an exchange that fails throws a GenerationError of stage
 * "request", read and diagnosed as an image request's would be.
 */
export async function providerRequest(
  params: GenerationParams,
  path: string,
  init: { method: string; body?: BodyInit; contentType?: string },
  options: { timeoutMs: number; signal?: AbortSignal },
): Promise<ProviderAnswer> {
  const deadline = new Deadline(options.timeoutMs, options.signal);
  try {
    const base: Record<string, string> = { "Accept": "application/json", "User-Agent": USER_AGENT };
    if (init.contentType !== undefined) base["Content-Type"] = init.contentType;
    const response = await fetchOrFail("request", providerUrl(params.base_url, path), deadline, {
      method: init.method,
      headers: withHeaders(base, credentialHeaders(params)),
      body: init.body,
      redirect: "manual",
    });
    if (!response.ok) throw await httpFailure("request", response, deadline);
    return { response, done: () => deadline.dispose() };
  } catch (error) {
    deadline.dispose();
    throw error;
  }
}

/** providerRequest() of a JSON answer (at most `maxBytes` of it), parsed. */
export async function providerJson(
  params: GenerationParams,
  path: string,
  init: { method: string; body?: BodyInit; contentType?: string },
  options: { timeoutMs: number; signal?: AbortSignal },
): Promise<unknown> {
  const { response, done } = await providerRequest(params, path, init, options);
  try {
    return await response.json();
  } catch (error) {
    throw new GenerationError(
      "response",
      `The answer to ${init.method} ${path.split("?")[0]} is not JSON: ${errorMessage(error)}`,
      { httpStatus: response.status },
    );
  } finally {
    done();
  }
}
