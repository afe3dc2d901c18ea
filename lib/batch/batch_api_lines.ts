/**
 * The lines of a Batch API output or error file, read as they arrive: one line at a time is held
 * (one answer, with its base64 image), never the file. Within a line only the few fields around
 * the answer's body are picked out, by finding where each value ends; the body itself is handed
 * on as bytes, to be read as img2-generate reads an answer.
 */
import { concat } from "../shared/bytes.ts";
import { isJsonObject } from "../mod.ts";

/** One line: `{id, custom_id, response: {status_code, request_id, body}, error}`. */
export interface OutputLine {
  /** 1-based, in the file. */
  number: number;
  customId: string | null;
  statusCode: number | null;
  requestId: string | null;
  /** The bytes of `response.body`, as sent; null when there is none. */
  body: Uint8Array | null;
  /** `error`, when not null: `{code, message}`. */
  error: Record<string, unknown> | null;
  /** Why the line could not be read, when it could not. */
  problem: string | null;
}

const NEWLINE = 0x0a;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const decoder = new TextDecoder();

/** The lines of `chunks`, each parsed by parseOutputLine(); a last line without newline counts. */
export async function* outputLines(
  chunks: AsyncIterable<Uint8Array>,
  maxLineBytes: number,
): AsyncGenerator<OutputLine> {
  let held: Uint8Array[] = [];
  let heldBytes = 0;
  let tooLong = false;
  let number = 0;
  const line = function (last: Uint8Array): OutputLine | null {
    number++;
    const bytes = held.length === 0 ? last : concat([...held, last]);
    held = [];
    heldBytes = 0;
    if (tooLong) {
      tooLong = false;
      return { ...emptyLine(number), problem: `The line is longer than ${maxLineBytes} bytes` };
    }
    return isBlank(bytes) ? null : parseOutputLine(bytes, number);
  };
  for await (const chunk of chunks) {
    let start = 0;
    while (start < chunk.length) {
      const end = chunk.indexOf(NEWLINE, start);
      if (end === -1) {
        const rest = chunk.subarray(start);
        if (heldBytes + rest.length > maxLineBytes) {
          tooLong = true;
          held = [];
          heldBytes = 0;
        } else {
          // Copied: the stream may reuse its buffer.
          held.push(rest.slice());
          heldBytes += rest.length;
        }
        break;
      }
      const parsed = line(chunk.subarray(start, end));
      start = end + 1;
      if (parsed !== null) yield parsed;
    }
  }
  if (heldBytes > 0 || tooLong) {
    const parsed = line(new Uint8Array());
    if (parsed !== null) yield parsed;
  }
}

function emptyLine(number: number): OutputLine {
  return {
    number,
    customId: null,
    statusCode: null,
    requestId: null,
    body: null,
    error: null,
    problem: null,
  };
}

/** Picks a line's fields out of its bytes; `body` is a view of them, not a copy. */
export function parseOutputLine(bytes: Uint8Array, number: number): OutputLine {
  const line = emptyLine(number);
  try {
    const top = members(bytes, skipSpace(bytes, 0));
    const customId = top.get("custom_id");
    if (customId !== undefined) {
      const value = parseSpan(bytes, customId);
      if (typeof value === "string") line.customId = value;
    }
    const error = top.get("error");
    if (error !== undefined) {
      const value = parseSpan(bytes, error);
      if (isJsonObject(value)) line.error = value;
    }
    const response = top.get("response");
    if (response !== undefined && bytes[response[0]] === 0x7b) {
      const inner = members(bytes, response[0]);
      const status = inner.get("status_code");
      if (status !== undefined) {
        const value = parseSpan(bytes, status);
        if (Number.isInteger(value)) line.statusCode = value as number;
      }
      const requestId = inner.get("request_id");
      if (requestId !== undefined) {
        const value = parseSpan(bytes, requestId);
        if (typeof value === "string") line.requestId = value;
      }
      const body = inner.get("body");
      if (body !== undefined) line.body = bytes.subarray(body[0], body[1]);
    }
  } catch (error) {
    line.problem = `The line is not a JSON object: ${(error as Error).message}`;
  }
  return line;
}

type Span = [start: number, end: number];

/** The members of the object at `start`: each key with the span of its value. */
function members(bytes: Uint8Array, start: number): Map<string, Span> {
  if (bytes[start] !== 0x7b) throw new SyntaxError("expected an object");
  const found = new Map<string, Span>();
  let i = skipSpace(bytes, start + 1);
  if (bytes[i] === 0x7d) return found;
  while (true) {
    if (bytes[i] !== QUOTE) throw new SyntaxError(`expected a key at byte ${i}`);
    const keyEnd = skipString(bytes, i);
    const key = JSON.parse(decoder.decode(bytes.subarray(i, keyEnd)));
    i = skipSpace(bytes, keyEnd);
    if (bytes[i] !== 0x3a) throw new SyntaxError(`expected ":" at byte ${i}`);
    const valueStart = skipSpace(bytes, i + 1);
    const valueEnd = skipValue(bytes, valueStart);
    if (!found.has(key)) found.set(key, [valueStart, valueEnd]);
    i = skipSpace(bytes, valueEnd);
    if (bytes[i] === 0x2c) {
      i = skipSpace(bytes, i + 1);
      continue;
    }
    if (bytes[i] === 0x7d) return found;
    throw new SyntaxError(`expected "," or "}" at byte ${i}`);
  }
}

function parseSpan(bytes: Uint8Array, [start, end]: Span): unknown {
  return JSON.parse(decoder.decode(bytes.subarray(start, end)));
}

function skipSpace(bytes: Uint8Array, i: number): number {
  while (i < bytes.length) {
    const byte = bytes[i]!;
    if (byte !== 0x20 && byte !== 0x09 && byte !== 0x0d && byte !== NEWLINE) break;
    i++;
  }
  return i;
}

/** Past the string whose opening quote is at `start`; a long base64 text costs two searches. */
function skipString(bytes: Uint8Array, start: number): number {
  let i = start + 1;
  while (true) {
    const quote = bytes.indexOf(QUOTE, i);
    if (quote === -1) throw new SyntaxError("a string is not closed");
    const backslash = bytes.indexOf(BACKSLASH, i);
    if (backslash === -1 || backslash > quote) return quote + 1;
    i = backslash + 2;
  }
}

/** Past the JSON value at `start`, checking only the structure (JSON.parse checks the rest). */
function skipValue(bytes: Uint8Array, start: number): number {
  const first = bytes[start];
  if (first === undefined) throw new SyntaxError("the line ends early");
  if (first === QUOTE) return skipString(bytes, start);
  if (first !== 0x7b && first !== 0x5b) {
    let i = start;
    while (i < bytes.length && !isDelimiter(bytes[i]!)) i++;
    if (i === start) throw new SyntaxError(`unexpected byte at ${start}`);
    return i;
  }
  let depth = 0;
  let i = start;
  while (i < bytes.length) {
    const byte = bytes[i]!;
    if (byte === QUOTE) {
      i = skipString(bytes, i);
      continue;
    }
    if (byte === 0x7b || byte === 0x5b) depth++;
    else if (byte === 0x7d || byte === 0x5d) {
      depth--;
      if (depth === 0) return i + 1;
    }
    i++;
  }
  throw new SyntaxError("the line ends inside a value");
}

function isDelimiter(byte: number): boolean {
  return byte === 0x2c || byte === 0x7d || byte === 0x5d || byte === 0x20 || byte === 0x09 ||
    byte === 0x0d || byte === NEWLINE;
}

function isBlank(bytes: Uint8Array): boolean {
  return skipSpace(bytes, 0) === bytes.length;
}
