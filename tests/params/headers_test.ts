/**
 * Gateways that need more than a Bearer key: extra_headers, auth_header and a base_url with a
 * query, checked against local upstreams that check what each real gateway checks.
 */
import assert from "node:assert/strict";
import { dryRunReport } from "../../lib/cli/dry_run.ts";
import { InputError } from "../../lib/failure/errors.ts";
import { MAX_EXTRA_HEADERS, MAX_HEADER_VALUE_CHARS } from "../../lib/params/headers.ts";
import { type FailureResult, generateImage } from "../../lib/mod.ts";
import { type GenerationInput, validateParams } from "../../lib/params/params.ts";
import { redactText, secretsOf } from "../../lib/shared/redact.ts";
import { USER_AGENT } from "../../lib/upstream/request.ts";
import {
  BATCH_TARGETS,
  promptJobs,
  runBatch,
  sharedFlags,
  writeJobs,
} from "../batch/batch_command.ts";
import { runTarget, TARGETS } from "../_command.ts";
import { inputFor, listDir, PNG_64, startFakeUpstream, TEST_KEY } from "../_fake_upstream.ts";
import { VALID_INPUT as VALID, withTempDir } from "../_helpers.ts";

const AZURE_REF = "learn.microsoft.com/azure/ai-services/openai/reference";
const PORTKEY_HEADERS = "portkey.ai/docs/api-reference/inference-api/headers";
const PORTKEY_VALIDATOR = "Portkey-AI/gateway src/middlewares/requestValidator";
const CF_AIG_AUTH = "developers.cloudflare.com/ai-gateway/configuration/authentication";
const OPENROUTER_ATTRIBUTION = "openrouter.ai/docs/app-attribution";

const CF_TOKEN = "cfut_gatewaytoken0123456789abcdef";
const PORTKEY_KEY = "pk-portkey-secret-ABCDEF012345";

function problemOf(input: GenerationInput): string {
  try {
    validateParams({ ...VALID, ...input });
  } catch (error) {
    assert.ok(error instanceof InputError, String(error));
    return error.message;
  }
  assert.fail(`expected a refusal of ${JSON.stringify(input)}`);
}

const imageAnswer = () => Response.json({ created: 1, data: [{ b64_json: PNG_64.toBase64() }] });

// --- validation ---------------------------------------------------------------------------

Deno.test("validateParams() keeps extra_headers and auth_header, defaulting to none and authorization", () => {
  const plain = validateParams({ ...VALID });
  assert.deepEqual(plain.extra_headers, {});
  assert.equal(plain.auth_header, "authorization");
  const params = validateParams({
    ...VALID,
    auth_header: "api-key",
    extra_headers: { "X-Title": "Cat studio", "x-portkey-provider": "openai" },
  });
  assert.equal(params.auth_header, "api-key");
  assert.deepEqual(params.extra_headers, {
    "X-Title": "Cat studio",
    "x-portkey-provider": "openai",
  });
});

Deno.test("validateParams() refuses an auth_header other than authorization or api-key", () => {
  assert.match(
    problemOf({ auth_header: "x-api-key" }),
    /Invalid auth_header "x-api-key": expected one of authorization, api-key/,
  );
});

Deno.test("validateParams() refuses hop-by-hop headers, Content-Length and Host in any case", () => {
  for (
    const name of [
      "Connection",
      "keep-alive",
      "Proxy-Authorization",
      "proxy-connection",
      "TE",
      "Trailer",
      "Transfer-Encoding",
      "UPGRADE",
      "Content-Length",
      "host",
    ]
  ) {
    assert.match(
      problemOf({ extra_headers: { [name]: "value" } }),
      new RegExp(`extra_headers may not set "${name}": `),
      name,
    );
  }
});

Deno.test("validateParams() refuses Content-Type and Accept, which the command owns", () => {
  assert.match(
    problemOf({ extra_headers: { "content-type": "text/plain" } }),
    /may not set "content-type": the body is always JSON/,
  );
  assert.match(problemOf({ extra_headers: { Accept: "*/*" } }), /may not set "Accept"/);
});

Deno.test("validateParams() refuses the header auth_header puts the key in, and allows the other", () => {
  assert.match(
    problemOf({ extra_headers: { authorization: "Bearer other" } }),
    /may not set "authorization": the key goes there: give it as api_key/,
  );
  assert.match(
    problemOf({ auth_header: "api-key", extra_headers: { "API-Key": "other" } }),
    /may not set "API-Key"/,
  );
  const params = validateParams({
    ...VALID,
    auth_header: "api-key",
    extra_headers: { Authorization: "Bearer entra-token-0123456789" },
  });
  assert.equal(params.extra_headers.Authorization, "Bearer entra-token-0123456789");
  validateParams({ ...VALID, extra_headers: { "api-key": "azure-key-0123456789" } });
});

Deno.test("validateParams() refuses invalid header names, quoting only their valid beginning", () => {
  const message = problemOf({
    extra_headers: { "cf-aig-authorization: Bearer s3cr3t-t0ken": "x" },
  });
  assert.match(message, /Invalid extra_headers name "cf-aig-authorization…": a header name has/);
  assert.ok(!message.includes("s3cr3t"), message);
  assert.match(problemOf({ extra_headers: { "": "x" } }), /Invalid extra_headers name: /);
  assert.match(problemOf({ extra_headers: { "X Title": "x" } }), /name "X…"/);
  assert.match(problemOf({ extra_headers: { "X-Tïtle": "x" } }), /name "X-T…"/);
});

Deno.test("validateParams() refuses header values that are not plain one-line ASCII strings, never quoting them", () => {
  const cases: [unknown, RegExp][] = [
    [42, /expected a string value/],
    [null, /expected a string value/],
    [{ token: "s3cr3t" }, /expected a string value/],
    ["", /its value is empty/],
    ["s3cr3t\r\nX-Injected: 1", /line breaks or control characters/],
    ["s3cr3t\u0000", /line breaks or control characters/],
    ["s3cr3t-猫", /characters outside ASCII/],
    [" s3cr3t", /starts or ends with spaces/],
    ["s3cr3t\t", /starts or ends with spaces/],
    ["s3cr3t".repeat(MAX_HEADER_VALUE_CHARS), /at most 8192 allowed/],
  ];
  for (const [value, expected] of cases) {
    const message = problemOf({ extra_headers: { "X-Secret": value } });
    assert.match(message, /Invalid extra_headers "X-Secret": /);
    assert.match(message, expected);
    assert.ok(!message.includes("s3cr3t"), message);
  }
  validateParams({ ...VALID, extra_headers: { "X-Tabbed": "a\tb c" } });
});

Deno.test("validateParams() refuses the same header twice in different cases, and too many headers", () => {
  assert.match(
    problemOf({ extra_headers: { "X-Title": "a", "x-title": "b" } }),
    /extra_headers sets "x-title" twice \("X-Title" and "x-title"\)/,
  );
  const many = Object.fromEntries(
    Array.from({ length: MAX_EXTRA_HEADERS + 1 }, (_, i) => [`x-h${i}`, "v"]),
  );
  assert.equal(
    problemOf({ extra_headers: { ...many, "Host": "h", "bad name": "v" } }),
    "extra_headers has 67 headers, at most 64 allowed",
  );
  const large = { "x-a": "a".repeat(MAX_HEADER_VALUE_CHARS), "x-b": "b".repeat(8187) };
  assert.match(
    problemOf({ extra_headers: large }),
    /extra_headers has 16385 characters of names and values, at most 16384 allowed/,
  );
  validateParams({ ...VALID, extra_headers: { ...large, "x-b": "b".repeat(8186) } });
});

Deno.test("validateParams() refuses an extra_headers that is not an object without quoting it", () => {
  for (const given of ["x-portkey-api-key: s3cr3t", ["cf-aig-authorization: Bearer s3cr3t"]]) {
    const message = problemOf({ extra_headers: given });
    assert.match(message, /Invalid extra_headers: expected a JSON object/);
    assert.ok(!message.includes("s3cr3t"), message);
  }
});

Deno.test("secretsOf() holds each extra header value and the tokens inside it", () => {
  const secrets = secretsOf(TEST_KEY, "https://api.example.com/v1", {
    "cf-aig-authorization": `Bearer ${CF_TOKEN}`,
    "x-portkey-config": '{"provider":"openai","api_key":"sk-inner-0123456789"}',
    "x-flag": "on",
  });
  assert.ok(secrets.includes(`Bearer ${CF_TOKEN}`));
  assert.ok(secrets.includes(CF_TOKEN));
  assert.ok(secrets.includes("sk-inner-0123456789"));
  assert.ok(!secrets.includes("Bearer"));
  // A short value is masked as a whole word only, as a short key is.
  assert.equal(redactText("turn it on, online", secrets), "turn it ***, online");
});

Deno.test("generateImage() answers for header values no validation would pass, however large", async () => {
  const hostile = [
    { "X-Long": "s3cr3t".repeat(8000) },
    { "X-Wide": "猫".repeat(8192) },
    Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`x-h${i}`, `${i}`.repeat(8192)])),
  ];
  for (const extra_headers of hostile) {
    const result = await generateImage({ ...VALID, extra_headers });
    assert.equal(result.ok, false);
    assert.equal(result.stage, "input");
    assert.match((result as FailureResult).error, /extra_headers/);
  }
});

// --- the request as sent --------------------------------------------------------------------

Deno.test(`generateImage() reaches an Azure OpenAI deployment with api-key and api-version (${AZURE_REF})`, async () => {
  await using upstream = startFakeUpstream();
  // Azure answers 401 without a valid api-key and 404 without api-version or off the
  // deployments path, as its REST reference and users' reports show.
  upstream.route("azure", (request) => {
    const url = new URL(request.url);
    if (request.headers.get("api-key") !== TEST_KEY) {
      return Response.json({
        error: {
          code: "401",
          message:
            "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.",
        },
      }, { status: 401 });
    }
    if (
      url.pathname !== "/azure/openai/deployments/gpt-image-1/images/generations" ||
      url.searchParams.get("api-version") !== "2025-04-01-preview"
    ) {
      return Response.json({ error: { code: "404", message: "Resource not found" } }, {
        status: 404,
      });
    }
    return imageAnswer();
  });
  const base_url =
    `${upstream.origin}/azure/openai/deployments/gpt-image-1?api-version=2025-04-01-preview`;
  await withTempDir(async (dir) => {
    const result = await generateImage(
      inputFor(upstream, "azure", dir, { base_url, auth_header: "api-key", lang: "en" }),
    );
    assert.equal(result.ok, true, JSON.stringify(result));
    const sent = upstream.requests[0]!;
    assert.equal(sent.headers.get("authorization"), null);
    assert.equal(result.base_url, base_url);

    const bearer = await generateImage(inputFor(upstream, "azure", dir, { base_url }));
    assert.equal((bearer as FailureResult).diagnosis.category, "auth_failed");
  });
});

Deno.test(`generateImage() passes Portkey's header check with x-portkey-* headers (${PORTKEY_HEADERS})`, async () => {
  await using upstream = startFakeUpstream();
  upstream.route("portkey", (request) => {
    // Portkey's gateway refuses a request that names no provider, then a wrong Portkey key.
    if (!request.headers.has("x-portkey-provider") && !request.headers.has("x-portkey-config")) {
      return Response.json({
        status: "failure",
        message: "Either x-portkey-config or x-portkey-provider header is required",
      }, { status: 400 });
    }
    if (request.headers.get("x-portkey-api-key") !== PORTKEY_KEY) {
      return Response.json({ status: "failure", message: "Invalid API Key" }, { status: 401 });
    }
    if (request.headers.get("authorization") !== `Bearer ${TEST_KEY}`) {
      return Response.json({ error: { message: "Missing provider key" } }, { status: 401 });
    }
    return imageAnswer();
  });
  await withTempDir(async (dir) => {
    const refused = await generateImage(inputFor(upstream, "portkey", dir, { lang: "en" }));
    assert.equal((refused as FailureResult).http_status, 400);
    assert.match(
      (refused as FailureResult).error,
      /x-portkey-provider header is required/,
      PORTKEY_VALIDATOR,
    );

    const result = await generateImage(
      inputFor(upstream, "portkey", dir, {
        extra_headers: { "x-portkey-api-key": PORTKEY_KEY, "x-portkey-provider": "openai" },
      }),
    );
    assert.equal(result.ok, true, JSON.stringify(result));
  });
});

Deno.test(`generateImage() passes an authenticated Cloudflare AI Gateway with cf-aig-authorization (${CF_AIG_AUTH})`, async () => {
  await using upstream = startFakeUpstream();
  upstream.route("cf-aig", (request) => {
    // The gateway's own 401 (code 2009) comes before the provider sees the request.
    if (request.headers.get("cf-aig-authorization") !== `Bearer ${CF_TOKEN}`) {
      return Response.json({
        success: false,
        result: [],
        messages: [],
        error: [{ code: 2009, message: "Unauthorized" }],
      }, { status: 401 });
    }
    if (request.headers.get("authorization") !== `Bearer ${TEST_KEY}`) {
      return Response.json({
        error: { message: "You didn't provide an API key.", type: "invalid_request_error" },
      }, { status: 401 });
    }
    return imageAnswer();
  });
  const base_url = `${upstream.origin}/cf-aig/v1/acct/gw/openai`;
  await withTempDir(async (dir) => {
    const refused = await generateImage(inputFor(upstream, "cf-aig", dir, { base_url }));
    assert.equal((refused as FailureResult).upstream_error_code, "2009");
    assert.equal((refused as FailureResult).diagnosis.category, "auth_failed");

    const result = await generateImage(
      inputFor(upstream, "cf-aig", dir, {
        base_url,
        extra_headers: { "cf-aig-authorization": `Bearer ${CF_TOKEN}` },
      }),
    );
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(upstream.requests.at(-1)!.path, "/cf-aig/v1/acct/gw/openai/images/generations");
  });
});

Deno.test(`generateImage() sends OpenRouter's attribution headers HTTP-Referer and X-Title (${OPENROUTER_ATTRIBUTION})`, async () => {
  await using upstream = startFakeUpstream();
  upstream.route("openrouter", imageAnswer);
  await withTempDir(async (dir) => {
    const result = await generateImage(
      inputFor(upstream, "openrouter", dir, {
        extra_headers: { "HTTP-Referer": "https://cats.example.com", "X-Title": "Cat studio" },
      }),
    );
    assert.equal(result.ok, true, JSON.stringify(result));
    const { headers } = upstream.requests[0]!;
    assert.equal(headers.get("http-referer"), "https://cats.example.com");
    assert.equal(headers.get("x-title"), "Cat studio");
    assert.equal(headers.get("content-type"), "application/json");
    assert.equal(headers.get("user-agent"), USER_AGENT);
  });
});

Deno.test("generateImage() lets extra_headers replace the User-Agent, sending it once", async () => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const result = await generateImage(
      inputFor(upstream, "ok", dir, { extra_headers: { "user-agent": "cat-studio/1.0" } }),
    );
    assert.equal(result.ok, true);
    assert.equal(upstream.requests[0]!.headers.get("user-agent"), "cat-studio/1.0");
  });
});

// --- masking --------------------------------------------------------------------------------

const SECRET_HEADERS = {
  "cf-aig-authorization": `Bearer ${CF_TOKEN}`,
  "x-portkey-api-key": PORTKEY_KEY,
};

function assertNoHeaderSecret(text: string): void {
  for (const secret of [CF_TOKEN, PORTKEY_KEY, TEST_KEY]) {
    assert.ok(!text.includes(secret), `${secret} in ${text}`);
  }
}

Deno.test("generateImage() masks extra header values an upstream echoes, in the result and in progress", async () => {
  await using upstream = startFakeUpstream();
  upstream.route("echo-headers", (request) => {
    const echoed = `token ${CF_TOKEN.slice(0)}; portkey ${
      request.headers.get("x-portkey-api-key")
    }`;
    return Response.json(
      { error: { message: `Rejected ${echoed}`, type: echoed, code: PORTKEY_KEY } },
      { status: 503, headers: { "x-request-id": `req-${PORTKEY_KEY}`, "retry-after-ms": "1" } },
    );
  });
  const progress: string[] = [];
  await withTempDir(async (dir) => {
    const result = await generateImage(
      inputFor(upstream, "echo-headers", dir, { extra_headers: SECRET_HEADERS, max_retries: 1 }),
      { onProgress: (message) => progress.push(message) },
    );
    assert.equal(result.ok, false);
    assert.equal(upstream.requests.length, 2);
    assert.match(JSON.stringify(result), /Rejected token \*\*\*; portkey \*\*\*/);
    assertNoHeaderSecret(JSON.stringify(result));
    assert.ok(progress.some((line) => line.includes("retrying")), progress.join("\n"));
    assertNoHeaderSecret(progress.join("\n"));
  });
});

Deno.test("generateImage() masks extra header values in the usage and revised prompt of a success", async () => {
  await using upstream = startFakeUpstream();
  upstream.route("echo-ok", () =>
    Response.json({
      data: [{ b64_json: PNG_64.toBase64(), revised_prompt: `a cat for ${PORTKEY_KEY}` }],
      usage: { note: `Bearer-less ${CF_TOKEN}` },
    }));
  await withTempDir(async (dir) => {
    const result = await generateImage(
      inputFor(upstream, "echo-ok", dir, { extra_headers: SECRET_HEADERS }),
    );
    assert.equal(result.ok, true);
    assertNoHeaderSecret(JSON.stringify(result));
  });
});

Deno.test("generateImage() masks extra header values in an input error", async () => {
  await withTempDir(async (dir) => {
    const result = await generateImage({
      ...VALID,
      output_dir: dir,
      // The invalid quality is quoted back; it is the gateway token.
      quality: CF_TOKEN,
      extra_headers: SECRET_HEADERS,
    });
    assert.equal(result.ok, false);
    assert.match((result as FailureResult).error, /Invalid quality "\*\*\*"/);
    assertNoHeaderSecret(JSON.stringify(result));
  });
});

// --- dry run --------------------------------------------------------------------------------

Deno.test("dryRunReport() shows the final URL with its query and every header, values masked", () => {
  const report = dryRunReport(validateParams({
    ...VALID,
    base_url: "https://res.openai.azure.com/openai/deployments/img/?api-version=2025-04-01-preview",
    api_key: TEST_KEY,
    auth_header: "api-key",
    extra_headers: { ...SECRET_HEADERS, "X-Title": "Cat studio" },
  }));
  assert.equal(
    report.request.url,
    "https://res.openai.azure.com/openai/deployments/img/images/generations?api-version=2025-04-01-preview",
  );
  assert.deepEqual(report.request.headers, {
    "Content-Type": "application/json",
    "Accept": "application/json",
    "User-Agent": USER_AGENT,
    "api-key": "***",
    "cf-aig-authorization": "***",
    "x-portkey-api-key": "***",
    "X-Title": "***",
  });
  assertNoHeaderSecret(JSON.stringify(report));
});

Deno.test("--dry-run of main.ts masks the extra headers and sends nothing", async () => {
  await using upstream = startFakeUpstream();
  await withTempDir(async (dir) => {
    const input = inputFor(upstream, "ok", dir, { extra_headers: SECRET_HEADERS });
    const run = await runTarget(TARGETS[0]!, ["--dry-run", "-", "--auth-header", "api-key"], {
      stdin: JSON.stringify(input),
    });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const report = JSON.parse(run.stdout);
    assert.equal(report.request.headers["cf-aig-authorization"], "***");
    assert.equal(report.request.headers["api-key"], "***");
    assert.equal(report.request.headers.Authorization, undefined);
    assertNoHeaderSecret(run.stdout + run.stderr);
    assert.equal(upstream.requests.length, 0);
  });
});

// --- downloads ------------------------------------------------------------------------------

Deno.test("generateImage() sends the key and extra headers to a download on the API's origin only", async () => {
  await using upstream = startFakeUpstream();
  await using elsewhere = startFakeUpstream();
  // Three images: on the API's origin, on another origin, and one that redirects from the
  // API's origin to another.
  upstream.route(
    "own-url",
    (request) =>
      Response.json({ data: [{ url: new URL("/own-url/files/cat.png", request.url).href }] }),
  );
  upstream.route(
    "other-url",
    () => Response.json({ data: [{ url: `${elsewhere.origin}/cdn/files/cat.png` }] }),
  );
  upstream.route(
    "bounce-url",
    (request) => Response.json({ data: [{ url: new URL("/bounce/cat.png", request.url).href }] }),
  );
  upstream.route("bounce", () =>
    new Response(null, {
      status: 302,
      headers: { location: `${elsewhere.origin}/cdn/files/bounced.png` },
    }));
  await withTempDir(async (dir) => {
    for (const scenario of ["own-url", "other-url", "bounce-url"]) {
      const result = await generateImage(
        inputFor(upstream, scenario, dir, {
          auth_header: "api-key",
          response_format: "url",
          extra_headers: SECRET_HEADERS,
        }),
      );
      assert.equal(result.ok, true, `${scenario}: ${JSON.stringify(result)}`);
    }
    const ownDownloads = upstream.requests.filter((r) => r.method === "GET");
    assert.deepEqual(ownDownloads.map((r) => r.path), [
      "/own-url/files/cat.png",
      "/bounce/cat.png",
    ]);
    for (const { headers } of ownDownloads) {
      assert.equal(headers.get("api-key"), TEST_KEY);
      assert.equal(headers.get("cf-aig-authorization"), `Bearer ${CF_TOKEN}`);
      assert.equal(headers.get("x-portkey-api-key"), PORTKEY_KEY);
    }
    assert.deepEqual(elsewhere.requests.map((r) => r.path), [
      "/cdn/files/cat.png",
      "/cdn/files/bounced.png",
    ]);
    for (const { headers } of elsewhere.requests) {
      const sent = [...headers.keys()];
      assert.deepEqual(
        sent.filter((name) =>
          !["accept", "accept-encoding", "accept-language", "host", "user-agent"].includes(name)
        ),
        [],
      );
      assertNoHeaderSecret([...headers.values()].join("\n"));
    }
  });
});

// --- batches --------------------------------------------------------------------------------

Deno.test("img2-batch sends extra_headers and writes their values to no file or output", async () => {
  await using upstream = startFakeUpstream();
  upstream.route("echo-headers", (request) =>
    Response.json({
      error: { message: `Rejected ${request.headers.get("cf-aig-authorization")}` },
    }, { status: 401 }));
  await withTempDir(async (dir) => {
    const jobs = await writeJobs(`${dir}/gw.jsonl`, promptJobs(2));
    const run = await runBatch(BATCH_TARGETS[0]!, [
      jobs,
      "--keep-going",
      "--events",
      "-",
      "--extra-headers",
      JSON.stringify(SECRET_HEADERS),
      ...sharedFlags(upstream, "echo-headers", dir),
    ]);
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.equal(
      upstream.requests[0]!.headers.get("cf-aig-authorization"),
      `Bearer ${CF_TOKEN}`,
    );
    const runDir = `${dir}/out/.img2-batch/gw`;
    const written = await Promise.all(
      (await listDir(runDir)).map((name) => Deno.readTextFile(`${runDir}/${name}`)),
    );
    assertNoHeaderSecret([run.stdout, run.stderr, ...written].join("\n"));
  });
});
