/**
 * What real gateways send when they refuse, replayed by a local upstream and run through the
 * whole pipeline: status, headers and body as each one's source shows them, and the diagnosis
 * the command must give.
 */
import assert from "node:assert/strict";
import { generateImage } from "../../lib/mod.ts";
import type { Category, FailureResult } from "../../lib/mod.ts";
import { inputFor, listDir, startFakeUpstream } from "../_fake_upstream.ts";
import { withTempDir } from "../_helpers.ts";

interface GatewayAnswer {
  name: string;
  /** Where this answer was read: a repository and file, or a documentation page. */
  source: string;
  status: number;
  headers?: Record<string, string>;
  body: unknown;
  category: Category;
  code?: string | null;
  retryAfterMs?: number;
}

const OPENAI = "platform.openai.com/docs/guides/error-codes";
const OPENAI_IMAGES = "platform.openai.com/docs/guides/image-generation";
const AZURE = "learn.microsoft.com/azure/ai-services/openai/concepts/content-filter";
const AZURE_REF = "learn.microsoft.com/azure/ai-services/openai/reference";
const OPENROUTER = "openrouter.ai/docs/api/reference/errors-and-debugging";
const LITELLM = "BerriAI/litellm litellm/proxy/_types.py (ProxyException, ProxyErrorTypes)";
const LITELLM_ROUTE = "BerriAI/litellm litellm/proxy/route_llm_request.py";
const LITELLM_ROUTER = "BerriAI/litellm litellm/router.py (no deployments available)";
const NEW_API = "QuantumNous/new-api types/error.go, i18n/locales/zh-CN.yaml";
const NEW_API_429 = "QuantumNous/new-api controller/relay.go (429 rewrite)";
const SUB2API_AUTH = "Wei-Shaw/sub2api backend/internal/server/middleware/api_key_auth.go";
const SUB2API_HANDLER = "Wei-Shaw/sub2api backend/internal/handler/openai_gateway_handler.go";
const ARK = "volcengine.com/docs/82379/1299023";
const SILICONFLOW = "docs.siliconflow.cn/cn/faqs/error-code";
const ZHIPU = "docs.bigmodel.cn/cn/faq/api-code";
const AI_GATEWAY = "developers.cloudflare.com/ai-gateway/guardrails/set-up-guardrail";
const CLOUDFLARE = "developers.cloudflare.com/support/troubleshooting/http-status-codes";
const NGINX = "nginx src/http/ngx_http_special_response.c";

const nginxPage = (title: string) =>
  `<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<center><h1>${title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`;

const ANSWERS: GatewayAnswer[] = [
  {
    name: "OpenAI 400 moderation_blocked",
    source: OPENAI_IMAGES,
    status: 400,
    body: {
      error: {
        message:
          "Your request was rejected by the safety system. If you believe this is an error, contact us at help.openai.com and include the request ID req_0a1b.",
        type: "image_generation_user_error",
        param: null,
        code: "moderation_blocked",
      },
    },
    category: "content_rejected",
    code: "moderation_blocked",
  },
  {
    name: "OpenAI 429 insufficient_quota with a retry-after",
    source: OPENAI,
    status: 429,
    headers: { "retry-after": "20" },
    body: {
      error: {
        message:
          "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
        type: "insufficient_quota",
        param: null,
        code: "insufficient_quota",
      },
    },
    category: "quota_exceeded",
    code: "insufficient_quota",
  },
  {
    name: "OpenAI 400 billing_hard_limit_reached",
    source: OPENAI,
    status: 400,
    body: {
      error: {
        code: "billing_hard_limit_reached",
        message: "Billing hard limit has been reached",
        param: null,
        type: "invalid_request_error",
      },
    },
    category: "quota_exceeded",
  },
  {
    name: "OpenAI 403 organization must be verified",
    source: OPENAI_IMAGES,
    status: 403,
    body: {
      error: {
        message:
          "Your organization must be verified to use the model `gpt-image-1`. Please go to: https://platform.openai.com/settings/organization/general and click on Verify Organization. If you just verified, it can take up to 15 minutes for access to propagate.",
        type: "invalid_request_error",
        param: null,
        code: null,
      },
    },
    category: "model_unavailable",
  },
  {
    name: "OpenAI 429 rate limit that says when to try again",
    source: OPENAI,
    status: 429,
    headers: { "x-ratelimit-remaining-images": "0", "x-ratelimit-reset-images": "51.84s" },
    body: {
      error: {
        message:
          "Rate limit reached for gpt-image-1 in organization org-x on images per minute (IPM): Limit 5, Used 5, Requested 1. Please try again in 1m2s.",
        type: "requests",
        param: null,
        code: "rate_limit_exceeded",
      },
    },
    category: "rate_limited",
    retryAfterMs: 62_000,
  },
  {
    name: "OpenAI 429 rate limit with only the reset headers",
    source: OPENAI,
    status: 429,
    headers: {
      "x-ratelimit-remaining-requests": "0",
      "x-ratelimit-reset-requests": "6ms",
      "x-ratelimit-remaining-images": "0",
      "x-ratelimit-reset-images": "51.84s",
    },
    body: {
      error: { message: "Too many requests", type: "requests", code: "rate_limit_exceeded" },
    },
    category: "rate_limited",
    retryAfterMs: 51_840,
  },
  {
    name: "OpenAI-shaped 429 that says try again after 51.84 seconds",
    source: OPENAI,
    status: 429,
    body: { error: { message: "Rate limited, try again after 51.84 seconds", type: "requests" } },
    category: "rate_limited",
    retryAfterMs: 51_840,
  },
  {
    name: "Azure OpenAI 400 contentFilter with inner_error (DALL-E)",
    source: AZURE,
    status: 400,
    body: {
      error: {
        code: "contentFilter",
        message: "Your task failed as a result of our safety system.",
        inner_error: {
          code: "ResponsibleAIPolicyViolation",
          content_filter_results: {
            sexual: { filtered: true, severity: "high" },
            violence: { filtered: false, severity: "safe" },
          },
        },
      },
    },
    category: "content_rejected",
    code: "contentFilter",
  },
  {
    name: "Azure OpenAI 400 content_filter with innererror",
    source: AZURE,
    status: 400,
    body: {
      error: {
        message:
          "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry.",
        type: null,
        param: "prompt",
        code: "content_filter",
        status: 400,
        innererror: {
          code: "ResponsibleAIPolicyViolation",
          content_filter_result: { hate: { filtered: true, severity: "medium" } },
        },
      },
    },
    category: "content_rejected",
  },
  {
    name: "Azure OpenAI 404 DeploymentNotFound",
    source: AZURE_REF,
    status: 404,
    body: {
      error: {
        code: "DeploymentNotFound",
        message:
          "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.",
      },
    },
    category: "model_unavailable",
  },
  {
    name: "Azure OpenAI 429 that says retry after 7 seconds",
    source: AZURE_REF,
    status: 429,
    body: {
      error: {
        code: "429",
        message:
          "Requests to the Images_Generations Operation under Azure OpenAI API version 2024-02-01 have exceeded call rate limit of your current OpenAI S0 pricing tier. Please retry after 7 seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit.",
      },
    },
    category: "rate_limited",
    retryAfterMs: 7000,
  },
  {
    name: "Azure OpenAI 401 invalid subscription key",
    source: AZURE_REF,
    status: 401,
    body: {
      error: {
        code: "401",
        message:
          "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.",
      },
    },
    category: "auth_failed",
  },
  {
    name: "OpenRouter 402 out of credits",
    source: OPENROUTER,
    status: 402,
    body: {
      error: {
        code: 402,
        message:
          "This request requires more credits, or fewer max_tokens. To increase, visit https://openrouter.ai/settings/credits and add more credits",
      },
    },
    category: "quota_exceeded",
    code: "402",
  },
  {
    name: "OpenRouter 403 input flagged by moderation",
    source: OPENROUTER,
    status: 403,
    body: {
      error: {
        code: 403,
        message:
          'openai/gpt-image-1 requires moderation on OpenAI. Your input was flagged for "violence". No credits were charged.',
        metadata: { reasons: ["violence"], flagged_input: "…", provider_name: "OpenAI" },
      },
    },
    category: "content_rejected",
  },
  {
    name: "OpenRouter 503 no endpoints for the model",
    source: OPENROUTER,
    status: 503,
    body: { error: { code: 503, message: "No endpoints found for openai/gpt-image-9." } },
    category: "model_unavailable",
  },
  {
    name: "LiteLLM 400 budget_exceeded",
    source: LITELLM,
    status: 400,
    body: {
      error: {
        message: "Budget has been exceeded! Current cost: 5.0, Max budget: 1.0",
        type: "budget_exceeded",
        param: null,
        code: "400",
      },
    },
    category: "quota_exceeded",
  },
  {
    name: "LiteLLM 429 budget_exceeded",
    source: LITELLM,
    status: 429,
    body: {
      error: {
        message: "ExceededBudget: User=user-1 over budget. Spend=20.1, Budget=20.0",
        type: "budget_exceeded",
        param: null,
        code: "429",
      },
    },
    category: "quota_exceeded",
  },
  {
    name: "LiteLLM 400 Invalid model name passed in model=",
    source: LITELLM_ROUTE,
    status: 400,
    body: {
      error: {
        message:
          "{'error': '/images/generations: Invalid model name passed in model=gpt-image-9. Call `/v1/models` to view available models for your key.'}",
        type: "None",
        param: "None",
        code: "400",
      },
    },
    category: "model_unavailable",
  },
  {
    name: "LiteLLM 401 token_not_found_in_db",
    source: LITELLM,
    status: 401,
    body: {
      error: {
        message:
          "Authentication Error, Invalid proxy server token passed. key=88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b, not found in db. Create key via `/key/generate` call.",
        type: "token_not_found_in_db",
        param: "key",
        code: "401",
      },
    },
    category: "auth_failed",
  },
  {
    name: "LiteLLM 401 key_model_access_denied",
    source: LITELLM,
    status: 401,
    body: {
      error: {
        message:
          "key not allowed to access model. This key can only access models=['dall-e-3']. Tried to access gpt-image-1",
        type: "key_model_access_denied",
        param: "model",
        code: "401",
      },
    },
    category: "model_unavailable",
  },
  {
    name: "LiteLLM 408 timeout",
    source: LITELLM,
    status: 408,
    body: {
      error: {
        message: "litellm.Timeout: Connection timed out after 600.0 seconds.",
        type: null,
        param: null,
        code: "408",
      },
    },
    category: "upstream_failure",
  },
  {
    name: "LiteLLM 400 content policy passed through",
    source: LITELLM,
    status: 400,
    body: {
      error: {
        message:
          "litellm.ContentPolicyViolationError: litellm.ContentPolicyViolationError: OpenAIException - Your request was rejected as a result of our safety system.",
        type: null,
        param: null,
        code: "400",
      },
    },
    category: "content_rejected",
  },
  {
    name: "LiteLLM 429 no deployments, try again in 60 seconds",
    source: LITELLM_ROUTER,
    status: 429,
    body: {
      error: {
        message:
          "No deployments available for selected model, Try again in 60 seconds. Passed model=gpt-image-1. pre-call-checks=False, allowed_model_region=n/a",
        type: "None",
        param: "None",
        code: "429",
      },
    },
    category: "rate_limited",
    retryAfterMs: 60_000,
  },
  {
    name: "new-api 403 insufficient_user_quota",
    source: NEW_API,
    status: 403,
    body: {
      error: {
        message: "用户额度不足, 剩余额度: ＄0.000000 (request id: 20261130abc)",
        type: "new_api_error",
        param: "",
        code: "insufficient_user_quota",
      },
    },
    category: "quota_exceeded",
  },
  {
    name: "new-api 429 upstream load saturated (every upstream 429 rewritten)",
    source: NEW_API_429,
    status: 429,
    body: {
      error: {
        message: "当前分组上游负载已饱和，请稍后再试 (request id: 20261130abd)",
        type: "upstream_error",
        param: "",
        code: "429",
      },
    },
    category: "rate_limited",
  },
  {
    name: "new-api 500 sensitive_words_detected",
    source: NEW_API,
    status: 500,
    body: {
      error: {
        message: "sensitive words detected",
        type: "new_api_error",
        param: "",
        code: "sensitive_words_detected",
      },
    },
    category: "content_rejected",
  },
  {
    name: "new-api 429 entitlement_daily_limit_exceeded",
    source: NEW_API,
    status: 429,
    body: {
      error: {
        message: "daily limit exceeded",
        type: "new_api_error",
        param: "",
        code: "entitlement_daily_limit_exceeded",
      },
    },
    category: "quota_exceeded",
  },
  {
    name: "sub2api 403 INSUFFICIENT_BALANCE",
    source: SUB2API_AUTH,
    status: 403,
    body: { code: "INSUFFICIENT_BALANCE", message: "Insufficient account balance" },
    category: "quota_exceeded",
    code: "INSUFFICIENT_BALANCE",
  },
  {
    name: "sub2api 429 USAGE_LIMIT_EXCEEDED",
    source: SUB2API_AUTH,
    status: 429,
    body: { code: "USAGE_LIMIT_EXCEEDED", message: "daily usage limit exceeded" },
    category: "quota_exceeded",
  },
  {
    name: "sub2api 403 billing_error after the wait",
    source: SUB2API_HANDLER,
    status: 403,
    body: { error: { type: "billing_error", message: "insufficient balance" } },
    category: "quota_exceeded",
  },
  {
    name: "sub2api 429 concurrency limit",
    source: SUB2API_HANDLER,
    status: 429,
    body: {
      error: {
        type: "rate_limit_error",
        message: "Concurrency limit exceeded for user, please retry later",
      },
    },
    category: "rate_limited",
  },
  {
    name: "sub2api 502 upstream authentication failed (its account, not the caller's key)",
    source: SUB2API_HANDLER,
    status: 502,
    body: {
      error: {
        type: "upstream_error",
        message: "Upstream authentication failed, please contact administrator",
      },
    },
    category: "upstream_failure",
  },
  {
    name: "Volcengine Ark 403 AccountOverdueError",
    source: ARK,
    status: 403,
    body: {
      error: {
        code: "AccountOverdueError",
        message:
          "The request failed because your account has an overdue balance. Request id: 0217327",
        param: "",
        type: "Forbidden",
      },
    },
    category: "quota_exceeded",
  },
  {
    name: "Volcengine Ark 400 InputTextSensitiveContentDetected",
    source: ARK,
    status: 400,
    body: {
      error: {
        code: "InputTextSensitiveContentDetected",
        message:
          "The request failed because the input text may contain sensitive information. Request id: 0217328",
        param: "",
        type: "BadRequest",
      },
    },
    category: "content_rejected",
  },
  {
    name: "Volcengine Ark 400 OutputImageSensitiveContentDetected",
    source: ARK,
    status: 400,
    body: {
      error: {
        code: "OutputImageSensitiveContentDetected",
        message:
          "The request failed because the output image may contain sensitive information. Request id: 0217329",
        param: "",
        type: "BadRequest",
      },
    },
    category: "content_rejected",
  },
  {
    name: "Volcengine Ark 404 ModelNotOpen",
    source: ARK,
    status: 404,
    body: {
      error: {
        code: "ModelNotOpen",
        message:
          "Your account 2100000000 has not activated the model doubao-seedream-4-0. Please activate the model service in the Ark Console. Request id: 0217330",
        param: "",
        type: "NotFound",
      },
    },
    category: "model_unavailable",
  },
  {
    name: "SiliconFlow 403 code 30001 balance insufficient",
    source: SILICONFLOW,
    status: 403,
    body: { code: 30001, message: "Sorry, your account balance is insufficient", data: null },
    category: "quota_exceeded",
    code: "30001",
  },
  {
    name: "SiliconFlow code 30001 sent with HTTP 200",
    source: SILICONFLOW,
    status: 200,
    body: { code: 30001, message: "Sorry, your account balance is insufficient", data: null },
    category: "quota_exceeded",
  },
  {
    name: "SiliconFlow 400 code 20012 model does not exist",
    source: SILICONFLOW,
    status: 400,
    body: { code: 20012, message: "Model does not exist. Please check it carefully.", data: null },
    category: "model_unavailable",
  },
  {
    name: "Zhipu 429 code 1302 concurrency too high",
    source: ZHIPU,
    status: 429,
    body: {
      error: {
        code: "1302",
        message: "您当前使用该API的并发数过高，请降低并发，或联系客服增加限额。",
      },
    },
    category: "rate_limited",
  },
  {
    name: "Zhipu 429 code 1113 account in arrears",
    source: ZHIPU,
    status: 429,
    body: { error: { code: "1113", message: "您的账户已欠费，请充值后重试。" } },
    category: "quota_exceeded",
  },
  {
    name: "Zhipu 400 code 1301 unsafe content",
    source: ZHIPU,
    status: 400,
    body: {
      error: {
        code: "1301",
        message:
          "系统检测到输入或生成内容可能包含不安全或敏感内容，请您避免输入易产生敏感内容的提示语，感谢您的配合。",
      },
    },
    category: "content_rejected",
  },
  {
    name: "Cloudflare AI Gateway 2016 prompt blocked by guardrails",
    source: AI_GATEWAY,
    status: 400,
    body: {
      success: false,
      result: [],
      messages: [],
      error: [{ code: 2016, message: "Prompt blocked due to security configurations" }],
    },
    category: "content_rejected",
    code: "2016",
  },
  {
    name: "nginx 413 Request Entity Too Large",
    source: NGINX,
    status: 413,
    body: nginxPage("413 Request Entity Too Large"),
    category: "bad_request",
  },
];

for (const answer of ANSWERS) {
  Deno.test(`generateImage() gives ${answer.category} for ${answer.name} (${answer.source})`, async () => {
    await using upstream = startFakeUpstream();
    upstream.route(
      "gateway",
      () =>
        new Response(typeof answer.body === "string" ? answer.body : JSON.stringify(answer.body), {
          status: answer.status,
          headers: {
            "content-type": typeof answer.body === "string" ? "text/html" : "application/json",
            ...answer.headers,
          },
        }),
    );
    await withTempDir(async (dir) => {
      const result = await generateImage(inputFor(upstream, "gateway", dir, { lang: "en" }));
      assert.equal(result.ok, false);
      const { diagnosis, http_status, upstream_error_code, stage } = result as FailureResult;
      assert.equal(stage, "request");
      assert.equal(http_status, answer.status);
      assert.equal(diagnosis.category, answer.category, diagnosis.human_reason);
      if (answer.code !== undefined) assert.equal(upstream_error_code, answer.code);
      assert.equal(diagnosis.retry_after_ms, answer.retryAfterMs);
      if (!diagnosis.retryable) assert.equal("retry_after_ms" in diagnosis, false);
      assert.deepEqual(await listDir(dir), []);
    });
  });
}

const LONG_GENERATION_CUTS = [
  {
    name: "a Cloudflare 524 page",
    source: CLOUDFLARE,
    status: 524,
    page:
      '<!DOCTYPE html>\n<html class="no-js" lang="en-US"><head><title>api.example.com | 524: A timeout occurred</title></head><body><h1>A timeout occurred</h1></body></html>',
  },
  {
    name: "an nginx 504 page",
    source: NGINX,
    status: 504,
    page: nginxPage("504 Gateway Time-out"),
  },
];

for (const cut of LONG_GENERATION_CUTS) {
  Deno.test(`generateImage() explains ${cut.name} as a long generation cut by the gateway (${cut.source})`, async () => {
    await using upstream = startFakeUpstream();
    upstream.route(
      "cut",
      () =>
        new Response(cut.page, { status: cut.status, headers: { "content-type": "text/html" } }),
    );
    await withTempDir(async (dir) => {
      const result = await generateImage(inputFor(upstream, "cut", dir, { lang: "en" }));
      const { diagnosis } = result as FailureResult;
      assert.equal(diagnosis.category, "upstream_failure");
      assert.match(diagnosis.human_reason, /cut the call/);
      assert.match(diagnosis.human_reason, /bill the image/);
      assert.match(diagnosis.human_reason, /stream: true/);
      assert.match(diagnosis.human_reason, /longer gateway timeout/);
    });
  });
}

Deno.test("generateImage() never retries an answer marked x-should-retry: false", async () => {
  await using upstream = startFakeUpstream();
  upstream.route("no-retry", () =>
    Response.json(
      { error: { message: "The server is overloaded", type: "server_error", code: null } },
      { status: 503, headers: { "x-should-retry": "false", "retry-after-ms": "10" } },
    ));
  await withTempDir(async (dir) => {
    const result = await generateImage(
      inputFor(upstream, "no-retry", dir, { lang: "en", max_retries: 3 }),
    );
    const { diagnosis, attempts } = result as FailureResult;
    assert.equal(diagnosis.category, "upstream_failure");
    assert.equal(diagnosis.retryable, false);
    assert.equal("retry_after_ms" in diagnosis, false);
    assert.match(diagnosis.human_reason, /x-should-retry: false/);
    assert.equal(attempts?.length, 1);
    assert.equal(upstream.requests.length, 1);
  });
});

Deno.test("generateImage() reports a retry-after date far ahead without waiting for it", async () => {
  await using upstream = startFakeUpstream();
  const inAnHour = new Date(Date.now() + 3_600_000).toUTCString();
  upstream.route("far-ahead", () =>
    Response.json(
      { error: { message: "Rate limit reached for images", code: "rate_limit_exceeded" } },
      { status: 429, headers: { "retry-after": inAnHour } },
    ));
  await withTempDir(async (dir) => {
    const started = performance.now();
    const result = await generateImage(
      inputFor(upstream, "far-ahead", dir, { max_retries: 3 }),
    );
    const { diagnosis } = result as FailureResult;
    assert.ok(performance.now() - started < 2000);
    assert.equal(diagnosis.retryable, true);
    assert.ok(diagnosis.retry_after_ms! > 3_590_000 && diagnosis.retry_after_ms! <= 3_600_000);
    assert.equal(upstream.requests.length, 1);
  });
});
