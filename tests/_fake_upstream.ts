/**
 * A local OpenAI-compatible upstream for the tests. Each scenario lives under its own path
 * prefix, so one server serves them all: `upstream.baseUrl("ok")` is `http://127.0.0.1:PORT/ok/v1`.
 * Every request is recorded for the tests to inspect.
 */
import { brotliCompressSync, gzipSync } from "node:zlib";
import { encodePng, renderPicture } from "../scripts/png.ts";

export const TEST_KEY = "sk-test-9f8e7d6c5b4a3210";
export const PNG_64 = encodePng(64, 48, renderPicture(64, 48, "fixture"));

export interface RecordedRequest {
  scenario: string;
  method: string;
  path: string;
  headers: Headers;
  body: Record<string, unknown> | null;
}

type Handler = (
  request: Request,
  body: Record<string, unknown> | null,
  upstream: FakeUpstream,
) => Response | Promise<Response>;

const json = (value: unknown, status = 200, headers: HeadersInit = {}) =>
  new Response(JSON.stringify(value), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });

const imageAnswer = (item: Record<string, unknown>) =>
  json({ created: 1760000000, data: [item], usage: { total_tokens: 42 } }, 200, {
    "x-request-id": "req_fake_1",
  });

const openAiError = (status: number, message: string, type: string, code: string | null) =>
  json({ error: { message, type, param: null, code } }, status);

/** A body that sends `head`, then nothing until the upstream is closed. */
function stalledBody(head: string, upstream: FakeUpstream): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      controller.enqueue(new TextEncoder().encode(head));
      upstream.untilClosed().then(() => {
        try {
          controller.close();
        } catch { /* the client went away first */ }
      });
    },
  });
}

const SCENARIOS: Record<string, Handler> = {
  "ok": () =>
    imageAnswer({ url: "", b64_json: PNG_64.toBase64(), revised_prompt: "a revised cat" }),
  "ok-object": () =>
    json({
      created: 1,
      data: { b64_json: PNG_64.toBase64({ alphabet: "base64url", omitPadding: true }) },
    }),
  "ok-wrapped": () => {
    const wrapped = PNG_64.toBase64().replace(/.{76}/g, "$&\n");
    return json({ data: [{ b64_json: `data:image/png;base64,${wrapped}` }] });
  },
  "ok-escaped": () => {
    const text = JSON.stringify({ data: [{ b64_json: PNG_64.toBase64() }] });
    return new Response(text.replaceAll("/", "\\/"), {
      headers: { "content-type": "application/json" },
    });
  },
  "ok-data-url-in-url": () =>
    json({ data: [{ url: `data:image/png;base64,${PNG_64.toBase64()}` }] }),
  "ok-url": (request) => json({ data: [{ url: new URL("../files/cat.png", request.url).href }] }),
  "ok-gzip": () =>
    new Response(
      new Uint8Array(gzipSync(JSON.stringify({ data: [{ b64_json: PNG_64.toBase64() }] }))),
      {
        headers: { "content-type": "application/json", "content-encoding": "gzip" },
      },
    ),
  "ok-br": () =>
    new Response(
      new Uint8Array(
        brotliCompressSync(JSON.stringify({ data: [{ b64_json: PNG_64.toBase64() }] })),
      ),
      {
        headers: { "content-type": "application/json", "content-encoding": "br" },
      },
    ),
  "ok-jpeg": () => json({ data: [{ b64_json: JPEG_BYTES.toBase64() }] }),
  "seed-502": () =>
    json({ error: { message: "Upstream request failed", type: "upstream_error" } }, 502),
  "error-200": () =>
    json({
      error: { message: "该令牌额度已用尽 (request id: 20261125abc)", type: "new_api_error" },
    }),
  "no-image": () => json({ created: 1, data: [] }),
  "html-200": () =>
    new Response("<html><title>Welcome</title></html>", {
      headers: { "content-type": "text/html" },
    }),
  "bad-base64": () => json({ data: [{ b64_json: "iVBORw0KGgo!!!!" }] }),
  "not-image": () =>
    json({ data: [{ b64_json: new TextEncoder().encode("hello, not an image").toBase64() }] }),
  "nginx-504": () =>
    new Response(
      "<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n<center><h1>504 Gateway Time-out</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
      { status: 504, headers: { "content-type": "text/html" } },
    ),
  "echo-key": (request) =>
    openAiError(
      401,
      `Incorrect API key provided: ${request.headers.get("authorization")?.slice(7)}. Header was ${
        request.headers.get("authorization")
      }`,
      "invalid_request_error",
      "invalid_api_key",
    ),
  "rate-limited": () =>
    json(
      {
        error: {
          message: "Rate limit reached for images",
          type: "requests",
          code: "rate_limit_exceeded",
        },
      },
      429,
      { "retry-after-ms": "40" },
    ),
  "refuses-response-format": (_request, body) =>
    body !== null && "response_format" in body
      ? openAiError(
        400,
        "Unknown parameter: 'response_format'.",
        "invalid_request_error",
        "unknown_parameter",
      )
      : imageAnswer({ b64_json: PNG_64.toBase64() }),
  "redirect": () =>
    new Response(null, { status: 301, headers: { location: "https://elsewhere.invalid/v1" } }),
  "stall-headers": (_request, _body, upstream) =>
    upstream.untilClosed().then(() => new Response(null)),
  "stall-body": (_request, _body, upstream) =>
    new Response(stalledBody('{"created": 1, "data": [{"b64_json": "iVBORw0KGgo', upstream), {
      headers: { "content-type": "application/json" },
    }),
  // The connection closes before the promised content-length: the client sees it broken
  // mid-answer. (Erroring the stream instead would make Deno.serve print a stack trace.)
  "reset-body": () =>
    new Response(
      ReadableStream.from([new TextEncoder().encode('{"data": [{"b64_json": "iVBORw0KGgo')]),
      {
        headers: { "content-type": "application/json", "content-length": "4096" },
      },
    ),
};

/** JPEG signature, an APP0 segment, then a baseline frame header for 32x16. */
const JPEG_BYTES = new Uint8Array([
  0xff,
  0xd8,
  0xff,
  0xe0,
  0x00,
  0x10,
  0x4a,
  0x46,
  0x49,
  0x46,
  0x00,
  0x01,
  0x01,
  0x00,
  0x00,
  0x01,
  0x00,
  0x01,
  0x00,
  0x00,
  0xff,
  0xc0,
  0x00,
  0x11,
  0x08,
  0x00,
  0x10,
  0x00,
  0x20,
  0x03,
  0x01,
  0x22,
  0x00,
  0x02,
  0x11,
  0x01,
  0x03,
  0x11,
  0x01,
  0xff,
  0xd9,
]);

export class FakeUpstream {
  readonly requests: RecordedRequest[] = [];
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  readonly #extra = new Map<string, Handler>();
  readonly #closing = Promise.withResolvers<void>();
  /** Resolves at each request that reaches the server; tests await it to time a signal. */
  #arrival = Promise.withResolvers<void>();

  constructor() {
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (request) => this.#handle(request),
    );
  }

  get origin(): string {
    return `http://127.0.0.1:${this.#server.addr.port}`;
  }

  baseUrl(scenario: string): string {
    return `${this.origin}/${scenario}/v1`;
  }

  /** Adds a scenario of a single test's own, such as one that counts its calls. */
  route(scenario: string, handler: Handler): this {
    this.#extra.set(scenario, handler);
    return this;
  }

  /** Stalled answers end when the upstream closes, so that no test leaves a request open. */
  untilClosed(): Promise<void> {
    return this.#closing.promise;
  }

  nextArrival(): Promise<void> {
    return this.#arrival.promise;
  }

  async #handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const [, scenario = "", ...rest] = url.pathname.split("/");
    const text = request.method === "POST" ? await request.text() : "";
    let body: Record<string, unknown> | null = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch { /* recorded as null */ }
    this.requests.push({
      scenario,
      method: request.method,
      path: url.pathname,
      headers: request.headers,
      body,
    });
    this.#arrival.resolve();
    this.#arrival = Promise.withResolvers<void>();

    if (rest.includes("files")) {
      return new Response(PNG_64, { headers: { "content-type": "image/png" } });
    }
    const handler = this.#extra.get(scenario) ?? SCENARIOS[scenario];
    if (!handler) {
      return json({ error: { message: `No scenario "${scenario}"`, type: "test" } }, 404);
    }
    return await handler(request, body, this);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#closing.resolve();
    await this.#server.shutdown();
  }
}

export function startFakeUpstream(): FakeUpstream {
  return new FakeUpstream();
}

/** A valid input for `scenario`, with the fields given overriding. */
export function inputFor(
  upstream: FakeUpstream,
  scenario: string,
  outputDir: string,
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    prompt: "an orange cat by the window",
    base_url: upstream.baseUrl(scenario),
    api_key: TEST_KEY,
    model: "gpt-image-2",
    size: "1024x1024",
    task_name: "cat",
    timeout_ms: 5000,
    output_dir: outputDir,
    ...overrides,
  };
}

/** The names of the files in a folder, hidden ones included. */
export async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort();
}
