/**
 * How an HTTP exchange fails, against real local servers: "Cannot reach" only when no
 * connection was made, and a connection that drops or a deadline that passes after the request
 * was sent says so; an error body is read up to a cap.
 */
import assert from "node:assert/strict";
import { Deadline } from "../../lib/upstream/deadline.ts";
import { diagnose } from "../../lib/failure/diagnosis.ts";
import { factsOf } from "../../lib/failure/errors.ts";
import { generateImage } from "../../lib/mod.ts";
import { callContext, failureResult } from "../../lib/result.ts";
import type { FailureResult } from "../../lib/mod.ts";
import {
  MAX_ERROR_BODY_BYTES,
  readTextCapped,
  transportFailure,
} from "../../lib/upstream/http_failure.ts";
import { maskThenClip, secretsOf } from "../../lib/shared/redact.ts";
import { MAX_FIELD_CHARS, parseUpstreamError } from "../../lib/upstream/upstream_error.ts";
import { inputFor, listDir, startFakeUpstream } from "../_fake_upstream.ts";
import { failure, withTempDir } from "../_helpers.ts";

const encoder = new TextEncoder();

/** A TCP server that hands each connection to `handle`, for what Deno.serve will not do. */
class RawServer {
  readonly #listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  readonly #accepting: Promise<void>;
  readonly #handlers: Promise<void>[] = [];

  constructor(handle: (conn: Deno.TcpConn) => Promise<void>) {
    this.#accepting = (async () => {
      for await (const conn of this.#listener) {
        this.#handlers.push(
          handle(conn).catch(() => {}).finally(() => {
            try {
              conn.close();
            } catch { /* closed by the handler */ }
          }),
        );
      }
    })();
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.#listener.addr.port}/v1`;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#listener.close();
    await this.#accepting.catch(() => {});
    await Promise.all(this.#handlers);
  }
}

/** Reads until the end of the request's headers and its JSON body (a closing brace). */
async function readRequest(conn: Deno.Conn): Promise<void> {
  const buffer = new Uint8Array(64 * 1024);
  let text = "";
  while (!/\r\n\r\n[\s\S]*\}$/.test(text)) {
    const read = await conn.read(buffer);
    if (read === null) return;
    text += new TextDecoder().decode(buffer.subarray(0, read));
  }
}

async function generateAgainst(
  baseUrl: string,
  overrides: Record<string, unknown> = {},
  signal?: AbortSignal,
) {
  let result: FailureResult | null = null;
  await withTempDir(async (dir) => {
    const input = { ...inputFor(STUB, "ok", dir, overrides), base_url: baseUrl };
    result = failure(await generateImage(input, { signal }));
    assert.deepEqual(await listDir(dir), []);
  });
  return result!;
}

/** inputFor() needs an upstream only for its base_url, which the caller replaces. */
const STUB = { baseUrl: () => "http://127.0.0.1:1/v1" } as unknown as Parameters<
  typeof inputFor
>[0];

const DROPPED_REASON =
  "The connection was made and the request sent, then it dropped before the answer was complete (closed or reset); the image may have been generated and billed; check the network, proxy or gateway, then retry.";

Deno.test("generateImage() says it cannot reach a closed port", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const result = await generateAgainst(`http://127.0.0.1:${port}/v1`, { lang: "en" });
  assert.equal(result.stage, "request");
  assert.match(
    result.error,
    new RegExp(`^Cannot reach http://127\\.0\\.0\\.1:${port}: tcp connect error: .*refused`, "i"),
  );
  assert.equal(result.diagnosis.category, "network_error");
  assert.match(result.diagnosis.human_reason, /^Could not reach base_url/);
});

for (
  const [what, handle] of [
    ["closes the connection once the request is read", async (conn: Deno.TcpConn) => {
      await readRequest(conn);
    }],
    // Closing with the request unread makes the kernel send a reset rather than a close.
    ["resets the connection with the request unread", async (conn: Deno.TcpConn) => {
      await conn.read(new Uint8Array(16));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }],
  ] as const
) {
  Deno.test(`generateImage() does not say "Cannot reach" when a server ${what}`, async () => {
    await using server = new RawServer(handle);
    const result = await generateAgainst(server.baseUrl, { lang: "en" });
    assert.equal(result.stage, "request");
    assert.match(
      result.error,
      /^The connection to http:\/\/127\.0\.0\.1:\d+ was made, then failed before the answer came: /,
    );
    assert.doesNotMatch(result.error, /Cannot reach|error sending request|client error/);
    assert.equal(result.diagnosis.category, "network_error");
    assert.equal(result.diagnosis.human_reason, DROPPED_REASON);
  });
}

Deno.test("generateImage() reports a connection that drops mid-answer as dropped after sending", async () => {
  await using server = new RawServer(async (conn) => {
    await readRequest(conn);
    await conn.write(encoder.encode(
      'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 5000\r\n\r\n{"data": [{"b64_json": "iVBORw0KGgo',
    ));
  });
  const result = await generateAgainst(server.baseUrl, { lang: "en" });
  assert.equal(result.stage, "response");
  assert.equal(result.http_status, 200);
  assert.match(
    result.error,
    /^Reading the answer: the connection dropped after the request was sent: /,
  );
  assert.equal(result.diagnosis.category, "network_error");
  assert.equal(result.diagnosis.human_reason, DROPPED_REASON);
});

Deno.test("generateImage() says a timeout before any answer came while waiting, not Cannot reach", async () => {
  await using upstream = startFakeUpstream();
  const result = await generateAgainst(upstream.baseUrl("stall-headers"), { timeout_ms: 300 });
  assert.equal(result.stage, "request");
  assert.equal(
    result.error,
    `No image within timeout_ms (300 ms), waiting for ${upstream.origin} to answer`,
  );
  assert.equal(result.diagnosis.category, "timeout");
});

Deno.test("generateImage() says a timeout while the answer arrived came after the request was sent", async () => {
  await using upstream = startFakeUpstream();
  const result = await generateAgainst(upstream.baseUrl("stall-body"), { timeout_ms: 300 });
  assert.equal(result.stage, "response");
  assert.equal(
    result.error,
    "Reading the answer: No image within timeout_ms (300 ms), after the request was sent, while the answer arrived",
  );
  assert.equal(result.diagnosis.category, "timeout");
});

Deno.test("generateImage() says a cancel while the answer arrived came after the request was sent", async () => {
  await using upstream = startFakeUpstream();
  const controller = new AbortController();
  const arrived = upstream.nextArrival();
  const pending = generateAgainst(upstream.baseUrl("stall-body"), {}, controller.signal);
  await arrived;
  // The headers are sent as soon as the handler returns; give them a moment to arrive.
  await new Promise((resolve) => setTimeout(resolve, 100));
  controller.abort();
  const result = await pending;
  assert.equal(
    result.error,
    "Reading the answer: Cancelled by the caller, after the request was sent, while the answer arrived",
  );
  assert.equal(result.diagnosis.category, "cancelled");
});

Deno.test("generateImage() gives advice about the image URL when its download redirects nowhere", async () => {
  await using upstream = startFakeUpstream();
  upstream.route(
    "nowhere",
    (request) =>
      Response.json({ data: [{ url: new URL("/no-location/v1/x.png", request.url).href }] }),
  );
  upstream.route("no-location", () => new Response(null, { status: 302 }));
  const result = await generateAgainst(upstream.baseUrl("nowhere"), { lang: "en" });
  assert.equal(result.stage, "download");
  assert.equal(result.http_status, 302);
  assert.equal(
    result.error,
    "The image URL redirects (HTTP 302) without saying where to: the image host's link is broken",
  );
  assert.doesNotMatch(result.error + result.diagnosis.human_reason, /base_url/);
  assert.equal(result.diagnosis.category, "download_failed");
});

Deno.test("transportFailure() calls an error not from the connection a fault of this program", () => {
  const deadline = new Deadline(60_000);
  try {
    const failure = transportFailure(
      "response",
      new TypeError("Cannot read properties of undefined"),
      deadline,
      "Reading the answer",
    );
    assert.equal(failure.stage, "response");
    assert.equal(
      failure.message,
      "Unexpected error in img2-generate: Cannot read properties of undefined",
    );
    const diagnosis = diagnose(factsOf(failure), "en");
    assert.equal(diagnosis.category, "internal_error");
    assert.equal(diagnosis.retryable, false);
    assert.doesNotMatch(diagnosis.human_reason, /upstream (failed|answered)/);
  } finally {
    deadline.dispose();
  }
});

Deno.test("failureResult() makes an error no stage expected a fault of this program, not retried", () => {
  const result = failureResult(new RangeError("Maximum call stack size exceeded"), {
    ...callContext({}),
    lang: "en",
  });
  assert.equal(result.error, "Unexpected error in img2-generate: Maximum call stack size exceeded");
  assert.equal(result.diagnosis.category, "internal_error");
  assert.equal(result.diagnosis.retryable, false);
  assert.equal(result.http_status, null);
});

/** A body of `total` bytes of "a" in `piece`-byte chunks that records how it ended. */
class Body {
  pulled = 0;
  cancelled = false;
  closed = false;
  readonly stream: ReadableStream<Uint8Array>;

  constructor(total: number, piece: number, fill = 0x61) {
    let sent = 0;
    this.stream = new ReadableStream<Uint8Array>({
      pull: (controller) => {
        if (sent >= total) {
          this.closed = true;
          controller.close();
          return;
        }
        const length = Math.min(piece, total - sent);
        sent += length;
        this.pulled += length;
        controller.enqueue(new Uint8Array(length).fill(fill));
      },
      cancel: () => {
        this.cancelled = true;
      },
    }, { highWaterMark: 0 });
  }
}

Deno.test("readTextCapped() reads a short body whole", async () => {
  const body = new Body(100, 30);
  assert.equal(await readTextCapped(body.stream), "a".repeat(100));
  assert.equal(body.closed, true);
});

Deno.test("readTextCapped() stops at 64 KiB and cancels the rest", async () => {
  assert.equal(MAX_ERROR_BODY_BYTES, 65536);
  const body = new Body(10 * 1024 * 1024, 10_000);
  const text = await readTextCapped(body.stream);
  assert.equal(text, `${"a".repeat(65536)}…`);
  assert.equal(body.cancelled, true);
  assert.ok(body.pulled <= 70_000, `read ${body.pulled} bytes`);
});

Deno.test("readTextCapped() stops at a given cap inside a chunk", async () => {
  const body = new Body(1000, 7);
  assert.equal(await readTextCapped(body.stream, 10), `${"a".repeat(10)}…`);
  assert.equal(body.cancelled, true);
  assert.equal(body.pulled, 14);
});

Deno.test("readTextCapped() stops at a cap that falls on a chunk boundary", async () => {
  const body = new Body(1000, 5);
  assert.equal(await readTextCapped(body.stream, 10), `${"a".repeat(10)}…`);
  assert.equal(body.cancelled, true);
  assert.equal(body.pulled, 10);
});

Deno.test("readTextCapped() decodes UTF-8 across chunks", async () => {
  const bytes = new TextEncoder().encode("无可用渠道 (request id: x)");
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const byte of bytes) controller.enqueue(new Uint8Array([byte]));
      controller.close();
    },
  });
  assert.equal(await readTextCapped(stream), "无可用渠道 (request id: x)");
});

Deno.test("readTextCapped() reads an absent body as empty", async () => {
  assert.equal(await readTextCapped(null), "");
});

Deno.test("readTextCapped() ends a text cut short with an ellipsis, never half a character", async () => {
  const bytes = new TextEncoder().encode("pässwörd");
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(bytes);
      controller.close();
    },
  });
  // "p" and the first byte of "ä": the half character is left out.
  assert.equal(await readTextCapped(stream, 2), "p…");
});

Deno.test("a key cut by the 64 KiB read leaves no part of it once masked", async () => {
  const key = "sk-proj-AbC123xYz789QwErTy";
  for (const keep of [1, 3, 9, key.length - 1]) {
    const text = `{"error": {"message": "${"x".repeat(100)} ${key}"}}`;
    const bytes = new TextEncoder().encode(text);
    const cut = text.indexOf(key) + keep;
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes);
        controller.close();
      },
    });
    const upstream = parseUpstreamError(await readTextCapped(stream, cut));
    const shown = maskThenClip(upstream.message ?? "", secretsOf(key, null), MAX_FIELD_CHARS);
    assert.ok(shown.endsWith(" ***…"), shown);
  }
});
