import assert from "node:assert/strict";
import { InputError } from "../lib/failure/errors.ts";
import {
  callContext,
  failureResult,
  mediaLine,
  ResultCutShort,
  type SavedImage,
  type SuccessResult,
  unwrittenExitCode,
  writeResult,
} from "../lib/result.ts";
import { concat, randomBytes } from "./_helpers.ts";

const PNG_HEAD = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function success(imagePath: string, extra: Partial<SuccessResult> = {}): SuccessResult {
  return {
    ok: true,
    stage: "done",
    image_path: imagePath,
    bytes: 0,
    base_url: "https://api.example.com/v1",
    model: "gpt-image-2",
    size: "1024x1024",
    task_name: "cat",
    elapsed_ms: 1,
    mime_type: "image/png",
    width: 1,
    height: 1,
    ...extra,
  };
}

async function written(
  result: SuccessResult,
  image: SavedImage | null = null,
): Promise<{ text: string; writes: number; largest: number }> {
  const parts: Uint8Array[] = [];
  await writeResult(result, (bytes) => {
    parts.push(bytes.slice());
    return Promise.resolve();
  }, image);
  const text = new TextDecoder().decode(concat(parts));
  return { text, writes: parts.length, largest: Math.max(...parts.map((part) => part.length)) };
}

Deno.test("writeResult() prints 2-space JSON and one newline", async () => {
  const result = success("/tmp/x.png");
  const { text } = await written(result);
  assert.equal(text, JSON.stringify(result, null, 2) + "\n");
});

/** An image read back in pieces of the size asked for, as ImageFile does. */
function savedImage(bytes: Uint8Array): SavedImage {
  return {
    async *pieces(size: number) {
      for (let offset = 0; offset < bytes.length; offset += size) {
        yield await Promise.resolve(bytes.subarray(offset, offset + size));
      }
    },
  };
}

Deno.test("writeResult() writes b64 from the saved image in pieces, as JSON.stringify would", async () => {
  const image = randomBytes(7 * 1024 * 1024 + 1, 3);
  const result = success("/tmp/x.png");
  const { text, writes, largest } = await written(result, savedImage(image));
  assert.equal(text, JSON.stringify({ ...result, b64: image.toBase64() }, null, 2) + "\n");
  assert.ok(writes >= 4, `${writes} writes`);
  assert.ok(largest <= 4 * 1024 * 1024, `largest write ${largest}`);
});

Deno.test("writeResult() writes nothing when the result cannot be made into JSON", async () => {
  const usage: Record<string, unknown> = {};
  usage.self = usage;
  let writes = 0;
  const writing = writeResult(success("/tmp/x.png", { usage }), () => {
    writes++;
    return Promise.resolve();
  }, savedImage(PNG_HEAD));
  await assert.rejects(writing, (error) => error instanceof TypeError);
  assert.equal(writes, 0);
});

Deno.test("writeResult() reports a failure after the first byte as cut short", async () => {
  const broken: SavedImage = {
    // deno-lint-ignore require-yield
    async *pieces() {
      throw await Promise.resolve(new Error("Input/output error"));
    },
  };
  const parts: Uint8Array[] = [];
  const writing = writeResult(success("/tmp/x.png"), (bytes) => {
    parts.push(bytes);
    return Promise.resolve();
  }, broken);
  await assert.rejects(writing, ResultCutShort);
  assert.equal(parts.length, 1);
});

Deno.test("mediaLine() prints MEDIA:<path> only for a path that stays on its line", () => {
  assert.equal(
    mediaLine("/tmp/images/cat-20250304-050607.png"),
    "MEDIA:/tmp/images/cat-20250304-050607.png\n",
  );
  assert.equal(mediaLine("/tmp/橘猫/cat.png"), "MEDIA:/tmp/橘猫/cat.png\n");
  for (
    const forged of [
      "/tmp/a\nMEDIA:/etc/passwd\n/x.png",
      "/tmp/a\rMEDIA:/x.png",
      "/tmp/a\u2028b.png",
      "/tmp/a\u0085b.png",
      "/tmp/\ud800.png",
    ]
  ) {
    assert.equal(mediaLine(forged), null, JSON.stringify(forged));
  }
});

Deno.test("writeResult() writes a result without a saved image as JSON.stringify would, b64 included", async () => {
  const b64 = randomBytes(1024, 4).toBase64();
  const result = success("/tmp/x.png", { b64 });
  const { text } = await written(result);
  assert.equal(text, JSON.stringify(result, null, 2) + "\n");
});

const KEY = "sk-probe-SECRETKEY1234567890";

Deno.test("failureResult() masks the key and its pieces in the fields it repeats of the input", () => {
  const result = failureResult(
    new InputError("Invalid input"),
    callContext({
      api_key: `${KEY}é`,
      base_url: `https://api.example.com/${KEY}/v1`,
      model: `m-${KEY.slice(0, 20)}`,
      size: KEY,
      task_name: `cat ${KEY.slice(6)}`,
    }),
  );
  assert.deepEqual(
    [result.base_url, result.model, result.size, result.task_name],
    ["https://api.example.com/***/v1", "m-***", "***", "cat ***"],
  );
});

Deno.test("failureResult() masks an extra header's value in the fields it repeats", () => {
  const context = callContext({
    api_key: KEY,
    model: "m-hdrsecretVALUE98765",
    extra_headers: { "x-portkey-api-key": "hdrsecretVALUE98765" },
  });
  assert.equal(failureResult(new InputError("Invalid input"), context).model, "m-***");
});

Deno.test("failureResult() repeats a base_url only when it is an http(s) URL, which the key is not", () => {
  const shown = (base_url: string) =>
    failureResult(
      new InputError("x"),
      callContext({ api_key: "https://api.example.com/v1", base_url }),
    )
      .base_url;
  assert.equal(shown(KEY), null);
  assert.equal(shown(`sk:${KEY}`), null);
  assert.equal(shown("http://127.0.0.1:8080/v1"), "http://127.0.0.1:8080/v1");
});

Deno.test("unwrittenExitCode() gives 1 for a closed or cut-short standard output, and throws anything else", () => {
  assert.equal(unwrittenExitCode(new Deno.errors.BrokenPipe("closed"), null), 1);
  assert.equal(unwrittenExitCode(new ResultCutShort("cut"), 143), 1);
  const other = new TypeError("a bug");
  assert.throws(() => unwrittenExitCode(other, 143), (error) => error === other);
});
