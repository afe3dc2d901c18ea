import { AnswerScanner, SKIPPED, STREAMED } from "./answer_scanner.ts";
import { Base64StreamDecoder, type ByteSink } from "../image/base64_stream.ts";
import { type FailureDetails, GenerationError } from "../failure/errors.ts";
import { type Body, bodyChunks, upstreamErrorDetails } from "./http_failure.ts";
import { clipKept, errorFromJson, htmlSummary } from "./upstream_error.ts";

/** Where the image of an answer is. */
export type ImageSource = { kind: "streamed" } | { kind: "url"; url: string };

/** The settings an answer says the image was made with, as far as it says. */
export type UpstreamSettings = Partial<Record<(typeof SETTING_NAMES)[number], string>>;
const SETTING_NAMES = ["size", "quality", "output_format", "background"] as const;

export interface Answer {
  source: ImageSource;
  revisedPrompt: string | null;
  usage: unknown;
  settings: UpstreamSettings;
  /** How many partial images a streamed answer sent before its image. */
  partialImages?: number;
}

/** A 2xx answer whose `data` is an empty list, as some relays answer a parameter they dislike. */
export class EmptyAnswerError extends GenerationError {
  override name = "EmptyAnswerError";
}

/**
 * Reads a 2xx answer as it arrives. The first non-empty base64 image (a `b64_json` value, or a
 * `url` holding a data URL) is decoded straight into `sink`, and the rest of the JSON is kept
 * with that value replaced by a marker, so that a 64 MB answer never sits in memory as text.
 * `headers` are the answer's, read for an error object in it as for an error answer.
 */
export async function readAnswer(
  body: Body,
  sink: ByteSink,
  facts: FailureDetails = {},
  headers: Headers = new Headers(),
): Promise<Answer> {
  const scanner = new AnswerScanner(new Base64StreamDecoder(sink), facts);
  for await (const chunk of bodyChunks(body)) await scanner.push(chunk);
  return interpretAnswer(await scanner.finish(), facts, headers);
}

/**
 * Picks the image out of an answer's JSON: `data` (or SiliconFlow's `images`) as an array or a
 * single object. `facts` (the answer's status and request id) go into every failure.
 */
export function interpretAnswer(
  text: string,
  facts: FailureDetails = {},
  headers: Headers = new Headers(),
): Answer {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    const shown = text.trim() === "" ? "it is empty" : clipKept(htmlSummary(text));
    throw new GenerationError("response", `The answer is not JSON: ${shown}`, facts);
  }
  const record = typeof json === "object" && json !== null ? json as Record<string, unknown> : {};
  // `images` is SiliconFlow's own shape: `{"images": [{"url": …}], "timings": …, "seed": …}`.
  const listed = record.data ?? record.images;
  const items = Array.isArray(listed) ? listed : [listed];
  const item = items.find((candidate): candidate is Record<string, unknown> =>
    typeof candidate === "object" && candidate !== null &&
    (nonEmpty(candidate.b64_json) || nonEmpty(candidate.url))
  );

  if (item === undefined) {
    const upstream = errorFromJson(json);
    if (upstream !== null) {
      const details = upstreamErrorDetails({ status: facts.httpStatus ?? 200, headers }, upstream);
      throw new GenerationError(
        "request",
        `The upstream answered with an error: ${upstream.message}`,
        { ...details, requestId: details.requestId ?? facts.requestId ?? null },
      );
    }
    if (Array.isArray(record.data) && record.data.length === 0) {
      throw new EmptyAnswerError("response", "The answer holds no image: its data is empty", facts);
    }
    throw new GenerationError(
      "response",
      "The answer holds no image: no b64_json or url in data",
      facts,
    );
  }
  const answer = answerFromItem(item, record);
  if (answer === null) {
    throw new GenerationError("response", "The answer holds more than one image text", facts);
  }
  return answer;
}

/**
 * The answer that `item` makes, with `record` the object around it (the answer, or a stream's
 * completed event, which is its own item); null when the item holds no single image.
 */
export function answerFromItem(
  item: Record<string, unknown>,
  record: Record<string, unknown>,
): Answer | null {
  const revisedPrompt = typeof item.revised_prompt === "string" ? item.revised_prompt : null;
  const settings: UpstreamSettings = {};
  for (const name of SETTING_NAMES) {
    if (nonEmpty(record[name])) settings[name] = record[name];
  }
  const common = { revisedPrompt, usage: record.usage ?? null, settings };
  if (item.b64_json === STREAMED || item.url === STREAMED) {
    return { source: { kind: "streamed" }, ...common };
  }
  if (nonEmpty(item.url) && item.url !== SKIPPED && !nonEmpty(item.b64_json)) {
    return { source: { kind: "url", url: item.url }, ...common };
  }
  return null;
}

function nonEmpty(value: unknown): value is string {
  return typeof value === "string" && value !== "";
}
