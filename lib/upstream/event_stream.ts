/**
 * A streamed answer (`stream: true`): server-sent events, as OpenAI sends them,
 * `event: image_generation.partial_image` / `data: {…}` blocks ending with
 * `image_generation.completed`. Each event's `data` goes through the same scan as a JSON answer,
 * so that an image sent in one `data:` line of 64 MB is decoded in pieces, never held.
 */
import { isJsonObject } from "../shared/json.ts";
import { type Answer, answerFromItem } from "./answer.ts";
import { AnswerScanner, asciiOrLatin1, MAX_ANSWER_BYTES } from "./answer_scanner.ts";
import { Base64StreamDecoder, type ByteSink } from "../image/base64_stream.ts";
import { ASCII } from "../shared/bytes.ts";
import { type FailureDetails, GenerationError } from "../failure/errors.ts";
import { type Body, bodyChunks, upstreamErrorDetails } from "./http_failure.ts";
import { MAX_PARTIAL_IMAGES } from "../params/params.ts";
import { errorFromJson, parseUpstreamError } from "./upstream_error.ts";
import { clip } from "../shared/redact.ts";

/** Where the images of the events go; which event an image belonged to is known at its end. */
export interface EventImageTarget {
  /** Receives the image of the event being read. */
  write: ByteSink;
  /** A partial image event ended: its image is what `write` received since the last call. */
  partial: (index: number) => Promise<void>;
  /** Drops what `write` received since the last call: an event that was not an image. */
  drop: () => Promise<void>;
}

export interface EventStreamOptions {
  /** The answer's headers, read for an error event as for an error answer. */
  headers?: Headers;
  /** How many partial images were asked for: later ones are counted, not handed over. */
  partialImagesAsked?: number;
}

/**
 * More partial images than this fail the stream: an upstream sends at most the number asked for
 * (0 to 3), so one that sends this many is not making an image.
 */
export const MAX_PARTIAL_EVENTS = 100;
/** Every partial image and the final one, each as large as a JSON answer may be. */
const MAX_STREAM_BYTES = (MAX_PARTIAL_IMAGES + 2) * MAX_ANSWER_BYTES;
/** Longer event names are not ones this reads. */
const MAX_EVENT_NAME_BYTES = 64;

/** A byte order mark, which may open the stream. */
const BOM = [0xef, 0xbb, 0xbf];
const { LF, CR, COLON, SPACE } = ASCII;

type LineMode =
  /** At the start of a line, or reading a field's name. */
  | "name"
  /** Just after the colon, where one space is skipped. */
  | "value-start"
  | "value"
  /** A comment, or a field this does not read (`id`, `retry`, unknown ones). */
  | "ignore";

/** True for an answer sent as server-sent events. */
export function isEventStream(headers: Headers): boolean {
  return /^\s*text\/event-stream\b/i.test(headers.get("content-type") ?? "");
}

/**
 * Reads the events until `image_generation.completed`, whose image is the answer; partial
 * images are handed to `target` as they end. Comments, keep-alive lines, `id:` and `retry:` are
 * ignored, line ends may be LF, CRLF or CR, `data: [DONE]` ends the stream. An `error` event, or
 * one whose data holds an `error` object, fails like an upstream's error answer; a stream that
 * ends without the completed event fails as a bad response, and so does one that sends more than
 * MAX_PARTIAL_EVENTS partial images. `facts` (the answer's status and request id) go into every
 * failure; the body is read as any other (bodyChunks), so that a dropped connection is told apart.
 */
export async function readEventStream(
  body: Body,
  target: EventImageTarget,
  facts: FailureDetails = {},
  options: EventStreamOptions = {},
): Promise<Answer> {
  const reader = new EventStreamReader(target, facts, options);
  for await (const chunk of bodyChunks(body)) {
    const answer = await reader.push(chunk);
    // Leaving the loop cancels the rest of the body.
    if (answer !== null) return answer;
  }
  return reader.end();
}

class EventStreamReader {
  readonly #target: EventImageTarget;
  readonly #facts: FailureDetails;
  readonly #headers: Headers;
  readonly #partialImagesAsked: number;
  #totalBytes = 0;
  /** How much of a byte order mark the start of the stream may still hold. */
  #bomRead = 0;
  #mode: LineMode = "name";
  #name: number[] = [];
  /** The field whose value is being read: "data", "event", or null for one that is ignored. */
  #field: "data" | "event" | null = null;
  /** A CR ended the last line: an LF right after it belongs to that line end. */
  #afterCr = false;
  /** The event being read: its name, and the scan of its data once a data line came. */
  #eventName: number[] = [];
  #data: { scanner: AnswerScanner; decoder: Base64StreamDecoder } | null = null;
  /** Line feeds that join the data lines, owed to the scan until more data comes. */
  #joins = 0;
  #partialImages = 0;

  constructor(target: EventImageTarget, facts: FailureDetails, options: EventStreamOptions) {
    this.#target = target;
    this.#facts = facts;
    this.#headers = options.headers ?? new Headers();
    this.#partialImagesAsked = options.partialImagesAsked ?? MAX_PARTIAL_IMAGES;
  }

  /** Reads a chunk; returns the answer once the completed event has been read. */
  async push(chunk: Uint8Array): Promise<Answer | null> {
    this.#totalBytes += chunk.length;
    if (this.#totalBytes > MAX_STREAM_BYTES) {
      throw new GenerationError(
        "response",
        `The event stream is larger than ${MAX_STREAM_BYTES} bytes`,
        this.#facts,
      );
    }
    let i = 0;
    while (this.#bomRead < BOM.length && i < chunk.length) {
      if (chunk[i] === BOM[this.#bomRead]) {
        this.#bomRead++;
        i++;
      } else {
        this.#bomRead = BOM.length;
      }
    }
    // Line ends are looked for in text, one character per byte: far faster than in the bytes.
    const text = asciiOrLatin1(chunk);
    let lf = text.indexOf("\n", i);
    let cr = text.indexOf("\r", i);
    while (i < chunk.length) {
      if (this.#afterCr) {
        this.#afterCr = false;
        if (chunk[i] === LF) {
          i++;
          continue;
        }
      }
      if (lf !== -1 && lf < i) lf = text.indexOf("\n", i);
      if (cr !== -1 && cr < i) cr = text.indexOf("\r", i);
      const lineEnd = lf === -1 ? cr : cr === -1 ? lf : Math.min(lf, cr);
      const end = lineEnd === -1 ? chunk.length : lineEnd;
      if (this.#mode === "name") {
        i = this.#readName(chunk, i, end);
      } else if (this.#mode === "value-start") {
        if (i < end) {
          if (chunk[i] === SPACE) i++;
          this.#mode = "value";
        }
      } else {
        if (this.#mode === "value") await this.#readValue(chunk.subarray(i, end));
        i = end;
      }
      if (i === lineEnd) {
        this.#afterCr = chunk[i] === CR;
        i++;
        const answer = await this.#endLine();
        if (answer !== null) return answer;
      }
    }
    return null;
  }

  /** The stream ended: an event not closed by a blank line is discarded, as the standard says. */
  end(): never {
    const partials = `${this.#partialImages} partial image${this.#partialImages === 1 ? "" : "s"}`;
    throw new GenerationError(
      "response",
      `The event stream ended without an image_generation.completed event (${partials} received)`,
      this.#facts,
    );
  }

  /** The field's name, up to its colon or the end of the line. */
  #readName(chunk: Uint8Array, start: number, end: number): number {
    for (let i = start; i < end; i++) {
      const byte = chunk[i]!;
      if (byte === COLON) {
        this.#startValue();
        return i + 1;
      }
      // Enough to tell "data" and "event" from longer names.
      if (this.#name.length < 8) this.#name.push(byte);
    }
    return end;
  }

  /** After a field's name; a comment is a field without a name. */
  #startValue(): void {
    const name = String.fromCharCode(...this.#name);
    this.#field = name === "data" ? "data" : name === "event" ? "event" : null;
    this.#mode = this.#field === null ? "ignore" : "value-start";
    if (this.#field === "event") this.#eventName = [];
    if (this.#field !== "data") return;
    if (this.#data === null) {
      const decoder = new Base64StreamDecoder(this.#target.write);
      this.#data = { scanner: new AnswerScanner(decoder, this.#facts), decoder };
    } else {
      this.#joins++;
    }
  }

  async #readValue(bytes: Uint8Array): Promise<void> {
    if (bytes.length === 0) return;
    if (this.#field === "event") {
      for (const byte of bytes) {
        if (this.#eventName.length < MAX_EVENT_NAME_BYTES) this.#eventName.push(byte);
      }
      return;
    }
    const scanner = this.#data!.scanner;
    if (this.#joins > 0) {
      await scanner.push(new Uint8Array(this.#joins).fill(LF));
      this.#joins = 0;
    }
    await scanner.push(bytes);
  }

  /** A line ended: a blank one dispatches the event, any other ends its field. */
  async #endLine(): Promise<Answer | null> {
    const blank = this.#mode === "name" && this.#name.length === 0;
    // A line without a colon is a field with an empty value.
    if (this.#mode === "name" && !blank) this.#startValue();
    this.#mode = "name";
    this.#name = [];
    this.#field = null;
    return blank ? await this.#dispatch() : null;
  }

  async #dispatch(): Promise<Answer | null> {
    const data = this.#data;
    const eventName = String.fromCharCode(...this.#eventName);
    this.#data = null;
    this.#eventName = [];
    this.#joins = 0;
    if (data === null) return null;

    const skeleton = await data.scanner.finish();
    const wroteImage = data.decoder.bytesWritten > 0;
    if (skeleton.trim() === "[DONE]") this.end();
    let json: unknown = undefined;
    try {
      json = JSON.parse(skeleton);
    } catch { /* not JSON: an error event's text, or an event this does not read */ }
    const record = isJsonObject(json) ? json : null;
    const type = typeof record?.type === "string" ? record.type : eventName;
    const isImage = type.endsWith(".completed") || type.endsWith(".partial_image");

    if (
      eventName === "error" || type === "error" ||
      (!isImage && record !== null && errorFromJson(record) !== null)
    ) {
      throw streamedError(record, skeleton, this.#facts, this.#headers);
    }
    if (record !== null && type.endsWith(".completed")) {
      const answer = answerFromItem(record, record);
      if (answer === null) {
        throw new GenerationError(
          "response",
          `The image_generation.completed event holds no image: ${clip(skeleton, 200)}`,
          this.#facts,
        );
      }
      return { ...answer, partialImages: this.#partialImages };
    }
    if (type.endsWith(".partial_image")) {
      const index = this.#partialImages++;
      if (index >= MAX_PARTIAL_EVENTS) {
        throw new GenerationError(
          "response",
          `The event stream sent more than ${MAX_PARTIAL_EVENTS} partial images (${this.#partialImagesAsked} asked for)`,
          this.#facts,
        );
      }
      if (index < this.#partialImagesAsked) await this.#target.partial(index);
      else if (wroteImage) await this.#target.drop();
      return null;
    }
    if (wroteImage) await this.#target.drop();
    return null;
  }
}

/** An error sent as an event, read with the answer's headers as an error answer is. */
function streamedError(
  record: Record<string, unknown> | null,
  text: string,
  facts: FailureDetails,
  headers: Headers,
): GenerationError {
  const upstream = (record !== null ? errorFromJson(record) : null) ?? parseUpstreamError(text);
  const said = upstream.message ? `: ${upstream.message}` : "";
  const details = upstreamErrorDetails({ status: facts.httpStatus ?? 200, headers }, upstream);
  return new GenerationError("request", `The upstream's event stream sent an error${said}`, {
    ...details,
    requestId: details.requestId ?? facts.requestId ?? null,
  });
}
