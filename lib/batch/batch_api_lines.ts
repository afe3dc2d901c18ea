/**
 * The lines of a Batch API output or error file, read as they arrive. A line is one answer with
 * its image in base64 (several MB): its few fields before `response.body` are picked out of its
 * head, and the body itself is handed on as a stream of the very pieces that arrive, to be read
 * as img2-generate reads an answer, so that neither the line nor the image is ever held whole.
 * A line whose fields come in another order is held (up to a bound) and read whole.
 */
import { concat, indexOfAscii } from "../shared/bytes.ts";
import { isJsonObject } from "../mod.ts";

/** One line: `{id, custom_id, response: {status_code, request_id, body}, error}`. */
export interface OutputLine {
  /** 1-based, in the file. */
  number: number;
  customId: string | null;
  statusCode: number | null;
  requestId: string | null;
  /**
   * `response.body`, as its bytes arrive; null when there is none. It must be read to its end
   * or cancelled: the next line is read from where it ends.
   */
  body: ReadableStream<Uint8Array> | null;
  /** `error`, when not null: `{code, message}`; not looked for after a streamed body. */
  error: Record<string, unknown> | null;
  /**
   * Why the line could not be read, when it could not. Set before its body stream fails, when
   * the line turns out cut or malformed while the body is read.
   */
  problem: string | null;
}

const NEWLINE = 0x0a;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const decoder = new TextDecoder();
/** A head longer than this, its body not yet begun, means a line held and read whole. */
const MAX_HEAD_BYTES = 64 * 1024;

/** The lines of `chunks`; a last line without newline counts. */
export function outputLines(
  chunks: AsyncIterable<Uint8Array>,
  maxLineBytes: number,
): AsyncGenerator<OutputLine> {
  return new LineReader(chunks[Symbol.asyncIterator](), maxLineBytes).lines();
}

class LineReader {
  readonly #source: AsyncIterator<Uint8Array>;
  readonly #maxLineBytes: number;
  /** The bytes being read, and where in them. */
  #chunk: Uint8Array = new Uint8Array();
  #at = 0;
  #ended = false;
  /** A failure of the source, thrown once the line it cut has been told of. */
  #failure: { error: unknown } | null = null;
  #number = 0;

  constructor(source: AsyncIterator<Uint8Array>, maxLineBytes: number) {
    this.#source = source;
    this.#maxLineBytes = maxLineBytes;
  }

  async *lines(): AsyncGenerator<OutputLine> {
    try {
      while (true) {
        const line = await this.#nextLine();
        if (line === null) break;
        if (line === "blank") continue;
        if (line.body instanceof StreamedBody) {
          const body = line.body;
          const streamed: OutputLine = { ...line, body: body.stream };
          body.line = streamed;
          yield streamed;
          await body.finished;
          await body.drain();
        } else {
          yield { ...line, body: line.body === null ? null : oneChunk(line.body) };
        }
        if (this.#failure !== null) throw this.#failure.error;
      }
    } finally {
      await this.#source.return?.();
    }
  }

  /** Reads on; false once the source has ended (or failed). */
  async #more(): Promise<boolean> {
    if (this.#ended) return false;
    try {
      const next = await this.#source.next();
      if (next.done) {
        this.#ended = true;
        return false;
      }
      this.#chunk = next.value;
      this.#at = 0;
      return true;
    } catch (error) {
      this.#ended = true;
      this.#failure = { error };
      return false;
    }
  }

  /** The next line, with its body to stream or whole; null at the end of the file. */
  async #nextLine(): Promise<ParsedLine | "blank" | null> {
    if (this.#at >= this.#chunk.length && !await this.#more()) {
      if (this.#failure !== null) throw this.#failure.error;
      return null;
    }
    const number = ++this.#number;
    const head: Uint8Array[] = [];
    let headBytes = 0;
    let tooLong = false;
    let streamable = true;
    while (true) {
      const end = indexOfAscii(this.#chunk, NEWLINE, this.#at);
      const piece = this.#chunk.subarray(this.#at, end === -1 ? this.#chunk.length : end);
      if (!tooLong) {
        head.push(piece);
        headBytes += piece.length;
      }
      if (end !== -1) {
        this.#at = end + 1;
        if (tooLong || headBytes > this.#maxLineBytes) {
          return tooLongLine(number, this.#maxLineBytes);
        }
        const bytes = head.length === 1 ? head[0]! : concat(head);
        return isBlank(bytes) ? "blank" : parseOutputLine(bytes, number);
      }
      this.#at = this.#chunk.length;
      if (streamable) {
        const bytes = concat(head);
        const found = streamableHead(bytes, headBytes >= MAX_HEAD_BYTES);
        if (found === "hold") streamable = false;
        else if (found !== null) {
          this.#chunk = bytes;
          this.#at = found.bodyStart;
          return { ...found, number, body: new StreamedBody(this), error: null, problem: null };
        }
      }
      // Held whole: only up to the bound.
      if (!streamable && headBytes > this.#maxLineBytes) {
        tooLong = true;
        head.length = 0;
        headBytes = 0;
      }
      if (!await this.#more()) {
        if (this.#failure !== null) throw this.#failure.error;
        if (tooLong) return tooLongLine(number, this.#maxLineBytes);
        return parseOutputLine(concat(head), number);
      }
    }
  }

  /**
   * The next piece of a streamed body and whether it is the last; the position moves past it.
   * Throws a LineProblem when the line ends first.
   */
  async bodyPiece(end: ValueEnd): Promise<{ bytes: Uint8Array; last: boolean }> {
    if (this.#at >= this.#chunk.length && !await this.#more()) {
      throw new LineProblem(
        this.#failure !== null
          ? `The download failed inside the line: ${(this.#failure.error as Error).message}`
          : "The file ends inside the line",
      );
    }
    const start = this.#at;
    let stop: number;
    try {
      stop = end.scan(this.#chunk, start);
    } catch (error) {
      // The next line begins after the newline that cut this one.
      if (error instanceof LineProblem && error.newline !== null) this.#at = error.newline + 1;
      throw error;
    }
    this.#at = stop === -1 ? this.#chunk.length : stop;
    return { bytes: this.#chunk.subarray(start, this.#at), last: stop !== -1 };
  }

  /** Past the rest of a line whose body has been read. */
  async skipLine(): Promise<void> {
    while (true) {
      const end = indexOfAscii(this.#chunk, NEWLINE, this.#at);
      if (end !== -1) {
        this.#at = end + 1;
        return;
      }
      this.#at = this.#chunk.length;
      if (!await this.#more()) return;
    }
  }
}

class LineProblem extends Error {
  /** Where the newline that ended the line early is, in the bytes scanned. */
  readonly newline: number | null;

  constructor(message: string, newline: number | null = null) {
    super(message);
    this.newline = newline;
  }
}

const bodies = new WeakMap<ReadableStream<Uint8Array>, StreamedBody>();

/**
 * Says that a line's body will be read no further, however far it was read: the reader skips
 * the rest. Due for every line once its reader is done with it.
 */
export function doneWith(line: OutputLine): void {
  if (line.body !== null) bodies.get(line.body)?.abandon();
}

/** A line read whole: its body is a view of its bytes. */
type HeldLine = Omit<OutputLine, "body"> & { body: Uint8Array | null };
type ParsedLine = HeldLine | Omit<OutputLine, "body"> & { body: StreamedBody };

/** A body read from the source as it is pulled; the rest is skipped when it is cancelled. */
class StreamedBody {
  readonly stream: ReadableStream<Uint8Array>;
  /** Settles once the body is read to its end, failed or cancelled. */
  readonly finished: Promise<void>;
  readonly #reader: LineReader;
  readonly #end = new ValueEnd();
  #state: "open" | "read" | "failed" | "abandoned" = "open";
  /** The steps taken at the source, one after another: a cancel may come during a pull. */
  #steps: Promise<unknown> = Promise.resolve();
  #finish!: () => void;
  /** Where the line the body is part of is told of a problem. */
  line: { problem: string | null } | null = null;

  constructor(reader: LineReader) {
    this.#reader = reader;
    this.finished = new Promise((resolve) => this.#finish = resolve);
    this.stream = new ReadableStream<Uint8Array>({
      pull: (controller) =>
        this.#step(async () => {
          if (this.#state !== "open") return;
          try {
            const { bytes, last } = await this.#reader.bodyPiece(this.#end);
            if (bytes.length > 0) controller.enqueue(bytes);
            if (last) {
              this.#state = "read";
              controller.close();
              this.#finish();
            }
          } catch (error) {
            this.#state = "failed";
            if (this.line !== null) this.line.problem = (error as Error).message;
            controller.error(error);
            this.#finish();
          }
        }),
      cancel: () => this.abandon(),
    }, { highWaterMark: 0 });
    bodies.set(this.stream, this);
  }

  abandon(): void {
    if (this.#state === "open") this.#state = "abandoned";
    this.#finish();
  }

  #step(step: () => Promise<void>): Promise<void> {
    const next = this.#steps.then(step);
    this.#steps = next.catch(() => {});
    return next;
  }

  /** Skips what was not read of the body, then the rest of its line. */
  drain(): Promise<void> {
    return this.#step(async () => {
      if (this.#state === "failed") return;
      try {
        while (this.#state !== "read") {
          if ((await this.#reader.bodyPiece(this.#end)).last) this.#state = "read";
        }
      } catch (error) {
        if (!(error instanceof LineProblem)) throw error;
        return;
      }
      await this.#reader.skipLine();
    });
  }
}

/**
 * Where a JSON object that arrives in pieces ends, checking only its structure. In a string,
 * only the next quote or newline is searched for; a quote ends it unless an odd run of
 * backslashes comes before it. A raw newline cannot be in JSON text: it ends the line early.
 */
class ValueEnd {
  #depth = 0;
  #inString = false;
  /** The next byte is escaped: the last piece ended on a backslash in a string. */
  #escaped = false;

  /** Past the object's last byte in `bytes` from `start`, or -1 when it goes on. */
  scan(bytes: Uint8Array, start: number): number {
    let i = start;
    while (i < bytes.length) {
      if (this.#inString) {
        if (this.#escaped) {
          this.#escaped = false;
          i++;
          continue;
        }
        const stop = indexOfAscii(bytes, QUOTE, i, NEWLINE);
        if (stop === -1 || bytes[stop] === NEWLINE) {
          if (stop !== -1) throw new LineProblem("The line ends inside a string of its body", stop);
          this.#escaped = backslashesBefore(bytes, bytes.length, i) % 2 === 1;
          return -1;
        }
        if (backslashesBefore(bytes, stop, i) % 2 === 0) this.#inString = false;
        i = stop + 1;
        continue;
      }
      const byte = bytes[i++]!;
      if (byte === QUOTE) this.#inString = true;
      else if (byte === OPEN_BRACE || byte === 0x5b) this.#depth++;
      else if (byte === 0x7d || byte === 0x5d) {
        if (--this.#depth === 0) return i;
      } else if (byte === NEWLINE) throw new LineProblem("The line ends inside its body", i - 1);
    }
    return -1;
  }
}

/** How many backslashes come just before `end`, counting back no further than `floor`. */
function backslashesBefore(bytes: Uint8Array, end: number, floor: number): number {
  let count = 0;
  while (end - count - 1 >= floor && bytes[end - count - 1] === BACKSLASH) count++;
  return count;
}

function oneChunk(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      controller.enqueue(bytes);
      controller.close();
    },
  });
}

function emptyLine(number: number): Omit<OutputLine, "body"> & { body: null } {
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

function tooLongLine(number: number, maxLineBytes: number): HeldLine {
  return { ...emptyLine(number), problem: `The line is longer than ${maxLineBytes} bytes` };
}

interface HeadFields {
  customId: string;
  statusCode: number;
  requestId: string | null;
  /** Where `response.body`, an object, begins. */
  bodyStart: number;
}

/**
 * The fields before `response.body` in the head of a line, when `custom_id` and
 * `response.status_code` come first and the body is an object: its usual order. Null when the
 * head ends before the body, unless `whole` says no more will come; "hold" when the line has
 * another order (or is not JSON) and is to be read whole.
 */
function streamableHead(bytes: Uint8Array, whole: boolean): HeadFields | "hold" | null {
  const fields: Partial<HeadFields> = { requestId: null };
  let found: HeadFields | "hold" | null = null;
  try {
    eachMember(bytes, skipSpace(bytes, 0), (key, start) => {
      if (key === "custom_id") fields.customId = stringAt(bytes, start);
      if (key !== "response") return skipValue(bytes, start);
      if (start >= bytes.length) throw new SyntaxError("the head ends before the response");
      if (bytes[start] !== OPEN_BRACE) throw new HoldLine();
      eachMember(bytes, start, (inner, at) => {
        if (inner !== "body") {
          const end = skipValue(bytes, at);
          const value = parseSpan(bytes, [at, end]);
          if (inner === "status_code" && Number.isInteger(value)) {
            fields.statusCode = value as number;
          }
          if (inner === "request_id" && typeof value === "string") fields.requestId = value;
          return end;
        }
        if (at >= bytes.length) throw new SyntaxError("the head ends before the body");
        if (
          bytes[at] !== OPEN_BRACE || fields.customId === undefined ||
          fields.statusCode === undefined
        ) throw new HoldLine();
        found = { ...fields, bodyStart: at } as HeadFields;
        return null;
      });
      return null;
    });
    return found ?? "hold";
  } catch (error) {
    if (error instanceof HoldLine || whole) return "hold";
    return null;
  }
}

class HoldLine extends Error {}

function stringAt(bytes: Uint8Array, start: number): string | undefined {
  const value = parseSpan(bytes, [start, skipValue(bytes, start)]);
  return typeof value === "string" ? value : undefined;
}

/** Picks a line's fields out of its bytes; `body` is a view of them, not a copy. */
export function parseOutputLine(bytes: Uint8Array, number: number): HeldLine {
  const line: HeldLine = emptyLine(number);
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
      // A provider's error said in words only is still an error.
      if (isJsonObject(value)) line.error = value;
      else if (typeof value === "string") line.error = { message: value };
    }
    const response = top.get("response");
    if (response !== undefined && bytes[response[0]] === OPEN_BRACE) {
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
  const found = new Map<string, Span>();
  eachMember(bytes, start, (key, valueStart) => {
    const valueEnd = skipValue(bytes, valueStart);
    if (!found.has(key)) found.set(key, [valueStart, valueEnd]);
    return valueEnd;
  });
  return found;
}

/**
 * Calls `visit` with each key of the object at `start` and where its value begins; `visit`
 * says where the value ends, or null to stop there.
 */
function eachMember(
  bytes: Uint8Array,
  start: number,
  visit: (key: string, valueStart: number) => number | null,
): void {
  if (bytes[start] !== OPEN_BRACE) throw new SyntaxError("expected an object");
  let i = skipSpace(bytes, start + 1);
  if (bytes[i] === 0x7d) return;
  while (true) {
    if (bytes[i] !== QUOTE) throw new SyntaxError(`expected a key at byte ${i}`);
    const keyEnd = skipString(bytes, i);
    const key = JSON.parse(decoder.decode(bytes.subarray(i, keyEnd)));
    i = skipSpace(bytes, keyEnd);
    if (bytes[i] !== 0x3a) throw new SyntaxError(`expected ":" at byte ${i}`);
    const valueEnd = visit(key, skipSpace(bytes, i + 1));
    if (valueEnd === null) return;
    i = skipSpace(bytes, valueEnd);
    if (bytes[i] === 0x2c) {
      i = skipSpace(bytes, i + 1);
      continue;
    }
    if (bytes[i] === 0x7d) return;
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

/**
 * Past the string whose opening quote is at `start`. A quote ends it unless an odd run of
 * backslashes comes before it: a long base64 text costs one search, whatever follows it.
 */
function skipString(bytes: Uint8Array, start: number): number {
  let i = start + 1;
  while (true) {
    const quote = indexOfAscii(bytes, QUOTE, i);
    if (quote === -1) throw new SyntaxError("a string is not closed");
    if (backslashesBefore(bytes, quote, start + 1) % 2 === 0) return quote + 1;
    i = quote + 1;
  }
}

/** Past the JSON value at `start`, checking only the structure (JSON.parse checks the rest). */
function skipValue(bytes: Uint8Array, start: number): number {
  const first = bytes[start];
  if (first === undefined) throw new SyntaxError("the line ends early");
  if (first === QUOTE) return skipString(bytes, start);
  if (first !== OPEN_BRACE && first !== 0x5b) {
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
    if (byte === OPEN_BRACE || byte === 0x5b) depth++;
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
