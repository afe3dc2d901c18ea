import assert from "node:assert/strict";
import { Base64Error, Base64StreamDecoder } from "../../lib/image/base64_stream.ts";
import { concat, randomBytes, randomSource } from "../_helpers.ts";

const MIB = 1 << 20;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Cuts `text` into pieces of random length from 1 to `max`. */
function randomPieces(text: string, max: number, seed: number): string[] {
  const random = randomSource(seed);
  const pieces: string[] = [];
  for (let i = 0; i < text.length;) {
    const length = 1 + Math.floor(random() * max);
    pieces.push(text.slice(i, i + length));
    i += length;
  }
  return pieces;
}

interface Decoded {
  bytes: Uint8Array;
  chunkSizes: number[];
  finished: number;
  bytesWritten: number;
}

/** Pushes each piece, finishes, and returns what the sink received, copied. */
async function decodePieces(pieces: string[]): Promise<Decoded> {
  const chunks: Uint8Array[] = [];
  const stream = new Base64StreamDecoder((bytes) => {
    chunks.push(bytes.slice());
    return Promise.resolve();
  });
  for (const piece of pieces) await stream.push(piece);
  const finished = await stream.finish();
  return {
    bytes: concat(chunks),
    chunkSizes: chunks.map((chunk) => chunk.length),
    finished,
    bytesWritten: stream.bytesWritten,
  };
}

async function decodeText(pieces: string[]): Promise<string> {
  return decoder.decode((await decodePieces(pieces)).bytes);
}

/** The Base64Error that decoding `pieces` must raise. */
async function errorOf(pieces: string[]): Promise<Base64Error> {
  try {
    await decodePieces(pieces);
  } catch (error) {
    assert.ok(error instanceof Base64Error, `expected a Base64Error, got ${error}`);
    return error;
  }
  assert.fail(`expected ${JSON.stringify(pieces)} to be rejected`);
}

/** Every way to cut `text` in two. */
function everySplit(text: string): string[][] {
  const splits: string[][] = [];
  for (let i = 0; i <= text.length; i++) splits.push([text.slice(0, i), text.slice(i)]);
  return splits;
}

/** Every way to cut `text` in three. */
function everyThreeWaySplit(text: string): string[][] {
  const splits: string[][] = [];
  for (let i = 0; i <= text.length; i++) {
    for (let j = i; j <= text.length; j++) {
      splits.push([text.slice(0, i), text.slice(i, j), text.slice(j)]);
    }
  }
  return splits;
}

const HELLO = "hello world";
const HELLO_BASE64 = "aGVsbG8gd29ybGQ=";

Deno.test("Base64StreamDecoder decodes padded standard base64", async () => {
  assert.equal(await decodeText([HELLO_BASE64]), HELLO);
});

Deno.test("Base64StreamDecoder decodes unpadded base64", async () => {
  assert.equal(await decodeText(["aGVsbG8gd29ybGQ"]), HELLO);
  assert.equal(await decodeText(["aGk"]), "hi");
  assert.equal(await decodeText(["QQ"]), "A");
});

Deno.test("Base64StreamDecoder decodes the standard alphabet's + and /", async () => {
  assert.deepEqual((await decodePieces(["+/+/"])).bytes, new Uint8Array([0xfb, 0xff, 0xbf]));
});

Deno.test("Base64StreamDecoder decodes the URL-safe alphabet's - and _", async () => {
  assert.deepEqual((await decodePieces(["-_-_"])).bytes, new Uint8Array([0xfb, 0xff, 0xbf]));
  assert.deepEqual((await decodePieces(["-_8"])).bytes, new Uint8Array([0xfb, 0xff]));
  assert.deepEqual((await decodePieces(["-_8="])).bytes, new Uint8Array([0xfb, 0xff]));
});

Deno.test("Base64StreamDecoder ignores spaces, tabs and line breaks", async () => {
  assert.equal(await decodeText(["aGVs\nbG8g\r\nd29y bGQ=\n"]), HELLO);
  assert.equal(await decodeText(["  aG\tVsbG8gd29ybGQ=  "]), HELLO);
  assert.equal(await decodeText(["a G V s b G 8 g d 2 9 y b G Q ="]), HELLO);
});

Deno.test("Base64StreamDecoder strips a data URL prefix", async () => {
  assert.equal(await decodeText([`data:image/png;base64,${HELLO_BASE64}`]), HELLO);
  assert.equal(await decodeText([`  data:text/plain;charset=utf-8;base64,${HELLO_BASE64}`]), HELLO);
});

Deno.test("Base64StreamDecoder reads the base64 marker of a data URL in any case", async () => {
  assert.equal(await decodeText([`data:image/png;BASE64,${HELLO_BASE64}`]), HELLO);
});

Deno.test("Base64StreamDecoder rejects a data URL that is not base64", async () => {
  assert.equal(
    (await errorOf(["data:image/png,hello"])).message,
    "Data URL is not base64-encoded",
  );
  assert.equal(
    (await errorOf(["data:image/png;charset=x,aGk="])).message,
    "Data URL is not base64-encoded",
  );
});

Deno.test("Base64StreamDecoder rejects a data URL whose header never ends", async () => {
  assert.equal(
    (await errorOf(["data:image/png;base64" + "x".repeat(300)])).message,
    "Data URL is not base64-encoded",
  );
  assert.equal((await errorOf(["data:image/png"])).message, "Data URL is not base64-encoded");
});

Deno.test("Base64StreamDecoder decodes text that starts like a data URL but is base64", async () => {
  // "dGVzdA==" is "test": it begins with "d", as "data:" does.
  assert.equal(await decodeText(["d", "GVzdA=="]), "test");
  assert.deepEqual((await decodePieces(["dat", "a"])).bytes, new Uint8Array([0x75, 0xab, 0x5a]));
});

Deno.test("Base64StreamDecoder gives the same bytes wherever two pushes split the text", async () => {
  const texts = [
    HELLO_BASE64,
    "aGVsbG8gd29ybGQ",
    ` data:image/png;base64,aGVs\nbG8g d29y\r\nbGQ=\n`,
    "aGVsbG8gd29ybGQhISE-_w",
    "aGVsbG8gd29ybGQhISE+/w==",
  ];
  for (const text of texts) {
    const expected = (await decodePieces([text])).bytes;
    for (const pieces of everySplit(text)) {
      assert.deepEqual((await decodePieces(pieces)).bytes, expected, JSON.stringify(pieces));
    }
  }
});

Deno.test("Base64StreamDecoder gives the same bytes wherever three pushes split the text", async () => {
  const text = `data:image/png;base64,aGVs bG8g\nd29ybGQh-_8`;
  const expected = new Uint8Array([...encoder.encode("hello world!"), 0xfb, 0xff]);
  for (const pieces of everyThreeWaySplit(text)) {
    assert.deepEqual((await decodePieces(pieces)).bytes, expected, JSON.stringify(pieces));
  }
});

Deno.test("Base64StreamDecoder decodes one character per push", async () => {
  const text = `data:image/gif;base64,${HELLO_BASE64}`;
  assert.equal(await decodeText([...text]), HELLO);
});

Deno.test("Base64StreamDecoder gives back random data of many sizes byte for byte", async () => {
  const sizes = [1, 2, 3, 4, 5, 6, 7, 100, 1000, 4095, 65537, MIB - 1, MIB, MIB + 1, 3 * MIB + 2];
  for (const [index, size] of sizes.entries()) {
    const original = randomBytes(size, index + 1);
    const variants = [
      original.toBase64(),
      original.toBase64({ omitPadding: true }),
      original.toBase64({ alphabet: "base64url" }),
      original.toBase64({ alphabet: "base64url", omitPadding: true }),
    ];
    for (const [v, text] of variants.entries()) {
      const pieces = randomPieces(text, 1 + (size % 70000), size * 4 + v);
      const decoded = await decodePieces(pieces);
      assert.equal(decoded.bytes.length, size, `size ${size}, variant ${v}`);
      assert.ok(
        decoded.bytes.every((byte, i) => byte === original[i]),
        `size ${size}, variant ${v}`,
      );
      assert.equal(decoded.finished, size);
      assert.equal(decoded.bytesWritten, size);
    }
  }
});

Deno.test("Base64StreamDecoder gives back more than 1 MiB of line-wrapped base64", async () => {
  const original = randomBytes(2 * MIB + 123, 99);
  const wrapped = original.toBase64().replace(/.{76}/g, "$&\r\n");
  const decoded = await decodePieces(randomPieces(wrapped, 9000, 7));
  assert.equal(decoded.bytes.length, original.length);
  assert.ok(decoded.bytes.every((byte, i) => byte === original[i]));
});

Deno.test("Base64StreamDecoder hands the sink pieces of at most 1 MiB", async () => {
  const original = randomBytes(5 * 1000 * 1000, 5);
  const decoded = await decodePieces([original.toBase64()]);
  assert.equal(decoded.bytes.length, 5_000_000);
  assert.ok(decoded.chunkSizes.length >= 5, `${decoded.chunkSizes.length} pieces`);
  assert.ok(decoded.chunkSizes.every((size) => size > 0 && size <= MIB), `${decoded.chunkSizes}`);
});

Deno.test("Base64StreamDecoder waits for a slow sink before reusing its buffer", async () => {
  const original = randomBytes(3 * MIB + 7, 11);
  const chunks: Uint8Array[] = [];
  const stream = new Base64StreamDecoder(async (bytes) => {
    await new Promise((resolve) => setTimeout(resolve, 0));
    chunks.push(bytes.slice());
  });
  for (const piece of randomPieces(original.toBase64(), 2 * MIB, 3)) await stream.push(piece);
  assert.equal(await stream.finish(), original.length);
  const bytes = concat(chunks);
  assert.equal(bytes.length, original.length);
  assert.ok(bytes.every((byte, i) => byte === original[i]));
});

Deno.test("Base64StreamDecoder rejects the two alphabets mixed in one push", async () => {
  assert.equal(
    (await errorOf(["ab+/cd-_"])).message,
    "Invalid base64: it mixes the standard and the URL-safe alphabets",
  );
});

Deno.test("Base64StreamDecoder rejects the two alphabets mixed across pushes", async () => {
  const message = "Invalid base64: it mixes the standard and the URL-safe alphabets";
  assert.equal((await errorOf(["ab+/", "cd-_"])).message, message);
  assert.equal((await errorOf(["ab-_", "cd+/"])).message, message);
  assert.equal((await errorOf(["ab-_", "AAAA", "AAAA", "cd/A"])).message, message);
});

Deno.test("Base64StreamDecoder rejects mixed alphabets wherever the pushes split the text", async () => {
  for (const pieces of everySplit("QUJD+/+/-_-_QUJD")) {
    assert.equal(
      (await errorOf(pieces)).message,
      "Invalid base64: it mixes the standard and the URL-safe alphabets",
      JSON.stringify(pieces),
    );
  }
});

Deno.test("Base64StreamDecoder rejects empty text", async () => {
  for (
    const pieces of [[], [""], ["", ""], ["  \n\t "], ["data:image/png;base64,"], [
      "data:",
      "x;base64,",
    ]]
  ) {
    assert.equal(
      (await errorOf(pieces)).message,
      "The base64 text is empty",
      JSON.stringify(pieces),
    );
  }
});

Deno.test("Base64StreamDecoder rejects characters outside both alphabets", async () => {
  for (const text of ["aGk!", "aG*k", "aGVsbG8g\u00e9", "aGVs\u0000bG8="]) {
    assert.match((await errorOf([text])).message, /^Invalid base64: /, JSON.stringify(text));
  }
});

Deno.test("Base64StreamDecoder rejects a lone character left at the end", async () => {
  assert.match((await errorOf(["QUJDR"])).message, /^Invalid base64: /);
  assert.match((await errorOf(["QUJD", "R"])).message, /^Invalid base64: /);
});

Deno.test("Base64StreamDecoder rejects text after the padding in one push", async () => {
  assert.match((await errorOf(["QQ==QUJD"])).message, /^Invalid base64: /);
});

Deno.test("Base64StreamDecoder rejects text after the padding wherever the pushes split it", async () => {
  const accepted: string[] = [];
  for (const pieces of everySplit("QQ==QUJD")) {
    try {
      await decodePieces(pieces);
      accepted.push(JSON.stringify(pieces));
    } catch (error) {
      assert.ok(error instanceof Base64Error);
    }
  }
  assert.deepEqual(accepted, []);
});

Deno.test("Base64StreamDecoder counts the bytes written as it goes", async () => {
  const stream = new Base64StreamDecoder(() => Promise.resolve());
  assert.equal(stream.bytesWritten, 0);
  await stream.push("QUJD");
  assert.equal(stream.bytesWritten, 3);
  await stream.push("REVG");
  assert.equal(stream.bytesWritten, 6);
  await stream.push("Rw");
  assert.equal(stream.bytesWritten, 6);
  assert.equal(await stream.finish(), 7);
  assert.equal(stream.bytesWritten, 7);
});

Deno.test("Base64StreamDecoder passes a failing sink's error through", async () => {
  const failure = new Error("disk full");
  const stream = new Base64StreamDecoder(() => Promise.reject(failure));
  const decodeAll = async () => {
    await stream.push("QUJDREVG");
    await stream.finish();
  };
  await assert.rejects(decodeAll(), (error) => error === failure);
});
