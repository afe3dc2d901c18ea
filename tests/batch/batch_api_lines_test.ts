import assert from "node:assert/strict";
import {
  doneWith,
  type OutputLine,
  outputLines,
  parseOutputLine,
} from "../../lib/batch/batch_api_lines.ts";
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

interface ReadLine {
  number: number;
  customId: string | null;
  statusCode: number | null;
  body: string | null;
  problem: string | null;
}

/** Every line, its body read as text (or not read at all, for the numbers in `unread`). */
async function readAll(
  chunks: AsyncIterable<Uint8Array>,
  maxLineBytes = 1000,
  unread: number[] = [],
): Promise<ReadLine[]> {
  const read: ReadLine[] = [];
  for await (const line of outputLines(chunks, maxLineBytes)) {
    let body: string | null = null;
    if (line.body !== null && !unread.includes(line.number)) {
      body = await new Response(line.body).text().catch((error) => `failed: ${error.message}`);
    }
    doneWith(line);
    const { number, customId, statusCode, problem } = line;
    read.push({ number, customId, statusCode, body, problem });
  }
  return read;
}

const tricky = String.raw`{"data":[{"b64_json":"QU\/JD"}],"note":"a \\\"}\\","x":[{"y":"}"}]}`;

Deno.test("lines cut across chunks anywhere come out whole, their bodies exactly", async () => {
  const lines = [
    `{"id":"r1","custom_id":"a","response":{"status_code":200,"request_id":"q","body":${tricky}},"error":null}`,
    "",
    `{"custom_id":"b","response":{"status_code":400,"body":{"error":{}}}}`,
    `{"response":{"body":{"x":1},"status_code":200},"custom_id":"c"}`,
  ];
  for (const size of [1, 2, 3, 7, 64, 1000]) {
    const read = await readAll(chunked(lines.join("\n"), size));
    assert.deepEqual(read.map((line) => [line.number, line.customId, line.statusCode, line.body]), [
      [1, "a", 200, tricky],
      [3, "b", 400, `{"error":{}}`],
      [4, "c", 200, `{"x":1}`],
    ], `chunks of ${size}`);
    assert.ok(read.every((line) => line.problem === null));
  }
});

Deno.test("a body left unread is skipped, and the next line still found", async () => {
  const text = `{"custom_id":"a","response":{"status_code":200,"body":${tricky}}}\n` +
    `{"custom_id":"b","response":{"status_code":200,"body":{"x":"\\n}"}}}\n`;
  for (const size of [1, 5, 1000]) {
    const read = await readAll(chunked(text, size), 1000, [1]);
    assert.deepEqual(read.map((line) => [line.customId, line.body]), [
      ["a", null],
      ["b", `{"x":"\\n}"}`],
    ]);
  }
});

Deno.test("a line cut inside its body is a problem, its body fails, and the next is read", async () => {
  const whole = `{"custom_id":"c","response":{"status_code":200,"body":{"x":1}}}`;
  for (const size of [1, 4, 1000]) {
    const read = await readAll(chunked(
      `{"custom_id":"a","response":{"status_code":200,"body":{"data":"QUJD\n` +
        `{"custom_id":"b","response":{"status_code":200,"body":{"data":[1,\n${whole}\n` +
        `{"custom_id":"d","response":{"status_code":200,"body":{"data":"QU`,
      size,
    ));
    assert.deepEqual(read.map((line) => line.number), [1, 2, 3, 4]);
    assert.equal(read[2]!.customId, "c");
    assert.equal(read[2]!.problem, null);
    // Streamed when the head comes before the newline does; read whole, and refused, when not.
    const streamed = size < 10;
    if (streamed) {
      assert.deepEqual(read.map((line) => line.problem), [
        "The line ends inside a string of its body",
        "The line ends inside its body",
        null,
        "The file ends inside the line",
      ]);
    } else {
      for (const n of [0, 1]) assert.match(read[n]!.problem!, /not a JSON object/);
      assert.equal(read[3]!.problem, "The file ends inside the line");
    }
    if (streamed) assert.match(read[0]!.body!, /^failed: /);
    assert.equal(read[2]!.body, `{"x":1}`);
  }
});

Deno.test("a download that fails inside a line fails its body, then the reading", async () => {
  async function* failing(): AsyncGenerator<Uint8Array> {
    yield encoder.encode(`{"custom_id":"a","response":{"status_code":200,"body":{"data":"QU`);
    throw new Error("connection reset");
  }
  const lines: OutputLine[] = [];
  const bodies: string[] = [];
  await assert.rejects(async () => {
    for await (const line of outputLines(failing(), 1000)) {
      lines.push(line);
      bodies.push(await new Response(line.body).text().catch((error) => error.message));
      doneWith(line);
    }
  }, /connection reset/);
  assert.equal(lines.length, 1);
  assert.match(lines[0]!.problem!, /The download failed inside the line: connection reset/);
});

Deno.test("a line too long, or whose head is too long to wait for its body, is held or refused", async () => {
  const long = `{"response":{"status_code":200,"body":{"x":1}},"custom_id":"a"}`;
  const refused = await readAll(chunked(`${long}\n${long}`, 5), 40);
  assert.equal(refused.length, 2);
  assert.match(refused[0]!.problem!, /longer than 40 bytes/);
  const padded = `{"pad":"${"p".repeat(70 * 1024)}","custom_id":"b",` +
    `"response":{"status_code":200,"body":{"x":2}}}`;
  const held = await readAll(chunked(padded, 4096), 1 << 20);
  assert.deepEqual(held.map((line) => [line.customId, line.body]), [["b", `{"x":2}`]]);
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

Deno.test("a body is streamed, not held: a line far over the bound for held lines is read", async () => {
  const image = "QUJD".repeat(50_000);
  const line =
    `{"custom_id":"a","response":{"status_code":200,"body":{"data":[{"b64_json":"${image}"}]}}}`;
  const read = await readAll(chunked(line + "\n", 64 * 1024), 1000);
  assert.deepEqual(read.map((l) => [l.customId, l.problem, l.body?.length]), [
    ["a", null, line.length - 56],
  ]);
});
