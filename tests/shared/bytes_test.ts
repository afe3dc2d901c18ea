import assert from "node:assert/strict";
import { indexOfAscii } from "../../lib/shared/bytes.ts";

Deno.test("indexOfAscii finds the first of one or two ASCII bytes, near or far, in any bytes", () => {
  const encoder = new TextEncoder();
  const far = encoder.encode("A".repeat(200_000) + '"' + "B".repeat(10) + "\n");
  assert.equal(indexOfAscii(far, 0x22), 200_000);
  assert.equal(indexOfAscii(far, 0x0a, 0, 0x22), 200_000);
  assert.equal(indexOfAscii(far, 0x0a), 200_011);
  assert.equal(indexOfAscii(far, 0x22, 200_001), -1);
  assert.equal(indexOfAscii(encoder.encode('ab"'), 0x22), 2);
  // Bytes that are not ASCII, or not UTF-8 at all, keep their indexes.
  const mixed = encoder.encode("é".repeat(100_000) + '"');
  assert.equal(indexOfAscii(mixed, 0x22), 200_000);
  const invalid = new Uint8Array(150_000).fill(0xff);
  invalid[149_000] = 0x22;
  assert.equal(indexOfAscii(invalid, 0x22), 149_000);
});
