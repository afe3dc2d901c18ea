/** Receives decoded bytes; the array is reused once the returned promise settles. */
export type ByteSink = (bytes: Uint8Array) => Promise<void>;

export class Base64Error extends Error {
  override name = "Base64Error";
}

const MIXED_ALPHABETS = "Invalid base64: it mixes the standard and the URL-safe alphabets";
/**
 * Decoded bytes wait in a buffer that starts small and grows each time it fills, up to 1 MiB: a
 * small image costs little (a batch holds many at once), a large one reaches the file in a few
 * large writes.
 */
const FIRST_OUTPUT_BYTES = 64 << 10;
const MAX_OUTPUT_BYTES = 1 << 20;
/** A data URL's header ("data:image/png;base64,") is looked for within this many characters. */
const MAX_DATA_URL_HEADER = 256;
/** The whitespace base64 allows (setFromBase64 skips the same five characters). */
const WHITESPACE = /[\t\n\f\r ]+/g;

/**
 * Decodes base64 that arrives in pieces, writing the bytes to a sink as it goes, so that neither
 * the whole text nor the whole image is ever held. Accepts the standard and the URL-safe
 * alphabets, padded or not, with whitespace, and an optional `data:…;base64,` prefix.
 */
export class Base64StreamDecoder {
  readonly #sink: ByteSink;
  #output = new Uint8Array(FIRST_OUTPUT_BYTES);
  /** How much of `#output` holds decoded bytes not yet handed to the sink. */
  #filled = 0;
  #pending = "";
  #headerChecked = false;
  #alphabet: "base64" | "base64url" | null = null;
  #bytesWritten = 0;
  /** Padding ends base64: any text after it, in this push or a later one, is an error. */
  #padded = false;

  constructor(sink: ByteSink) {
    this.#sink = sink;
  }

  get bytesWritten(): number {
    return this.#bytesWritten;
  }

  async push(text: string): Promise<void> {
    let input = this.#pending + text;
    if (!this.#headerChecked) {
      const head = input.trimStart();
      const mayBeDataUrl = head.startsWith("data:") || "data:".startsWith(head);
      if (mayBeDataUrl && !head.includes(",") && head.length < MAX_DATA_URL_HEADER) {
        // Leading whitespace means nothing: dropping it keeps what waits here small, however
        // much of it arrives.
        this.#pending = head;
        return;
      }
      input = withoutDataUrlHeader(head);
      this.#headerChecked = true;
    }
    this.#pending = await this.#decode(input, "stop-before-partial");
  }

  /** Decodes what is left; throws if the text as a whole was not base64 or held nothing. */
  async finish(): Promise<number> {
    if (!this.#headerChecked) {
      this.#headerChecked = true;
      this.#pending = withoutDataUrlHeader(this.#pending.trimStart());
    }
    if (this.#pending.trim() !== "") await this.#decode(this.#pending, "loose");
    this.#pending = "";
    if (this.#bytesWritten === 0) throw new Base64Error("The base64 text is empty");
    await this.#flush();
    return this.#bytesWritten;
  }

  async #decode(
    input: string,
    lastChunkHandling: "loose" | "stop-before-partial",
  ): Promise<string> {
    if (this.#padded && input.trim() !== "") {
      throw new Base64Error("Invalid base64: text continues after the padding");
    }
    const alphabet = this.#chooseAlphabet(input);
    let rest = input;
    while (rest.length > 0) {
      // A group of four characters is three bytes: with less room, nothing could be decoded.
      if (this.#output.length - this.#filled < 3) {
        await this.#flush();
        if (this.#output.length < MAX_OUTPUT_BYTES) {
          this.#output = new Uint8Array(Math.min(this.#output.length * 4, MAX_OUTPUT_BYTES));
        }
      }
      let result: { read: number; written: number };
      try {
        result = this.#output.subarray(this.#filled).setFromBase64(rest, {
          alphabet,
          lastChunkHandling,
        });
      } catch (error) {
        const otherAlphabet = alphabet === "base64" ? /[-_]/ : /[+/]/;
        throw new Base64Error(
          otherAlphabet.test(rest)
            ? MIXED_ALPHABETS
            : `Invalid base64: ${(error as Error).message}`,
        );
      }
      this.#filled += result.written;
      this.#bytesWritten += result.written;
      if (rest.slice(0, result.read).includes("=")) this.#padded = true;
      rest = rest.slice(result.read);
      if (result.read === 0) break;
    }
    if (lastChunkHandling === "loose" && rest.trim() !== "") {
      throw new Base64Error("Invalid base64: text continues after the padding");
    }
    // What is left is an incomplete group of at most four characters, and any whitespace around
    // it: kept as is, the whitespace would be read again by every later push.
    return rest.replace(WHITESPACE, "");
  }

  /**
   * Hands the decoded bytes to the sink once the buffer is full (and at the end), so that a
   * large image reaches the file in a few large writes rather than one per network chunk.
   */
  async #flush(): Promise<void> {
    if (this.#filled === 0) return;
    const filled = this.#filled;
    this.#filled = 0;
    await this.#sink(this.#output.subarray(0, filled));
  }

  /** Decided by the first text that shows it; from then on, setFromBase64 refuses the other. */
  #chooseAlphabet(input: string): "base64" | "base64url" {
    if (this.#alphabet !== null) return this.#alphabet;
    const urlSafe = /[-_]/.test(input);
    const standard = /[+/]/.test(input);
    if (urlSafe && standard) {
      throw new Base64Error(MIXED_ALPHABETS);
    }
    if (urlSafe) this.#alphabet = "base64url";
    if (standard) this.#alphabet = "base64";
    return this.#alphabet ?? "base64";
  }
}

function withoutDataUrlHeader(text: string): string {
  if (!text.startsWith("data:")) return text;
  const comma = text.indexOf(",");
  const header = text.slice(5, comma);
  if (comma === -1 || !/;base64$/i.test(header)) {
    throw new Base64Error("Data URL is not base64-encoded");
  }
  return text.slice(comma + 1);
}
