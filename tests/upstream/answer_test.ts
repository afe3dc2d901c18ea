import assert from "node:assert/strict";
import {
  type Answer,
  EmptyAnswerError,
  interpretAnswer,
  readAnswer,
} from "../../lib/upstream/answer.ts";
import { MAX_SKELETON_BYTES } from "../../lib/upstream/answer_scanner.ts";
import { GenerationError } from "../../lib/failure/errors.ts";
import { ChunkedBody, concat, everyCut, randomBytes, randomCuts, sameBytes } from "../_helpers.ts";

const MIB = 1 << 20;
const encoder = new TextEncoder();

/** JPEG-like bytes: the signature, then noise, whose base64 is rich in "/" and "+". */
function jpegLike(length: number, seed: number): Uint8Array {
  const bytes = randomBytes(length, seed);
  bytes.set([0xff, 0xd8, 0xff, 0xe0]);
  return bytes;
}

interface Read {
  answer: Answer;
  bytes: Uint8Array;
  chunkSizes: number[];
}

/** Reads `json` given as a body cut at `cuts`, collecting a copy of what the sink receives. */
async function readCut(json: string | Uint8Array, cuts: number[] = []): Promise<Read> {
  const bytes = typeof json === "string" ? encoder.encode(json) : json;
  const chunks: Uint8Array[] = [];
  const answer = await readAnswer(new ChunkedBody(bytes, cuts).stream, (chunk) => {
    chunks.push(chunk.slice());
    return Promise.resolve();
  });
  return { answer, bytes: concat(chunks), chunkSizes: chunks.map((chunk) => chunk.length) };
}

/** Asserts that `json`, cut anywhere, gives `expected` bytes and the same answer each time. */
async function assertEveryCut(json: string, expected: Uint8Array, answer: Answer): Promise<void> {
  for (const cuts of everyCut(json)) {
    const read = await readCut(json, cuts);
    assert.ok(sameBytes(read.bytes, expected), `bytes differ when cut at ${cuts.slice(0, 3)}`);
    assert.deepEqual(read.answer, answer, `answer differs when cut at ${cuts.slice(0, 3)}`);
  }
}

/** The GenerationError that reading `json` must raise. */
async function failureOf(json: string | Uint8Array, cuts: number[] = []): Promise<GenerationError> {
  try {
    await readCut(json, cuts);
  } catch (error) {
    assert.ok(error instanceof GenerationError, `expected a GenerationError, got ${error}`);
    return error;
  }
  assert.fail("expected readAnswer() to fail");
}

const STREAMED: Answer = {
  source: { kind: "streamed" },
  revisedPrompt: null,
  usage: null,
  settings: {},
};
const IMAGE = jpegLike(48, 1);
const IMAGE_B64 = IMAGE.toBase64();

Deno.test("readAnswer() decodes b64_json from a data array, cut at every byte", async () => {
  const json = `{"created":1713833628,"data":[{"b64_json":"${IMAGE_B64}"}]}`;
  await assertEveryCut(json, IMAGE, STREAMED);
});

Deno.test("readAnswer() decodes b64_json from data given as a single object", async () => {
  const json = `{"data":{"b64_json":"${IMAGE_B64}"}}`;
  await assertEveryCut(json, IMAGE, STREAMED);
});

Deno.test("readAnswer() skips an empty url given beside b64_json", async () => {
  await assertEveryCut(`{"data":[{"url":"","b64_json":"${IMAGE_B64}"}]}`, IMAGE, STREAMED);
  await assertEveryCut(`{"data":[{"b64_json":"${IMAGE_B64}","url":""}]}`, IMAGE, STREAMED);
});

Deno.test("readAnswer() reads a pretty-printed answer with spaces around the colons", async () => {
  const json = `{\n  "data" : [\n    {\n      "b64_json" :\t"${IMAGE_B64}"\n    }\n  ]\n}\n`;
  await assertEveryCut(json, IMAGE, STREAMED);
});

Deno.test("readAnswer() unescapes \\/ in b64_json as PHP writes it", async () => {
  assert.ok(IMAGE_B64.startsWith("/9j/"));
  const escaped = IMAGE_B64.replaceAll("/", "\\/");
  await assertEveryCut(`{"data":[{"b64_json":"${escaped}"}]}`, IMAGE, STREAMED);
});

Deno.test("readAnswer() ignores \\n and \\r\\n escapes that wrap b64_json", async () => {
  const wrapped = IMAGE_B64.replace(/.{16}/g, "$&\\n");
  await assertEveryCut(`{"data":[{"b64_json":"${wrapped}"}]}`, IMAGE, STREAMED);
  const crlf = IMAGE_B64.replace(/.{20}/g, "$&\\r\\n");
  await assertEveryCut(`{"data":[{"b64_json":"${crlf}"}]}`, IMAGE, STREAMED);
});

Deno.test("readAnswer() unescapes \\u002F and \\u000A in b64_json", async () => {
  const wrapped = `${IMAGE_B64.slice(0, 24)}\n${IMAGE_B64.slice(24)}`;
  const escaped = wrapped.replaceAll("/", "\\u002F").replaceAll("\n", "\\u000a");
  await assertEveryCut(`{"data":[{"b64_json":"${escaped}"}]}`, IMAGE, STREAMED);
  const lower = IMAGE_B64.replaceAll("/", "\\u002f");
  await assertEveryCut(`{"data":[{"b64_json":"${lower}"}]}`, IMAGE, STREAMED);
});

Deno.test("readAnswer() decodes URL-safe unpadded b64_json", async () => {
  const image = jpegLike(50, 2);
  const text = image.toBase64({ alphabet: "base64url", omitPadding: true });
  await assertEveryCut(`{"data":[{"b64_json":"${text}"}]}`, image, STREAMED);
});

Deno.test("readAnswer() decodes b64_json given as a data URL", async () => {
  const json = `{"data":[{"b64_json":"data:image/jpeg;base64,${IMAGE_B64}"}]}`;
  await assertEveryCut(json, IMAGE, STREAMED);
});

Deno.test("readAnswer() decodes a url that is a data URL", async () => {
  await assertEveryCut(`{"data":[{"url":"data:image/jpeg;base64,${IMAGE_B64}"}]}`, IMAGE, STREAMED);
});

Deno.test("readAnswer() decodes a data URL url written with \\/ escapes", async () => {
  const json = `{"data":[{"url":"data:image\\/jpeg;base64,${IMAGE_B64.replaceAll("/", "\\/")}"}]}`;
  await assertEveryCut(json, IMAGE, STREAMED);
});

Deno.test("readAnswer() returns an http url to download and writes nothing", async () => {
  const url = "https://cdn.example.com/images/abc.png?sig=x%2By&e=1";
  const expected: Answer = {
    source: { kind: "url", url },
    revisedPrompt: null,
    usage: null,
    settings: {},
  };
  await assertEveryCut(`{"data":[{"url":"${url}"}]}`, new Uint8Array(), expected);
});

Deno.test("readAnswer() unescapes an http url written with \\/ escapes", async () => {
  const json = `{"data":[{"url":"https:\\/\\/cdn.example.com\\/a.png","b64_json":""}]}`;
  const expected: Answer = {
    source: { kind: "url", url: "https://cdn.example.com/a.png" },
    revisedPrompt: null,
    usage: null,
    settings: {},
  };
  await assertEveryCut(json, new Uint8Array(), expected);
});

Deno.test("readAnswer() keeps a url that starts like data: but is not one", async () => {
  const json = `{"data":[{"url":"dat.example/x.png"}]}`;
  const expected: Answer = {
    source: { kind: "url", url: "dat.example/x.png" },
    revisedPrompt: null,
    usage: null,
    settings: {},
  };
  await assertEveryCut(json, new Uint8Array(), expected);
});

Deno.test("readAnswer() keeps a url with non-ASCII characters byte for byte", async () => {
  const urls = ["https://例え.jp/猫.png", "données/chat.png", "dé.png", "é.png", "猫.png"];
  const kept: string[] = [];
  for (const url of urls) {
    const read = await readCut(`{"data":[{"url":"${url}"}]}`);
    kept.push(read.answer.source.kind === "url" ? read.answer.source.url : "(streamed)");
  }
  assert.deepEqual(kept, urls);
});

Deno.test("readAnswer() keeps revised_prompt, usage and the settings the answer echoes", async () => {
  const usage = {
    total_tokens: 4270,
    input_tokens: 110,
    output_tokens: 4160,
    input_tokens_details: { text_tokens: 110, image_tokens: 0 },
  };
  const revised = 'A "quoted" orange cat \\ by a window, 窗边的橘猫 🐱';
  const json = JSON.stringify({
    created: 1713833628,
    data: [{ revised_prompt: revised, b64_json: IMAGE_B64, url: "" }],
    background: "opaque",
    output_format: "png",
    size: "1024x1024",
    quality: "high",
    usage,
  });
  await assertEveryCut(json, IMAGE, {
    source: { kind: "streamed" },
    revisedPrompt: revised,
    usage,
    settings: { size: "1024x1024", quality: "high", output_format: "png", background: "opaque" },
  });
});

Deno.test("readAnswer() takes the first image and ignores a second one", async () => {
  const other = jpegLike(30, 9);
  const json = JSON.stringify({
    data: [{ b64_json: IMAGE_B64 }, { b64_json: other.toBase64(), revised_prompt: "second" }],
  });
  await assertEveryCut(json, IMAGE, STREAMED);
});

// A later item's base64 may already be in the sink: generateImage() empties the file before
// downloading the url.
Deno.test("readAnswer() picks the first item's url even when a later item carries base64", async () => {
  const json = JSON.stringify({
    data: [{ url: "https://cdn.example.com/a.png" }, { b64_json: IMAGE_B64 }],
  });
  const read = await readCut(json);
  assert.deepEqual(read.answer.source, { kind: "url", url: "https://cdn.example.com/a.png" });
});

Deno.test("readAnswer() ignores image keys outside data before the image", async () => {
  const json = JSON.stringify({
    meta: { note: "url", b64: "b64_json" },
    data: [{ b64_json: IMAGE_B64 }],
  });
  await assertEveryCut(json, IMAGE, STREAMED);
});

Deno.test("readAnswer() reports an error object answered with 200 at stage request", async () => {
  const json = JSON.stringify({
    error: {
      message: "Your request was rejected by the safety system.",
      type: "image_generation_user_error",
      param: null,
      code: "moderation_blocked",
    },
  });
  for (const cuts of everyCut(json)) {
    const failure = await failureOf(json, cuts);
    assert.equal(failure.stage, "request");
    assert.equal(
      failure.message,
      "The upstream answered with an error: Your request was rejected by the safety system.",
    );
    assert.deepEqual(failure.details, {
      httpStatus: 200,
      requestId: null,
      retryAfterMs: null,
      retryRefused: false,
      upstream: {
        type: "image_generation_user_error",
        message: "Your request was rejected by the safety system.",
        code: "moderation_blocked",
        param: null,
      },
    });
  }
});

Deno.test("readAnswer() takes the request id from a gateway's error message", async () => {
  const failure = await failureOf(
    JSON.stringify({
      error: {
        message: "当前分组上游负载已饱和，请稍后再试 (request id: 20250101120000123456789abcdef)",
        type: "new_api_error",
      },
    }),
  );
  assert.equal(failure.stage, "request");
  assert.equal(failure.details.requestId, "20250101120000123456789abcdef");
});

Deno.test("readAnswer() reports a bare error string answered with 200 at stage request", async () => {
  const failure = await failureOf(`{"error":"无效的令牌"}`);
  assert.equal(failure.stage, "request");
  assert.equal(failure.details.httpStatus, 200);
  assert.deepEqual(failure.details.upstream, {
    type: null,
    message: "无效的令牌",
    code: null,
    param: null,
  });
});

Deno.test("readAnswer() reports a gateway's success:false answer at stage request", async () => {
  const failure = await failureOf(`{"success":false,"message":"额度不足","data":null}`);
  assert.equal(failure.stage, "request");
  assert.equal(failure.details.httpStatus, 200);
  assert.equal(failure.details.upstream?.message, "额度不足");
});

Deno.test("readAnswer() reports an empty data list apart, for the request to be repeated", async () => {
  const failure = await failureOf(`{"created":1,"data":[]}`);
  assert.ok(failure instanceof EmptyAnswerError);
  assert.equal(failure.stage, "response");
  assert.equal(failure.message, "The answer holds no image: its data is empty");
});

Deno.test("readAnswer() reports an answer without an image at stage response", async () => {
  const answers = [
    `{"data":[{}]}`,
    `{"data":[{"b64_json":"","url":""}]}`,
    `{"data":null}`,
    `{"created":1}`,
    `{}`,
    `[]`,
    `"text"`,
    `{"data":[{"b64_json":null,"url":null}]}`,
  ];
  for (const json of answers) {
    const failure = await failureOf(json);
    assert.equal(failure.stage, "response", json);
    assert.equal(
      failure.message,
      "The answer holds no image: no b64_json or url in data",
      json,
    );
  }
});

Deno.test("readAnswer() reports an HTML page answered with 200 at stage response", async () => {
  const html = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n" +
    "<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n";
  for (const cuts of everyCut(html)) {
    const failure = await failureOf(html, cuts);
    assert.equal(failure.stage, "response");
    assert.equal(failure.message, "The answer is not JSON: 502 Bad Gateway");
  }
});

Deno.test("readAnswer() reports plain text answered with 200 at stage response", async () => {
  const failure = await failureOf("upstream connect error or disconnect/reset before headers");
  assert.equal(failure.stage, "response");
  assert.equal(
    failure.message,
    "The answer is not JSON: upstream connect error or disconnect/reset before headers",
  );
});

Deno.test("readAnswer() reports an empty answer at stage response", async () => {
  assert.equal((await failureOf("")).message, "The answer is not JSON: it is empty");
  assert.equal((await failureOf(" \n ")).message, "The answer is not JSON: it is empty");
  const failure = await readAnswer(null, () => Promise.resolve()).then(
    () => assert.fail("expected a failure"),
    (error: unknown) => error,
  );
  assert.ok(failure instanceof GenerationError);
  assert.equal(failure.stage, "response");
  assert.equal(failure.message, "The answer is not JSON: it is empty");
});

Deno.test("readAnswer() reports an answer cut short inside the image at stage response", async () => {
  const failure = await failureOf(`{"data":[{"b64_json":"${IMAGE_B64}`);
  assert.equal(failure.stage, "response");
  assert.match(failure.message, /^The answer is not JSON: /);
});

Deno.test("readAnswer() reports invalid base64 at stage decode", async () => {
  const answers = [
    `{"data":[{"b64_json":"@@@@"}]}`,
    `{"data":[{"b64_json":"QUJDR"}]}`,
    `{"data":[{"b64_json":"QUJD-_+/"}]}`,
    `{"data":[{"b64_json":"   "}]}`,
    `{"data":[{"b64_json":"data:image/png,notbase64"}]}`,
    `{"data":[{"url":"data:image/png;base64,%%%%"}]}`,
    `{"data":[{"b64_json":"QUJD\\"QUJD"}]}`,
  ];
  for (const json of answers) {
    for (const cuts of everyCut(json)) {
      const failure = await failureOf(json, cuts);
      assert.equal(failure.stage, "decode", `${json} cut at ${cuts.slice(0, 3)}`);
    }
  }
});

Deno.test("readAnswer() cancels the body when it stops reading early", async () => {
  const json = encoder.encode(`{"data":[{"b64_json":"@@@@${"A".repeat(1000)}"}]}`);
  const body = new ChunkedBody(json, [30, 60, 90]);
  await assert.rejects(
    readAnswer(body.stream, () => Promise.resolve()),
    (error) => error instanceof GenerationError && error.stage === "decode",
  );
  assert.equal(body.cancelled, true);
});

Deno.test("readAnswer() decodes a 5 MB image in pieces of at most 1 MiB", async () => {
  const image = jpegLike(5_000_000, 5);
  const json = encoder.encode(
    JSON.stringify({ created: 1, data: [{ b64_json: image.toBase64() }], usage: { n: 1 } }),
  );
  const read = await readCut(json, randomCuts(json.length, 70_000, 17));
  assert.ok(sameBytes(read.bytes, image));
  assert.deepEqual(read.answer, { ...STREAMED, usage: { n: 1 } });
  assert.ok(read.chunkSizes.length >= 5, `only ${read.chunkSizes.length} pieces`);
  assert.ok(read.chunkSizes.every((size) => size > 0 && size <= MIB));
});

Deno.test("readAnswer() decodes a 5 MB image given in one chunk in pieces of at most 1 MiB", async () => {
  const image = jpegLike(5_000_000, 6);
  const read = await readCut(`{"data":[{"b64_json":"${image.toBase64()}"}]}`);
  assert.ok(sameBytes(read.bytes, image));
  assert.ok(read.chunkSizes.length >= 5, `only ${read.chunkSizes.length} pieces`);
  assert.ok(read.chunkSizes.every((size) => size > 0 && size <= MIB));
});

Deno.test("readAnswer() keeps only the skeleton of an answer, not its 5 MB image", async () => {
  // More than 1 MiB of text outside the image is refused; a 7 MB base64 image is not, so
  // the image text is not what is kept.
  const image = jpegLike(5 * 1024 * 1024, 8);
  const read = await readCut(`{"data":[{"b64_json":"${image.toBase64()}"}]}`, [1000, 3 * MIB]);
  assert.equal(read.bytes.length, image.length);

  const big = JSON.stringify({
    data: [{ b64_json: IMAGE_B64, revised_prompt: "x".repeat(5 * 1024 * 1024) }],
  });
  const failure = await failureOf(big, randomCuts(big.length, 65536, 3));
  assert.equal(failure.stage, "response");
  assert.equal(failure.message, "The answer has more than 1048576 bytes outside its image");
});

Deno.test("readAnswer() keeps a skeleton of many small strings up to its cap", async () => {
  // Each string is three pieces to keep (the comma, then each quote): kept one by one, a MiB
  // of them would cost hundreds of bytes each.
  const filler = '"",'.repeat(Math.floor((MAX_SKELETON_BYTES - 100) / 3));
  const json = `{"data":[{"b64_json":"${IMAGE_B64}"}],"x":[${filler}""]}`;
  const read = await readCut(json, randomCuts(json.length, 65536, 4));
  assert.ok(sameBytes(read.bytes, IMAGE));
  const over = `{"data":[{"b64_json":"${IMAGE_B64}"}],"x":[${filler}${filler}""]}`;
  const failure = await failureOf(over, randomCuts(over.length, 65536, 5));
  assert.equal(failure.stage, "response");
  assert.equal(
    failure.message,
    `The answer has more than ${MAX_SKELETON_BYTES} bytes outside its image`,
  );
});

Deno.test("readAnswer() reads an answer nested half a million deep without overflowing", async () => {
  // The scan keeps no stack and JSON.parse is iterative: depth costs only the skeleton's bytes.
  const depth = 500_000;
  const json = `{"data":[{"b64_json":"${IMAGE_B64}"}],"usage":${"[".repeat(depth)}${
    "]".repeat(depth)
  }}`;
  const read = await readCut(json, randomCuts(json.length, 65536, 6));
  assert.ok(sameBytes(read.bytes, IMAGE));
  let level = read.answer.usage;
  for (let i = 0; i < depth; i++) level = (level as unknown[])[0] ?? level;
  assert.deepEqual(level, []);
});

Deno.test("readAnswer() refuses escapes in b64_json that are not whitespace", async () => {
  for (const escape of ["\\b", '\\"', "\\\\"]) {
    const failure = await failureOf(
      `{"data":[{"b64_json":"${IMAGE_B64.slice(0, 8)}${escape}AAAA"}]}`,
    );
    assert.equal(failure.stage, "decode", escape);
  }
});

Deno.test("readAnswer() decodes large answers in random chunk sizes byte for byte", async () => {
  const sizes = [70_000, 1_048_577, 2_500_001];
  for (const [index, size] of sizes.entries()) {
    const image = jpegLike(size, 40 + index);
    const escaped = image.toBase64().replace(/.{76}/g, "$&\n").replaceAll("/", "\\/")
      .replaceAll("\n", "\\n");
    const json = encoder.encode(`{"data":[{"url":"","b64_json":"${escaped}"}]}`);
    for (const maxPiece of size < MIB ? [7, 4096] : [4096, 300_000]) {
      const read = await readCut(json, randomCuts(json.length, maxPiece, size + maxPiece));
      assert.ok(sameBytes(read.bytes, image), `size ${size}, pieces up to ${maxPiece}`);
    }
  }
});

Deno.test("interpretAnswer() finds a url in data as an array or a single object", () => {
  const expected: Answer = {
    source: { kind: "url", url: "https://x.example/a.png" },
    revisedPrompt: "a cat",
    usage: { total_tokens: 1 },
    settings: {},
  };
  assert.deepEqual(
    interpretAnswer(
      `{"data":[{"url":"https://x.example/a.png","revised_prompt":"a cat"}],"usage":{"total_tokens":1}}`,
    ),
    expected,
  );
  assert.deepEqual(
    interpretAnswer(
      `{"data":{"url":"https://x.example/a.png","revised_prompt":"a cat"},"usage":{"total_tokens":1}}`,
    ),
    expected,
  );
});

Deno.test("interpretAnswer() skips items without an image", () => {
  assert.deepEqual(
    interpretAnswer(`{"data":[{"url":""},null,"x",{"url":"https://x.example/b.png"}]}`).source,
    { kind: "url", url: "https://x.example/b.png" },
  );
});

Deno.test("interpretAnswer() clips the text of a non-JSON answer", () => {
  const failure = (() => {
    try {
      interpretAnswer("e".repeat(9000));
    } catch (error) {
      return error;
    }
  })();
  assert.ok(failure instanceof GenerationError);
  assert.equal(failure.stage, "response");
  // Clipped generously here; the result clips every field to 1000 characters once it is masked.
  assert.equal(failure.message, `The answer is not JSON: ${"e".repeat(7999)}…`);
});
