import type { UpstreamError } from "./errors.ts";

/** No text field of a result is longer than this (result.ts clips, after masking secrets). */
export const MAX_FIELD_CHARS = 1000;
/**
 * What is kept of an upstream's text while it is read: more than a result shows, so that secrets
 * are masked before the final clip rather than cut in half by it.
 */
const MAX_KEPT_CHARS = 8 * MAX_FIELD_CHARS;
/** How much of an error body is read; the rest is cancelled. */
export const MAX_ERROR_BODY_BYTES = 64 * 1024;

const EMPTY: UpstreamError = { type: null, message: null, code: null, param: null };

/**
 * Reads what an upstream said went wrong, from the error shapes real upstreams send: OpenAI's and
 * the gateways' `{"error": {...}}`, a bare `{"error": "..."}`, top-level `message`/`detail`/`msg`,
 * an HTML error page (reduced to its title), or plain text.
 */
export function parseUpstreamError(text: string): UpstreamError {
  const trimmed = text.trim();
  if (trimmed === "") return EMPTY;
  let json: unknown;
  try {
    json = JSON.parse(trimmed);
  } catch {
    return { ...EMPTY, message: clip(looksLikeHtml(trimmed) ? htmlSummary(trimmed) : trimmed) };
  }
  return errorFromJson(json) ?? { ...EMPTY, message: clip(trimmed) };
}

/** The error object inside a JSON answer, or null when it holds none. */
export function errorFromJson(json: unknown): UpstreamError | null {
  if (!isRecord(json)) return null;
  const error = json.error ?? json.errors;
  if (typeof error === "string" && error.trim() !== "") return { ...EMPTY, message: clip(error) };
  const inner = Array.isArray(error) ? error[0] : error;
  if (isRecord(inner)) return fieldsOf(inner, json);
  const detail = json.detail;
  if (isRecord(detail)) return fieldsOf(detail, json);
  const message = firstText(json.message, detail, json.msg);
  if (
    message !== null && (json.success === false || json.code !== undefined || !("data" in json))
  ) {
    return fieldsOf(json, json);
  }
  return null;
}

function fieldsOf(error: Record<string, unknown>, outer: Record<string, unknown>): UpstreamError {
  return {
    type: clipOrNull(firstText(error.type, outer.type)),
    message: clipOrNull(firstText(error.message, error.msg, error.detail)),
    code: clipOrNull(firstText(error.code, outer.code)),
    param: clipOrNull(firstText(error.param)),
  };
}

function firstText(...candidates: unknown[]): string | null {
  for (const value of candidates) {
    if (typeof value === "string" && value.trim() !== "") return value.trim();
    if (typeof value === "number" && Number.isFinite(value)) return String(value);
  }
  return null;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function looksLikeHtml(text: string): boolean {
  return /^<(!doctype|html|head|body|title|center|h1)\b/i.test(text) || /<\/html>\s*$/i.test(text);
}

/** `<title>502 Bad Gateway</title>` gives "502 Bad Gateway"; a page without one, its text. */
export function htmlSummary(html: string): string {
  const title = /<title[^>]*>([\s\S]*?)<\/title>/i.exec(html)?.[1];
  const heading = /<h1[^>]*>([\s\S]*?)<\/h1>/i.exec(html)?.[1];
  const source = title?.trim() ? title : heading?.trim() ? heading : html;
  return decodeEntities(
    source.replace(/<script[\s\S]*?<\/script>|<style[\s\S]*?<\/style>/gi, "")
      .replace(/<[^>]*>/g, " "),
  ).replace(/\s+/g, " ").trim();
}

const ENTITIES: Record<string, string> = {
  amp: "&",
  lt: "<",
  gt: ">",
  quot: '"',
  apos: "'",
  nbsp: " ",
};

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, name: string) => {
    if (name[0] === "#") {
      const code = name[1] === "x" || name[1] === "X"
        ? parseInt(name.slice(2), 16)
        : parseInt(name.slice(1), 10);
      return Number.isFinite(code) && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    }
    return ENTITIES[name.toLowerCase()] ?? whole;
  });
}

export function clip(text: string, max = MAX_KEPT_CHARS): string {
  const oneLine = text.trim();
  if (oneLine.length <= max) return oneLine;
  let cut = oneLine.slice(0, max - 1);
  // Never end on the first half of a surrogate pair.
  if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1);
  return `${cut}…`;
}

function clipOrNull(text: string | null): string | null {
  return text === null ? null : clip(text);
}

/** Milliseconds to wait, from `retry-after-ms`, or `retry-after` in seconds or as an HTTP date. */
export function retryAfterMs(headers: Headers, now = Date.now()): number | null {
  const precise = headers.get("retry-after-ms");
  if (precise !== null && /^\s*\d+(\.\d+)?\s*$/.test(precise)) return Math.ceil(Number(precise));
  const value = headers.get("retry-after")?.trim();
  if (!value) return null;
  if (/^\d+(\.\d+)?$/.test(value)) return Math.ceil(Number(value) * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}

const REQUEST_ID_HEADERS = ["x-request-id", "x-oneapi-request-id", "x-new-api-request-id"];

/** The upstream's id for this request, from a header or the `(request id: …)` gateways append. */
export function requestIdOf(headers: Headers | null, message: string | null): string | null {
  for (const name of REQUEST_ID_HEADERS) {
    const value = headers?.get(name)?.trim();
    if (value) return clip(value, 200);
  }
  const fromMessage = message ? /\(request id: ?([^)\s]+)\)/i.exec(message)?.[1] : undefined;
  return fromMessage ?? null;
}

/** Reads at most `maxBytes` of a body as text and cancels the rest. */
export async function readTextCapped(
  body: ReadableStream<Uint8Array> | null,
  maxBytes = MAX_ERROR_BODY_BYTES,
): Promise<string> {
  if (body === null) return "";
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    while (total < maxBytes) {
      const { done, value } = await reader.read();
      if (done) break;
      const room = maxBytes - total;
      chunks.push(value.length > room ? value.subarray(0, room) : value);
      total += Math.min(value.length, room);
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return new TextDecoder().decode(bytes);
}

export { EMPTY as NO_UPSTREAM_ERROR };
