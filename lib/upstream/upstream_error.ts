/**
 * What an upstream said: its error body (JSON in the shapes real upstreams send, HTML or XML
 * pages, plain text) read into one UpstreamError, and its id for the request. Pure: the
 * reading off the connection is in http_failure.ts.
 */
import { isJsonObject } from "../shared/json.ts";
import type { UpstreamError } from "../failure/errors.ts";
import { clip } from "../shared/redact.ts";

/** No text field of a result is longer than this (result.ts clips, after masking secrets). */
export const MAX_FIELD_CHARS = 1000;
/** No request id of a result is longer than this (result.ts clips, after masking secrets). */
export const MAX_REQUEST_ID_CHARS = 200;
/**
 * What is kept of an upstream's text while it is read, before the secrets are known: more than a
 * result shows. Its cut ends in "…", and a part of a secret before an ellipsis is masked too.
 */
const MAX_KEPT_CHARS = 8 * MAX_FIELD_CHARS;

const EMPTY: UpstreamError = { type: null, message: null, code: null, param: null };

/**
 * Reads what an upstream said went wrong, from the error shapes real upstreams send: OpenAI's and
 * the gateways' `{"error": {...}}` (Azure's with an `innererror`), a bare `{"error": "..."}`, an
 * `errors` or `error` array (Cloudflare), a top-level `code` with `message` (SiliconFlow, sub2api)
 * or `{"success": false, "message": ...}` (new-api), `detail`/`msg`, an HTML error page (reduced to
 * its title), plain text, or any of these sent as server-sent events (`event: error` /
 * `data: {"error": …}`), or Gemini's one-element list around an error object.
 */
export function parseUpstreamError(text: string): UpstreamError {
  const trimmed = text.trim();
  if (trimmed === "") return EMPTY;
  if (EVENT_STREAM_START.test(trimmed)) return errorOfEvents(eventData(trimmed));
  let json: unknown;
  try {
    json = JSON.parse(trimmed);
  } catch {
    return { ...EMPTY, message: clipKept(looksLikeHtml(trimmed) ? htmlSummary(trimmed) : trimmed) };
  }
  // Gemini's OpenAI-compatible endpoint wraps its error in a list: `[{"error": {…}}]`.
  const inList = Array.isArray(json) && json.length === 1 ? json[0] : json;
  return errorFromJson(inList) ?? { ...EMPTY, message: clipKept(trimmed) };
}

/** Text that opens with a server-sent event's field or comment: an event stream, not words. */
const EVENT_STREAM_START = /^(event|data|id|retry)?:/;

/** The data of each event of a server-sent event stream, its lines joined by line feeds. */
function eventData(text: string): string[] {
  const events: string[] = [];
  for (const block of text.split(/\r\n\r\n|\n\n|\r\r/)) {
    const lines = block.split(/\r\n|\n|\r/).filter((line) => /^data(:|$)/.test(line));
    const data = lines.map((line) => line.replace(/^data:? ?/, "")).join("\n");
    if (lines.length > 0 && data.trim() !== "") events.push(data);
  }
  return events;
}

/** The first event that holds an error object, or else the first one's text read as a body. */
function errorOfEvents(events: string[]): UpstreamError {
  for (const data of events) {
    try {
      const upstream = errorFromJson(JSON.parse(data));
      if (upstream !== null) return upstream;
    } catch { /* not JSON: looked at below if no event holds an error object */ }
  }
  return events.length > 0 ? parseUpstreamError(events[0]!) : EMPTY;
}

/** The error object inside a JSON answer, or null when it holds none. */
export function errorFromJson(json: unknown): UpstreamError | null {
  if (!isJsonObject(json)) return null;
  const error = json.error ?? json.errors;
  if (typeof error === "string" && error.trim() !== "") {
    // xAI: `{"code": "400", "error": "Argument not supported: quality"}`.
    return { ...EMPTY, message: clipKept(error), code: clipOrNull(firstText(json.code)) };
  }
  const inner = Array.isArray(error) ? error[0] : error;
  if (isJsonObject(inner)) return fieldsOf(inner, json);
  const detail = json.detail;
  if (isJsonObject(detail)) return fieldsOf(detail, json);
  const message = firstText(json.message, detail, json.msg);
  const failed = json.success === false ||
    (json.code !== undefined && !SUCCESS_CODES.has(String(json.code))) || !("data" in json);
  return message !== null && failed ? fieldsOf(json, json) : null;
}

/** Top-level codes that wrap a success (`{"code": 0, "message": "success", "data": ...}`). */
const SUCCESS_CODES = new Set(["0", "200", "success", "ok", "OK"]);

function fieldsOf(error: Record<string, unknown>, outer: Record<string, unknown>): UpstreamError {
  // Azure names the precise reason, such as ResponsibleAIPolicyViolation, one level down.
  const inner = error.innererror ?? error.inner_error;
  return {
    type: clipOrNull(firstText(error.type, outer.type)),
    message: clipOrNull(firstText(error.message, error.msg, error.detail)),
    code: clipOrNull(
      firstText(error.code, outer.code, isJsonObject(inner) ? inner.code : undefined),
    ),
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

function looksLikeHtml(text: string): boolean {
  return /^<(\?xml|!doctype|html|head|body|title|center|h1|error)\b/i.test(text) ||
    /<\/html>\s*$/i.test(text);
}

/**
 * What a page of markup says, in one line. HTML: `<title>502 Bad Gateway</title>` gives "502 Bad
 * Gateway", a page without one its first heading or its text. XML, the error of a signed-URL
 * store (S3, GCS, Azure Blob): `<Error><Code>AccessDenied</Code><Message>Request has
 * expired</Message>…` gives "AccessDenied: Request has expired". Every search is a plain
 * indexOf, so a page made of unclosed tags costs time in proportion to its length.
 */
export function htmlSummary(markup: string): string {
  const lower = markup.toLowerCase();
  const storeError = elementText(markup, lower, "error");
  const source = (storeError !== null ? storageErrorSummary(storeError) : null) ??
    nonBlank(elementText(markup, lower, "title")) ??
    nonBlank(elementText(markup, lower, "h1")) ??
    withoutElements(markup, lower, ["script", "style"]);
  return decodeEntities(source.replace(/<[^<>]*>/g, " ")).replace(/\s+/g, " ").trim();
}

/** "Code: Message (details)" from the inside of an XML `<Error>`, or null if it has none. */
function storageErrorSummary(error: string): string | null {
  const lower = error.toLowerCase();
  const field = (name: string) => nonBlank(elementText(error, lower, name))?.trim() ?? null;
  const code = field("code");
  const message = field("message");
  const details = field("details") ?? field("authenticationerrordetail");
  if (code === null && message === null) return null;
  const said = [code, message].filter((part) => part !== null).join(": ");
  return details === null ? said : `${said} (${details})`;
}

/** The text inside the first `<name …>…</name>`; `lower` is `markup` in lower case. */
function elementText(markup: string, lower: string, name: string): string | null {
  let open = lower.indexOf(`<${name}`);
  // Skip longer names that start the same, such as <titles> for <title>.
  while (open !== -1 && !/[\s>]/.test(lower[open + name.length + 1] ?? "")) {
    open = lower.indexOf(`<${name}`, open + 1);
  }
  if (open === -1) return null;
  const start = lower.indexOf(">", open);
  const end = start === -1 ? -1 : lower.indexOf(`</${name}>`, start);
  return end === -1 ? null : markup.slice(start + 1, end);
}

/** The markup without the given elements and what they hold; an unclosed one runs to the end. */
function withoutElements(markup: string, lower: string, names: string[]): string {
  let kept = "";
  let from = 0;
  while (from < markup.length) {
    let next = -1;
    let name = "";
    for (const candidate of names) {
      const at = lower.indexOf(`<${candidate}`, from);
      if (at !== -1 && (next === -1 || at < next)) [next, name] = [at, candidate];
    }
    if (next === -1) break;
    kept += markup.slice(from, next) + " ";
    const close = lower.indexOf(`</${name}>`, next);
    from = close === -1 ? markup.length : close + name.length + 3;
  }
  return kept + markup.slice(from);
}

function nonBlank(text: string | null): string | null {
  return text !== null && text.trim() !== "" ? text : null;
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

/** Upstream text as kept while it is read (see MAX_KEPT_CHARS). */
export function clipKept(text: string): string {
  return clip(text, MAX_KEPT_CHARS);
}

function clipOrNull(text: string | null): string | null {
  return text === null ? null : clipKept(text);
}

const REQUEST_ID_HEADERS = ["x-request-id", "x-oneapi-request-id", "x-new-api-request-id"];

/**
 * The upstream's id for this request, from a header or the `(request id: …)` gateways append; the
 * result masks and clips it (MAX_REQUEST_ID_CHARS).
 */
export function requestIdOf(headers: Headers | null, message: string | null): string | null {
  for (const name of REQUEST_ID_HEADERS) {
    const value = headers?.get(name)?.trim();
    if (value) return value;
  }
  const fromMessage = message ? /\(request id: ?([^)\s]+)\)/i.exec(message)?.[1] : undefined;
  return fromMessage ?? null;
}
