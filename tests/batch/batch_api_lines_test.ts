import assert from "node:assert/strict";
import { outputLines, parseOutputLine } from "../../lib/batch/batch_api_lines.ts";
import { pollBackoffMs } from "../../lib/batch/batch_api_run.ts";

const encoder = new TextEncoder();

async function* chunked(text: string, size: number): AsyncGenerator<Uint8Array> {
  const bytes = encoder.encode(text);
  for (let i = 0; i < bytes.length; i += size) yield bytes.slice(i, i + size);
}

Deno.test("a line's fields are found in any key order, with escapes and spaces", () => {
  const text =
    `{ "response" : {"body": {"data": [{"b64_json": "QUJD\\/"}], "note": "a \\"}\\" b"},` +
    ` "request_id": "req_1", "status_code": 200}, "custom_id": "j\\u00e9", "error": null }`;
  const line = parseOutputLine(encoder.encode(text), 1);
  assert.equal(line.problem, null);
  assert.equal(line.customId, "jé");
  assert.equal(line.statusCode, 200);
  assert.equal(line.requestId, "req_1");
  assert.deepEqual(
    JSON.parse(new TextDecoder().decode(line.body!)),
    { data: [{ b64_json: "QUJD/" }], note: 'a "}" b' },
  );
});

Deno.test("an error line, and a line that is not JSON, are told apart", () => {
  const error = parseOutputLine(
    encoder.encode(`{"custom_id":"a","response":null,"error":{"code":"batch_expired"}}`),
    2,
  );
  assert.equal(error.body, null);
  assert.deepEqual(error.error, { code: "batch_expired" });
  assert.match(parseOutputLine(encoder.encode(`{"custom_id": "a"`), 3).problem!, /not a JSON/);
});

Deno.test("lines cut across chunks anywhere come out whole, a too long one as a problem", async () => {
  const lines = [
    `{"custom_id":"a","response":{"status_code":200,"body":{"x":1}}}`,
    "",
    `{"custom_id":"b","response":{"status_code":400,"body":{"error":{}}}}`,
  ];
  for (const size of [1, 3, 7, 1000]) {
    const read = await Array.fromAsync(outputLines(chunked(lines.join("\n"), size), 1000));
    assert.deepEqual(read.map((line) => [line.number, line.customId, line.statusCode]), [
      [1, "a", 200],
      [3, "b", 400],
    ]);
  }
  const long = await Array.fromAsync(outputLines(chunked(lines[0]! + "\n" + lines[2]!, 5), 40));
  assert.equal(long.length, 2);
  assert.match(long[0]!.problem!, /longer than 40 bytes/);
});

Deno.test("a failed look waits twice as long each time, as Retry-After asks, and no longer than 10 min", () => {
  assert.equal(pollBackoffMs(0, 30_000, {}), 60_000);
  assert.equal(pollBackoffMs(60_000, 30_000, {}), 120_000);
  assert.equal(pollBackoffMs(0, 5_000, { retry_after_ms: 40_000 }), 40_000);
  // What Retry-After asks is the wait, shorter than the poll too, but at least 1 s.
  assert.equal(pollBackoffMs(60_000, 30_000, { retry_after_ms: 1500 }), 1500);
  assert.equal(pollBackoffMs(0, 5_000, { retry_after_ms: 0 }), 1000);
  assert.equal(pollBackoffMs(0, 5_000, { retry_after_ms: 86_400_000 }), 600_000);
  assert.equal(pollBackoffMs(480_000, 30_000, {}), 600_000);
});
