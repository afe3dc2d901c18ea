/**
 * The provider's Batch API (OpenAI's `/v1/files` and `/v1/batches`), with the key, headers and
 * failures of the image request: upload an input file, create, look at, list and cancel batches,
 * and read a file's content as it arrives.
 */
import {
  GenerationError,
  type GenerationParams,
  isJsonObject,
  type ProviderAnswer,
  providerJson,
  providerRequest,
} from "../mod.ts";
import type { BatchSummary } from "./batch_api_journal.ts";

export const BATCH_ENDPOINT = "/v1/images/generations";
export const COMPLETION_WINDOW = "24h";
/** Statuses after which a batch changes no more. */
export const FINAL_STATUSES = new Set(["completed", "failed", "expired", "cancelled"]);

const CALL_TIMEOUT_MS = 120_000;
const UPLOAD_TIMEOUT_MS = 60 * 60_000;
const CONTENT_TIMEOUT_MS = 6 * 60 * 60_000;
const LIST_LIMIT = 100;
/** Pages of the list read at most when looking for a part's batch: 100 000 batches. */
const MAX_LIST_PAGES = 1000;

/** A batch as the provider sends it, read loosely: what is not there is null. */
export interface Batch extends BatchSummary {
  metadata: Record<string, unknown>;
  /** `errors.data` of a failed batch. */
  errors: { code: string | null; message: string | null; line: number | null }[];
}

export class BatchApi {
  readonly #params: GenerationParams;
  readonly #signal: AbortSignal;

  /** `params`: a job of the group, for base_url, the key and the headers. */
  constructor(params: GenerationParams, signal: AbortSignal) {
    this.#params = params;
    this.#signal = signal;
  }

  /** `POST /files` (multipart, purpose=batch) of the file at `path`, streamed from disk. */
  async upload(path: string, name: string): Promise<string> {
    const boundary = `img2-batch-${crypto.randomUUID()}`;
    const encoder = new TextEncoder();
    const head = encoder.encode(
      `--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n` +
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\n` +
        `Content-Type: application/jsonl\r\n\r\n`,
    );
    const tail = encoder.encode(`\r\n--${boundary}--\r\n`);
    const file = await Deno.open(path, { read: true });
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(head);
      },
      async pull(controller) {
        const buffer = new Uint8Array(256 * 1024);
        const read = await file.read(buffer);
        if (read === null) {
          file.close();
          controller.enqueue(tail);
          controller.close();
        } else {
          controller.enqueue(buffer.subarray(0, read));
        }
      },
      cancel() {
        file.close();
      },
    });
    try {
      const answer = await providerJson(this.#params, "/files", {
        method: "POST",
        body,
        contentType: `multipart/form-data; boundary=${boundary}`,
      }, { timeoutMs: UPLOAD_TIMEOUT_MS, signal: this.#signal });
      return idOf(answer, "file");
    } finally {
      try {
        file.close();
      } catch { /* closed at its end */ }
    }
  }

  async create(inputFileId: string, metadata: Record<string, string>): Promise<Batch> {
    return batchOf(
      await this.#json("/batches", "POST", {
        input_file_id: inputFileId,
        endpoint: BATCH_ENDPOINT,
        completion_window: COMPLETION_WINDOW,
        metadata,
      }),
    );
  }

  async get(id: string): Promise<Batch> {
    return batchOf(await this.#json(`/batches/${encodeURIComponent(id)}`, "GET"));
  }

  async cancel(id: string): Promise<Batch> {
    return batchOf(await this.#json(`/batches/${encodeURIComponent(id)}/cancel`, "POST"));
  }

  /**
   * The batch whose metadata is `metadata`, among those listed newest first, going back page by
   * page (`after`) until one created before `since` (epoch seconds). A page that shows no batch
   * not shown before ends the list, as `has_more: false` would: a provider that pages in a
   * circle has nothing more to show. A list that never ends is a failure, not a reason to create.
   */
  async find(metadata: Record<string, string>, since: number): Promise<Batch | null> {
    const shown = new Set<string>();
    let after: string | null = null;
    for (let pages = 1;; pages++) {
      const query = `?limit=${LIST_LIMIT}${
        after === null ? "" : `&after=${encodeURIComponent(after)}`
      }`;
      const page = await this.#json(`/batches${query}`, "GET");
      const data = isJsonObject(page) && Array.isArray(page.data) ? page.data : [];
      let older = false;
      let fresh = false;
      for (const item of data) {
        if (!isJsonObject(item) || typeof item.id !== "string" || item.id === "") continue;
        if (shown.has(item.id)) continue;
        shown.add(item.id);
        fresh = true;
        const batch = batchOf(item);
        if (Object.entries(metadata).every(([key, value]) => batch.metadata[key] === value)) {
          return batch;
        }
        if (batch.created_at !== null && batch.created_at < since) older = true;
      }
      const last = data.at(-1);
      if (
        older || !fresh || !isJsonObject(page) || page.has_more !== true || !isJsonObject(last) ||
        typeof last.id !== "string"
      ) {
        return null;
      }
      if (pages >= MAX_LIST_PAGES) {
        throw new GenerationError(
          "response",
          `The provider's list of batches did not end within ${MAX_LIST_PAGES} pages: ` +
            `cannot tell whether part ${metadata.img2_batch_part} was already submitted`,
          { httpStatus: 200 },
        );
      }
      after = typeof page.last_id === "string" ? page.last_id : last.id;
    }
  }

  /** `GET /files/{id}/content`, its body to be read as it arrives. */
  content(fileId: string): Promise<ProviderAnswer> {
    return providerRequest(
      this.#params,
      `/files/${encodeURIComponent(fileId)}/content`,
      { method: "GET" },
      { timeoutMs: CONTENT_TIMEOUT_MS, signal: this.#signal },
    );
  }

  #json(path: string, method: string, body?: unknown): Promise<unknown> {
    return providerJson(this.#params, path, {
      method,
      ...(body === undefined
        ? {}
        : { body: JSON.stringify(body), contentType: "application/json" }),
    }, { timeoutMs: CALL_TIMEOUT_MS, signal: this.#signal });
  }
}

function idOf(answer: unknown, what: string): string {
  if (isJsonObject(answer) && typeof answer.id === "string" && answer.id !== "") return answer.id;
  throw new GenerationError("response", `The provider's answer names no ${what} id`, {
    httpStatus: 200,
  });
}

/** A Batch object, what of it this run uses. */
export function batchOf(value: unknown): Batch {
  const batch = isJsonObject(value) ? value : {};
  const text = (field: unknown) => typeof field === "string" && field !== "" ? field : null;
  const count = (field: unknown) =>
    Number.isSafeInteger(field) && (field as number) >= 0 ? field as number : null;
  const counts = isJsonObject(batch.request_counts) ? batch.request_counts : null;
  const errors = isJsonObject(batch.errors) && Array.isArray(batch.errors.data)
    ? batch.errors.data
    : [];
  return {
    id: idOf(batch, "batch"),
    status: text(batch.status) ?? "unknown",
    input_file_id: text(batch.input_file_id),
    output_file_id: text(batch.output_file_id),
    error_file_id: text(batch.error_file_id),
    request_counts: counts === null ? null : {
      total: count(counts.total) ?? 0,
      completed: count(counts.completed) ?? 0,
      failed: count(counts.failed) ?? 0,
    },
    created_at: count(batch.created_at),
    completed_at: count(batch.completed_at) ?? count(batch.failed_at) ??
      count(batch.expired_at) ?? count(batch.cancelled_at),
    metadata: isJsonObject(batch.metadata) ? batch.metadata : {},
    errors: errors.filter(isJsonObject).map((error) => ({
      code: text(error.code),
      message: text(error.message),
      line: Number.isInteger(error.line) ? error.line as number : null,
    })),
  };
}

/** What state.json and the result show of a batch. */
export function summaryOf(batch: Batch): BatchSummary {
  const { metadata: _metadata, errors: _errors, ...summary } = batch;
  return summary;
}
