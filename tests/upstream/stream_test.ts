/**
 * `stream: true` end to end, against a local upstream that answers with server-sent events the
 * way OpenAI's images API does (`event: image_generation.partial_image` / `data: {…}` blocks,
 * then `image_generation.completed`, as in the spec's ImageGenPartialImageEvent and
 * ImageGenCompletedEvent).
 */
import assert from "node:assert/strict";
import { dryRunReport } from "../../lib/cli/dry_run.ts";
import { generateFromParams } from "../../lib/generate.ts";
import { generateImage } from "../../lib/mod.ts";
import { validateParams } from "../../lib/params/params.ts";
import { encodePng, renderPicture } from "../../scripts/mock/png.ts";
import { inputFor, listDir, PNG_64, startFakeUpstream } from "../_fake_upstream.ts";
import { failure, success, VALID_INPUT, withTempDir } from "../_helpers.ts";

const PARTIALS = [
  encodePng(32, 24, renderPicture(32, 24, "p0")),
  encodePng(16, 12, renderPicture(16, 12, "p1")),
];
const SETTINGS = { size: "1024x1024", quality: "high", background: "opaque", output_format: "png" };
const USAGE = { total_tokens: 100, input_tokens: 50, output_tokens: 50 };

function event(type: string, fields: Record<string, unknown>): string {
  const data = JSON.stringify({ type, created_at: 1620000000, ...SETTINGS, ...fields });
  return `event: ${type}\ndata: ${data}\n\n`;
}

const partialEvents = PARTIALS.map((png, index) =>
  event("image_generation.partial_image", { b64_json: png.toBase64(), partial_image_index: index })
).join("");
const completedEvent = event("image_generation.completed", {
  b64_json: PNG_64.toBase64(),
  usage: USAGE,
});

function eventStream(text: string): Response {
  return new Response(text, {
    headers: { "content-type": "text/event-stream; charset=utf-8", "x-request-id": "req_stream" },
  });
}

const STREAM_INPUT = { stream: true, partial_images: 2 };

Deno.test("generateImage() with stream saves the completed image and counts the partial ones", async () => {
  await using upstream = startFakeUpstream();
  upstream.route("sse", () => eventStream(": ok\n\n" + partialEvents + completedEvent));
  await withTempDir(async (dir) => {
    const result = success(await generateImage(inputFor(upstream, "sse", dir, STREAM_INPUT)));
    assert.deepEqual(await Deno.readFile(result.image_path), PNG_64);
    assert.equal(result.width, 64);
    assert.equal(result.partial_images_received, 2);
    assert.equal(result.partial_paths, undefined);
    assert.equal(result.request_id, "req_stream");
    assert.deepEqual(result.usage, USAGE);
    assert.equal(result.upstream_size, "1024x1024");
    assert.equal(result.upstream_quality, "high");
    assert.equal(result.upstream_output_format, "png");
    assert.equal(result.upstream_background, "opaque");
    assert.deepEqual(await listDir(dir), [result.image_path.slice(dir.length + 1)]);

    const [request] = upstream.requests;
    assert.equal(request?.headers.get("accept"), "text/event-stream");
    assert.equal(request?.body?.stream, true);
    assert.equal(request?.body?.partial_images, 2);
  });
});

Deno.test("generateImage() with save_partials saves each partial image beside the final one", async () => {
  await using upstream = startFakeUpstream();
  upstream.route("sse", () => eventStream(partialEvents + completedEvent));
  await withTempDir(async (dir) => {
    const input = inputFor(upstream, "sse", dir, { ...STREAM_INPUT, save_partials: true });
    const result = success(await generateImage(input));
    const stem = result.image_path.slice(0, -".png".length);
    assert.deepEqual(result.partial_paths, [`${stem}.partial-0.png`, `${stem}.partial-1.png`]);
    for (const [i, path] of result.partial_paths!.entries()) {
      assert.deepEqual(await Deno.readFile(path), PARTIALS[i]);
    }
    assert.deepEqual(await Deno.readFile(result.image_path), PNG_64);
    // No temporary file is left beside them.
    assert.equal((await listDir(dir)).length, 3);
  });
});

Deno.test("generateImage() never overwrites a partial image's name, and keeps no more than asked", async () => {
  await using upstream = startFakeUpstream();
  upstream.route("sse", () => eventStream(partialEvents + completedEvent));
  await withTempDir(async (dir) => {
    const first = success(
      await generateImage(
        inputFor(upstream, "sse", dir, { stream: true, partial_images: 1, save_partials: true }),
      ),
    );
    const second = success(
      await generateImage(
        inputFor(upstream, "sse", dir, { stream: true, partial_images: 1, save_partials: true }),
      ),
    );
    assert.equal(first.partial_images_received, 2);
    assert.equal(first.partial_paths?.length, 1);
    assert.notEqual(first.partial_paths?.[0], second.partial_paths?.[0]);
    for (const path of [...first.partial_paths!, ...second.partial_paths!]) {
      assert.deepEqual(await Deno.readFile(path), PARTIALS[0]);
    }
  });
});

Deno.test("generateImage() leaves no partial image when the stream ends without the completed event", async () => {
  await using upstream = startFakeUpstream();
  upstream.route("sse", () => eventStream(partialEvents + "data: [DONE]\n\n"));
  await withTempDir(async (dir) => {
    const input = inputFor(upstream, "sse", dir, { ...STREAM_INPUT, save_partials: true });
    const result = failure(await generateImage(input));
    assert.equal(result.stage, "response");
    assert.equal(result.diagnosis.category, "bad_response");
    assert.match(result.error, /without an image_generation\.completed event \(2 partial images/);
    assert.deepEqual(await listDir(dir), []);
  });
});

Deno.test("generateImage() diagnoses an error event like the same error answered as JSON", async () => {
  await using upstream = startFakeUpstream();
  // OpenAI's error object (a moderation refusal) sent as an event after a partial image.
  upstream.route("sse", () =>
    eventStream(
      partialEvents +
        'event: error\ndata: {"type":"error","error":{"type":"image_generation_user_error",' +
        '"code":"moderation_blocked","message":"Your request was rejected by the safety system.",' +
        '"param":null}}\n\n',
    ));
  await withTempDir(async (dir) => {
    const input = inputFor(upstream, "sse", dir, { ...STREAM_INPUT, save_partials: true });
    const result = failure(await generateImage(input));
    assert.equal(result.stage, "request");
    assert.equal(result.http_status, 200);
    assert.equal(result.upstream_error_code, "moderation_blocked");
    assert.equal(result.diagnosis.category, "content_rejected");
    assert.equal(result.diagnosis.retryable, false);
    assert.deepEqual(await listDir(dir), []);
  });
});

Deno.test("generateImage() accepts a JSON answer to a streamed request", async () => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const result = success(await generateImage(inputFor(upstream, "ok", dir, STREAM_INPUT)));
    assert.deepEqual(await Deno.readFile(result.image_path), PNG_64);
    assert.equal(result.partial_images_received, 0);
    assert.equal(upstream.requests[0]?.body?.stream, true);
  });
});

Deno.test("generateImage() repeats the request without stream and partial_images when the upstream calls stream unknown", async () => {
  await using upstream = startFakeUpstream();
  upstream.route(
    "no-stream",
    (_request, body) =>
      body !== null && "stream" in body
        ? Response.json({
          error: {
            message: "Unknown parameter: 'stream'.",
            type: "invalid_request_error",
            param: "stream",
            code: "unknown_parameter",
          },
        }, { status: 400 })
        : Response.json({ data: [{ b64_json: PNG_64.toBase64() }] }),
  );
  await withTempDir(async (dir) => {
    const result = success(await generateImage(inputFor(upstream, "no-stream", dir, STREAM_INPUT)));
    assert.deepEqual(result.dropped_params, ["stream", "partial_images"]);
    assert.equal(upstream.requests.length, 2);
    assert.equal("partial_images" in (upstream.requests[1]?.body ?? {}), false);
    assert.equal(upstream.requests[1]?.headers.get("accept"), "application/json");
  });
});

Deno.test("generateImage() repeats once without response_format when a relay answers an empty data list", async () => {
  await using upstream = startFakeUpstream();
  upstream.route("empty-data", (_request, body) =>
    Response.json(
      body !== null && "response_format" in body
        ? { created: 1, data: [] }
        : { created: 1, data: [{ b64_json: PNG_64.toBase64() }] },
    ));
  await withTempDir(async (dir) => {
    const input = inputFor(upstream, "empty-data", dir, { model: "dall-e-3" });
    const result = success(await generateImage(input));
    assert.deepEqual(result.dropped_params, ["response_format"]);
    assert.equal(upstream.requests.length, 2);
    assert.equal(upstream.requests[0]?.body?.response_format, "b64_json");
  });
});

Deno.test("generateImage() does not repeat an empty data list when no response_format was sent", async () => {
  await using upstream = startFakeUpstream();
  upstream.route("empty-data", () => Response.json({ created: 1, data: [] }));
  await withTempDir(async (dir) => {
    const result = failure(await generateImage(inputFor(upstream, "empty-data", dir)));
    assert.equal(result.diagnosis.category, "bad_response");
    assert.equal(upstream.requests.length, 1);
    assert.equal("response_format" in (upstream.requests[0]?.body ?? {}), false);
  });
});

Deno.test("generateImage() sends response_format to a GPT image model only to ask for a url", async () => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const sent = async (overrides: Record<string, unknown>) => {
      const before = upstream.requests.length;
      await generateImage(inputFor(upstream, "ok", dir, overrides));
      return upstream.requests[before]?.body?.response_format;
    };
    assert.equal(await sent({ response_format: "b64_json" }), undefined);
    assert.equal(await sent({ model: "openai/gpt-image-1" }), undefined);
    assert.equal(await sent({ response_format: "url" }), "url");
    assert.equal(await sent({ model: "dall-e-3" }), "b64_json");
    assert.equal(await sent({ model: "dall-e-3", response_format: "url" }), "url");
  });
});

Deno.test("dryRunReport() shows the body and the Accept header as a streamed request sends them", () => {
  const report = dryRunReport(
    validateParams({ ...VALID_INPUT, stream: true, partial_images: 1 }),
  );
  assert.deepEqual(report.request.body, {
    model: "gpt-image-2",
    prompt: VALID_INPUT.prompt,
    size: "1024x1024",
    n: 1,
    stream: true,
    partial_images: 1,
  });
  assert.equal(report.request.headers.Accept, "text/event-stream");
});

Deno.test("generateImage() tells each partial image as progress", async () => {
  await using upstream = startFakeUpstream();
  upstream.route("sse", () => eventStream(partialEvents + completedEvent));
  await withTempDir(async (dir) => {
    const messages: string[] = [];
    success(
      await generateImage(inputFor(upstream, "sse", dir, STREAM_INPUT), {
        onProgress: (message) => messages.push(message),
      }),
    );
    assert.deepEqual(messages.filter((m) => m.startsWith("partial")), [
      "partial image 1 received",
      "partial image 2 received",
    ]);
  });
});

Deno.test("generateImage() saves the completed image of the upstream's ok-stream answer", async () => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const result = success(
      await generateImage(
        inputFor(upstream, "ok-stream", dir, { stream: true, partial_images: 1 }),
      ),
    );
    assert.deepEqual(await Deno.readFile(result.image_path), PNG_64);
    assert.equal(result.partial_images_received, 1);
    assert.equal(result.upstream_quality, "high");
  });
});

Deno.test("generateFromParams() removes the partial images with the image when the success cannot be delivered", async () => {
  await using upstream = startFakeUpstream();
  upstream.route("sse", () => eventStream(partialEvents + completedEvent));
  await withTempDir(async (dir) => {
    const params = validateParams(
      inputFor(upstream, "sse", dir, { ...STREAM_INPUT, save_partials: true }),
    );
    const result = await generateFromParams(params, {}, (result) => {
      if (result.ok) return Promise.reject(new RangeError("Maximum call stack size exceeded"));
      return Promise.resolve();
    });
    assert.match(failure(result).error, /^The image was saved but its result could not be made/);
    assert.deepEqual(await listDir(dir), []);
  });
});

/** A body that sends `text`, then fails as a connection that drops. */
function cutAfter(text: string, contentType: string): Response {
  let sent = false;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent) return controller.error(new Error("connection reset"));
      sent = true;
      controller.enqueue(new TextEncoder().encode(text));
    },
  });
  return new Response(body, { headers: { "content-type": contentType } });
}

Deno.test("generateImage() diagnoses a stream cut after the request was sent as the same cut of a JSON answer", async () => {
  await using upstream = startFakeUpstream();
  upstream.route("sse-cut", () => cutAfter(partialEvents, "text/event-stream"));
  upstream.route("json-cut", () => cutAfter('{"data":[{"b64_json":"iVBOR', "application/json"));
  await withTempDir(async (dir) => {
    const input = { ...STREAM_INPUT, save_partials: true };
    const streamed = failure(await generateImage(inputFor(upstream, "sse-cut", dir, input)));
    const json = failure(await generateImage(inputFor(upstream, "json-cut", dir, input)));
    for (const result of [streamed, json]) {
      assert.equal(result.stage, "response");
      assert.equal(result.diagnosis.category, "network_error");
      assert.equal(result.diagnosis.retryable, true);
      assert.match(result.error, /the connection dropped after the request was sent/);
    }
    assert.equal(streamed.diagnosis.human_reason, json.diagnosis.human_reason);
    assert.deepEqual(await listDir(dir), []);
  });
});

const errorEvent = (error: Record<string, unknown>) =>
  `event: error\ndata: ${JSON.stringify({ type: "error", error })}\n\n`;

Deno.test("generateImage() takes an error event's Retry-After and x-should-retry from the stream's headers", async () => {
  await using upstream = startFakeUpstream();
  const rateLimit = {
    message: "Rate limit reached",
    type: "requests",
    code: "rate_limit_exceeded",
  };
  upstream.route("sse-429", () =>
    new Response(errorEvent(rateLimit), {
      headers: { "content-type": "text/event-stream", "retry-after": "2" },
    }));
  upstream.route(
    "sse-no-retry",
    () =>
      new Response(errorEvent({ message: "busy", type: "server_error" }), {
        headers: { "content-type": "text/event-stream", "x-should-retry": "false" },
      }),
  );
  await withTempDir(async (dir) => {
    const limited = failure(await generateImage(inputFor(upstream, "sse-429", dir, STREAM_INPUT)));
    assert.equal(limited.diagnosis.category, "rate_limited");
    assert.equal(limited.diagnosis.retry_after_ms, 2000);

    const input = inputFor(upstream, "sse-no-retry", dir, { ...STREAM_INPUT, max_retries: 2 });
    const refused = failure(await generateImage(input));
    assert.equal(refused.diagnosis.retryable, false);
    assert.equal(upstream.requests.filter((r) => r.scenario === "sse-no-retry").length, 1);
  });
});

Deno.test("generateImage() reads an error answered with a failing status as server-sent events", async () => {
  await using upstream = startFakeUpstream();
  upstream.route("sse-400", () =>
    new Response(
      errorEvent({
        message: "Your request was rejected by the safety system",
        type: "image_generation_user_error",
        code: "moderation_blocked",
      }),
      { status: 400, headers: { "content-type": "text/event-stream" } },
    ));
  await withTempDir(async (dir) => {
    const result = failure(await generateImage(inputFor(upstream, "sse-400", dir, STREAM_INPUT)));
    assert.equal(result.http_status, 400);
    assert.equal(result.upstream_error_code, "moderation_blocked");
    assert.equal(result.upstream_error_message, "Your request was rejected by the safety system");
    assert.equal(result.diagnosis.category, "content_rejected");
  });
});

Deno.test("generateImage() gives a streamed server error the reason of the same error answered HTTP 500", async () => {
  await using upstream = startFakeUpstream();
  const error = { message: "The server had an error", type: "server_error" };
  upstream.route(
    "sse-500",
    () => new Response(errorEvent(error), { headers: { "content-type": "text/event-stream" } }),
  );
  upstream.route("json-500", () => Response.json({ error }, { status: 500 }));
  await withTempDir(async (dir) => {
    const streamed = failure(await generateImage(inputFor(upstream, "sse-500", dir, STREAM_INPUT)));
    const json = failure(await generateImage(inputFor(upstream, "json-500", dir, STREAM_INPUT)));
    assert.deepEqual(streamed.diagnosis, json.diagnosis);
  });
});

Deno.test("generateImage() neither saves nor tells the partial images beyond those asked for", async () => {
  await using upstream = startFakeUpstream();
  upstream.route("sse", () => eventStream(partialEvents + partialEvents + completedEvent));
  await withTempDir(async (dir) => {
    const messages: string[] = [];
    const input = inputFor(upstream, "sse", dir, { ...STREAM_INPUT, save_partials: true });
    const result = success(
      await generateImage(input, { onProgress: (message) => messages.push(message) }),
    );
    assert.equal(result.partial_images_received, 4);
    assert.equal(result.partial_paths?.length, 2);
    assert.equal(messages.filter((m) => m.startsWith("partial")).length, 2);
    assert.deepEqual(await Deno.readFile(result.image_path), PNG_64);
    assert.equal((await listDir(dir)).length, 3);
  });
});

Deno.test("generateImage() reads the headers of an error answered with HTTP 200 as JSON as it does a stream's", async () => {
  await using upstream = startFakeUpstream();
  const error = { message: "busy", type: "server_error" };
  upstream.route("json-200", () => Response.json({ error }, { headers: { "retry-after": "3" } }));
  upstream.route(
    "json-200-no-retry",
    () => Response.json({ error }, { headers: { "x-should-retry": "false" } }),
  );
  await withTempDir(async (dir) => {
    const waited = failure(await generateImage(inputFor(upstream, "json-200", dir)));
    assert.equal(waited.diagnosis.retry_after_ms, 3000);
    const input = inputFor(upstream, "json-200-no-retry", dir, { max_retries: 2 });
    assert.equal(failure(await generateImage(input)).diagnosis.retryable, false);
    assert.equal(upstream.requests.filter((r) => r.scenario === "json-200-no-retry").length, 1);
  });
});
