/**
 * The offline upstream (scripts/mock/mock.ts), its scenario list and the PNG encoder under it.
 * Every server listens on 127.0.0.1 port 0 and is shut down in `finally`.
 */
import assert from "node:assert/strict";
import { inflateSync } from "node:zlib";
import {
  MOCK_MODEL,
  MOCK_STRICT_MODEL,
  type MockUpstream,
  type MockUpstreamOptions,
  startMockUpstream,
} from "../../scripts/mock/mock.ts";
import {
  FAILURE_SCENARIO_NAMES,
  MOCK_SCENARIO_NAMES,
  MOCK_SCENARIOS,
  type MockScenarioName,
  SAMPLE_PNG,
  scenarioModel,
} from "../../scripts/mock/mock_scenarios.ts";
import { crc32, encodePng, renderNoise, renderPicture } from "../../scripts/mock/png.ts";

const KEY = "sk-mock-test-0123456789abcdef";

async function withMock(
  options: MockUpstreamOptions,
  fn: (mock: MockUpstream) => Promise<void>,
): Promise<void> {
  const mock = startMockUpstream({ hostname: "127.0.0.1", port: 0, ...options });
  try {
    await fn(mock);
  } finally {
    await mock.shutdown();
  }
}

function generate(
  mock: MockUpstream,
  body: Record<string, unknown>,
  init: { headers?: Record<string, string>; signal?: AbortSignal; baseUrl?: string } = {},
): Promise<Response> {
  return fetch(`${init.baseUrl ?? mock.url}/images/generations`, {
    method: "POST",
    redirect: "manual",
    headers: {
      authorization: `Bearer ${KEY}`,
      "content-type": "application/json",
      ...init.headers,
    },
    body: JSON.stringify(body),
    signal: init.signal,
  });
}

interface ImageAnswer {
  created: number;
  data: { b64_json?: string; url?: string; revised_prompt?: string }[];
  size: string;
  usage: { total_tokens: number };
}

async function answerOf(res: Response): Promise<ImageAnswer> {
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return JSON.parse(text) as ImageAnswer;
}

/** Width and height from the IHDR chunk, after checking the signature. */
function pngSize(bytes: Uint8Array): { width: number; height: number } {
  assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  assert.equal(new TextDecoder().decode(bytes.subarray(12, 16)), "IHDR");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

/** Decodes an 8-bit RGB PNG with filters None and Sub, the two the encoder writes. */
function decodeRgbPng(bytes: Uint8Array): Uint8Array {
  const { width, height } = pngSize(bytes);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const idat: Uint8Array[] = [];
  for (let offset = 8; offset < bytes.length;) {
    const length = view.getUint32(offset);
    const type = new TextDecoder().decode(bytes.subarray(offset + 4, offset + 8));
    const data = bytes.subarray(offset + 8, offset + 8 + length);
    assert.equal(
      view.getUint32(offset + 8 + length),
      crc32(bytes.subarray(offset + 4, offset + 8 + length)),
    );
    if (type === "IDAT") idat.push(data);
    offset += 12 + length;
  }
  const joined = new Uint8Array(idat.reduce((n, part) => n + part.length, 0));
  idat.reduce((offset, part) => (joined.set(part, offset), offset + part.length), 0);
  const raw = inflateSync(joined);
  const stride = width * 3;
  const out = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    for (let i = 0; i < stride; i++) {
      const value = raw[y * (stride + 1) + 1 + i]!;
      const left = i >= 3 ? out[y * stride + i - 3]! : 0;
      out[y * stride + i] = filter === 1 ? (value + left) & 0xff : value;
    }
  }
  return out;
}

Deno.test("encodePng() writes a PNG whose pixels decode back unchanged", () => {
  const pixels = renderPicture(37, 23, "round trip");
  for (const level of [0, 6, 9]) {
    const png = encodePng(37, 23, pixels, { level });
    assert.deepEqual(pngSize(png), { width: 37, height: 23 });
    assert.deepEqual(decodeRgbPng(png), pixels);
  }
  // The IEND chunk of every PNG ends with the same well-known CRC.
  const png = encodePng(1, 1, new Uint8Array([1, 2, 3]));
  assert.deepEqual([...png.subarray(-8)], [0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82]);
});

Deno.test("encodePng() refuses pixels that do not match the size", () => {
  assert.throws(() => encodePng(2, 2, new Uint8Array(11)), RangeError);
  assert.throws(() => encodePng(0, 2, new Uint8Array(0)), RangeError);
  assert.throws(() => encodePng(1, 1, new Uint8Array(3), { level: 10 }), RangeError);
});

Deno.test("renderPicture() is deterministic, differs by seed and is not a blank", () => {
  const a = renderPicture(64, 48, "一只橘猫");
  assert.equal(a.length, 64 * 48 * 3);
  assert.deepEqual(renderPicture(64, 48, "一只橘猫"), a);
  assert.notDeepEqual(renderPicture(64, 48, "a dog"), a);
  const colours = new Set<number>();
  for (let i = 0; i < a.length; i += 3) colours.add((a[i]! << 16) | (a[i + 1]! << 8) | a[i + 2]!);
  assert.ok(colours.size > 200, `only ${colours.size} colours`);
});

Deno.test("renderNoise() gives the same incompressible bytes for the same seed", () => {
  const a = renderNoise(33, 7, "bench");
  assert.equal(a.length, 33 * 7 * 3);
  assert.deepEqual(renderNoise(33, 7, "bench"), a);
  assert.notDeepEqual(renderNoise(33, 7, "other"), a);
  const png = encodePng(128, 128, renderNoise(128, 128, "bench"), { level: 9 });
  assert.ok(png.length > 128 * 128 * 3, "noise should not compress");
});

Deno.test("startMockUpstream() answers with a PNG of the requested size, the same for the same prompt", async () => {
  await withMock({}, async (mock) => {
    assert.match(mock.url, /^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    const first = await answerOf(
      await generate(mock, { model: MOCK_MODEL, prompt: "橘猫, window light", size: "320x200" }),
    );
    assert.equal(first.size, "320x200");
    assert.ok(first.usage.total_tokens > 0);
    assert.equal(first.data.length, 1);
    const item = first.data[0]!;
    assert.equal(item.url, "");
    assert.match(item.revised_prompt ?? "", /橘猫, window light/);
    const png = Uint8Array.fromBase64(item.b64_json!);
    assert.deepEqual(pngSize(png), { width: 320, height: 200 });
    assert.deepEqual(decodeRgbPng(png), renderPicture(320, 200, "橘猫, window light"));

    const again = await answerOf(
      await generate(mock, { model: MOCK_MODEL, prompt: "橘猫, window light", size: "320x200" }),
    );
    assert.equal(again.data[0]!.b64_json, item.b64_json);
    const other = await answerOf(
      await generate(mock, { model: MOCK_MODEL, prompt: "a dog", size: "320x200" }),
    );
    assert.notEqual(other.data[0]!.b64_json, item.b64_json);
  });
});

Deno.test("startMockUpstream() renders size auto at 1024x1024 and a non-square size as asked", async () => {
  await withMock({}, async (mock) => {
    const auto = await answerOf(await generate(mock, { prompt: "auto", size: "auto" }));
    assert.deepEqual(pngSize(Uint8Array.fromBase64(auto.data[0]!.b64_json!)), {
      width: 1024,
      height: 1024,
    });
    const tall = await answerOf(await generate(mock, { prompt: "tall", size: "48x96" }));
    assert.deepEqual(pngSize(Uint8Array.fromBase64(tall.data[0]!.b64_json!)), {
      width: 48,
      height: 96,
    });
  });
});

Deno.test("startMockUpstream() serves url answers from the same server", async () => {
  await withMock({}, async (mock) => {
    const answer = await answerOf(
      await generate(mock, { prompt: "by url", size: "64x40", response_format: "url" }),
    );
    const item = answer.data[0]!;
    assert.equal(item.b64_json, "");
    assert.match(item.url!, new RegExp(`^${mock.url}/files/[0-9a-f]+\\.png$`));
    const res = await fetch(item.url!);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "image/png");
    const png = new Uint8Array(await res.arrayBuffer());
    assert.deepEqual(pngSize(png), { width: 64, height: 40 });

    const inline = await answerOf(await generate(mock, { prompt: "by url", size: "64x40" }));
    assert.deepEqual(png, Uint8Array.fromBase64(inline.data[0]!.b64_json!));
  });
});

Deno.test("startMockUpstream() lists the models and one mock-fail model per failure", async () => {
  await withMock({}, async (mock) => {
    const res = await fetch(`${mock.url}/models`);
    const list = await res.json() as { object: string; data: { id: string }[] };
    assert.equal(list.object, "list");
    const ids = list.data.map((m) => m.id);
    assert.ok(ids.includes(MOCK_MODEL));
    assert.ok(ids.includes(MOCK_STRICT_MODEL));
    for (const name of FAILURE_SCENARIO_NAMES) assert.ok(ids.includes(`mock-fail-${name}`), name);
    assert.equal(ids.length, FAILURE_SCENARIO_NAMES.length + 2);
  });
});

Deno.test("every canned scenario answers with its status, headers and a filled-in body", async () => {
  const canned = MOCK_SCENARIO_NAMES.filter((name) => MOCK_SCENARIOS[name].kind === "respond");
  assert.ok(canned.length >= 30);
  await withMock({}, async (mock) => {
    for (const name of canned) {
      const scenario = MOCK_SCENARIOS[name];
      const ways = ["prefix", "header", ...scenario.expectedCategory ? ["model"] : []];
      for (const how of ways) {
        const res = how === "model"
          ? await generate(mock, { model: scenarioModel(name), prompt: "x", size: "1000x1000" })
          : how === "header"
          ? await generate(mock, { model: MOCK_MODEL, prompt: "x" }, {
            headers: { "x-mock-scenario": name },
          })
          : await generate(mock, { prompt: "x" }, { baseUrl: mock.baseUrl(name) });
        const text = await res.text();
        assert.equal(res.status, scenario.status, `${name} by ${how}`);
        assert.equal(
          res.headers.get("content-type"),
          scenario.headers["content-type" as keyof typeof scenario.headers] ?? null,
          name,
        );
        assert.doesNotMatch(text, /\{\{\w+\}\}/, `${name} left a placeholder`);
        if (res.headers.get("content-type")?.includes("json") && name !== "malformed") {
          const parsed = JSON.parse(text);
          assert.ok("error" in parsed || "data" in parsed, name);
        }
      }
    }
  });
});

Deno.test("scenario bodies carry the upstream's own words", async () => {
  const expect: [MockScenarioName, RegExp][] = [
    ["401-gateway", /无效的令牌 \(request id: \d{14}/],
    ["quota-gateway", /用户额度不足/],
    ["no-channel", /下对于模型 mock-fail-no-channel 无可用渠道/],
    ["502", /^\{"error":\{"message":"Upstream request failed","type":"upstream_error"\}\}$/],
    ["bad-size", /Invalid value: '1000x1000'/],
    ["404", /<title>404 Not Found<\/title>/],
    ["524", /<title>127\.0\.0\.1:\d+ \| 524: A timeout occurred<\/title>/],
    ["401", /Incorrect API key provided: sk-mock-\*+cdef\./],
  ];
  await withMock({}, async (mock) => {
    for (const [name, pattern] of expect) {
      const res = await generate(mock, {
        model: scenarioModel(name),
        prompt: "x",
        size: "1000x1000",
      });
      assert.match(await res.text(), pattern, name);
    }
    const limited = await generate(mock, { model: scenarioModel("429"), prompt: "x" });
    await limited.body?.cancel();
    assert.equal(limited.headers.get("retry-after"), "2");
  });
});

Deno.test("the echo-key scenario quotes the whole bearer token", async () => {
  await withMock({}, async (mock) => {
    const res = await generate(mock, { model: scenarioModel("echo-key"), prompt: "x" });
    assert.equal(res.status, 401);
    assert.ok((await res.text()).includes(KEY));
  });
});

Deno.test("the download-404 scenario answers with a url whose download fails", async () => {
  await withMock({}, async (mock) => {
    const answer = await answerOf(
      await generate(mock, { model: scenarioModel("download-404"), prompt: "x" }),
    );
    const res = await fetch(answer.data[0]!.url!);
    assert.equal(res.status, 404);
    assert.equal(res.headers.get("x-ms-error-code"), "BlobNotFound");
    assert.match(await res.text(), /<Code>BlobNotFound<\/Code>/);
  });
});

Deno.test("the reset scenario sends headers, then the body fails", async () => {
  await withMock({}, async (mock) => {
    const res = await generate(mock, { model: scenarioModel("reset"), prompt: "x" });
    assert.equal(res.status, 200);
    await assert.rejects(() => res.text(), TypeError);
  });
});

Deno.test("the stall-headers scenario sends nothing until the client gives up", async () => {
  await withMock({}, async (mock) => {
    const controller = new AbortController();
    const pending = generate(mock, { model: scenarioModel("stall-headers"), prompt: "x" }, {
      signal: controller.signal,
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const outcome = await Promise.race([
      pending.then(() => "answered", () => "failed"),
      new Promise<string>((resolve) => timer = setTimeout(() => resolve("still waiting"), 400)),
    ]);
    clearTimeout(timer);
    assert.equal(outcome, "still waiting");
    controller.abort();
    await assert.rejects(pending);
  });
});

Deno.test("a stall ends at the cap with the proxy's 504", async () => {
  await withMock({ stallMs: 300 }, async (mock) => {
    const started = performance.now();
    const res = await generate(mock, { model: scenarioModel("stall-headers"), prompt: "x" });
    assert.equal(res.status, 504);
    assert.match(await res.text(), /504 Gateway Time-out/);
    assert.ok(performance.now() - started >= 250);
  });
});

Deno.test("the stall-body scenario sends headers and a partial body, then fails at the cap", async () => {
  await withMock({ stallMs: 300 }, async (mock) => {
    const res = await generate(mock, { model: scenarioModel("stall-body"), prompt: "x" });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    const first = await reader.read();
    assert.match(new TextDecoder().decode(first.value), /^\{"created":\d+,"data":\[/);
    const started = performance.now();
    await assert.rejects(async () => {
      while (!(await reader.read()).done) { /* drain */ }
    }, TypeError);
    assert.ok(performance.now() - started >= 200);
  });
});

Deno.test("x-mock-delay-ms delays a successful answer", async () => {
  await withMock({}, async (mock) => {
    const started = performance.now();
    const answer = await answerOf(
      await generate(mock, { prompt: "slow", size: "16x16" }, {
        headers: { "x-mock-delay-ms": "250" },
      }),
    );
    assert.ok(performance.now() - started >= 200);
    assert.equal(answer.size, "16x16");
  });
});

Deno.test("shutdown() ends a stall at once", async () => {
  const mock = startMockUpstream({ hostname: "127.0.0.1", port: 0 });
  let pending: Promise<Response> | undefined;
  try {
    pending = generate(mock, { model: scenarioModel("stall-headers"), prompt: "x" });
    await new Promise((resolve) => setTimeout(resolve, 150));
  } finally {
    const started = performance.now();
    await mock.shutdown();
    assert.ok(performance.now() - started < 2000);
  }
  const res = await pending;
  assert.equal(res.status, 504);
  await res.body?.cancel();
});

Deno.test("startMockUpstream() stops when its signal aborts", async () => {
  const controller = new AbortController();
  const mock = startMockUpstream({ hostname: "127.0.0.1", port: 0, signal: controller.signal });
  try {
    const res = await fetch(`${mock.url}/models`);
    await res.body?.cancel();
    controller.abort();
    await mock.finished;
  } finally {
    await mock.shutdown();
  }
});

Deno.test("mock-image-strict rejects response_format like the official API", async () => {
  await withMock({}, async (mock) => {
    const rejected = await generate(mock, {
      model: MOCK_STRICT_MODEL,
      prompt: "x",
      size: "32x32",
      response_format: "b64_json",
    });
    assert.equal(rejected.status, 400);
    const error = (await rejected.json()).error;
    assert.equal(error.code, "unknown_parameter");
    assert.equal(error.param, "response_format");

    const accepted = await answerOf(
      await generate(mock, { model: MOCK_STRICT_MODEL, prompt: "x", size: "32x32" }),
    );
    assert.deepEqual(Object.keys(accepted.data[0]!), ["b64_json"]);
  });
});

Deno.test("startMockUpstream() validates requests as an OpenAI-style upstream does", async () => {
  await withMock({}, async (mock) => {
    const noKey = await fetch(`${mock.url}/images/generations`, {
      method: "POST",
      body: JSON.stringify({ prompt: "x" }),
    });
    assert.equal(noKey.status, 401);
    await noKey.body?.cancel();

    const badJson = await fetch(`${mock.url}/images/generations`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}` },
      body: "{not json",
    });
    assert.equal(badJson.status, 400);
    await badJson.body?.cancel();

    for (const body of [{}, { prompt: "" }, { prompt: "x", size: "big" }, { prompt: "x", n: 0 }]) {
      const res = await generate(mock, body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal((await res.json()).error.type, "invalid_request_error");
    }

    const unknownScenario = await generate(mock, { model: "mock-fail-nope", prompt: "x" });
    assert.equal(unknownScenario.status, 404);
    assert.equal((await unknownScenario.json()).error.code, "model_not_found");

    const noV1 = await fetch(mock.url.replace(/\/v1$/, "/images/generations"), { method: "POST" });
    assert.equal(noV1.status, 404);
    await noV1.body?.cancel();
  });
});

Deno.test("a scenario answers every request under its path prefix, by its name or an alias", async () => {
  await withMock({}, async (mock) => {
    const byName = await generate(mock, { prompt: "x" }, { baseUrl: mock.baseUrl("502") });
    const byAlias = await fetch(`${mock.baseUrl("seed-502")}/any/path`);
    for (const res of [byName, byAlias]) {
      assert.equal(res.status, 502);
      assert.equal(await res.text(), MOCK_SCENARIOS["502"].body);
    }
    const unknown = await generate(mock, { prompt: "x" }, { baseUrl: mock.baseUrl("nope") });
    assert.equal(unknown.status, 404);
    assert.match((await unknown.json()).error.message, /Invalid URL/);
  });
});

Deno.test("mock-fail-<name> selects a failure by name or alias, never an answer that succeeds", async () => {
  await withMock({}, async (mock) => {
    const alias = await generate(mock, { model: "mock-fail-seed-502", prompt: "x" });
    assert.equal(alias.status, 502);
    await alias.body?.cancel();
    const shape = await generate(mock, { model: "mock-fail-ok", prompt: "x" });
    assert.equal(shape.status, 404);
    assert.equal((await shape.json()).error.code, "model_not_found");
  });
});

Deno.test("under a prefix, a files path serves the sample PNG that ok-url points at", async () => {
  await withMock({}, async (mock) => {
    const answer = await answerOf(
      await generate(mock, { prompt: "x" }, { baseUrl: mock.baseUrl("ok-url") }),
    );
    for (const url of [answer.data[0]!.url!, `${mock.baseUrl("anything")}/files/x.png`]) {
      const res = await fetch(url);
      assert.equal(res.headers.get("content-type"), "image/png");
      assert.deepEqual(new Uint8Array(await res.arrayBuffer()), SAMPLE_PNG);
    }
  });
});

Deno.test("an answer shape is sent compressed as its content-encoding says", async () => {
  await withMock({}, async (mock) => {
    for (const [name, encoding] of [["ok-gzip", "gzip"], ["ok-br", "br"]]) {
      const res = await generate(mock, { prompt: "x" }, { baseUrl: mock.baseUrl(name!) });
      assert.equal(res.headers.get("content-encoding"), encoding);
      const answer = await answerOf(res);
      assert.equal(answer.data[0]!.b64_json, SAMPLE_PNG.toBase64());
    }
  });
});

Deno.test("the refuses-response-format scenario refuses it, then answers without it", async () => {
  await withMock({}, async (mock) => {
    const baseUrl = mock.baseUrl("refuses-response-format");
    const refused = await generate(mock, { prompt: "x", response_format: "b64_json" }, { baseUrl });
    assert.equal(refused.status, 400);
    assert.equal((await refused.json()).error.code, "unknown_parameter");
    const answer = await answerOf(await generate(mock, { prompt: "x" }, { baseUrl }));
    assert.equal(answer.data[0]!.b64_json, SAMPLE_PNG.toBase64());
  });
});

Deno.test("route() answers its prefix before a scenario of that name, with the parsed body", async () => {
  await withMock({}, async (mock) => {
    mock.route(
      "502",
      (request, body, upstream) =>
        Response.json({ method: request.method, body, same: upstream === mock }),
    );
    const res = await generate(mock, { prompt: "routed" }, { baseUrl: mock.baseUrl("502") });
    assert.deepEqual(await res.json(), { method: "POST", body: { prompt: "routed" }, same: true });
  });
});

Deno.test("startMockUpstream() keeps the requests only when asked to record them", async () => {
  await withMock({}, async (mock) => {
    await (await fetch(`${mock.url}/models`)).body?.cancel();
    assert.deepEqual(mock.requests, []);
  });
  await withMock({ record: true }, async (mock) => {
    const arrived = mock.nextArrival();
    await answerOf(await generate(mock, { prompt: "x" }, { baseUrl: mock.baseUrl("ok") }));
    await arrived;
    await (await fetch(`${mock.baseUrl("ok")}/x`, { method: "POST", body: "[1]" })).body?.cancel();
    assert.deepEqual(
      mock.requests.map(({ scenario, method, path, body }) => ({ scenario, method, path, body })),
      [
        {
          scenario: "ok",
          method: "POST",
          path: "/ok/v1/images/generations",
          body: { prompt: "x" },
        },
        { scenario: "ok", method: "POST", path: "/ok/v1/x", body: null },
      ],
    );
    assert.equal(mock.requests[0]!.headers.get("authorization"), `Bearer ${KEY}`);
  });
});

Deno.test("untilClosed() settles at shutdown, so a route may stall until then", async () => {
  const mock = startMockUpstream({ port: 0 });
  mock.route(
    "hang",
    (_request, _body, upstream) => upstream.untilClosed().then(() => new Response("released")),
  );
  const arrived = mock.nextArrival();
  const pending = fetch(`${mock.baseUrl("hang")}/x`);
  await arrived;
  await mock.shutdown();
  assert.equal(await (await pending).text(), "released");
});

Deno.test("docs/offline-upstream.md names every scenario", async () => {
  const readme = await Deno.readTextFile(
    new URL("../../docs/offline-upstream.md", import.meta.url),
  );
  assert.deepEqual(MOCK_SCENARIO_NAMES.filter((name) => !readme.includes(`\`${name}\``)), []);
});

Deno.test("startMockUpstream() refuses to listen beyond loopback", () => {
  assert.throws(() => startMockUpstream({ hostname: "0.0.0.0", port: 0 }), /loopback only/);
  assert.throws(() => startMockUpstream({ hostname: "127.0.0.1", port: -1 }), /port/);
});

/** The events of a server-sent stream: each one's name and parsed data, comments left out. */
function parseEvents(text: string): { event: string | null; data: Record<string, unknown> }[] {
  return text.split("\n\n").filter((block) => /^(event|data):/m.test(block)).map((block) => {
    const field = (name: string) =>
      block.split("\n").find((line) => line.startsWith(`${name}: `))?.slice(name.length + 2);
    return { event: field("event") ?? null, data: JSON.parse(field("data") ?? "null") };
  });
}

Deno.test("a streamed request gets OpenAI's events: the partial images, then the completed one", async () => {
  await withMock({}, async (mock) => {
    const body = { prompt: "a lighthouse", size: "64x48", stream: true, partial_images: 2 };
    const res = await generate(mock, body);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/);
    const events = parseEvents(await res.text());
    assert.deepEqual(events.map((e) => e.event), [
      "image_generation.partial_image",
      "image_generation.partial_image",
      "image_generation.completed",
    ]);
    assert.deepEqual(events.map((e) => e.data.type), events.map((e) => e.event));
    assert.deepEqual(events.map((e) => e.data.partial_image_index), [0, 1, undefined]);
    const completed = events[2]!.data;
    assert.equal(completed.size, "64x48");
    assert.equal(typeof (completed.usage as { total_tokens: number }).total_tokens, "number");
    const json = await (await generate(mock, { prompt: "a lighthouse", size: "64x48" })).json();
    assert.equal(completed.b64_json, json.data[0].b64_json);
  });
});

Deno.test("cut-after-100s answers a request that is not streamed with Cloudflare's 524 when the wait ends", async () => {
  await withMock({ cutMs: 50 }, async (mock) => {
    const res = await generate(mock, { prompt: "x", model: scenarioModel("cut-after-100s") });
    assert.equal(res.status, 524);
    assert.equal(res.headers.get("server"), "cloudflare");
    assert.match(await res.text(), /524: A timeout occurred/);
  });
});

Deno.test("cut-after-100s keeps a streamed request alive past the cut and sends its image", async () => {
  await withMock({}, async (mock) => {
    const res = await generate(
      mock,
      { prompt: "x", size: "64x48", model: scenarioModel("cut-after-100s"), stream: true },
      { headers: { "x-mock-cut-ms": "300" } },
    );
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.match(text, /^: generating\n\n(: keep-alive\n\n)+event: image_generation\.completed/);
    const [completed] = parseEvents(text);
    assert.deepEqual(pngSize(Uint8Array.fromBase64(completed!.data.b64_json as string)), {
      width: 64,
      height: 48,
    });
  });
});
