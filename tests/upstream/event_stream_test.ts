import assert from "node:assert/strict";
import type { Answer } from "../../lib/upstream/answer.ts";
import { GenerationError } from "../../lib/failure/errors.ts";
import {
  type EventStreamOptions,
  isEventStream,
  MAX_PARTIAL_EVENTS,
  readEventStream,
} from "../../lib/upstream/event_stream.ts";
import { ChunkedBody, concat, everyCut, randomBytes, randomCuts, sameBytes } from "../_helpers.ts";

const encoder = new TextEncoder();

/** Records what a stream hands to its target: the partial images, and what is left. */
class Recorder {
  #current: Uint8Array[] = [];
  readonly partials: { index: number; bytes: Uint8Array }[] = [];
  drops = 0;
  largestWrite = 0;

  readonly target = {
    write: (bytes: Uint8Array) => {
      this.#current.push(bytes.slice());
      this.largestWrite = Math.max(this.largestWrite, bytes.length);
      return Promise.resolve();
    },
    partial: (index: number) => {
      this.partials.push({ index, bytes: concat(this.#current) });
      this.#current = [];
      return Promise.resolve();
    },
    drop: () => {
      this.drops++;
      this.#current = [];
      return Promise.resolve();
    },
  };

  get image(): Uint8Array {
    return concat(this.#current);
  }
}

async function readCut(
  text: string | Uint8Array,
  cuts: number[] = [],
  options: EventStreamOptions = {},
) {
  const bytes = typeof text === "string" ? encoder.encode(text) : text;
  const body = new ChunkedBody(bytes, cuts);
  const recorder = new Recorder();
  const answer = await readEventStream(body.stream, recorder.target, {}, options);
  return { answer, recorder, body };
}

async function failureOf(
  text: string,
  cuts: number[] = [],
  options: EventStreamOptions = {},
): Promise<GenerationError> {
  try {
    await readCut(text, cuts, options);
  } catch (error) {
    assert.ok(error instanceof GenerationError, `expected a GenerationError, got ${error}`);
    return error;
  }
  assert.fail("expected readEventStream() to fail");
}

const PARTIAL_0 = randomBytes(40, 1);
const PARTIAL_1 = randomBytes(41, 2);
const FINAL = randomBytes(48, 3);
const USAGE = {
  total_tokens: 100,
  input_tokens: 50,
  output_tokens: 50,
  input_tokens_details: { text_tokens: 10, image_tokens: 40 },
};
const SETTINGS = { size: "1024x1024", quality: "high", background: "opaque", output_format: "png" };

/** An event as OpenAI sends it: `event:` and one `data:` line, then a blank line. */
function openAiEvent(type: string, fields: Record<string, unknown>, end = "\n"): string {
  const data = JSON.stringify({ type, created_at: 1620000000, ...SETTINGS, ...fields });
  return `event: ${type}${end}data: ${data}${end}${end}`;
}

const OPENAI_STREAM = [
  openAiEvent("image_generation.partial_image", {
    b64_json: PARTIAL_0.toBase64(),
    partial_image_index: 0,
  }),
  openAiEvent("image_generation.partial_image", {
    b64_json: PARTIAL_1.toBase64(),
    partial_image_index: 1,
  }),
  openAiEvent("image_generation.completed", { b64_json: FINAL.toBase64(), usage: USAGE }),
].join("");

const EXPECTED: Answer = {
  source: { kind: "streamed" },
  revisedPrompt: null,
  usage: USAGE,
  settings: SETTINGS,
  partialImages: 2,
};

async function assertEveryCut(text: string, partials: Uint8Array[], expected = EXPECTED) {
  for (const cuts of everyCut(text)) {
    const { answer, recorder } = await readCut(text, cuts);
    const where = `cut at ${cuts.slice(0, 3)}`;
    assert.deepEqual(answer, expected, where);
    assert.ok(sameBytes(recorder.image, FINAL), `final image differs, ${where}`);
    assert.deepEqual(recorder.partials.map((p) => p.index), partials.map((_, i) => i), where);
    partials.forEach((bytes, i) => {
      assert.ok(sameBytes(recorder.partials[i]!.bytes, bytes), `partial ${i} differs, ${where}`);
    });
  }
}

Deno.test("readEventStream() saves the completed image and hands over the partial ones, cut at every byte", async () => {
  await assertEveryCut(OPENAI_STREAM, [PARTIAL_0, PARTIAL_1]);
});

Deno.test("readEventStream() reads CRLF and CR line ends as LF ones, cut at every byte", async () => {
  // Without the type in the data, the event lines alone tell the events apart.
  const namedOnly = OPENAI_STREAM.replace(/"type":"[^"]*",/g, "");
  for (const stream of [OPENAI_STREAM, namedOnly]) {
    await assertEveryCut(stream.replaceAll("\n", "\r\n"), [PARTIAL_0, PARTIAL_1]);
    await assertEveryCut(stream.replaceAll("\n", "\r"), [PARTIAL_0, PARTIAL_1]);
  }
});

Deno.test("readEventStream() skips a byte order mark, cut at every byte", async () => {
  const namedOnly = OPENAI_STREAM.replace(/"type":"[^"]*",/g, "");
  await assertEveryCut("\ufeff" + namedOnly, [PARTIAL_0, PARTIAL_1]);
});

Deno.test("readEventStream() ignores comments, keep-alives, id, retry and unknown fields, cut at every byte", async () => {
  const stream = "\ufeff: connected\n\n: PING\n\nretry: 3000\n\n" +
    "id: 1\nevent: image_generation.partial_image\n:keep-alive\nx-unknown: 1\n" +
    `data:${
      JSON.stringify({ type: "image_generation.partial_image", b64_json: PARTIAL_0.toBase64() })
    }\n\n` +
    ": PING\n\n: PING\n\n" +
    openAiEvent("image_generation.completed", { b64_json: FINAL.toBase64(), usage: USAGE });
  await assertEveryCut(stream, [PARTIAL_0], { ...EXPECTED, partialImages: 1 });
});

Deno.test("readEventStream() tells the events by their data's type when there is no event line", async () => {
  const stream = OPENAI_STREAM.replace(/^event: .*\n/gm, "");
  await assertEveryCut(stream, [PARTIAL_0, PARTIAL_1]);
});

Deno.test("readEventStream() joins an event's data lines with line feeds", async () => {
  const data = JSON.stringify(
    { type: "image_generation.completed", b64_json: FINAL.toBase64() },
    null,
    1,
  );
  const stream = data.split("\n").map((line) => `data: ${line}\n`).join("") + "\n";
  await assertEveryCut(stream, [], { ...EXPECTED, usage: null, settings: {}, partialImages: 0 });
});

Deno.test("readEventStream() stops at the completed event and cancels the rest", async () => {
  const stream = OPENAI_STREAM + "data: [DONE]\n\n" + ": more\n\n".repeat(100);
  const { answer, body } = await readCut(stream, [OPENAI_STREAM.length + 3]);
  assert.deepEqual(answer, EXPECTED);
  assert.equal(body.cancelled, true);
});

Deno.test("readEventStream() drops the image of an event that is neither partial nor completed", async () => {
  const stream = openAiEvent("image_generation.preview", { b64_json: PARTIAL_0.toBase64() }) +
    openAiEvent("image_generation.completed", { b64_json: FINAL.toBase64(), usage: USAGE });
  const { answer, recorder } = await readCut(stream);
  assert.equal(recorder.drops, 1);
  assert.ok(sameBytes(recorder.image, FINAL));
  assert.equal(answer.partialImages, 0);
});

Deno.test("readEventStream() takes a completed event's url to download", async () => {
  const url = "https://cdn.example.com/a.png";
  const stream = openAiEvent("image_generation.completed", { url, usage: USAGE });
  const { answer } = await readCut(stream);
  assert.deepEqual(answer.source, { kind: "url", url });
});

Deno.test("readEventStream() reports an error event in the upstream's own words, cut at every byte", async () => {
  // OpenAI's streaming error shape, as its SDKs read an `event: error`.
  const stream = openAiEvent("image_generation.partial_image", { b64_json: PARTIAL_0.toBase64() }) +
    'event: error\ndata: {"type":"error","error":{"type":"image_generation_user_error",' +
    '"code":"moderation_blocked","message":"Your request was rejected by the safety system.",' +
    '"param":null}}\n\n';
  for (const cuts of everyCut(stream)) {
    const failure = await failureOf(stream, cuts);
    assert.equal(failure.stage, "request");
    assert.equal(failure.details.httpStatus, 200);
    assert.deepEqual(failure.details.upstream, {
      type: "image_generation_user_error",
      code: "moderation_blocked",
      message: "Your request was rejected by the safety system.",
      param: null,
    });
  }
});

Deno.test("readEventStream() reports a data line holding an error object, and a plain-text error event", async () => {
  const inData = await failureOf(
    'data: {"error":{"message":"该令牌额度已用尽","type":"new_api_error","code":"insufficient_user_quota"}}\n\n',
  );
  assert.equal(inData.details.upstream?.code, "insufficient_user_quota");
  assert.equal(inData.message, "The upstream's event stream sent an error: 该令牌额度已用尽");

  const plain = await failureOf("event: error\ndata: upstream timed out\n\n");
  assert.equal(plain.details.upstream?.message, "upstream timed out");
  assert.equal(plain.stage, "request");
});

Deno.test("readEventStream() fails as a bad response when the stream ends without the completed event", async () => {
  const cases = [
    "",
    ": PING\n\n",
    openAiEvent("image_generation.partial_image", { b64_json: PARTIAL_0.toBase64() }),
    // The completed event without the blank line that would dispatch it.
    openAiEvent("image_generation.completed", { b64_json: FINAL.toBase64() }).trimEnd(),
    "data: [DONE]\n\n" + openAiEvent("image_generation.completed", { b64_json: FINAL.toBase64() }),
  ];
  for (const stream of cases) {
    const failure = await failureOf(stream);
    assert.equal(failure.stage, "response", stream.slice(0, 40));
    assert.equal(failure.details.cause, undefined);
    assert.match(failure.message, /^The event stream ended without an image_generation\.completed/);
  }
  const partial = await failureOf(cases[2]!);
  assert.match(partial.message, /\(1 partial image received\)$/);
});

Deno.test("readEventStream() reports a completed event without an image at stage response", async () => {
  const failure = await failureOf(openAiEvent("image_generation.completed", { b64_json: "" }));
  assert.equal(failure.stage, "response");
  assert.match(failure.message, /^The image_generation\.completed event holds no image/);
});

Deno.test("readEventStream() decodes a 5 MB image sent in one data line in pieces of at most 1 MiB", async () => {
  const image = randomBytes(5 * 1024 * 1024, 9);
  const partial = randomBytes(1024 * 1024, 10);
  const stream = encoder.encode(
    openAiEvent("image_generation.partial_image", { b64_json: partial.toBase64() }) +
      openAiEvent("image_generation.completed", { b64_json: image.toBase64() }),
  );
  for (const maxPiece of [70_000, 1 << 20]) {
    const { answer, recorder } = await readCut(stream, randomCuts(stream.length, maxPiece, 5));
    assert.ok(sameBytes(recorder.image, image));
    assert.ok(sameBytes(recorder.partials[0]!.bytes, partial));
    assert.ok(recorder.largestWrite <= 1 << 20, `a write of ${recorder.largestWrite} bytes`);
    assert.equal(answer.partialImages, 1);
  }
});

Deno.test("isEventStream() knows server-sent events by their content type", () => {
  assert.equal(isEventStream(new Headers({ "content-type": "text/event-stream" })), true);
  assert.equal(
    isEventStream(new Headers({ "content-type": "Text/Event-Stream; charset=utf-8" })),
    true,
  );
  assert.equal(isEventStream(new Headers({ "content-type": "application/json" })), false);
  assert.equal(isEventStream(new Headers()), false);
});

Deno.test("readEventStream() reads an error event's wait and retry refusal from the answer's headers and words", async () => {
  const error = (message: string) =>
    `event: error\ndata: ${
      JSON.stringify({ type: "error", error: { message, type: "requests" } })
    }\n\n`;
  const headed = await failureOf(error("Rate limit reached"), [], {
    headers: new Headers({ "retry-after": "2", "x-request-id": "req_1" }),
  });
  assert.equal(headed.details.retryAfterMs, 2000);
  assert.equal(headed.details.retryRefused, false);
  assert.equal(headed.details.requestId, "req_1");

  const said = await failureOf(error("Rate limit reached. Please try again in 1.5s."));
  assert.equal(said.details.retryAfterMs, 1500);

  const refused = await failureOf(error("busy"), [], {
    headers: new Headers({ "x-should-retry": "false" }),
  });
  assert.equal(refused.details.retryRefused, true);
});

const partialEvent = (index: number) =>
  openAiEvent("image_generation.partial_image", {
    b64_json: PARTIAL_0.toBase64(),
    partial_image_index: index,
  });
const completed = openAiEvent("image_generation.completed", { b64_json: FINAL.toBase64() });

Deno.test("readEventStream() counts partial images beyond those asked for but hands none of them over", async () => {
  const stream = [0, 1, 2, 3, 4].map(partialEvent).join("") + completed;
  const { answer, recorder } = await readCut(stream, [], { partialImagesAsked: 2 });
  assert.equal(answer.partialImages, 5);
  assert.deepEqual(recorder.partials.map((p) => p.index), [0, 1]);
  assert.equal(recorder.drops, 3);
  assert.ok(sameBytes(recorder.image, FINAL));
});

Deno.test("readEventStream() fails as a bad response past MAX_PARTIAL_EVENTS partial images", async () => {
  const many = (count: number) => Array.from({ length: count }, (_, i) => partialEvent(i)).join("");
  const { answer } = await readCut(many(MAX_PARTIAL_EVENTS) + completed);
  assert.equal(answer.partialImages, MAX_PARTIAL_EVENTS);

  const failure = await failureOf(many(MAX_PARTIAL_EVENTS + 1) + completed, [], {
    partialImagesAsked: 1,
  });
  assert.equal(failure.stage, "response");
  assert.equal(
    failure.message,
    `The event stream sent more than ${MAX_PARTIAL_EVENTS} partial images (1 asked for)`,
  );
});
