/**
 * The image APIs people use beside OpenAI, replayed by a local upstream: what each sends when it
 * succeeds (every shape saves the image), what it sends when it refuses (each diagnosed by its
 * words, whatever the status), and the words of theirs the command sends as given. Each case
 * names where its body was read.
 */
import assert from "node:assert/strict";
import { generateImage } from "../../lib/mod.ts";
import type { Category, FailureResult, SuccessResult } from "../../lib/mod.ts";
import { inputFor, listDir, PNG_64, startFakeUpstream } from "../_fake_upstream.ts";
import { withTempDir } from "../_helpers.ts";

const B64 = PNG_64.toBase64();
/** Where a route serves the image its answer links to, as a short-lived link would. */
const IMAGE_PATH = "/files/image.png?X-Tos-Expires=86400&X-Tos-Signature=abc";

interface SuccessShape {
  name: string;
  source: string;
  /** The answer, given the URL of the image it links to. */
  body: (imageUrl: string) => unknown;
}

const SUCCESS_SHAPES: SuccessShape[] = [
  {
    name: "SiliconFlow images[0].url with timings and seed",
    source: "docs.siliconflow.cn/cn/api-reference/images/images-generations",
    body: (url) => ({ images: [{ url }], timings: { inference: 0.93 }, seed: 42746333 }),
  },
  {
    name: "Volcengine Ark (Seedream) data[].url with size and usage",
    source: "volcengine.com/docs/82379/1541523 (图片生成 API)",
    body: (url) => ({
      model: "doubao-seedream-4-0-250828",
      created: 1757321139,
      data: [{ url, size: "2048x2048" }],
      usage: { generated_images: 1, output_tokens: 16384, total_tokens: 16384 },
    }),
  },
  {
    name: "Zhipu CogView data[].url with content_filter",
    source: "docs.bigmodel.cn/api-reference (图像生成)",
    body: (url) => ({
      created: 1760335349,
      data: [{ url }],
      content_filter: [{ role: "assistant", level: 3 }],
    }),
  },
  {
    name: "Together data[].b64_json with index and type",
    source: "docs.together.ai/reference/post-images-generations",
    body: () => ({
      id: "oFuwv7Y-2kFHot-99170ebf9e84e0ce-SJC",
      model: "black-forest-labs/FLUX.1-schnell",
      object: "list",
      data: [{ index: 0, b64_json: B64, type: "b64_json", timings: { inference: 0.5 } }],
    }),
  },
  {
    name: "xAI data[].url with revised_prompt",
    source: "docs.x.ai/docs/guides/image-generations",
    body: (url) => ({ data: [{ url, revised_prompt: "" }] }),
  },
  {
    name: "Azure OpenAI data[].b64_json with content_filter_results",
    source: "learn.microsoft.com/azure/ai-services/openai/reference (image generation)",
    body: () => ({
      created: 1698116662,
      data: [{
        b64_json: B64,
        revised_prompt: "an orange cat by the window",
        content_filter_results: { hate: { filtered: false, severity: "safe" } },
        prompt_filter_results: { hate: { filtered: false, severity: "safe" } },
      }],
    }),
  },
  {
    name: "Google Gemini's OpenAI-compatible endpoint data[].b64_json",
    source: "ai.google.dev/gemini-api/docs/openai (image generation)",
    body: () => ({ created: 1747917600, data: [{ b64_json: B64 }] }),
  },
];

for (const shape of SUCCESS_SHAPES) {
  Deno.test(`generateImage() saves the image of ${shape.name} (${shape.source})`, async () => {
    await using upstream = startFakeUpstream();
    upstream.route("provider", (request) => {
      if (request.method === "GET") {
        return new Response(PNG_64, { headers: { "content-type": "image/png" } });
      }
      return Response.json(shape.body(`${upstream.origin}/provider${IMAGE_PATH}`));
    });
    await withTempDir(async (dir) => {
      const result = await generateImage(inputFor(upstream, "provider", dir));
      assert.equal(result.ok, true, JSON.stringify(result));
      const saved = await Deno.readFile((result as SuccessResult).image_path);
      assert.deepEqual(saved, PNG_64);
      assert.equal((await listDir(dir)).length, 1);
    });
  });
}

interface Refusal {
  name: string;
  source: string;
  status: number;
  body: unknown;
  category: Category;
  /** What the English reason must say. */
  reason?: RegExp;
}

const REFUSALS: Refusal[] = [
  {
    name: "DashScope 400 data_inspection_failed",
    source: "help.aliyun.com/zh/model-studio/error-code; camel-ai/owl#432",
    status: 400,
    body: {
      error: {
        code: "data_inspection_failed",
        param: null,
        message: "Input data may contain inappropriate content.",
        type: "data_inspection_failed",
      },
      id: "chatcmpl-deab386b-2562-9a7b-b8fa-0ba9385a5c28",
      request_id: "deab386b-2562-9a7b-b8fa-0ba9385a5c28",
    },
    category: "content_rejected",
  },
  {
    name: "DashScope 400 InternalError.Algo.DataInspectionFailed in the message",
    source: "QwenLM/qwen-code#3145",
    status: 400,
    body: {
      error: {
        message:
          "<400> InternalError.Algo.DataInspectionFailed: Input text data may contain inappropriate content.",
      },
    },
    category: "content_rejected",
  },
  {
    name: "a relay's 500 around Gemini's IMAGE_SAFETY",
    source: "a gateway's channel_error body quoted in a client's moderation notes",
    status: 500,
    body: {
      error: {
        message:
          "Gemini image generation blocked [IMAGE_SAFETY]: The generated image was blocked due to safety policy violation, please modify your prompt and try again (request id: 20260715174822474801412n1qjkk7s)",
        type: "channel_error",
        code: "channel:image_generation_failed",
      },
    },
    category: "content_rejected",
  },
  {
    name: "a relay's 502 with Gemini API error: IMAGE_SAFETY",
    source: "CherryHQ/cherry-studio#3876",
    status: 502,
    body: { message: "Gemini API error: IMAGE_SAFETY" },
    category: "content_rejected",
  },
  {
    name: "Fireworks 412 account suspended for its spending limit",
    source: "pollinations/pollinations#12136; amd/gaia#3766",
    status: 412,
    body: {
      error: {
        message:
          "Account acme is suspended, possibly due to reaching the monthly spending limit or failure to pay past invoices. Please go to https://fireworks.ai/account/billing for more information.",
        param: null,
        code: "PRECONDITION_FAILED",
        type: "error",
      },
      request_id: "11650e2f-ff1b-4aac-9719-98006adf7349",
    },
    category: "quota_exceeded",
    reason: /billing/,
  },
  {
    name: "Gemini 400 Imagen only for billed users",
    source: "ammaarreshi/openjourney#1",
    status: 400,
    body: {
      error: {
        code: 400,
        message: "Imagen API is only accessible to billed users at this time.",
        status: "INVALID_ARGUMENT",
      },
    },
    category: "quota_exceeded",
    reason: /billing/,
  },
  {
    name: "Gemini 400 location without a billing account",
    source: "google-gemini/cookbook#135",
    status: 400,
    body: {
      error: {
        code: 400,
        message: "User location is not supported for the API use without a billing account linked.",
        status: "FAILED_PRECONDITION",
      },
    },
    category: "quota_exceeded",
  },
  {
    name: "DashScope 404 Unsupported model for OpenAI compatibility mode",
    source: "help.aliyun.com/zh/model-studio/error-code (404 model_not_supported)",
    status: 404,
    body: {
      error: {
        code: "model_not_supported",
        message: "Unsupported model `wanx2.1-t2i-turbo` for OpenAI compatibility mode.",
        type: "invalid_request_error",
      },
    },
    category: "model_unavailable",
    reason: /OpenAI-compatible endpoint/,
  },
  {
    name: "OpenAI 404 for the retired dall-e-3",
    source: "platform.openai.com/docs/guides/error-codes; OpenAI deprecations",
    status: 404,
    body: {
      error: {
        message: "The model `dall-e-3` does not exist or you do not have access to it.",
        type: "invalid_request_error",
        param: null,
        code: "model_not_found",
      },
    },
    category: "model_unavailable",
    reason: /retired.*gpt-image-2/,
  },
  {
    name: "OpenAI 404 for the shut-down gpt-image-1",
    source: "platform.openai.com/docs/guides/error-codes; OpenAI deprecations",
    status: 404,
    body: {
      error: {
        message: "The model `gpt-image-1` does not exist or you do not have access to it.",
        type: "invalid_request_error",
        param: null,
        code: "model_not_found",
      },
    },
    category: "model_unavailable",
    reason: /retired.*gpt-image-2/,
  },
  {
    name: "xAI 400 Argument not supported: size (a required field, not dropped)",
    source: "rikkahub/rikkahub#1602",
    status: 400,
    body: { code: "400", error: "Argument not supported: size" },
    category: "bad_request",
  },
];

for (const refusal of REFUSALS) {
  Deno.test(`generateImage() gives ${refusal.category} for ${refusal.name} (${refusal.source})`, async () => {
    await using upstream = startFakeUpstream();
    upstream.route("provider", () => Response.json(refusal.body, { status: refusal.status }));
    await withTempDir(async (dir) => {
      const input = inputFor(upstream, "provider", dir, { lang: "en", max_retries: 2 });
      const result = await generateImage(input);
      assert.equal(result.ok, false);
      const { diagnosis, http_status } = result as FailureResult;
      assert.equal(http_status, refusal.status);
      assert.equal(diagnosis.category, refusal.category, diagnosis.human_reason);
      if (refusal.reason) assert.match(diagnosis.human_reason, refusal.reason);
      // Not retryable: one request, though two retries were allowed.
      assert.equal(diagnosis.retryable, false);
      assert.equal(upstream.requests.length, 1);
      assert.deepEqual(await listDir(dir), []);
    });
  });
}

Deno.test("generateImage() says which model replaces a retired one, in Chinese too", async () => {
  await using upstream = startFakeUpstream();
  upstream.route("provider", () =>
    Response.json({
      error: {
        message: "The model `dall-e-2` does not exist or you do not have access to it.",
        type: "invalid_request_error",
        code: "model_not_found",
      },
    }, { status: 404 }));
  await withTempDir(async (dir) => {
    const result = await generateImage(inputFor(upstream, "provider", dir, { model: "dall-e-2" }));
    assert.match((result as FailureResult).diagnosis.human_reason, /已退役.*gpt-image-2/);
  });
});

Deno.test("generateImage() does not call a model retired that only begins like one (gpt-image-1.5)", async () => {
  await using upstream = startFakeUpstream();
  upstream.route("provider", () =>
    Response.json({
      error: {
        message: "The model `gpt-image-1.5` does not exist or you do not have access to it.",
        code: "model_not_found",
      },
    }, { status: 404 }));
  await withTempDir(async (dir) => {
    const result = await generateImage(inputFor(upstream, "provider", dir, { lang: "en" }));
    const { diagnosis } = result as FailureResult;
    assert.equal(diagnosis.category, "model_unavailable");
    assert.doesNotMatch(diagnosis.human_reason, /retired/);
  });
});

Deno.test("generateImage() drops a parameter xAI refuses as unsupported and repeats once (obot-platform/obot#2995)", async () => {
  await using upstream = startFakeUpstream();
  upstream.route(
    "xai",
    (_request, body) =>
      body !== null && "quality" in body
        ? Response.json({ code: "400", error: "Argument not supported: quality" }, { status: 400 })
        : Response.json({ data: [{ b64_json: B64, revised_prompt: "" }] }),
  );
  await withTempDir(async (dir) => {
    const input = inputFor(upstream, "xai", dir, { model: "grok-imagine-image", quality: "high" });
    const result = await generateImage(input);
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.deepEqual((result as SuccessResult).dropped_params, ["quality"]);
    assert.equal(upstream.requests.length, 2);
    assert.equal(upstream.requests[0]?.body?.quality, "high");
    assert.equal("quality" in (upstream.requests[1]?.body ?? {}), false);
  });
});

Deno.test("generateImage() sends Seedream's size 2K and a newer quality word as given", async () => {
  await using upstream = startFakeUpstream();
  upstream.route("ark", () => Response.json({ data: [{ b64_json: B64, size: "2048x2048" }] }));
  await withTempDir(async (dir) => {
    const input = inputFor(upstream, "ark", dir, {
      model: "doubao-seedream-4-0-250828",
      size: "2K",
      quality: "xhigh",
    });
    const result = await generateImage(input);
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(upstream.requests.length, 1);
    assert.equal(upstream.requests[0]?.body?.size, "2K");
    assert.equal(upstream.requests[0]?.body?.quality, "xhigh");
  });
});

Deno.test("generateImage() reports a provider's refusal of a word it sent as given as bad_request", async () => {
  await using upstream = startFakeUpstream();
  const message =
    "Invalid value: 'ultra'. Supported values are: 'low', 'medium', 'high', and 'auto'.";
  upstream.route("openai", () =>
    Response.json({
      error: { message, type: "invalid_request_error", param: "quality", code: "invalid_value" },
    }, { status: 400 }));
  await withTempDir(async (dir) => {
    const result = await generateImage(inputFor(upstream, "openai", dir, { quality: "ultra" }));
    const failure = result as FailureResult;
    assert.equal(failure.diagnosis.category, "bad_request");
    assert.equal(failure.upstream_error_message, message);
    assert.equal(upstream.requests.length, 1);
  });
});

Deno.test("generateImage() shows the message of Gemini's list-wrapped error, and reads a bad key as auth_failed", async () => {
  await using upstream = startFakeUpstream();
  const message = "API key not valid. Please pass a valid API key.";
  upstream.route(
    "gemini",
    () =>
      Response.json([{ error: { code: 400, message, status: "INVALID_ARGUMENT" } }], {
        status: 400,
      }),
  );
  await withTempDir(async (dir) => {
    const result = await generateImage(inputFor(upstream, "gemini", dir));
    const failure = result as FailureResult;
    assert.equal(failure.diagnosis.category, "auth_failed");
    assert.equal(failure.upstream_error_message, message);
  });
});
