import assert from "node:assert/strict";
import { join } from "node:path";
import { generateFromParams } from "../lib/generate.ts";
import { generateImage } from "../lib/mod.ts";
import { validateParams } from "../lib/params/params.ts";
import { ResultCutShort } from "../lib/result.ts";
import type { FailureResult, GenerationResult } from "../lib/mod.ts";
import { inputFor, listDir, PNG_64, startFakeUpstream, TEST_KEY } from "./_fake_upstream.ts";
import { failure, success, withTempDir } from "./_helpers.ts";

Deno.test("generateImage() saves the image and reports it with the seed's fields", async () => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const result = success(await generateImage(inputFor(upstream, "ok", dir)));
    assert.equal(result.stage, "done");
    assert.match(result.image_path, new RegExp(`^${dir}/cat-\\d{8}-\\d{6}\\.png$`));
    assert.deepEqual(await Deno.readFile(result.image_path), PNG_64);
    assert.equal(result.bytes, PNG_64.length);
    assert.equal(result.base_url, upstream.baseUrl("ok"));
    assert.equal(result.model, "gpt-image-2");
    assert.equal(result.size, "1024x1024");
    assert.equal(result.task_name, "cat");
    assert.equal(result.mime_type, "image/png");
    assert.equal(result.width, 64);
    assert.equal(result.height, 48);
    assert.equal(result.request_id, "req_fake_1");
    assert.equal(result.revised_prompt, "a revised cat");
    assert.deepEqual(result.usage, { total_tokens: 42 });
    assert.equal(typeof result.elapsed_ms, "number");
    assert.equal(result.b64, undefined);
    assert.deepEqual(await listDir(dir), [result.image_path.slice(dir.length + 1)]);
  });
});

Deno.test("generateImage() sends the key, JSON and its name to {base_url}/images/generations, no response_format to a GPT image model", async () => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    success(
      await generateImage(
        inputFor(upstream, "ok", dir, { base_url: upstream.baseUrl("ok") + "//", quality: "high" }),
      ),
    );
    const [request] = upstream.requests;
    assert.equal(request?.method, "POST");
    assert.equal(request?.path, "/ok/v1/images/generations");
    assert.equal(request?.headers.get("authorization"), `Bearer ${TEST_KEY}`);
    assert.equal(request?.headers.get("content-type"), "application/json");
    assert.match(request?.headers.get("user-agent") ?? "", /^img2-generate\/\d+\.\d+\.\d+/);
    assert.deepEqual(request?.body, {
      model: "gpt-image-2",
      prompt: "an orange cat by the window",
      size: "1024x1024",
      n: 1,
      quality: "high",
    });
  });
});

Deno.test("generateImage() uses a base_url that already names the endpoint as is", async () => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const base_url = upstream.baseUrl("ok") + "/images/generations/";
    success(await generateImage(inputFor(upstream, "ok", dir, { base_url })));
    assert.equal(upstream.requests[0]?.path, "/ok/v1/images/generations");
  });
});

for (
  const [scenario, what] of [
    ["ok-object", "data as a single object, URL-safe base64 without padding"],
    ["ok-wrapped", "a data: URL with line-wrapped base64"],
    ["ok-escaped", "JSON with escaped slashes"],
    ["ok-data-url-in-url", "a data: URL in the url field"],
    ["ok-gzip", "a gzip-encoded body"],
    ["ok-br", "a brotli-encoded body"],
    ["ok-url", "an image URL on the API's own origin"],
  ]
) {
  Deno.test(`generateImage() accepts ${what}`, async () => {
    await using upstream = startFakeUpstream();
    await withTempDir(async (dir) => {
      const result = success(await generateImage(inputFor(upstream, scenario!, dir)));
      assert.deepEqual(await Deno.readFile(result.image_path), PNG_64);
    });
  });
}

Deno.test("generateImage() names the file after the bytes: a JPEG is saved as .jpg", async () => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const result = success(await generateImage(inputFor(upstream, "ok-jpeg", dir)));
    assert.match(result.image_path, /\.jpg$/);
    assert.equal(result.mime_type, "image/jpeg");
    assert.deepEqual([result.width, result.height], [32, 16]);
  });
});

Deno.test("generateImage() sends the key with a download on the API's origin only", async () => {
  await using api = startFakeUpstream();
  await using imageHost = startFakeUpstream();
  api.route(
    "elsewhere",
    () => Response.json({ data: [{ url: `${imageHost.origin}/cdn/files/x.png` }] }),
  );
  await withTempDir(async (dir) => {
    success(await generateImage(inputFor(api, "elsewhere", dir)));
    success(await generateImage(inputFor(api, "ok-url", dir)));
  });
  assert.equal(imageHost.requests.length, 1);
  assert.equal(imageHost.requests[0]?.headers.get("authorization"), null);
  const sameOrigin = api.requests.find((request) => request.method === "GET");
  assert.equal(sameOrigin?.headers.get("authorization"), `Bearer ${TEST_KEY}`);
});

Deno.test("generateImage() follows an image URL's redirect without the key", async () => {
  await using api = startFakeUpstream();
  await using imageHost = startFakeUpstream();
  api.route(
    "redirecting",
    (request) => Response.json({ data: [{ url: new URL("/hop/x", request.url).href }] }),
  );
  api.route("hop", () => Response.redirect(`${imageHost.origin}/cdn/files/x.png`, 302));
  await withTempDir(async (dir) => {
    const result = success(await generateImage(inputFor(api, "redirecting", dir)));
    assert.deepEqual(await Deno.readFile(result.image_path), PNG_64);
  });
  assert.equal(imageHost.requests[0]?.headers.get("authorization"), null);
});

Deno.test("generateImage() turns the seed's 502 example into the seed's failure", async () => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const result = failure(await generateImage(inputFor(upstream, "seed-502", dir)));
    assert.equal(result.stage, "request");
    assert.equal(result.http_status, 502);
    assert.equal(result.upstream_error_type, "upstream_error");
    assert.equal(result.upstream_error_message, "Upstream request failed");
    assert.equal(result.upstream_error_code, null);
    assert.deepEqual(result.diagnosis, {
      category: "upstream_failure",
      human_reason: "图片模型上游服务失败或临时不可用;不是本地脚本问题。",
      retryable: true,
    });
    assert.deepEqual(await listDir(dir), []);
  });
});

Deno.test("generateImage() reads an error object sent with HTTP 200", async () => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const result = failure(
      await generateImage(inputFor(upstream, "error-200", dir, { lang: "en" })),
    );
    assert.equal(result.stage, "request");
    assert.equal(result.http_status, 200);
    assert.equal(result.upstream_error_type, "new_api_error");
    assert.equal(result.diagnosis.category, "quota_exceeded");
    assert.equal(result.diagnosis.retryable, false);
    assert.equal(result.request_id, "20261125abc");
    assert.deepEqual(await listDir(dir), []);
  });
});

for (
  const [scenario, stage, what] of [
    ["no-image", "response", "a 2xx without an image"],
    ["html-200", "response", "an HTML page with HTTP 200"],
    ["bad-base64", "decode", "broken base64"],
    ["not-image", "decode", "bytes that are not an image"],
  ] as const
) {
  Deno.test(`generateImage() fails at ${stage} on ${what} and leaves no file`, async () => {
    await using upstream = startFakeUpstream();
    await withTempDir(async (dir) => {
      const result = failure(await generateImage(inputFor(upstream, scenario, dir)));
      assert.equal(result.stage, stage);
      assert.equal(result.diagnosis.category, "bad_response");
      assert.equal(result.diagnosis.retryable, true);
      assert.deepEqual(await listDir(dir), []);
    });
  });
}

Deno.test("generateImage() reduces an nginx error page to its title", async () => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const result = failure(await generateImage(inputFor(upstream, "nginx-504", dir)));
    assert.equal(result.http_status, 504);
    assert.equal(result.upstream_error_message, "504 Gateway Time-out");
    assert.equal(result.diagnosis.category, "upstream_failure");
  });
});

Deno.test("generateImage() never shows the key, even when the upstream echoes it", async () => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const result = failure(await generateImage(inputFor(upstream, "echo-key", dir)));
    assert.equal(result.diagnosis.category, "auth_failed");
    const text = JSON.stringify(result);
    assert.ok(!text.includes(TEST_KEY), text);
    assert.ok(!text.includes(TEST_KEY.slice(3)), text);
    assert.match(result.upstream_error_message ?? "", /Incorrect API key provided: \*\*\*/);
  });
});

Deno.test("generateImage() masks credentials in base_url", async () => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const base_url = upstream.baseUrl("seed-502").replace("http://", "http://user:hunter22@") +
      "?api_key=qs-secret-value";
    const result = failure(await generateImage(inputFor(upstream, "seed-502", dir, { base_url })));
    const text = JSON.stringify(result);
    assert.ok(!text.includes("hunter22") && !text.includes("qs-secret-value"), text);
    assert.match(
      result.base_url ?? "",
      /^http:\/\/\*\*\*:\*\*\*@127\.0\.0\.1:\d+\/seed-502\/v1\?api_key=\*\*\*$/,
    );
  });
});

Deno.test("generateImage() repeats the request without a parameter the upstream calls unknown", async () => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const input = inputFor(upstream, "refuses-response-format", dir, { model: "dall-e-3" });
    const result = success(await generateImage(input));
    assert.deepEqual(result.dropped_params, ["response_format"]);
    assert.equal(upstream.requests.length, 2);
    assert.equal(upstream.requests[0]?.body?.response_format, "b64_json");
    assert.equal("response_format" in (upstream.requests[1]?.body ?? {}), false);
  });
});

Deno.test("generateImage() does not retry by default, and says when to retry", async () => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const result = failure(await generateImage(inputFor(upstream, "rate-limited", dir)));
    assert.equal(upstream.requests.length, 1);
    assert.deepEqual(
      [result.diagnosis.category, result.diagnosis.retryable, result.diagnosis.retry_after_ms],
      ["rate_limited", true, 40],
    );
    assert.equal(result.attempts, undefined);
  });
});

Deno.test("generateImage() retries a retryable failure up to max_retries and lists the attempts", async () => {
  await using upstream = startFakeUpstream();
  let calls = 0;
  upstream.route(
    "flaky",
    () =>
      ++calls < 3
        ? Response.json({ error: { message: "Upstream request failed", type: "upstream_error" } }, {
          status: 502,
          headers: { "retry-after-ms": "10" },
        })
        : Response.json({ data: [{ b64_json: PNG_64.toBase64() }] }),
  );
  await withTempDir(async (dir) => {
    const result = success(
      await generateImage(inputFor(upstream, "flaky", dir, { max_retries: "2" })),
    );
    assert.deepEqual(result.attempts, [
      { http_status: 502, category: "upstream_failure" },
      { http_status: 502, category: "upstream_failure" },
      { http_status: 200, category: null },
    ]);
    assert.deepEqual(await listDir(dir), [result.image_path.slice(dir.length + 1)]);
  });
});

Deno.test("generateImage() stops retrying at max_retries and does not retry what is not retryable", async () => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const limited = failure(
      await generateImage(inputFor(upstream, "rate-limited", dir, { max_retries: 2 })),
    );
    assert.equal(limited.attempts?.length, 3);
    const refused = failure(
      await generateImage(inputFor(upstream, "echo-key", dir, { max_retries: 2 })),
    );
    assert.deepEqual(refused.attempts, [{ http_status: 401, category: "auth_failed" }]);
    assert.equal(upstream.requests.length, 4);
  });
});

Deno.test("generateImage() does not wait for a retry that the deadline would cut short", async () => {
  await using upstream = startFakeUpstream();
  upstream.route(
    "slow-retry",
    () =>
      Response.json({ error: { message: "busy", type: "upstream_error" } }, {
        status: 503,
        headers: { "retry-after": "60" },
      }),
  );
  await withTempDir(async (dir) => {
    const started = performance.now();
    const result = failure(
      await generateImage(inputFor(upstream, "slow-retry", dir, { max_retries: 3 })),
    );
    assert.ok(performance.now() - started < 2000);
    assert.equal(result.diagnosis.retry_after_ms, 60_000);
    assert.equal(upstream.requests.length, 1);
  });
});

Deno.test("generateImage() reports a redirected base_url as endpoint_not_found with the target", async () => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const result = failure(await generateImage(inputFor(upstream, "redirect", dir)));
    assert.equal(result.http_status, 301);
    assert.equal(result.diagnosis.category, "endpoint_not_found");
    assert.match(result.error, /https:\/\/elsewhere\.invalid\/v1/);
  });
});

for (
  const [scenario, stage] of [["stall-headers", "request"], ["stall-body", "response"]] as const
) {
  Deno.test(`generateImage() keeps to timeout_ms when the upstream stalls (${scenario})`, async () => {
    await using upstream = startFakeUpstream();
    await withTempDir(async (dir) => {
      const started = performance.now();
      const result = failure(
        await generateImage(inputFor(upstream, scenario, dir, { timeout_ms: 300 })),
      );
      const elapsed = performance.now() - started;
      assert.ok(elapsed >= 290 && elapsed < 3000, `took ${elapsed} ms`);
      assert.equal(result.stage, stage);
      assert.equal(result.diagnosis.category, "timeout");
      assert.equal(result.diagnosis.retryable, true);
      assert.deepEqual(await listDir(dir), []);
    });
  });
}

Deno.test("generateImage() reports a connection broken mid-answer as a network error", async () => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const result = failure(await generateImage(inputFor(upstream, "reset-body", dir)));
    assert.equal(result.stage, "response");
    assert.equal(result.diagnosis.category, "network_error");
    assert.deepEqual(await listDir(dir), []);
  });
});

Deno.test("generateImage() reports a refused connection as a network error at request", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  await withTempDir(async (dir) => {
    const result = failure(
      await generateImage({
        ...inputFor(startStub(), "ok", dir),
        base_url: `http://127.0.0.1:${port}/v1`,
      }),
    );
    assert.equal(result.stage, "request");
    assert.equal(result.diagnosis.category, "network_error");
    assert.equal(result.http_status, null);
    assert.match(result.error, /refused/i);
  });
});

/** inputFor() needs an upstream only for its base_url, which the caller replaces. */
function startStub() {
  return { baseUrl: () => "http://127.0.0.1:1/v1" } as unknown as Parameters<typeof inputFor>[0];
}

Deno.test("generateImage() stops when its signal is aborted and leaves nothing behind", async () => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const controller = new AbortController();
    const arrived = upstream.nextArrival();
    const pending = generateImage(inputFor(upstream, "stall-body", dir), {
      signal: controller.signal,
    });
    await arrived;
    controller.abort();
    const result = failure(await pending);
    assert.equal(result.diagnosis.category, "cancelled");
    assert.equal(result.diagnosis.retryable, false);
    assert.deepEqual(await listDir(dir), []);
  });
});

Deno.test("generateImage() checks output_dir before sending anything", async () => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const notADir = join(dir, "file");
    await Deno.writeTextFile(notADir, "");
    const result = failure(await generateImage(inputFor(upstream, "ok", join(notADir, "sub"))));
    assert.equal(result.stage, "save");
    assert.equal(result.diagnosis.category, "save_failed");
    assert.equal(result.diagnosis.retryable, false);
    assert.equal(upstream.requests.length, 0);
  });
});

Deno.test("generateImage() creates output_dir with its parents", async () => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const nested = join(dir, "a", "b", "c");
    const result = success(await generateImage(inputFor(upstream, "ok", nested)));
    assert.equal(result.image_path.startsWith(nested + "/"), true);
  });
});

Deno.test("generateImage() sends nothing when the input is invalid", async () => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const result = failure(
      await generateImage(inputFor(upstream, "ok", dir, { timeout: 5, n: 2 })),
    );
    assert.equal(result.stage, "input");
    assert.equal(result.diagnosis.category, "invalid_input");
    assert.match(result.error, /Unknown parameter "timeout": did you mean "timeout_ms"\?/);
    assert.match(result.error, /Invalid n 2: expected 1/);
    assert.equal(upstream.requests.length, 0);
  });
});

Deno.test("generateImage() never overwrites: two images in the same second get two names", async () => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const [first, second] = await Promise.all([
      generateImage(inputFor(upstream, "ok", dir)),
      generateImage(inputFor(upstream, "ok", dir)),
    ]);
    const paths = [success(first!).image_path, success(second!).image_path];
    assert.notEqual(paths[0], paths[1]);
    assert.equal((await listDir(dir)).length, 2);
  });
});

Deno.test("generateImage() returns the base64 only when asked", async () => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const result = success(
      await generateImage(inputFor(upstream, "ok", dir, { return_base64: "true" })),
    );
    assert.equal(result.b64, PNG_64.toBase64());
  });
});

Deno.test("generateImage() reads at most 64 KiB of an error body and clips its message", async () => {
  await using upstream = startFakeUpstream();
  upstream.route(
    "huge-error",
    () =>
      Response.json({ error: { message: "x".repeat(5 * 1024 * 1024), type: "server_error" } }, {
        status: 500,
      }),
  );
  await withTempDir(async (dir) => {
    const result = failure(await generateImage(inputFor(upstream, "huge-error", dir)));
    assert.equal(result.http_status, 500);
    assert.equal(result.diagnosis.category, "upstream_failure");
    assert.ok((result.upstream_error_message ?? "").length <= 1000);
  });
});

Deno.test("generateImage() explains human_reason in English with lang en", async () => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const result = failure(
      await generateImage(inputFor(upstream, "seed-502", dir, { lang: "en" })),
    );
    assert.match(result.diagnosis.human_reason, /^[A-Z][\x20-\x7e]+\.$/);
  });
});

Deno.test("generateImage() reports progress with the key masked", async () => {
  await using upstream = startFakeUpstream();
  upstream.route(
    "echo-502",
    (request) =>
      Response.json({ error: { message: `bad ${request.headers.get("authorization")}` } }, {
        status: 502,
        headers: { "retry-after-ms": "1" },
      }),
  );
  await withTempDir(async (dir) => {
    const messages: string[] = [];
    const input = inputFor(upstream, "echo-502", dir, { max_retries: 1 });
    failure(await generateImage(input, { onProgress: (message) => messages.push(message) }));
    assert.equal(messages.length, 3, messages.join("\n"));
    assert.match(messages[1]!, /retrying in 1 ms/);
    assert.ok(!messages.join("\n").includes(TEST_KEY.slice(3)), messages.join("\n"));
  });
});

Deno.test("generateImage() takes the first item with an image, ignoring empty ones", async () => {
  await using upstream = startFakeUpstream();
  upstream.route("mixed", (request) =>
    Response.json({
      data: [
        { url: "", b64_json: "" },
        { url: new URL("../files/x.png", request.url).href },
        { b64_json: "R0lGODlhAQABAAAAACw=" },
      ],
    }));
  await withTempDir(async (dir) => {
    const result = success(await generateImage(inputFor(upstream, "mixed", dir)));
    assert.deepEqual(await Deno.readFile(result.image_path), PNG_64);
  });
});

Deno.test("generateImage() keeps to timeout_ms while downloading a url", async () => {
  await using upstream = startFakeUpstream();
  upstream.route(
    "slow-file",
    (request) =>
      Response.json({ data: [{ url: new URL("/stall-body/v1/x.png", request.url).href }] }),
  );
  await withTempDir(async (dir) => {
    const input = inputFor(upstream, "slow-file", dir, { timeout_ms: 400 });
    const result = failure(await generateImage(input));
    assert.equal(result.stage, "download");
    assert.equal(result.diagnosis.category, "timeout");
    assert.deepEqual(await listDir(dir), []);
  });
});

Deno.test("generateImage() reports a url download that fails with its status", async () => {
  await using upstream = startFakeUpstream();
  upstream.route(
    "gone-file",
    (request) =>
      Response.json({ data: [{ url: new URL("/nginx-504/v1/x.png", request.url).href }] }),
  );
  await withTempDir(async (dir) => {
    const result = failure(await generateImage(inputFor(upstream, "gone-file", dir)));
    assert.equal(result.stage, "download");
    assert.equal(result.http_status, 504);
    assert.equal(result.diagnosis.category, "download_failed");
    assert.equal(result.diagnosis.retryable, true);
  });
});

Deno.test("generateImage() merges extra_body into the request and sends passthroughs only when given", async () => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const input = inputFor(upstream, "ok", dir, {
      extra_body: { watermark: false, seed: 7 },
      output_compression: "80",
      background: "opaque",
    });
    success(await generateImage(input));
    assert.deepEqual(upstream.requests[0]?.body, {
      model: "gpt-image-2",
      prompt: "an orange cat by the window",
      size: "1024x1024",
      n: 1,
      background: "opaque",
      output_compression: 80,
      watermark: false,
      seed: 7,
    });
  });
});

Deno.test("generateImage() leaves its own fields exact with a short key that occurs in them", async () => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const input = inputFor(upstream, "ok", dir, { api_key: "1", task_name: "cat-1024" });
    const result = success(await generateImage(input));
    assert.equal(result.size, "1024x1024");
    assert.match(result.image_path, /\/cat-1024-\d{8}-\d{6}\.png$/);
    assert.deepEqual(await Deno.readFile(result.image_path), PNG_64);
  });
});

Deno.test("generateImage() masks an echoed key before clipping, so no part of it is shown", async () => {
  await using upstream = startFakeUpstream();
  upstream.route("long-echo", (request) =>
    Response.json({
      error: { message: `${"x".repeat(990)} ${request.headers.get("authorization")?.slice(7)}` },
    }, { status: 401 }));
  await withTempDir(async (dir) => {
    const result = failure(await generateImage(inputFor(upstream, "long-echo", dir)));
    const text = JSON.stringify(result);
    for (const part of [TEST_KEY.slice(0, 6), TEST_KEY.slice(-6)]) {
      assert.ok(!text.includes(part), `${part} in ${text}`);
    }
    assert.ok(result.error.length <= 1000 && (result.upstream_error_message ?? "").length <= 1000);
  });
});

Deno.test("generateImage() never shows credentials of a base_url that does not parse", async () => {
  const input = {
    ...inputFor(startStub(), "ok", "/tmp"),
    base_url: "https://user:hunter2secretpw@api.example.com:99999/v1?api_key=qs-secret-123456",
  };
  const result = failure(await generateImage(input));
  assert.equal(result.stage, "input");
  const text = JSON.stringify(result);
  assert.ok(!text.includes("hunter2secretpw") && !text.includes("qs-secret"), text);
});

Deno.test("generateImage() keeps the answer's status when its body is not understood", async () => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const result = failure(await generateImage(inputFor(upstream, "html-200", dir)));
    assert.equal(result.http_status, 200);
    const stalled = failure(
      await generateImage(inputFor(upstream, "stall-body", dir, { timeout_ms: 300 })),
    );
    assert.equal(stalled.http_status, 200);
  });
});

Deno.test("generateImage() answers a non-object input with a failure instead of throwing", async () => {
  for (const input of [null, [], "x"]) {
    const result = failure(await generateImage(input as unknown as Record<string, unknown>));
    assert.equal(result.stage, "input");
  }
});

Deno.test("generateImage() reports an image redirect to an invalid URL at stage download", async () => {
  await using upstream = startFakeUpstream();
  upstream.route(
    "bad-hop",
    (request) => Response.json({ data: [{ url: new URL("/bad-location/x", request.url).href }] }),
  );
  upstream.route(
    "bad-location",
    () => new Response(null, { status: 302, headers: { location: "http://[bad" } }),
  );
  await withTempDir(async (dir) => {
    const result = failure(await generateImage(inputFor(upstream, "bad-hop", dir)));
    assert.equal(result.stage, "download");
    assert.equal(result.diagnosis.category, "download_failed");
  });
});

/** An answer whose usage is nested `depth` objects deep, written without recursion. */
function deeplyNestedUsage(depth: number): Response {
  const text = `{"data": [{"b64_json": "${PNG_64.toBase64()}"}], "usage": ${
    '{"a":'.repeat(depth)
  }1${"}".repeat(depth)}}`;
  return new Response(text, { headers: { "content-type": "application/json" } });
}

Deno.test("generateImage() reports success or leaves no image when usage is nested 100 000 deep", async () => {
  await using upstream = startFakeUpstream();
  upstream.route("deep-usage", () => deeplyNestedUsage(100_000));
  await withTempDir(async (dir) => {
    const result = await generateImage(inputFor(upstream, "deep-usage", dir));
    if (result.ok) {
      assert.deepEqual(await listDir(dir), [result.image_path.slice(dir.length + 1)]);
    } else {
      assert.deepEqual(await listDir(dir), []);
      assert.match(result.error, /removed|nest|deep/i);
    }
  });
});

Deno.test("generateFromParams() removes the image and delivers a failure when the success cannot be delivered", async () => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const delivered: GenerationResult[] = [];
    const result = await generateFromParams(
      validateParams(inputFor(upstream, "ok", dir)),
      {},
      (result) => {
        delivered.push(structuredClone(result));
        if (result.ok) throw new RangeError("Maximum call stack size exceeded");
        return Promise.resolve();
      },
    );
    assert.deepEqual(delivered.map((each) => each.ok), [true, false]);
    assert.deepEqual(delivered[1], structuredClone(result));
    assert.match(
      failure(result).error,
      /^The image was saved but its result could not be made, so it was removed: Maximum call stack/,
    );
    assert.equal(failure(result).request_id, "req_fake_1");
    assert.deepEqual(await listDir(dir), []);
  });
});

Deno.test("generateFromParams() removes the image and writes nothing more when the success is cut short", async () => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    let deliveries = 0;
    const generating = generateFromParams(
      validateParams(inputFor(upstream, "ok", dir)),
      {},
      () => {
        deliveries++;
        return Promise.reject(new ResultCutShort("The result was cut short: Broken pipe"));
      },
    );
    await assert.rejects(generating, ResultCutShort);
    assert.equal(deliveries, 1);
    assert.deepEqual(await listDir(dir), []);
  });
});

Deno.test("generateImage() names in image_path the file it saved, for a task_name with lone surrogates", async () => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const input = inputFor(upstream, "ok", dir, { task_name: "\ud800cat\udc00" });
    const result = success(await generateImage(input));
    const name = result.image_path.slice(dir.length + 1);
    assert.ok(result.image_path.isWellFormed(), result.image_path);
    assert.deepEqual(await listDir(dir), [name]);
    assert.match(name, /^\ufffdcat\ufffd-\d{8}-\d{6}\.png$/);
  });
});

Deno.test("generateImage() gives a failure in the answer's body the answer's status and request id", async () => {
  await using upstream = startFakeUpstream();
  const answer = (text: string) => () =>
    new Response(text, {
      status: 201,
      headers: { "content-type": "application/json", "x-request-id": "req_body_1" },
    });
  upstream.route("bad-base64-201", answer('{"data": [{"b64_json": "iVBORw0KGgo!!!!"}]}'));
  upstream.route("no-image-201", answer('{"data": []}'));
  upstream.route("error-201", answer('{"error": {"message": "quota used up", "type": "x"}}'));
  await withTempDir(async (dir) => {
    for (
      const [scenario, stage] of [
        ["bad-base64-201", "decode"],
        ["no-image-201", "response"],
        ["error-201", "request"],
      ]
    ) {
      const result = failure(await generateImage(inputFor(upstream, scenario!, dir)));
      assert.deepEqual(
        [result.stage, result.http_status, result.request_id],
        [stage, 201, "req_body_1"],
        scenario,
      );
    }
  });
});

Deno.test("generateImage() answers an api_key of 40 000 characters with an input failure, sending nothing", async () => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const result = await generateImage(
      inputFor(upstream, "ok", dir, { api_key: "k".repeat(40_000) }),
    ) as FailureResult;
    assert.equal(result.ok, false);
    assert.equal(result.stage, "input");
    assert.match(result.error, /api_key: 40000 characters, at most 8192 allowed/);
    assert.equal(upstream.requests.length, 0);
  });
});
