import assert from "node:assert/strict";
import { type SuccessResult, writeResult } from "../lib/result.ts";
import { randomBytes, withTempDir } from "./_helpers.ts";

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
  options: Parameters<typeof writeResult>[2] = {},
): Promise<{ text: string; writes: number; largest: number }> {
  const parts: Uint8Array[] = [];
  await writeResult(result, (bytes) => {
    parts.push(bytes.slice());
    return Promise.resolve();
  }, options);
  const text = new TextDecoder().decode(new Uint8Array(parts.flatMap((part) => [...part])));
  return { text, writes: parts.length, largest: Math.max(...parts.map((part) => part.length)) };
}

Deno.test("writeResult() prints 2-space JSON and one newline", async () => {
  const result = success("/tmp/x.png");
  const { text } = await written(result);
  assert.equal(text, JSON.stringify(result, null, 2) + "\n");
});

Deno.test("writeResult() writes b64 from the saved file in pieces, as JSON.stringify would", async () => {
  await withTempDir(async (dir) => {
    const image = randomBytes(7 * 1024 * 1024 + 1, 3);
    const path = `${dir}/x.png`;
    await Deno.writeFile(path, image);
    const result = success(path);
    const { text, writes, largest } = await written(result, { base64FromFile: true });
    assert.equal(text, JSON.stringify({ ...result, b64: image.toBase64() }, null, 2) + "\n");
    assert.ok(writes >= 4, `${writes} writes`);
    assert.ok(largest <= 4 * 1024 * 1024, `largest write ${largest}`);
  });
});

Deno.test("writeResult() writes a b64 string given in the result the same way", async () => {
  const b64 = randomBytes(5 * 1024 * 1024, 4).toBase64();
  const result = success("/tmp/x.png", { b64 });
  const { text, largest } = await written(result);
  assert.equal(text, JSON.stringify(result, null, 2) + "\n");
  assert.ok(largest <= 4 * 1024 * 1024, `largest write ${largest}`);
});
