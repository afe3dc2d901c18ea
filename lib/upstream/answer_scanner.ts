import { ASCII } from "../shared/bytes.ts";
import { Base64Error, type Base64StreamDecoder } from "../image/base64_stream.ts";
import { type FailureDetails, GenerationError } from "../failure/errors.ts";

/**
 * Everything of an answer but its image text is kept (a revised prompt, usage, ids); beyond this
 * it is not an images answer.
 */
export const MAX_SKELETON_BYTES = 1024 * 1024;
/** The largest image accepted, in bytes once decoded (or downloaded). */
export const MAX_IMAGE_BYTES = 256 * 1024 * 1024;
/** The largest answer: such an image in base64, and the rest of the JSON. */
export const MAX_ANSWER_BYTES = Math.ceil(MAX_IMAGE_BYTES / 3) * 4 + MAX_SKELETON_BYTES;

/** What the kept JSON holds in place of the image text that went to the decoder. */
export const STREAMED = "\u0000streamed";
/** What it holds in place of any later image text, which is not read. */
export const SKIPPED = "\u0000skipped";
const IMAGE_KEYS = new Set(["b64_json", "url"]);

const { QUOTE, BACKSLASH, COLON, SPACE, LF, CR, TAB } = ASCII;
const MAX_KEY_BYTES = 16;

type Mode =
  | "structure"
  | "string"
  /** At the start of an image value: still deciding whether it is base64 or a plain URL. */
  | "peek"
  | "stream"
  | "skip";

/**
 * A byte-level scan of the JSON that knows just enough of its grammar to find string values
 * under the keys `b64_json` and `url`. It does not validate: `JSON.parse` of the kept text does.
 */
export class AnswerScanner {
  readonly #decoder: Base64StreamDecoder;
  /** The skeleton, in one buffer that grows by doubling: many small pieces would cost more. */
  #kept = new Uint8Array(4096);
  #keptBytes = 0;
  #totalBytes = 0;
  #mode: Mode = "structure";
  #escaped = false;
  /** The bytes of the string being read in structure, while short enough to be a wanted key. */
  #keyBytes: number[] = [];
  #keyTooLong = false;
  /** The last string closed in structure, a candidate key for the next colon. */
  #lastString: string | null = null;
  #valueKey: string | null = null;
  /** The first bytes of an image value, as read (a URL may be UTF-8). */
  #peeked: number[] = [];
  #imageTaken = false;
  /** Image text read from the current chunk, handed to the decoder once a chunk is scanned. */
  #imageText = "";
  /** A JSON escape inside the image text (\/ and \n are legal there), possibly cut by a chunk. */
  #escape: string | null = null;

  /** The answer's status and request id, for every failure made here. */
  readonly #facts: FailureDetails;

  constructor(decoder: Base64StreamDecoder, facts: FailureDetails = {}) {
    this.#decoder = decoder;
    this.#facts = facts;
  }

  async push(chunk: Uint8Array): Promise<void> {
    this.#totalBytes += chunk.length;
    if (this.#totalBytes > MAX_ANSWER_BYTES) {
      throw new GenerationError(
        "response",
        `The answer is larger than ${MAX_ANSWER_BYTES} bytes`,
        this.#facts,
      );
    }
    let i = 0;
    while (i < chunk.length) {
      if (this.#mode === "structure") i = this.#structure(chunk, i);
      else if (this.#mode === "string") i = this.#string(chunk, i);
      else if (this.#mode === "peek") i = this.#peek(chunk, i);
      else i = this.#imageValue(chunk, i);
    }
    if (this.#imageText !== "") {
      const text = this.#imageText;
      this.#imageText = "";
      await this.#decode(text);
    }
  }

  async finish(): Promise<string> {
    if (this.#imageTaken) await this.#decode(null);
    return utf8.decode(this.#kept.subarray(0, this.#keptBytes));
  }

  /** Feeds image text to the decoder; null ends it. */
  async #decode(text: string | null): Promise<void> {
    try {
      if (text === null) await this.#decoder.finish();
      else await this.#decoder.push(text);
    } catch (error) {
      if (error instanceof Base64Error) {
        throw new GenerationError("decode", error.message, this.#facts);
      }
      throw error;
    }
    if (this.#decoder.bytesWritten > MAX_IMAGE_BYTES) {
      throw new GenerationError(
        "response",
        `The image is larger than ${MAX_IMAGE_BYTES} bytes`,
        this.#facts,
      );
    }
  }

  #keep(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    const needed = this.#keptBytes + bytes.length;
    if (needed > MAX_SKELETON_BYTES) {
      throw new GenerationError(
        "response",
        `The answer has more than ${MAX_SKELETON_BYTES} bytes outside its image`,
        this.#facts,
      );
    }
    if (needed > this.#kept.length) {
      const grown = new Uint8Array(
        Math.min(MAX_SKELETON_BYTES, Math.max(needed, this.#kept.length * 2)),
      );
      grown.set(this.#kept.subarray(0, this.#keptBytes));
      this.#kept = grown;
    }
    this.#kept.set(bytes, this.#keptBytes);
    this.#keptBytes = needed;
  }

  #keepText(text: string): void {
    this.#keep(new TextEncoder().encode(text));
  }

  #structure(chunk: Uint8Array, start: number): number {
    for (let i = start; i < chunk.length; i++) {
      const byte = chunk[i]!;
      if (byte === QUOTE) {
        this.#keep(chunk.subarray(start, i));
        if (this.#valueKey !== null) {
          this.#mode = "peek";
          this.#peeked = [];
          return i + 1;
        }
        this.#keep(chunk.subarray(i, i + 1));
        this.#mode = "string";
        this.#keyBytes = [];
        this.#keyTooLong = false;
        return i + 1;
      }
      if (byte === COLON) {
        this.#valueKey = this.#lastString !== null && IMAGE_KEYS.has(this.#lastString)
          ? this.#lastString
          : null;
        this.#lastString = null;
      } else if (byte !== SPACE && byte !== LF && byte !== CR && byte !== TAB) {
        this.#valueKey = null;
        this.#lastString = null;
      }
    }
    this.#keep(chunk.subarray(start));
    return chunk.length;
  }

  /** The rest of an ordinary string, after its opening quote. */
  #string(chunk: Uint8Array, start: number): number {
    for (let i = start; i < chunk.length; i++) {
      const byte = chunk[i]!;
      if (this.#escaped) {
        this.#escaped = false;
        this.#keyTooLong = true;
      } else if (byte === BACKSLASH) {
        this.#escaped = true;
      } else if (byte === QUOTE) {
        this.#keep(chunk.subarray(start, i + 1));
        this.#lastString = this.#keyTooLong ? null : String.fromCharCode(...this.#keyBytes);
        this.#mode = "structure";
        return i + 1;
      } else if (!this.#keyTooLong) {
        if (this.#keyBytes.length === MAX_KEY_BYTES) this.#keyTooLong = true;
        else this.#keyBytes.push(byte);
      }
    }
    this.#keep(chunk.subarray(start));
    return chunk.length;
  }

  /**
   * Decides from the first bytes of an image value how to read it: `b64_json` is base64 unless
   * empty; `url` is base64 only as a data URL, and otherwise kept as an ordinary string.
   */
  #peek(chunk: Uint8Array, start: number): number {
    const key = this.#valueKey;
    for (let i = start; i < chunk.length; i++) {
      const byte = chunk[i]!;
      const stop = byte === QUOTE || byte === BACKSLASH;
      if (!stop) this.#peeked.push(byte);
      const prefix = String.fromCharCode(...this.#peeked);
      const isBase64 = key === "b64_json" ? byte !== QUOTE || prefix !== "" : prefix === "data:";
      if (!stop && !isBase64 && "data:".startsWith(prefix)) continue;

      this.#valueKey = null;
      const next = stop ? i : i + 1;
      if (isBase64) {
        this.#mode = this.#imageTaken ? "skip" : "stream";
        this.#keepText(JSON.stringify(this.#imageTaken ? SKIPPED : STREAMED).slice(0, -1));
        if (!this.#imageTaken) this.#imageText += prefix;
        this.#imageTaken = true;
        return next;
      }
      this.#keep(Uint8Array.of(QUOTE, ...this.#peeked));
      this.#mode = "string";
      this.#keyBytes = [];
      this.#keyTooLong = true;
      return next;
    }
    return chunk.length;
  }

  /**
   * Image text up to its closing quote: collected while streaming, dropped while skipping. The
   * rest of the chunk is read as text once, one character per byte so that text and chunk share
   * their indexes, and searched as a string: far faster than a typed array's indexOf.
   */
  #imageValue(chunk: Uint8Array, start: number): number {
    const streaming = this.#mode === "stream";
    const text = asciiOrLatin1(chunk.subarray(start));
    let quote = text.indexOf('"');
    let backslash = text.indexOf("\\");
    let i = 0;
    while (i < text.length) {
      if (this.#escape !== null) {
        i = this.#continueEscape(chunk, start + i, streaming) - start;
        continue;
      }
      // An escape may have taken the quote or backslash found before: look again past it.
      if (quote !== -1 && quote < i) quote = text.indexOf('"', i);
      if (backslash !== -1 && backslash < i) backslash = text.indexOf("\\", i);
      const stop = quote === -1 ? backslash : backslash === -1 ? quote : Math.min(quote, backslash);
      const end = stop === -1 ? text.length : stop;
      if (streaming) this.#imageText += text.slice(i, end);
      if (stop === -1) return chunk.length;
      if (stop === quote) {
        this.#keepText('"');
        this.#mode = "structure";
        this.#lastString = null;
        return start + stop + 1;
      }
      this.#escape = "";
      i = stop + 1;
    }
    return start + i;
  }

  /** Reads a JSON escape; the whitespace escapes decode to a space, which base64 ignores. */
  #continueEscape(chunk: Uint8Array, start: number, streaming: boolean): number {
    let i = start;
    while (i < chunk.length && this.#escape !== null) {
      const escape = this.#escape + String.fromCharCode(chunk[i++]!);
      if (escape[0] !== "u" || escape.length === 5) {
        this.#escape = null;
        if (streaming) this.#imageText += unescapeJson(escape);
      } else {
        this.#escape = escape;
      }
    }
    return i;
  }
}

function unescapeJson(escape: string): string {
  if (escape[0] === "u") {
    const code = parseInt(escape.slice(1), 16);
    return Number.isNaN(code) ? "\ufffd" : String.fromCharCode(code);
  }
  // Whitespace, which base64 skips anyway; any other escape stays what it is, and is refused.
  if ("nrtf".includes(escape)) return "";
  return escape === "b" ? "\b" : escape;
}

const latin1 = new TextDecoder("latin1");
const utf8 = new TextDecoder();

/**
 * The bytes as text, one character per byte, as the `latin1` decoder reads them. Image text is
 * ASCII, which the UTF-8 decoder turns into a string several times faster; its result is kept
 * only when it proves the bytes ASCII: as many characters as bytes and no U+FFFD (any other
 * byte either joins a longer sequence or becomes U+FFFD).
 */
export function asciiOrLatin1(bytes: Uint8Array): string {
  const text = utf8.decode(bytes);
  return text.length === bytes.length && !text.includes("\ufffd") ? text : latin1.decode(bytes);
}
