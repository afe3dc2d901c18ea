/**
 * The offline upstream's Batch API (OpenAI's `/v1/files` and `/v1/batches`), under the path
 * prefix `/batch/v1`: uploads, batches that complete after `completeMs`, their output and error
 * files, listing with `after`, and cancelling. `/batch-none/v1` answers the Batch API as new-api
 * and one-api do, which have none: HTTP 501 `api_not_implemented`.
 *
 * What a batch does is set by its lines' prompts: `[refuse]` answers the line 400 (moderation),
 * `[error]` puts it in the error file (500), `[slow]` leaves it unanswered when the batch
 * expires, `[invalid]` fails the batch's validation on that line. The knobs below (`expire`,
 * `shuffle`, `stallUpload`, `stallCreate`, `stallContent`, `cutContent`, `failNext`,
 * `failLooks`, `failUploads`, `failWithoutLine`) make the rest of the cases; `rewriteOutput`,
 * `errorFileText`, `rewriteView`, `rewriteList` and `intercept` make a provider that lies.
 */
import { concat } from "../../lib/shared/bytes.ts";
import { SAMPLE_PNG } from "./mock_scenarios.ts";

const IMAGE_MARK = "@@image@@";

/** new-api's answer to an endpoint it does not relay (controller/relay.go, RelayNotImplemented). */
export const NOT_IMPLEMENTED_BODY = {
  error: {
    message: "API not implemented",
    type: "new_api_error",
    param: "",
    code: "api_not_implemented",
  },
};

interface MockFile {
  id: string;
  /** The content in pieces: the lines of an output share their one image's base64. */
  chunks: Uint8Array[];
  /** The content whole. */
  readonly bytes: Uint8Array;
  purpose: string;
  filename: string;
  created_at: number;
}

export interface MockBatch {
  id: string;
  input_file_id: string;
  metadata: Record<string, string>;
  created_at: number;
  createdMs: number;
  status: string;
  output_file_id: string | null;
  error_file_id: string | null;
  errors: { code: string; message: string; line: number | null }[];
  request_counts: { total: number; completed: number; failed: number };
  ended_at: number | null;
  cancelling: boolean;
}

export class MockBatchApi {
  /** How long a batch takes, from its creation, to complete (ms). */
  completeMs = 0;
  /** Batches end `expired` instead, the `[slow]` lines unanswered. */
  expire = false;
  /** Output lines in reverse order, with a second line for the first job and one for no job. */
  shuffle = false;
  /** The answer to a create is held (the batch is made) until the server shuts down. */
  stallCreate = false;
  /** A file's content stops half way and is held until the server shuts down. */
  stallContent = false;
  /** A file's content ends halfway, cleanly, as a proxy that cut it would leave it. */
  cutContent = false;
  /** The answer to an upload is held (the file is stored) until the server shuts down. */
  stallUpload = false;
  /** The next this many calls are answered 500, as an overloaded API does. */
  failNext = 0;
  /**
   * The next looks at a batch (`GET /batches/{id}`) are answered with these statuses and headers,
   * one each, in order, before the batch is looked at: 429 as OpenAI's rate limit, 401 as its
   * wrong key, any other as its server error.
   */
  failLooks: { status: number; headers?: Record<string, string> }[] = [];
  /** The next uploads (`POST /files`) are answered so, one each, in order, as failLooks. */
  failUploads: { status: number; headers?: Record<string, string> }[] = [];
  /** A failed validation also says something of no line. */
  failWithoutLine = false;
  /** The decoded image of every answered line. */
  image: Uint8Array = SAMPLE_PNG;
  /** A lying provider: rewrites each output line (a JSON object) before the file is stored. */
  rewriteOutput: ((line: Record<string, unknown>, number: number) => unknown) | null = null;
  /** A lying provider: the text of the error file, in place of the one made. */
  errorFileText: string | null = null;
  /** A lying provider: rewrites a batch as each look (get, list) shows it; `look` counts from 1. */
  rewriteView:
    | ((view: Record<string, unknown>, look: number) => Record<string, unknown>)
    | null = null;
  /** A provider of its own: answers any call it returns an answer for, before the rest. */
  intercept: ((request: Request, path: string) => Response | null) | null = null;
  /** A lying provider: rewrites each page of the list (GET /batches). */
  rewriteList: ((page: Record<string, unknown>) => Record<string, unknown>) | null = null;
  readonly files = new Map<string, MockFile>();
  readonly batches: MockBatch[] = [];
  readonly #lifetime: AbortSignal;
  #next = 0;
  /** `image` in base64, made once for each image set. */
  #imageBase64: { of: Uint8Array; text: Uint8Array } | null = null;
  #looks = 0;

  constructor(lifetime: AbortSignal) {
    this.#lifetime = lifetime;
  }

  /** The answer to `path` (after `/batch/v1`), or null when it is none of the Batch API's. */
  async answer(request: Request, path: string, text: string): Promise<Response | null> {
    const method = request.method;
    const intercepted = this.intercept?.(request, path) ?? null;
    if (intercepted !== null) return intercepted;
    if (method === "POST" && path === "/files" && this.failUploads.length > 0) {
      const failure = this.failUploads.shift()!;
      return lookFailure(failure.status, failure.headers);
    }
    if (/^\/(files|batches)(\/|$)/.test(path) && this.failNext > 0) {
      this.failNext--;
      return new Response(
        JSON.stringify({
          error: {
            message: "The server had an error while processing your request.",
            type: "server_error",
            param: null,
            code: null,
          },
        }),
        { status: 500, headers: { "content-type": "application/json" } },
      );
    }
    if (path === "/files" && method === "POST") return await this.#upload(request, text);
    let match = /^\/files\/([^/]+)\/content$/.exec(path);
    if (match && method === "GET") return this.#content(decodeURIComponent(match[1]!));
    if (path === "/batches" && method === "POST") return await this.#create(text);
    if (path === "/batches" && method === "GET") return this.#list(new URL(request.url));
    match = /^\/batches\/([^/]+)(\/cancel)?$/.exec(path);
    if (match) {
      const batch = this.batches.find((b) => b.id === decodeURIComponent(match![1]!));
      if (batch === undefined) return error(404, `No batch found with id '${match[1]}'.`);
      if (match[2] && method === "POST") {
        if (!["validating", "in_progress", "finalizing"].includes(batch.status)) {
          return error(409, `Cannot cancel a batch with status '${batch.status}'.`);
        }
        batch.cancelling = true;
        batch.status = "cancelling";
        return json(this.#view(batch));
      }
      if (!match[2] && method === "GET") {
        const failure = this.failLooks.shift();
        if (failure !== undefined) return lookFailure(failure.status, failure.headers);
        return json(this.#view(this.#advance(batch)));
      }
    }
    return null;
  }

  async #upload(request: Request, text: string): Promise<Response> {
    let form: FormData;
    try {
      form = await new Request("http://x/", {
        method: "POST",
        headers: { "content-type": request.headers.get("content-type") ?? "" },
        body: text,
      }).formData();
    } catch {
      return error(400, "Could not parse multipart form");
    }
    const file = form.get("file");
    if (form.get("purpose") !== "batch" || !(file instanceof File)) {
      return error(400, "Missing purpose=batch or file");
    }
    const stored = this.#store(new Uint8Array(await file.arrayBuffer()), "batch", file.name);
    if (this.stallUpload) await this.#untilShutdown();
    return json({
      id: stored.id,
      object: "file",
      bytes: stored.chunks.reduce((sum, chunk) => sum + chunk.length, 0),
      created_at: stored.created_at,
      filename: stored.filename,
      purpose: "batch",
    });
  }

  #store(content: Uint8Array | Uint8Array[], purpose: string, filename: string): MockFile {
    const chunks = Array.isArray(content) ? content : [content];
    const file = {
      id: `file-${++this.#next}`,
      chunks,
      get bytes() {
        return concat(chunks);
      },
      purpose,
      filename,
      created_at: Math.floor(Date.now() / 1000),
    };
    this.files.set(file.id, file);
    return file;
  }

  async #create(text: string): Promise<Response> {
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(text);
    } catch {
      return error(400, "We could not parse the JSON body of your request.");
    }
    const input = this.files.get(String(body.input_file_id));
    if (input === undefined) return error(400, `Invalid input_file_id`);
    if (body.endpoint !== "/v1/images/generations" || body.completion_window !== "24h") {
      return error(400, "Invalid endpoint or completion_window");
    }
    const batch: MockBatch = {
      id: `batch_${++this.#next}`,
      input_file_id: input.id,
      metadata: (body.metadata ?? {}) as Record<string, string>,
      created_at: Math.floor(Date.now() / 1000),
      createdMs: Date.now(),
      status: "validating",
      output_file_id: null,
      error_file_id: null,
      errors: [],
      request_counts: { total: 0, completed: 0, failed: 0 },
      ended_at: null,
      cancelling: false,
    };
    this.batches.push(batch);
    if (this.stallCreate) await this.#untilShutdown();
    return json(this.#view(batch));
  }

  #untilShutdown(): Promise<void> {
    return new Promise<void>((resolve) =>
      this.#lifetime.addEventListener("abort", () => resolve(), { once: true })
    );
  }

  #list(url: URL): Response {
    const limit = Number(url.searchParams.get("limit") ?? 20);
    const after = url.searchParams.get("after");
    const newestFirst = [...this.batches].reverse();
    const start = after === null ? 0 : newestFirst.findIndex((b) => b.id === after) + 1;
    const page = newestFirst.slice(start, start + limit).map((b) => this.#view(this.#advance(b)));
    const answer = {
      object: "list",
      data: page,
      first_id: page[0]?.id ?? null,
      last_id: page.at(-1)?.id ?? null,
      has_more: start + limit < newestFirst.length,
    };
    return json(this.rewriteList?.(answer) ?? answer);
  }

  #content(id: string): Response {
    const file = this.files.get(id);
    if (file === undefined) return error(404, `No such File object: ${id}`);
    if (!this.stallContent && !this.cutContent) {
      const chunks = file.chunks;
      let next = 0;
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (next < chunks.length) controller.enqueue(chunks[next++]!);
          else controller.close();
        },
      });
      const length = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
      return new Response(body, {
        headers: { "content-type": "application/octet-stream", "content-length": String(length) },
      });
    }
    const half = file.bytes.subarray(0, Math.floor(file.bytes.length / 2));
    if (this.cutContent) return new Response(half as Uint8Array<ArrayBuffer>);
    const lifetime = this.#lifetime;
    return new Response(
      new ReadableStream<Uint8Array>({
        async start(controller) {
          controller.enqueue(half);
          await new Promise<void>((resolve) =>
            lifetime.addEventListener("abort", () => resolve(), { once: true })
          );
          controller.close();
        },
      }),
      { headers: { "content-type": "application/octet-stream" } },
    );
  }

  /** Moves a batch on, as time passes: to its end once completeMs is over (or it is cancelled). */
  #advance(batch: MockBatch): MockBatch {
    if (["completed", "failed", "expired", "cancelled"].includes(batch.status)) return batch;
    const lines = new TextDecoder().decode(this.files.get(batch.input_file_id)!.bytes)
      .split("\n").filter((line) => line.trim() !== "").map((line) => JSON.parse(line));
    batch.request_counts.total = lines.length;
    const invalid = lines.map((line, i) => ({ line, number: i + 1 }))
      .filter(({ line }) => String(line.body?.prompt).includes("[invalid]"));
    if (invalid.length > 0 || this.failWithoutLine) {
      batch.status = "failed";
      batch.errors = invalid.map(({ number }) => ({
        code: "invalid_request",
        message: `Invalid prompt on line ${number}.`,
        line: number,
      }));
      if (this.failWithoutLine) {
        batch.errors.push({
          code: "invalid_file",
          message: "The file could not be read.",
          line: null,
        });
      }
      batch.ended_at = Math.floor(Date.now() / 1000);
      return batch;
    }
    const due = Date.now() - batch.createdMs >= this.completeMs;
    if (!due && !batch.cancelling) {
      batch.status = "in_progress";
      return batch;
    }
    const stopped = batch.cancelling || this.expire;
    const output: Uint8Array[][] = [];
    const errors: string[] = [];
    const encoder = new TextEncoder();
    if (this.#imageBase64?.of !== this.image) {
      this.#imageBase64 = { of: this.image, text: encoder.encode(this.image.toBase64()) };
    }
    const imageBase64 = this.#imageBase64.text;
    let n = 0;
    for (const line of lines) {
      const prompt = String(line.body?.prompt);
      const id = `batch_req_${++n}`;
      const requestId = `req_${batch.id}_${n}`;
      if (batch.cancelling || (this.expire && prompt.includes("[slow]"))) {
        const code = batch.cancelling ? "batch_cancelled" : "batch_expired";
        errors.push(JSON.stringify({
          id,
          custom_id: line.custom_id,
          response: null,
          error: { code, message: `This request could not be executed before the batch ended.` },
        }));
        continue;
      }
      if (prompt.includes("[refuse]")) {
        errors.push(answerLine(id, line.custom_id, 400, requestId, {
          error: {
            message: "Your request was rejected as a result of our safety system.",
            type: "image_generation_user_error",
            param: null,
            code: "moderation_blocked",
          },
        }));
        batch.request_counts.failed++;
      } else if (prompt.includes("[error]")) {
        errors.push(answerLine(id, line.custom_id, 500, requestId, {
          error: {
            message: "The server had an error while processing your request.",
            type: "server_error",
            param: null,
            code: null,
          },
        }));
        batch.request_counts.failed++;
      } else {
        // The line with its image's place marked, then the shared base64 put there.
        const [head, tail] = answerLine(id, line.custom_id, 200, requestId, {
          created: Math.floor(Date.now() / 1000),
          data: [{ b64_json: IMAGE_MARK }],
          usage: { total_tokens: 100, input_tokens: 10, output_tokens: 90 },
        }).split(IMAGE_MARK) as [string, string];
        output.push([encoder.encode(head), imageBase64, encoder.encode(tail + "\n")]);
        batch.request_counts.completed++;
      }
    }
    if (this.rewriteOutput !== null) {
      const rewrite = this.rewriteOutput;
      output.splice(
        0,
        output.length,
        ...output.map((pieces, i) => {
          const value = rewrite(JSON.parse(new TextDecoder().decode(concat(pieces))), i + 1);
          return [encoder.encode(`${typeof value === "string" ? value : JSON.stringify(value)}\n`)];
        }),
      );
    }
    if (this.errorFileText !== null) errors.splice(0, errors.length, this.errorFileText);
    if (this.shuffle && output.length > 0) {
      output.reverse();
      output.push(output[output.length - 1]!);
      const stray = answerLine("batch_req_x", "no-such-job", 200, "req_x", { data: [] });
      output.push([encoder.encode(stray + "\n")]);
    }
    if (output.length > 0) {
      batch.output_file_id = this.#store(output.flat(), "batch_output", "output.jsonl").id;
    }
    if (errors.length > 0) {
      batch.error_file_id =
        this.#store(encoder.encode(errors.join("\n") + "\n"), "batch_output", "errors.jsonl").id;
    }
    batch.status = batch.cancelling ? "cancelled" : stopped ? "expired" : "completed";
    batch.ended_at = Math.floor(Date.now() / 1000);
    return batch;
  }

  #view(batch: MockBatch): Record<string, unknown> {
    const view = this.#plainView(batch);
    return this.rewriteView?.(view, ++this.#looks) ?? view;
  }

  #plainView(batch: MockBatch): Record<string, unknown> {
    const ended = batch.ended_at;
    return {
      id: batch.id,
      object: "batch",
      endpoint: "/v1/images/generations",
      errors: batch.errors.length > 0 ? { object: "list", data: batch.errors } : null,
      input_file_id: batch.input_file_id,
      completion_window: "24h",
      status: batch.status,
      output_file_id: batch.output_file_id,
      error_file_id: batch.error_file_id,
      created_at: batch.created_at,
      in_progress_at: null,
      expires_at: batch.created_at + 86_400,
      finalizing_at: null,
      completed_at: batch.status === "completed" ? ended : null,
      failed_at: batch.status === "failed" ? ended : null,
      expired_at: batch.status === "expired" ? ended : null,
      cancelling_at: null,
      cancelled_at: batch.status === "cancelled" ? ended : null,
      request_counts: batch.request_counts,
      metadata: batch.metadata,
    };
  }
}

function answerLine(
  id: string,
  customId: unknown,
  status: number,
  requestId: string,
  body: unknown,
): string {
  return JSON.stringify({
    id,
    custom_id: customId,
    response: { status_code: status, request_id: requestId, body },
    error: null,
  });
}

function json(value: unknown): Response {
  return new Response(JSON.stringify(value), {
    headers: { "content-type": "application/json" },
  });
}

function error(status: number, message: string): Response {
  return new Response(
    JSON.stringify({ error: { message, type: "invalid_request_error", param: null, code: null } }),
    { status, headers: { "content-type": "application/json" } },
  );
}

/** OpenAI's answers of a rate limit, a wrong key and a server error. */
function lookFailure(status: number, headers: Record<string, string> = {}): Response {
  const body = status === 429
    ? {
      message: "Rate limit reached for requests. Please try again later.",
      type: "requests",
      param: null,
      code: "rate_limit_exceeded",
    }
    : status === 401
    ? {
      message: "Incorrect API key provided: sk-proj-****abcd. You can find your API key at " +
        "https://platform.openai.com/account/api-keys.",
      type: "invalid_request_error",
      param: null,
      code: "invalid_api_key",
    }
    : {
      message: "The server had an error while processing your request.",
      type: "server_error",
      param: null,
      code: null,
    };
  return new Response(JSON.stringify({ error: body }), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

/** The answer of an upstream without a Batch API to any of its paths. */
export function notImplemented(): Response {
  return new Response(JSON.stringify(NOT_IMPLEMENTED_BODY), {
    status: 501,
    headers: { "content-type": "application/json; charset=utf-8" },
  });
}
