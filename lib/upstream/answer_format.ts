/**
 * What a 2xx answer is, told by its first bytes rather than by its content type: relays label a
 * JSON error `text/event-stream` because the request asked for a stream, and some send events
 * labelled `application/json`. Only when the start says neither does the content type decide.
 */
import { bodyChunks } from "./http_failure.ts";
import { isEventStream } from "./event_stream.ts";

export type AnswerFormat = "json" | "events";

/**
 * Leading whitespace kept while looking for the first byte that tells. Past it (a relay's
 * keep-alive spaces, say) the content type decides and what was read is handed on unchanged.
 */
export const MAX_SNIFF_BYTES = 64 * 1024;

const BOM = [0xef, 0xbb, 0xbf];
/** The starts of a server-sent event's field or comment. */
const EVENT_STARTS = ["data:", "event:", "id:", "retry:", ":"].map((start) =>
  Array.from(start, (char) => char.charCodeAt(0))
);
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;

/**
 * The format the bytes seen so far open: "json" for `{` or `[`, "events" for a server-sent
 * event's field name and colon (`data:`, `event:`, `id:`, `retry:`) or a comment (`:`), each
 * after an optional byte order mark and whitespace. Null when they open neither; undefined when
 * more bytes are needed to tell.
 */
export function formatOfStart(head: Uint8Array): AnswerFormat | null | undefined {
  let i = 0;
  while (i < BOM.length && i < head.length && head[i] === BOM[i]) i++;
  if (i > 0 && i < BOM.length) return i === head.length ? undefined : null;
  while (i < head.length && isWhitespace(head[i]!)) i++;
  if (i === head.length) return undefined;
  const first = head[i]!;
  if (first === OPEN_BRACE || first === OPEN_BRACKET) return "json";
  const rest = head.subarray(i);
  let undecided = false;
  for (const start of EVENT_STARTS) {
    const compared = Math.min(start.length, rest.length);
    let same = true;
    for (let k = 0; k < compared && same; k++) same = rest[k] === start[k];
    if (!same) continue;
    if (compared === start.length) return "events";
    undecided = true;
  }
  return undecided ? undefined : null;
}

/**
 * Reads the start of `body` until it tells its format (formatOfStart), at most MAX_SNIFF_BYTES
 * of whitespace past the first chunk, and gives that format with the body's chunks, those read
 * included, as bodyChunks() gives them. A start that tells neither, or an empty body, goes by
 * `headers`.
 */
export async function sniffAnswer(
  body: ReadableStream<Uint8Array> | null,
  headers: Headers,
): Promise<{ format: AnswerFormat; chunks: AsyncGenerator<Uint8Array> }> {
  const chunks = bodyChunks(body);
  const read: Uint8Array[] = [];
  let head: Uint8Array = new Uint8Array(0);
  let format: AnswerFormat | null | undefined = undefined;
  while (format === undefined && head.length <= MAX_SNIFF_BYTES) {
    const next = await chunks.next();
    if (next.done) break;
    read.push(next.value);
    head = joined(head, next.value);
    format = formatOfStart(head);
  }
  return {
    format: format ?? (isEventStream(headers) ? "events" : "json"),
    chunks: replayed(read, chunks),
  };
}

/** The chunks already read, then the rest; leaving early cancels the rest of the body. */
async function* replayed(
  read: Uint8Array[],
  rest: AsyncGenerator<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  try {
    while (read.length > 0) yield read.shift()!;
    yield* rest;
  } finally {
    await rest.return(undefined);
  }
}

/**
 * The head grown by a chunk. Only whitespace is ever carried over, so it stays small: a chunk
 * that tells the format is looked at once.
 */
function joined(head: Uint8Array, chunk: Uint8Array): Uint8Array {
  if (head.length === 0) return chunk;
  const all = new Uint8Array(head.length + chunk.length);
  all.set(head);
  all.set(chunk, head.length);
  return all;
}

function isWhitespace(byte: number): boolean {
  return byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d;
}
