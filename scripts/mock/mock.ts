// deno-lint-ignore-file no-console
// deno-lint-ignore-file no-console
/**
 * An OpenAI-compatible image upstream that runs offline, on loopback only: the one behind
 * `deno task mock`, `deno task demo`, the benchmark and the tests.
 *
 * - `POST /v1/images/generations` renders a real PNG at the requested size, the same pixels for
 *   the same prompt, and answers with `b64_json` (default) or a `url` served by
 *   `GET /v1/files/<id>.png`.
 * - `GET /v1/models` lists `mock-image-1`, `mock-image-strict` and one `mock-fail-<scenario>`
 *   per failure in {@link MOCK_SCENARIOS}.
 * - A scenario of that list answers every request under the path prefix `/<scenario>/v1`;
 *   on `/v1` it is chosen with the header `x-mock-scenario: <scenario>` or, for a failure, the
 *   model `mock-fail-<scenario>`. Under a prefix, any path with a `files` segment serves
 *   {@link SAMPLE_PNG}. `x-mock-delay-ms: <ms>` delays any answer.
 * - A rendered generation takes `latencyMs` (0 by default; `x-mock-latency-ms: <ms>` sets it for
 *   one request). With `imagesPerMinute`, generations beyond that rate are answered with
 *   OpenAI's 429 (scripts/mock/mock_rate_limit.ts), before any latency.
 * - {@link MockUpstream.route} adds a prefix of the caller's own, answered by its handler.
 * - A stall lasts `stallMs` (60 s by default; `x-mock-stall-ms: <ms>` shortens it for one
 *   request) and ends at once when the server shuts down, so nothing hangs forever.
 * - `"stream": true` gets the answer as server-sent events, as OpenAI sends them:
 *   `partial_images` events `image_generation.partial_image`, then `image_generation.completed`.
 * - The `cut-after-100s` scenario is a generation longer than the wait of the Cloudflare in front
 *   of it (`cutMs`, 100 s by default; `x-mock-cut-ms: <ms>` for one request): a request that is
 *   not streamed gets the 524 page when the wait ends, a streamed one keeps the connection alive
 *   and gets its image.
 *
 * `mock-image-1` answers like a new-api gateway (`url: ""` beside `b64_json`, `revised_prompt`).
 * `mock-image-strict` answers like the official API for GPT image models: it rejects
 * `response_format` as an unknown parameter and returns `b64_json` only. Any other model name
 * that is not `mock-fail-…` is served like `mock-image-1`.
 *
 * Run it with `deno task mock [--port 8787] [--hostname 127.0.0.1] [--stall-ms 60000]
 * [--latency-ms 0] [--images-per-minute N]`, or in
 * process with {@link startMockUpstream}.
 */
import { MockBatchApi, notImplemented } from "./mock_batch_api.ts";
import { brotliCompressSync, gzipSync } from "node:zlib";
import { parseFlags } from "../_flags.ts";
import { encodePng, renderPicture } from "./png.ts";
import { ImagesPerMinuteLimit, rateLimitedResponse, rateLimitHeaders } from "./mock_rate_limit.ts";
import {
  FAILURE_SCENARIO_NAMES,
  findMockScenario,
  MOCK_SCENARIO_NAMES,
  MOCK_SCENARIOS,
  type MockScenario,
  SAMPLE_PNG,
  scenarioModel,
} from "./mock_scenarios.ts";

export const MOCK_MODEL = "mock-image-1";
export const MOCK_STRICT_MODEL = "mock-image-strict";
export const DEFAULT_HOSTNAME = "127.0.0.1";
export const DEFAULT_PORT = 8787;
/** The longest any stall or delay lasts unless the server is told otherwise. */
export const DEFAULT_STALL_MS = 60_000;
/** How long Cloudflare waits for an origin's answer before it sends 524. */
export const DEFAULT_CUT_MS = 100_000;
/** A cut generation takes this much longer than the gateway waits. */
const CUT_GENERATION_FACTOR = 1.5;
/** Keep-alive comments of a slow stream, this many per gateway wait. */
const KEEP_ALIVES_PER_CUT = 10;
const MAX_PARTIAL_IMAGES = 3;
/** The longest gateway wait a request may ask for. */
const MAX_CUT_MS = 600_000;

const FAIL_PREFIX = "mock-fail-";
const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1", "[::1]"]);
const MAX_SIDE = 4096;
const MAX_N = 10;
const MAX_PROMPT = 32_000;
const MAX_BODY_BYTES = 4 * 1024 * 1024;
/** An input file of the Batch API may be as large as the provider's limit. */
const MAX_BATCH_FILE_BYTES = 200 * 1024 * 1024;
const MAX_FILES = 256;
const MAX_CACHED_RENDERS = 8;
/** How long a `reset` answer waits after its first bytes before dropping the connection. */
const RESET_AFTER_MS = 25;

export interface MockUpstreamOptions {
  /** Loopback only: `127.0.0.1` (default), `localhost` or `::1` */
  hostname?: string;
  /** 8787 by default; 0 picks any free port */
  port?: number;
  /** Shuts the server down when aborted */
  signal?: AbortSignal;
  /** Cap on every stall and delay, in milliseconds (default 60 000) */
  stallMs?: number;
  /** How long the gateway of the cut scenario waits, in milliseconds (default 100 000) */
  cutMs?: number;
  /** Receives one line per request */
  log?: (line: string) => void;
  /** Keeps every request in {@link MockUpstream.requests}; off, the server keeps none */
  record?: boolean;
  /**
   * How long a generation takes before it answers, in milliseconds (default 0); the header
   * `x-mock-latency-ms` sets it for one request. Capped by `stallMs`.
   */
  latencyMs?: number;
  /** Answers generations beyond this many images per minute with OpenAI's 429 (default: no limit) */
  imagesPerMinute?: number;
  /** How long a batch of the Batch API (`/batch/v1`) takes to complete, in ms (default 0) */
  batchCompleteMs?: number;
}

/** A request as it reached the server, its JSON body parsed (null when not a JSON object). */
export interface RecordedRequest {
  /** The first segment of the path: the scenario or route for a prefixed base_url */
  scenario: string;
  method: string;
  path: string;
  headers: Headers;
  body: Record<string, unknown> | null;
}

/** Answers every request under the path prefix of a {@link MockUpstream.route}. */
export type RouteHandler = (
  request: Request,
  body: Record<string, unknown> | null,
  upstream: MockUpstream,
) => Response | Promise<Response>;

interface FileEntry {
  seed: string;
  width: number;
  height: number;
}

interface State {
  lifetime: AbortSignal;
  stallMs: number;
  cutMs: number;
  files: Map<string, FileEntry>;
  renders: Map<string, Uint8Array<ArrayBuffer>>;
  latencyMs: number;
  limit: ImagesPerMinuteLimit | null;
}

/** What the server knows of a request once its body is read. */
interface Call {
  request: Request;
  url: URL;
  /** The parsed body, or {@link NOT_JSON} */
  json: unknown;
  body: Record<string, unknown> | null;
}

const NOT_JSON = Symbol("not JSON");

/** The upstream; it is listening once constructed, until {@link MockUpstream.shutdown}. */
export class MockUpstream {
  /** Every request so far, when the server was started with `record` */
  readonly requests: RecordedRequest[] = [];
  /** `http://127.0.0.1:PORT` */
  readonly origin: string;
  /** The base_url of the rendering upstream, `/v1` included: `http://127.0.0.1:8787/v1` */
  readonly url: string;
  /** Settles once the server has stopped */
  readonly finished: Promise<void>;
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  readonly #state: State;
  readonly #lifetime = new AbortController();
  readonly #closed = Promise.withResolvers<void>();
  readonly #routes = new Map<string, RouteHandler>();
  /** The Batch API under `/batch/v1` (see mock_batch_api.ts); its knobs are set on it. */
  readonly batchApi: MockBatchApi;
  readonly #record: boolean;
  #arrival = Promise.withResolvers<void>();
  #closing: Promise<void> | undefined;

  constructor(options: MockUpstreamOptions = {}) {
    const requested = options.hostname ?? DEFAULT_HOSTNAME;
    if (!LOOPBACK.has(requested)) {
      throw new Error(
        `Cannot listen on "${requested}": the mock upstream binds loopback only (127.0.0.1, localhost or ::1)`,
      );
    }
    const hostname = requested === "localhost" ? "127.0.0.1" : requested.replace(/^\[|\]$/g, "");
    const port = options.port ?? DEFAULT_PORT;
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new Error(`Cannot listen on port "${port}": expected an integer from 0 to 65535`);
    }
    const stallMs = options.stallMs ?? DEFAULT_STALL_MS;
    if (!Number.isFinite(stallMs) || stallMs < 0) {
      throw new Error(`Cannot use stallMs "${stallMs}": expected a non-negative number`);
    }
    const cutMs = options.cutMs ?? DEFAULT_CUT_MS;
    if (!Number.isFinite(cutMs) || cutMs < 0) {
      throw new Error(`Cannot use cutMs "${cutMs}": expected a non-negative number`);
    }
    const latencyMs = options.latencyMs ?? 0;
    if (!Number.isFinite(latencyMs) || latencyMs < 0) {
      throw new Error(`Cannot use latencyMs "${latencyMs}": expected a non-negative number`);
    }
    this.#record = options.record ?? false;
    this.batchApi = new MockBatchApi(this.#lifetime.signal);
    if (options.batchCompleteMs !== undefined) this.batchApi.completeMs = options.batchCompleteMs;
    this.#state = {
      lifetime: this.#lifetime.signal,
      stallMs,
      cutMs,
      files: new Map(),
      renders: new Map(),
      latencyMs,
      limit: options.imagesPerMinute === undefined
        ? null
        : new ImagesPerMinuteLimit(options.imagesPerMinute),
    };
    const log = options.log;

    this.#server = Deno.serve({
      hostname,
      port,
      onListen: () => {},
      onError: (error) => {
        if (error instanceof DroppedConnection) {
          log?.("connection dropped mid-body, as the scenario asks");
          return new Response(null, { status: 500 });
        }
        log?.(`internal error: ${error instanceof Error ? error.message : String(error)}`);
        return openaiJson(500, "The server had an error while processing your request.", {
          type: "server_error",
        });
      },
    }, async (request) => {
      const started = performance.now();
      const response = await this.#handle(request);
      if (log) {
        const path = new URL(request.url).pathname;
        const took = Math.round(performance.now() - started);
        const note = notes.get(response);
        log(
          `${request.method} ${path}${note ? ` ${note}` : ""} -> ${response.status} (${took} ms)`,
        );
      }
      return response;
    });

    const address = this.#server.addr;
    const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname;
    this.origin = `http://${host}:${address.port}`;
    this.url = `${this.origin}/v1`;

    const signal = options.signal;
    const onAbort = () => void this.shutdown();
    if (signal?.aborted) {
      void this.shutdown();
    } else {
      signal?.addEventListener("abort", onAbort, { once: true });
    }
    this.finished = this.#server.finished.finally(() => {
      signal?.removeEventListener("abort", onAbort);
      this.#end();
    });
  }

  /** The base_url that selects a scenario or a route: `http://127.0.0.1:PORT/<name>/v1` */
  baseUrl(scenario: string): string {
    return `${this.origin}/${scenario}/v1`;
  }

  /** Answers every request under `/<name>/` with `handler`, before any scenario of that name. */
  route(name: string, handler: RouteHandler): this {
    this.#routes.set(name, handler);
    return this;
  }

  /** Settles when the server starts to shut down; a stalling handler can end with it. */
  untilClosed(): Promise<void> {
    return this.#closed.promise;
  }

  /** Settles at the next request that reaches the server. */
  nextArrival(): Promise<void> {
    return this.#arrival.promise;
  }

  /** Ends every stall, finishes in-flight answers and stops listening. */
  shutdown(): Promise<void> {
    this.#closing ??= (async () => {
      this.#end();
      await this.#server.shutdown();
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }

  #end(): void {
    this.#lifetime.abort();
    this.#closed.resolve();
  }

  async #handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    let text: string;
    const batchApi = url.pathname.startsWith("/batch/");
    try {
      text = await readLimited(request, batchApi ? MAX_BATCH_FILE_BYTES : MAX_BODY_BYTES);
    } catch (error) {
      if (!(error instanceof BodyTooLarge)) throw error;
      return new Response(MOCK_NGINX_413, {
        status: 413,
        headers: { "content-type": "text/html", server: "nginx" },
      });
    }
    const json = parseJson(text);
    const body = typeof json === "object" && json !== null && !Array.isArray(json)
      ? json as Record<string, unknown>
      : null;
    const [, prefix = "", ...rest] = url.pathname.split("/");
    if (this.#record) {
      const { method, headers } = request;
      this.requests.push({ scenario: prefix, method, path: url.pathname, headers, body });
    }
    this.#arrival.resolve();
    this.#arrival = Promise.withResolvers<void>();

    const state = this.#state;
    const delay = boundedMs(request.headers.get("x-mock-delay-ms"), state.stallMs);
    if (delay > 0) await wait(delay, [state.lifetime]);

    const call: Call = { request, url, json, body };
    if (prefix === "v1") return await api(call, state);
    if (prefix === "batch" && rest[0] === "v1") {
      const answer = await this.batchApi.answer(request, `/${rest.slice(1).join("/")}`, text);
      if (answer !== null) return answer;
    }
    if (prefix === "batch-none" && rest[0] === "v1" && /^(files|batches)$/.test(rest[1] ?? "")) {
      return notImplemented();
    }
    if (prefix === "files" || rest.includes("files")) {
      return new Response(SAMPLE_PNG, { headers: { "content-type": "image/png" } });
    }
    const handler = this.#routes.get(prefix);
    if (handler) return await handler(request, body, this);
    const scenario = findMockScenario(prefix);
    if (scenario) {
      return withNote(await playScenario(scenario, call, state), `scenario=${prefix}`);
    }
    return openaiJson(404, `Invalid URL (${request.method} ${url.pathname})`);
  }
}

/** Starts the mock upstream; it is listening when this returns. */
export function startMockUpstream(options: MockUpstreamOptions = {}): MockUpstream {
  return new MockUpstream(options);
}

/** The rendering upstream under `/v1`. */
async function api(call: Call, state: State): Promise<Response> {
  const { request, url } = call;
  const path = url.pathname.replace(/\/+$/, "");
  if (request.method === "POST" && path === "/v1/images/generations") {
    return await generations(call, state);
  }
  if (request.method === "GET" && path === "/v1/models") return models();
  const file = /^\/v1\/files\/([A-Za-z0-9_-]+)\.png$/.exec(path);
  if ((request.method === "GET" || request.method === "HEAD") && file) {
    return download(file[1]!, call, state);
  }
  return openaiJson(404, `Invalid URL (${request.method} ${url.pathname})`);
}

class BodyTooLarge extends Error {}

/** Ends a `reset` or `stall_body` answer's body, which drops the connection mid-body. */
class DroppedConnection extends Error {
  constructor() {
    super("Connection dropped by the mock upstream");
  }
}

const MOCK_NGINX_413 = [
  "<html>",
  "<head><title>413 Request Entity Too Large</title></head>",
  "<body>",
  "<center><h1>413 Request Entity Too Large</h1></center>",
  "<hr><center>nginx</center>",
  "</body>",
  "</html>",
  "",
].join("\r\n");

function models(): Response {
  const created = 1_735_689_600;
  const data = [
    {
      id: MOCK_MODEL,
      object: "model",
      created,
      owned_by: "mock",
      description: "Renders a landscape PNG; accepts response_format b64_json or url",
    },
    {
      id: MOCK_STRICT_MODEL,
      object: "model",
      created,
      owned_by: "mock",
      description: "Like the official API for GPT image models: rejects response_format",
    },
    ...FAILURE_SCENARIO_NAMES.map((name) => ({
      id: scenarioModel(name),
      object: "model",
      created,
      owned_by: "mock",
      description: MOCK_SCENARIOS[name].summary,
      expected_category: MOCK_SCENARIOS[name].expectedCategory,
    })),
  ];
  return Response.json({ object: "list", data }, {
    headers: { "x-request-id": openaiRequestId() },
  });
}

async function generations(call: Call, state: State): Promise<Response> {
  const { request: req, json } = call;
  const token = bearerToken(req);
  if (!token) {
    return openaiJson(
      401,
      "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (i.e. username: YOUR_KEY, leave the username empty) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys.",
    );
  }
  if (json === NOT_JSON) {
    return openaiJson(
      400,
      "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)",
    );
  }
  const body = call.body;
  if (body === null) {
    return openaiJson(
      400,
      `Invalid type for request body: expected an object, but got ${typeName(json)} instead.`,
      { code: "invalid_type" },
    );
  }
  const model = typeof body.model === "string" && body.model !== "" ? body.model : MOCK_MODEL;

  const fromHeader = req.headers.get("x-mock-scenario")?.trim();
  if (fromHeader) {
    const scenario = findMockScenario(fromHeader);
    if (!scenario) {
      return openaiJson(
        400,
        `Unknown mock scenario "${fromHeader}": expected one of ${MOCK_SCENARIO_NAMES.join(", ")}`,
        { code: "unknown_mock_scenario" },
      );
    }
    return withNote(
      await playScenario(scenario, call, state),
      `model=${model} scenario=${fromHeader}`,
    );
  }
  if (model.startsWith(FAIL_PREFIX)) {
    const name = model.slice(FAIL_PREFIX.length);
    const scenario = findMockScenario(name);
    if (!scenario || scenario.expectedCategory === null) {
      return openaiJson(
        404,
        `The model \`${model}\` does not exist or you do not have access to it.`,
        { code: "model_not_found" },
      );
    }
    return withNote(await playScenario(scenario, call, state), `model=${model} scenario=${name}`);
  }

  return await generated(call, state, model);
}

/**
 * A valid generation at the upstream's pace: refused with OpenAI's 429 beyond the images-per-minute
 * limit, else answered after the latency, with the limit's headers.
 */
async function generated(call: Call, state: State, model: string): Promise<Response> {
  const request = validate(call.body!, model);
  if (request instanceof Response) return withNote(request, `model=${model}`);
  const grant = state.limit?.take(request.n);
  if (state.limit && grant?.granted === false) {
    const limited = rateLimitedResponse(state.limit, grant, {
      model,
      requested: request.n,
      requestId: openaiRequestId(),
    });
    return withNote(limited, `model=${model} rate limited`);
  }
  const latency = boundedMs(
    call.request.headers.get("x-mock-latency-ms"),
    state.stallMs,
    state.latencyMs,
  );
  if (latency > 0) await wait(latency, [state.lifetime]);
  const limitHeaders = state.limit && grant ? rateLimitHeaders(state.limit, grant) : new Headers();
  return rendered(call, state, model, undefined, Object.fromEntries(limitHeaders));
}

/** How a streamed answer is spread over time: its events over `totalMs`, kept alive meanwhile. */
interface Pacing {
  totalMs: number;
  keepAliveMs: number;
}

/** The rendered image(s) for a request that passed validation, as JSON or as a stream. */
function rendered(
  call: Call,
  state: State,
  model: string,
  pacing?: Pacing,
  extraHeaders: Record<string, string> = {},
): Response {
  const { url } = call;
  const body = call.body!;
  const request = validate(body, model);
  if (request instanceof Response) return withNote(request, `model=${model}`);

  const created = Math.floor(Date.now() / 1000);
  const strict = model === MOCK_STRICT_MODEL;
  const data = [];
  for (let i = 0; i < request.n; i++) {
    const seed = request.n === 1 ? request.prompt : `${request.prompt}\u0000${i}`;
    const revised = `A quiet procedural landscape standing in for: ${request.prompt}`;
    if (request.responseFormat === "url") {
      const id = crypto.randomUUID().replaceAll("-", "");
      remember(state.files, id, { seed, width: request.width, height: request.height }, MAX_FILES);
      data.push({ url: `${url.origin}/v1/files/${id}.png`, b64_json: "", revised_prompt: revised });
    } else {
      const b64 = render(state, seed, request.width, request.height).toBase64();
      data.push(strict ? { b64_json: b64 } : { url: "", b64_json: b64, revised_prompt: revised });
    }
  }
  const outputTokens = Math.max(
    1,
    Math.round(1056 * request.width * request.height / (1024 * 1024)),
  );
  const inputTokens = Math.max(1, Math.ceil(request.prompt.length / 4));
  const answer = {
    created,
    background: "opaque",
    data,
    output_format: "png",
    quality: typeof body.quality === "string" && body.quality !== "auto" ? body.quality : "medium",
    size: `${request.width}x${request.height}`,
    usage: {
      input_tokens: inputTokens,
      input_tokens_details: { image_tokens: 0, text_tokens: inputTokens },
      output_tokens: outputTokens * request.n,
      total_tokens: inputTokens + outputTokens * request.n,
    },
  };
  const headers = {
    ...extraHeaders,
    "x-request-id": openaiRequestId(),
    "openai-processing-ms": "1",
  };
  const note = `model=${model} size=${answer.size} format=${request.responseFormat}`;
  if (body.stream === true) {
    const b64 = render(state, request.prompt, request.width, request.height).toBase64();
    const events = imageEvents(b64, request.partialImages, answer, created);
    return withNote(eventStream(events, headers, pacing, state.lifetime), `${note} stream`);
  }
  return withNote(Response.json(answer, { headers }), note);
}

/**
 * The events of a streamed generation, as OpenAI's images API sends them: the partial images,
 * then the completed one with the usage. The mock's partial images are the final one.
 */
function imageEvents(
  b64: string,
  partialImages: number,
  answer: Record<string, unknown>,
  created: number,
): string[] {
  const { background, output_format, quality, size, usage } = answer;
  const common = { created_at: created, size, quality, background, output_format };
  const event = (type: string, fields: Record<string, unknown>) =>
    `event: ${type}\ndata: ${JSON.stringify({ type, b64_json: b64, ...common, ...fields })}\n\n`;
  return [
    ...Array.from(
      { length: partialImages },
      (_, index) => event("image_generation.partial_image", { partial_image_index: index }),
    ),
    event("image_generation.completed", { usage }),
  ];
}

/** Sends `events` at once, or with `pacing` spread over its time with keep-alive comments. */
function eventStream(
  events: string[],
  headers: Record<string, string>,
  pacing: Pacing | undefined,
  lifetime: AbortSignal,
): Response {
  const streamHeaders = { ...headers, "content-type": "text/event-stream; charset=utf-8" };
  if (pacing === undefined) return new Response(events.join(""), { headers: streamHeaders });
  const stop = new AbortController();
  const encoder = new TextEncoder();
  const paced = pacedEvents(events, pacing, [lifetime, stop.signal]);
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await paced.next();
      if (next.done) controller.close();
      else controller.enqueue(encoder.encode(next.value));
    },
    cancel() {
      stop.abort();
    },
  });
  return new Response(body, { headers: streamHeaders });
}

/** The events due one after another over `totalMs`, and a comment whenever nothing else is. */
async function* pacedEvents(
  events: string[],
  { totalMs, keepAliveMs }: Pacing,
  signals: AbortSignal[],
): AsyncGenerator<string> {
  const started = performance.now();
  yield ": generating\n\n";
  for (let next = 0; next < events.length;) {
    const due = totalMs * (next + 1) / events.length;
    const left = due - (performance.now() - started);
    if (left <= 0) {
      yield events[next++]!;
      continue;
    }
    await wait(Math.min(keepAliveMs, left), signals);
    if (signals.some((signal) => signal.aborted)) return;
    if (performance.now() - started < due) yield ": keep-alive\n\n";
  }
}

interface ImageRequest {
  prompt: string;
  width: number;
  height: number;
  n: number;
  responseFormat: "b64_json" | "url";
  partialImages: number;
}

function validate(body: Record<string, unknown>, model: string): ImageRequest | Response {
  if (model === MOCK_STRICT_MODEL && "response_format" in body) return unknownResponseFormat();
  const prompt = body.prompt;
  if (prompt === undefined || prompt === null) {
    return openaiJson(400, "Missing required parameter: 'prompt'.", {
      param: "prompt",
      code: "missing_required_parameter",
    });
  }
  if (typeof prompt !== "string") {
    return openaiJson(
      400,
      `Invalid type for 'prompt': expected a string, but got ${typeName(prompt)} instead.`,
      { param: "prompt", code: "invalid_type" },
    );
  }
  if (prompt.length === 0) {
    return openaiJson(
      400,
      "Invalid 'prompt': empty string. Expected a string with minimum length 1, but got an empty string instead.",
      { param: "prompt", code: "empty_string" },
    );
  }
  if (prompt.length > MAX_PROMPT) {
    return openaiJson(
      400,
      `Invalid 'prompt': string too long. Expected a string with maximum length ${MAX_PROMPT}, but got a string with length ${prompt.length} instead.`,
      { param: "prompt", code: "string_above_max_length" },
    );
  }

  const size = body.size ?? "auto";
  let width = 1024;
  let height = 1024;
  // A resolution word (Seedream's 1K, 2K, 4K) stands for a square of that many thousand pixels.
  const word = typeof size === "string" ? /^([1-9]\d?(?:\.5)?)K$/.exec(size) : null;
  if (word) {
    width = height = Math.round(Number(word[1]) * 1024);
  } else if (size !== "auto") {
    const match = typeof size === "string" ? /^(\d{1,5})x(\d{1,5})$/.exec(size) : null;
    width = match ? Number(match[1]) : 0;
    height = match ? Number(match[2]) : 0;
  }
  if (size !== "auto") {
    if (width < 1 || height < 1 || width > MAX_SIDE || height > MAX_SIDE) {
      return openaiJson(
        400,
        `Invalid value: '${
          String(size)
        }'. Supported values are: 'auto', 'WIDTHxHEIGHT' with each side from 1 to ${MAX_SIDE}, and '1K' to '4K'.`,
        { param: "size", code: "invalid_value" },
      );
    }
  }

  const n = body.n ?? 1;
  if (typeof n !== "number" || !Number.isInteger(n)) {
    return openaiJson(
      400,
      `Invalid type for 'n': expected an integer, but got ${typeName(n)} instead.`,
      { param: "n", code: "invalid_type" },
    );
  }
  if (n < 1 || n > MAX_N) {
    const [what, bound] = n < 1 ? ["below minimum", `>= 1`] : ["above maximum", `<= ${MAX_N}`];
    return openaiJson(
      400,
      `Invalid 'n': integer ${what} value. Expected a value ${bound}, but got ${n} instead.`,
      { param: "n", code: n < 1 ? "integer_below_min_value" : "integer_above_max_value" },
    );
  }

  const format = body.response_format ?? "b64_json";
  if (format !== "b64_json" && format !== "url") {
    return openaiJson(
      400,
      `Invalid value: '${String(format)}'. Supported values are: 'url' and 'b64_json'.`,
      { param: "response_format", code: "invalid_value" },
    );
  }
  const partialImages = body.partial_images ?? 0;
  if (
    typeof partialImages !== "number" || !Number.isInteger(partialImages) || partialImages < 0 ||
    partialImages > MAX_PARTIAL_IMAGES
  ) {
    return openaiJson(
      400,
      `Invalid 'partial_images': expected an integer from 0 to ${MAX_PARTIAL_IMAGES}.`,
      { param: "partial_images", code: "invalid_value" },
    );
  }
  return { prompt, width, height, n, responseFormat: format, partialImages };
}

/** OpenAI's answer to `response_format` for GPT image models. */
function unknownResponseFormat(): Response {
  return openaiJson(400, "Unknown parameter: 'response_format'.", {
    param: "response_format",
    code: "unknown_parameter",
  });
}

function download(id: string, call: Call, state: State): Response {
  const entry = state.files.get(id);
  if (!entry) {
    const scenario = MOCK_SCENARIOS["download-404"];
    return withNote(respond(scenario, placeholderValues(call)), "download of an unknown file");
  }
  const png = render(state, entry.seed, entry.width, entry.height);
  const headers = {
    "content-type": "image/png",
    "content-length": String(png.length),
    "cache-control": "max-age=3600",
  };
  if (call.request.method === "HEAD") return new Response(null, { headers });
  return new Response(png, { headers });
}

async function playScenario(scenario: MockScenario, call: Call, state: State): Promise<Response> {
  const values = placeholderValues(call);
  const stallMs = () =>
    boundedMs(call.request.headers.get("x-mock-stall-ms"), state.stallMs, state.stallMs);
  switch (scenario.kind) {
    case "respond":
      return respond(scenario, values);
    case "strict":
      return call.body !== null && "response_format" in call.body
        ? unknownResponseFormat()
        : respond(scenario, values);
    case "stall_headers":
      await wait(stallMs(), [state.lifetime]);
      return respond(scenario, values);
    case "stall_body":
      return partialResponse(scenario, values, state, stallMs());
    case "reset":
      return partialResponse(scenario, values, state, RESET_AFTER_MS);
    case "cut": {
      const cutMs = boundedMs(call.request.headers.get("x-mock-cut-ms"), MAX_CUT_MS, state.cutMs);
      if (call.body?.stream === true) {
        return rendered(call, state, MOCK_MODEL, {
          totalMs: cutMs * CUT_GENERATION_FACTOR,
          keepAliveMs: Math.max(10, cutMs / KEEP_ALIVES_PER_CUT),
        });
      }
      await wait(cutMs, [state.lifetime]);
      return respond(scenario, values);
    }
    case "missing_download": {
      const id = `expired${crypto.randomUUID().replaceAll("-", "")}`;
      return Response.json({
        data: [{ url: `${call.url.origin}/v1/files/${id}.png`, b64_json: "", revised_prompt: "" }],
        created: Math.floor(Date.now() / 1000),
      }, { headers: { "x-oneapi-request-id": values.request_id! } });
    }
  }
}

/** The scenario's answer, its body compressed as its `content-encoding` says. */
function respond(scenario: MockScenario, values: Record<string, string>): Response {
  const headers = renderHeaders(scenario.headers, values);
  const text = fill(scenario.body, values, escaperFor(headers.get("content-type")));
  const encoding = headers.get("content-encoding");
  const body = text === ""
    ? null
    : encoding === "gzip"
    ? new Uint8Array(gzipSync(text))
    : encoding === "br"
    ? new Uint8Array(brotliCompressSync(text))
    : text;
  return new Response(body, { status: scenario.status, headers });
}

/**
 * Sends the status, the headers and the start of the body at once, then after `ms` (or when the
 * server shuts down) makes the body fail, which drops the connection mid-body.
 */
function partialResponse(
  scenario: MockScenario,
  values: Record<string, string>,
  state: State,
  ms: number,
): Response {
  const headers = renderHeaders(scenario.headers, values);
  const start = new TextEncoder().encode(
    fill(scenario.body, values, escaperFor(headers.get("content-type"))),
  );
  const stop = new AbortController();
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(start);
      wait(ms, [state.lifetime, stop.signal]).then(() => {
        if (!stop.signal.aborted) controller.error(new DroppedConnection());
      });
    },
    cancel() {
      stop.abort();
    },
  });
  return new Response(body, { status: scenario.status, headers });
}

function renderHeaders(
  template: Readonly<Record<string, string>>,
  values: Record<string, string>,
): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(template)) {
    headers.set(name, fill(value, values, (v) => v.replace(/[\r\n]+/g, " ")));
  }
  return headers;
}

type Escaper = (value: string) => string;

function escaperFor(contentType: string | null): Escaper {
  if (contentType?.includes("json")) return (v) => JSON.stringify(v).slice(1, -1);
  if (contentType?.includes("html") || contentType?.includes("xml")) {
    return (v) =>
      v.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")
        .replaceAll('"', "&quot;").replaceAll("'", "&#39;");
  }
  return (v) => v;
}

function fill(template: string, values: Record<string, string>, escape: Escaper): string {
  return template.replace(/\{\{(\w+)\}\}/g, (whole, name: string) => {
    const value = values[name];
    return value === undefined ? whole : escape(value);
  });
}

function placeholderValues({ request, url, body }: Call): Record<string, string> {
  const now = new Date();
  const token = bearerToken(request) ?? "";
  const size = body?.size;
  return {
    model: typeof body?.model === "string" ? body.model : "",
    size: size === undefined ? "auto" : typeof size === "string" ? size : JSON.stringify(size),
    api_key: token,
    api_key_masked: maskLikeOpenAI(token),
    openai_request_id: openaiRequestId(),
    request_id: gatewayRequestId(now),
    created: String(Math.floor(now.getTime() / 1000)),
    now: now.toISOString(),
    uuid: crypto.randomUUID(),
    ray_id: `${randomHex(8)}-LAX`,
    host: request.headers.get("host") ?? url.host,
  };
}

function bearerToken(request: Request): string | undefined {
  return /^Bearer\s+(\S.*)$/i.exec((request.headers.get("authorization") ?? "").trim())?.[1];
}

/** OpenAI quotes a key as its first 8 and last 4 characters; short keys come back whole. */
function maskLikeOpenAI(key: string): string {
  if (key.length <= 12) return key;
  return `${key.slice(0, 8)}${"*".repeat(key.length - 12)}${key.slice(-4)}`;
}

function openaiRequestId(): string {
  return `req_${randomHex(16)}`;
}

/** one-api/new-api request ids: local time to the second, nanoseconds, 8 random characters. */
function gatewayRequestId(now: Date): string {
  const pad = (n: number, width = 2) => String(n).padStart(width, "0");
  const stamp = `${now.getFullYear()}${pad(now.getMonth() + 1)}${pad(now.getDate())}` +
    `${pad(now.getHours())}${pad(now.getMinutes())}${pad(now.getSeconds())}`;
  const nanos = String(now.getMilliseconds() * 1_000_000 + Math.floor(Math.random() * 1_000_000));
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  let suffix = "";
  for (const b of bytes) suffix += alphabet[b % alphabet.length];
  return `${stamp}${nanos}${suffix}`;
}

function randomHex(bytes: number): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => {
    return b.toString(16).padStart(2, "0");
  }).join("");
}

function openaiJson(
  status: number,
  message: string,
  fields: { type?: string; param?: string | null; code?: string | null } = {},
): Response {
  const error = {
    message,
    type: fields.type ?? "invalid_request_error",
    param: fields.param ?? null,
    code: fields.code ?? null,
  };
  return new Response(JSON.stringify({ error }, null, 4) + "\n", {
    status,
    headers: {
      "content-type": "application/json; charset=utf-8",
      "x-request-id": openaiRequestId(),
    },
  });
}

/** What the request log says about an answer beyond its method, path and status. */
const notes = new WeakMap<Response, string>();

function withNote(response: Response, note: string): Response {
  notes.set(response, note);
  return response;
}

function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "number") return Number.isInteger(value) ? "an integer" : "a decimal";
  if (typeof value === "object") return "an object";
  if (typeof value === "boolean") return "a boolean";
  return `a ${typeof value}`;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return NOT_JSON;
  }
}

/** Reads the request body as text, refusing more than {@link MAX_BODY_BYTES}. */
async function readLimited(req: Request, limit: number): Promise<string> {
  const declared = Number(req.headers.get("content-length") ?? "0");
  if (declared > limit) {
    await req.body?.cancel();
    throw new BodyTooLarge();
  }
  if (!req.body) return "";
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of req.body) {
    total += chunk.length;
    if (total > limit) throw new BodyTooLarge();
    chunks.push(chunk);
  }
  const all = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.length;
  }
  return new TextDecoder().decode(all);
}

function render(
  state: State,
  seed: string,
  width: number,
  height: number,
): Uint8Array<ArrayBuffer> {
  const key = `${width}x${height}\u0000${seed}`;
  const cached = state.renders.get(key);
  if (cached) {
    state.renders.delete(key);
    state.renders.set(key, cached);
    return cached;
  }
  const png = encodePng(width, height, renderPicture(width, height, seed));
  remember(state.renders, key, png, MAX_CACHED_RENDERS);
  return png;
}

function remember<V>(map: Map<string, V>, key: string, value: V, limit: number): void {
  map.set(key, value);
  while (map.size > limit) {
    const oldest = map.keys().next().value;
    if (oldest === undefined) break;
    map.delete(oldest);
  }
}

/** A header's milliseconds, clamped to [0, cap]; `fallback` when absent or not a number. */
function boundedMs(raw: string | null, cap: number, fallback = 0): number {
  if (raw === null || raw.trim() === "") return Math.min(fallback, cap);
  const ms = Number(raw);
  if (!Number.isFinite(ms) || ms < 0) return Math.min(fallback, cap);
  return Math.min(ms, cap);
}

/**
 * Resolves after `ms`, or as soon as one of the signals aborts; leaves no timer behind.
 *
 * A request's own signal is deliberately not used: touching it makes Deno.serve warn about its
 * legacy abort-on-success behaviour. A stall whose client went away simply runs to its cap, or
 * ends when the server shuts down.
 */
function wait(ms: number, signals: AbortSignal[]): Promise<void> {
  return new Promise((resolve) => {
    if (ms <= 0 || signals.some((s) => s.aborted)) return resolve();
    const done = () => {
      clearTimeout(timer);
      for (const s of signals) s.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    for (const s of signals) s.addEventListener("abort", done, { once: true });
  });
}

const HELP =
  `Usage: deno task mock [--port 8787] [--hostname 127.0.0.1] [--stall-ms 60000] [--cut-ms 100000]
                      [--latency-ms 0] [--images-per-minute N] [--quiet]

An OpenAI-compatible image upstream on loopback, for trying img2-generate offline.

Options:
  --port N        Port to listen on; 0 picks any free port (default ${DEFAULT_PORT})
  --hostname H    127.0.0.1, localhost or ::1 (default ${DEFAULT_HOSTNAME})
  --stall-ms MS   Longest a stall or a delay lasts (default ${DEFAULT_STALL_MS})
  --cut-ms MS     How long the gateway of cut-after-100s waits (default ${DEFAULT_CUT_MS})
  --latency-ms MS How long each generation takes (default 0; the header x-mock-latency-ms
                  sets it for one request)
  --images-per-minute N
                  Answer generations beyond N images a minute with OpenAI's 429 and
                  Retry-After: a bucket refilling at N/60 a second, holding 5 seconds' worth
  --batch-complete-ms MS
                  How long a batch of the Batch API at /batch/v1 takes (default 1000);
                  /batch-none/v1 answers the Batch API as new-api does (501)
  --quiet         Do not log requests
  -h, --help      Show this help

Models: ${MOCK_MODEL}, ${MOCK_STRICT_MODEL}, and mock-fail-<scenario> to inject a failure.
The header "x-mock-scenario: <scenario>", or the base_url http://HOST:PORT/<scenario>/v1,
selects any scenario, answer shapes that must be saved included. Scenarios:
${scenarioTable()}
`;

function scenarioTable(): string {
  const width = Math.max(...MOCK_SCENARIO_NAMES.map((name) => name.length)) + 2;
  return MOCK_SCENARIO_NAMES.map((name) => {
    const { expectedCategory, summary } = MOCK_SCENARIOS[name];
    return `  ${name.padEnd(width)}${(expectedCategory ?? "saved").padEnd(20)}${summary}`;
  }).join("\n");
}

async function main(args: string[]): Promise<number> {
  const parsed = parseFlags(args, {
    port: { type: "string" },
    hostname: { type: "string" },
    "stall-ms": { type: "string" },
    "cut-ms": { type: "string" },
    "latency-ms": { type: "string" },
    "images-per-minute": { type: "string" },
    "batch-complete-ms": { type: "string" },
    quiet: { type: "boolean" },
  }, HELP);
  if (!parsed.ok) return parsed.exitCode;
  const { values } = parsed;
  const port = values.port === undefined ? DEFAULT_PORT : Number(values.port);
  const stallMs = values["stall-ms"] === undefined ? DEFAULT_STALL_MS : Number(values["stall-ms"]);
  const cutMs = values["cut-ms"] === undefined ? DEFAULT_CUT_MS : Number(values["cut-ms"]);
  const latencyMs = values["latency-ms"] === undefined ? 0 : Number(values["latency-ms"]);
  const perMinute = values["images-per-minute"];

  const stop = new AbortController();
  const onSignal = () => stop.abort();
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  let mock: MockUpstream;
  try {
    mock = startMockUpstream({
      hostname: values.hostname,
      port,
      stallMs,
      cutMs,
      latencyMs,
      imagesPerMinute: perMinute === undefined ? undefined : Number(perMinute),
      batchCompleteMs: Number(values["batch-complete-ms"] ?? 1000),
      signal: stop.signal,
      log: values.quiet ? undefined : (line) => console.error(line),
    });
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    return 1;
  }
  for (const s of signals) Deno.addSignalListener(s, onSignal);
  const pace = [
    latencyMs > 0 ? `${latencyMs} ms per generation` : "",
    perMinute === undefined ? "" : `at most ${perMinute} images per minute`,
  ].filter(Boolean).join(", ");
  console.error(`mock upstream listening on ${mock.url}${pace ? ` (${pace})` : ""}`);
  console.error(
    `models: ${MOCK_MODEL}, ${MOCK_STRICT_MODEL}, mock-fail-<scenario> (${FAILURE_SCENARIO_NAMES.length} failures; ${MOCK_SCENARIO_NAMES.length} scenarios by /<scenario>/v1, see --help); Ctrl-C stops it`,
  );
  try {
    await mock.finished;
  } finally {
    for (const s of signals) Deno.removeSignalListener(s, onSignal);
  }
  console.error("mock upstream stopped");
  return 0;
}

if (import.meta.main) {
  Deno.exitCode = await main(Deno.args);
}
