import assert from "node:assert/strict";
import { formatOfStart, MAX_SNIFF_BYTES, sniffAnswer } from "../../lib/upstream/answer_format.ts";
import { ChunkedBody, concat, everyCut } from "../_helpers.ts";

const encoder = new TextEncoder();
const SSE = new Headers({ "content-type": "text/event-stream" });
const JSON_TYPE = new Headers({ "content-type": "application/json" });

async function allBytes(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const all: Uint8Array[] = [];
  for await (const chunk of chunks) all.push(chunk);
  return concat(all);
}

Deno.test("formatOfStart() tells JSON by { or [ and events by a field or comment, after whitespace", () => {
  const cases: [string, string | null | undefined][] = [
    ['{"error":{}}', "json"],
    [" \r\n\t[{", "json"],
    ["\ufeff{", "json"],
    ["data: {}", "events"],
    ["event: error", "events"],
    ["id: 1", "events"],
    ["retry: 10", "events"],
    [": keep-alive", "events"],
    ["\n\ndata:", "events"],
    ["\ufeffevent:", "events"],
    ["<html>", null],
    ["Internal Server Error", null],
    ["database", null],
    ["data ", null],
    ["", undefined],
    ["  \n", undefined],
    ["dat", undefined],
    ["even", undefined],
    ["\ufeff", undefined],
  ];
  for (const [text, expected] of cases) {
    assert.equal(formatOfStart(encoder.encode(text)), expected, JSON.stringify(text));
  }
  // A byte order mark cut short, then something else.
  assert.equal(formatOfStart(new Uint8Array([0xef])), undefined);
  assert.equal(formatOfStart(new Uint8Array([0xef, 0x7b])), null);
});

Deno.test("sniffAnswer() goes by the start whatever the content type, and hands on every byte, cut at every byte", async () => {
  const bodies: [string, Headers, string][] = [
    ['{"error":{"code":"insufficient_quota","message":"quota"}}', SSE, "json"],
    ['\n  {"data":[]}', SSE, "json"],
    ["event: image_generation.completed\ndata: {}\n\n", JSON_TYPE, "events"],
    [": ping\n\ndata: {}\n\n", new Headers(), "events"],
    ["<html><title>oops</title></html>", SSE, "events"],
    ["<html><title>oops</title></html>", JSON_TYPE, "json"],
    ["   ", SSE, "events"],
    ["", JSON_TYPE, "json"],
  ];
  for (const [text, headers, expected] of bodies) {
    for (const cuts of everyCut(text)) {
      const bytes = encoder.encode(text);
      const { format, chunks } = await sniffAnswer(new ChunkedBody(bytes, cuts).stream, headers);
      assert.equal(format, expected, `${JSON.stringify(text)} cut at ${cuts}`);
      assert.deepEqual(await allBytes(chunks), bytes);
    }
  }
});

Deno.test("sniffAnswer() reads no more than it needs, and leaving its chunks early cancels the body", async () => {
  const bytes = encoder.encode('{"data":[]}' + "x".repeat(1000));
  for (const taken of [0, 1, 3]) {
    const source = new ChunkedBody(bytes, [1, 2, 3, 500]);
    const { format, chunks } = await sniffAnswer(source.stream, SSE);
    assert.equal(format, "json");
    assert.equal(source.cancelled, false);
    let count = 0;
    for await (const _chunk of chunks) if (++count > taken) break;
    if (taken === 0) await chunks.return(undefined);
    assert.equal(source.cancelled, true, `after ${taken} chunks`);
  }
});

Deno.test("sniffAnswer() lets the content type decide after MAX_SNIFF_BYTES of whitespace", async () => {
  const spaces = " ".repeat(MAX_SNIFF_BYTES + 2000);
  const bytes = encoder.encode(spaces + '{"data":[]}');
  const cuts = Array.from({ length: Math.floor(bytes.length / 1000) }, (_, i) => (i + 1) * 1000);
  const { format, chunks } = await sniffAnswer(new ChunkedBody(bytes, cuts).stream, SSE);
  assert.equal(format, "events");
  assert.deepEqual(await allBytes(chunks), bytes);
});

Deno.test("sniffAnswer() goes by the content type for a null body", async () => {
  const { format, chunks } = await sniffAnswer(null, SSE);
  assert.equal(format, "events");
  assert.equal((await allBytes(chunks)).length, 0);
});
