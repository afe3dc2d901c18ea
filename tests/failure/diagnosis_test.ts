import assert from "node:assert/strict";
import { CATEGORIES, diagnose, DIAGNOSIS_RULES, findRule } from "../../lib/failure/diagnosis.ts";
import { STOP_SIGNALS } from "../../lib/cli/stop_signals.ts";
import type { Category, FailureFacts } from "../../lib/failure/types.ts";

interface UpstreamAnswer {
  type?: string;
  code?: string;
  message?: string;
}

/** The facts of a request the upstream answered with `status` and an error object. */
function answered(status: number, error: UpstreamAnswer, retryAfterMs: number | null = null) {
  const facts: FailureFacts = {
    stage: "request",
    httpStatus: status,
    upstreamType: error.type ?? null,
    upstreamMessage: error.message ?? null,
    upstreamCode: error.code ?? null,
    cause: null,
    retryAfterMs,
    retryRefused: false,
  };
  return facts;
}

function local(
  stage: FailureFacts["stage"],
  cause: FailureFacts["cause"],
  httpStatus: number | null = null,
): FailureFacts {
  return {
    stage,
    httpStatus,
    upstreamType: null,
    upstreamMessage: null,
    upstreamCode: null,
    cause,
    retryAfterMs: null,
    retryRefused: false,
  };
}

interface Case {
  name: string;
  facts: FailureFacts;
  category: Category;
  /** What the English reason must say, where the category alone does not pin the rule. */
  reason?: RegExp;
}

// Bodies as the upstreams send them (sources: OpenAI error-code guide and SDK reports,
// QuantumNous/new-api i18n/locales + middleware, songquanpeng/one-api middleware + relay,
// nginx src/http/ngx_http_special_response.c, Cloudflare error page titles).
const UPSTREAM_CASES: Case[] = [
  {
    name: "OpenAI 401 invalid_api_key",
    facts: answered(401, {
      type: "invalid_request_error",
      code: "invalid_api_key",
      message:
        "Incorrect API key provided: sk-abc***xyz. You can find your API key at https://platform.openai.com/account/api-keys.",
    }),
    category: "auth_failed",
  },
  {
    name: "OpenAI 429 insufficient_quota",
    facts: answered(429, {
      type: "insufficient_quota",
      code: "insufficient_quota",
      message:
        "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
    }),
    category: "quota_exceeded",
  },
  {
    name: "OpenAI 400 billing_hard_limit_reached",
    facts: answered(400, {
      type: "invalid_request_error",
      code: "billing_hard_limit_reached",
      message: "Billing hard limit has been reached.",
    }),
    category: "quota_exceeded",
    reason: /billing limit/,
  },
  {
    name: "OpenAI 429 rate_limit_exceeded",
    facts: answered(429, {
      type: "requests",
      code: "rate_limit_exceeded",
      message: "Rate limit reached for gpt-image-2 on images per minute. Please try again in 6s.",
    }),
    category: "rate_limited",
  },
  {
    name: "OpenAI 400 moderation_blocked",
    facts: answered(400, {
      type: "image_generation_user_error",
      code: "moderation_blocked",
      message:
        "Your request was rejected by the safety system. If you believe this is an error, contact us at help.openai.com and include the request ID req_123. safety_violations=[sexual].",
    }),
    category: "content_rejected",
  },
  {
    name: "OpenAI 400 content_policy_violation (DALL·E 3)",
    facts: answered(400, {
      type: "invalid_request_error",
      code: "content_policy_violation",
      message:
        "Your request was rejected as a result of our safety system. Your prompt may contain text that is not allowed by our safety system.",
    }),
    category: "content_rejected",
  },
  {
    name: "OpenAI 404 model_not_found",
    facts: answered(404, {
      type: "invalid_request_error",
      code: "model_not_found",
      message: "The model `gpt-image-9` does not exist or you do not have access to it.",
    }),
    category: "model_unavailable",
  },
  {
    name: "OpenAI 403 organization must be verified",
    facts: answered(403, {
      type: "invalid_request_error",
      message:
        "Your organization must be verified to use the model `gpt-image-1`. Please go to: https://platform.openai.com/settings/organization/general and click on Verify Organization. If you just verified, it can take up to 15 minutes for access to propagate.",
    }),
    category: "model_unavailable",
    reason: /Verify Organization/,
  },
  {
    name: "OpenAI 403 unsupported_country_region_territory",
    facts: answered(403, {
      type: "request_forbidden",
      code: "unsupported_country_region_territory",
      message: "Country, region, or territory not supported",
    }),
    category: "auth_failed",
    reason: /country or region/,
  },
  {
    name: "OpenAI 400 invalid_value for size",
    facts: answered(400, {
      type: "invalid_request_error",
      code: "invalid_value",
      message:
        "Invalid value: '1000x1000'. Supported values are: '1024x1024', '1024x1536', '1536x1024', and 'auto'.",
    }),
    category: "bad_request",
  },
  {
    name: "OpenAI 400 invalid_value for model",
    facts: answered(400, {
      type: "invalid_request_error",
      code: "invalid_value",
      message:
        "Invalid value: 'gpt-image-9'. Supported values are: 'gpt-image-1', 'gpt-image-1-mini', 'dall-e-2', and 'dall-e-3'.",
    }),
    category: "model_unavailable",
    reason: /image models it lists/,
  },
  {
    name: "OpenAI 400 unknown_parameter response_format",
    facts: answered(400, {
      type: "invalid_request_error",
      code: "unknown_parameter",
      message: "Unknown parameter: 'response_format'.",
    }),
    category: "bad_request",
  },
  {
    name: "OpenAI 400 image_generation_user_error that is not moderation",
    facts: answered(400, {
      type: "image_generation_user_error",
      code: "invalid_image_file",
      message: "Invalid image file or mode for image 1, please check your image file.",
    }),
    category: "bad_request",
  },
  {
    name: "OpenAI 500 server_error",
    facts: answered(500, {
      type: "server_error",
      message: "The server had an error while processing your request. Sorry about that!",
    }),
    category: "upstream_failure",
  },
  {
    name: "OpenAI 503 engine overloaded",
    facts: answered(503, {
      type: "server_error",
      message: "The engine is currently overloaded, please try again later",
    }),
    category: "upstream_failure",
  },
  {
    name: "OpenAI 404 Invalid URL (base_url without /v1)",
    facts: answered(404, {
      type: "invalid_request_error",
      message: "Invalid URL (POST /images/generations)",
    }),
    category: "endpoint_not_found",
    reason: /ends in \/v1/,
  },
  {
    name: "Azure OpenAI 400 content_filter",
    facts: answered(400, {
      code: "content_filter",
      message:
        "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry.",
    }),
    category: "content_rejected",
  },
  {
    name: "new-api 401 无效的令牌",
    facts: answered(401, {
      type: "new_api_error",
      message: "无效的令牌 (request id: 20260508094000123456789abcdEFGH)",
    }),
    category: "auth_failed",
  },
  {
    name: "new-api 401 Invalid token (English locale)",
    facts: answered(401, { type: "new_api_error", message: "Invalid token (request id: r1)" }),
    category: "auth_failed",
    reason: /gateway refused this token/,
  },
  {
    name: "new-api 401 该令牌已过期",
    facts: answered(401, { type: "new_api_error", message: "该令牌已过期 (request id: r2)" }),
    category: "auth_failed",
    reason: /gateway refused this token/,
  },
  {
    name: "new-api 401 该令牌额度已用尽",
    facts: answered(401, {
      type: "new_api_error",
      message: "该令牌额度已用尽 TokenStatusExhausted[sk-duK***qqX] (request id: r3)",
    }),
    category: "quota_exceeded",
  },
  {
    name: "new-api 403 insufficient_user_quota 用户额度不足",
    facts: answered(403, {
      type: "new_api_error",
      code: "insufficient_user_quota",
      message:
        "用户额度不足, 剩余额度: ¥-0.013362 (request id: 202609121538353343706438268d9d6vAofL5Y9)",
    }),
    category: "quota_exceeded",
    reason: /token's quota/,
  },
  {
    name: "new-api 403 预扣费额度失败",
    facts: answered(403, {
      type: "new_api_error",
      code: "insufficient_user_quota",
      message:
        "预扣费额度失败, 用户剩余额度: ¥0.056700, 需要预扣费额度: ¥0.069900 (request id: req_123)",
    }),
    category: "quota_exceeded",
  },
  {
    name: "new-api 403 pre_consume_token_quota_failed",
    facts: answered(403, {
      type: "new_api_error",
      code: "pre_consume_token_quota_failed",
      message: "token quota is not enough, token remain quota: ＄0.001000, need quota: ＄0.050000",
    }),
    category: "quota_exceeded",
  },
  {
    name: "new-api 403 该令牌无权访问模型",
    facts: answered(403, { type: "new_api_error", message: "该令牌无权访问模型 gpt-image-2" }),
    category: "model_unavailable",
  },
  {
    name: "new-api 403 This token has no access to model (English locale)",
    facts: answered(403, {
      type: "new_api_error",
      message: "This token has no access to model gpt-image-2",
    }),
    category: "model_unavailable",
  },
  {
    name: "new-api 503 无可用渠道 with code model_not_found",
    facts: answered(503, {
      type: "new_api_error",
      code: "model_not_found",
      message: "分组 default 下模型 gpt-image-2 无可用渠道（distributor） (request id: r4)",
    }),
    category: "model_unavailable",
    reason: /no available channel/,
  },
  {
    name: "new-api 503 No available channel (English locale)",
    facts: answered(503, {
      type: "new_api_error",
      code: "model_not_found",
      message: "No available channel for model gpt-image-2 under group default (distributor)",
    }),
    category: "model_unavailable",
  },
  {
    name: "new-api 500 get_channel_failed",
    facts: answered(500, {
      type: "new_api_error",
      code: "get_channel_failed",
      message: "获取分组 default 下模型 gpt-image-2 的可用渠道失败（retry）: channel not found",
    }),
    category: "model_unavailable",
  },
  {
    name: "new-api 500 model_price_error 倍率或价格未配置",
    facts: answered(500, {
      type: "new_api_error",
      code: "model_price_error",
      message:
        "模型 gpt-image-2 倍率或价格未配置，请联系管理员设置或开始自用模式；Model gpt-image-2 ratio or price not set, please set or start self-use mode",
    }),
    category: "model_unavailable",
    reason: /ratio or price/,
  },
  {
    name: "new-api 429 当前分组上游负载已饱和",
    facts: answered(429, {
      type: "new_api_error",
      message: "当前分组上游负载已饱和，请稍后再试 (request id: r5)",
    }),
    category: "rate_limited",
    reason: /saturated/,
  },
  {
    name: "new-api 429 您已达到请求数限制",
    facts: answered(429, {
      type: "new_api_error",
      message: "您已达到请求数限制：1分钟内最多请求10次",
    }),
    category: "rate_limited",
  },
  {
    name: "new-api 403 用户已被封禁",
    facts: answered(403, { type: "new_api_error", message: "用户已被封禁" }),
    category: "auth_failed",
    reason: /banned/,
  },
  {
    name: "new-api 500 do_request_failed (the gateway could not reach its upstream)",
    facts: answered(500, {
      type: "do_request_failed",
      code: "do_request_failed",
      message:
        'do request failed: Post "https://api.openai.com/v1/images/generations": dial tcp: lookup api.openai.com: no such host',
    }),
    category: "upstream_failure",
  },
  {
    name: "new-api 500 sensitive_words_detected",
    facts: answered(500, {
      type: "new_api_error",
      code: "sensitive_words_detected",
      message: "sensitive words detected",
    }),
    category: "content_rejected",
    reason: /sensitive-word/,
  },
  {
    name: "new-api 500 convert_request_failed",
    facts: answered(500, {
      type: "new_api_error",
      code: "convert_request_failed",
      message: "convert request failed: json: cannot unmarshal string into Go value",
    }),
    category: "bad_request",
  },
  {
    name: "new-api 501 api_not_implemented",
    facts: answered(501, {
      type: "new_api_error",
      code: "api_not_implemented",
      message: "API not implemented",
    }),
    category: "endpoint_not_found",
    reason: /does not implement/,
  },
  {
    name: "new-api 404 RelayNotFound",
    facts: answered(404, {
      type: "invalid_request_error",
      message: "Invalid URL (POST /v1/images/generation)",
    }),
    category: "endpoint_not_found",
  },
  {
    name: "new-api 502 passing on an upstream 502 (the seed's example)",
    facts: answered(502, { type: "upstream_error", message: "Upstream request failed" }),
    category: "upstream_failure",
  },
  {
    name: "new-api 400 passing on an upstream 400 as upstream_error",
    facts: answered(400, {
      type: "upstream_error",
      message: "Invalid size '1000x1000'. Requested resolution must be a multiple of 16.",
    }),
    category: "bad_request",
  },
  {
    name: "one-api 503 当前分组下对于模型无可用渠道",
    facts: answered(503, {
      type: "one_api_error",
      message: "当前分组 default 下对于模型 gpt-image-2 无可用渠道 (request id: r6)",
    }),
    category: "model_unavailable",
  },
  {
    name: "one-api 403 该令牌无权使用模型",
    facts: answered(403, { type: "one_api_error", message: "该令牌无权使用模型：gpt-image-2" }),
    category: "model_unavailable",
  },
  {
    name: "one-api 403 user quota is not enough",
    facts: answered(403, {
      type: "one_api_error",
      code: "insufficient_user_quota",
      message: "user quota is not enough",
    }),
    category: "quota_exceeded",
  },
  {
    name: "one-api 400 size_not_supported",
    facts: answered(400, {
      type: "one_api_error",
      code: "size_not_supported",
      message: "size not supported for this image model",
    }),
    category: "bad_request",
  },
  {
    name: "one-api 401 无效的 token",
    facts: answered(401, { type: "one_api_error", message: "无效的 token" }),
    category: "auth_failed",
  },
  {
    name: "nginx 502 Bad Gateway",
    facts: answered(502, { message: "502 Bad Gateway" }),
    category: "upstream_failure",
  },
  {
    name: "nginx 504 Gateway Time-out",
    facts: answered(504, { message: "504 Gateway Time-out" }),
    category: "upstream_failure",
  },
  {
    name: "nginx 503 Service Temporarily Unavailable",
    facts: answered(503, { message: "503 Service Temporarily Unavailable" }),
    category: "upstream_failure",
  },
  {
    name: "nginx 413 Request Entity Too Large",
    facts: answered(413, { message: "413 Request Entity Too Large" }),
    category: "bad_request",
    reason: /HTTP 413/,
  },
  {
    name: "nginx 404 Not Found",
    facts: answered(404, { message: "404 Not Found" }),
    category: "endpoint_not_found",
  },
  {
    name: "nginx 405 Not Allowed",
    facts: answered(405, { message: "405 Not Allowed" }),
    category: "endpoint_not_found",
  },
  {
    name: "nginx 408 Request Time-out",
    facts: answered(408, { message: "408 Request Time-out" }),
    category: "upstream_failure",
    reason: /HTTP 408/,
  },
  {
    name: "Cloudflare 524 A timeout occurred",
    facts: answered(524, { message: "api.example.com | 524: A timeout occurred" }),
    category: "upstream_failure",
  },
  {
    name: "Cloudflare 522 Connection timed out",
    facts: answered(522, { message: "api.example.com | 522: Connection timed out" }),
    category: "upstream_failure",
    reason: /52x/,
  },
  {
    name: "Cloudflare 403 Attention Required",
    facts: answered(403, { message: "Attention Required! | Cloudflare" }),
    category: "auth_failed",
    reason: /Cloudflare firewall/,
  },
  {
    name: "Cloudflare 403 Just a moment... challenge",
    facts: answered(403, { message: "Just a moment..." }),
    category: "auth_failed",
    reason: /Cloudflare firewall/,
  },
  {
    name: "a 402 without a body",
    facts: answered(402, {}),
    category: "quota_exceeded",
    reason: /HTTP 402/,
  },
  {
    name: "a 401 without a body",
    facts: answered(401, {}),
    category: "auth_failed",
  },
  {
    name: "a 422 without a body",
    facts: answered(422, {}),
    category: "bad_request",
  },
  {
    name: "a base_url that redirects (http to https)",
    facts: answered(301, {}),
    category: "endpoint_not_found",
    reason: /redirects/,
  },
];

// An error object can arrive with HTTP 200: old one-api answered its own errors that way.
const ERRORS_WITH_HTTP_200: Case[] = [
  {
    name: "one-api 200 无效的 token",
    facts: answered(200, { type: "one_api_error", message: "无效的 token" }),
    category: "auth_failed",
  },
  {
    name: "one-api 200 该 token 额度已用尽",
    facts: answered(200, { type: "one_api_error", message: "该 token 额度已用尽" }),
    category: "quota_exceeded",
  },
  {
    name: "OpenAI-shaped 200 moderation_blocked",
    facts: answered(200, {
      type: "image_generation_user_error",
      code: "moderation_blocked",
      message: "Your request was rejected by the safety system.",
    }),
    category: "content_rejected",
  },
  {
    name: "new-api-shaped 200 upstream_error",
    facts: answered(200, { type: "upstream_error", message: "Upstream request failed" }),
    category: "upstream_failure",
  },
  {
    name: "200 with an error nobody recognises",
    facts: answered(200, { message: "something odd happened" }),
    category: "upstream_failure",
  },
];

// The gateways read for the whole pipeline in tests/upstream/gateways_test.ts, one case each by its key text.
const GATEWAY_CASES: Case[] = [
  {
    name: "Azure OpenAI 404 DeploymentNotFound",
    facts: answered(404, {
      code: "DeploymentNotFound",
      message: "The API deployment for this resource does not exist.",
    }),
    category: "model_unavailable",
    reason: /deployment/,
  },
  {
    name: "Azure OpenAI ResponsibleAIPolicyViolation alone",
    facts: answered(400, { code: "ResponsibleAIPolicyViolation" }),
    category: "content_rejected",
  },
  {
    name: "OpenRouter 403 flagged for",
    facts: answered(403, { code: "403", message: 'Your input was flagged for "violence".' }),
    category: "content_rejected",
  },
  {
    name: "OpenRouter 503 No endpoints found",
    facts: answered(503, { code: "503", message: "No endpoints found for openai/gpt-image-9." }),
    category: "model_unavailable",
  },
  {
    name: "LiteLLM 429 budget_exceeded",
    facts: answered(429, {
      type: "budget_exceeded",
      code: "429",
      message: "Budget has been exceeded! Current cost: 5.0, Max budget: 1.0",
    }),
    category: "quota_exceeded",
    reason: /budget/,
  },
  {
    name: "LiteLLM 400 expired_key",
    facts: answered(400, {
      type: "expired_key",
      message: "Authentication Error - Expired Key. Key Expiry time 2026-09-01",
    }),
    category: "auth_failed",
  },
  {
    name: "sub2api 429 USAGE_LIMIT_EXCEEDED",
    facts: answered(429, { code: "USAGE_LIMIT_EXCEEDED", message: "daily usage limit exceeded" }),
    category: "quota_exceeded",
  },
  {
    name: "Volcengine Ark 429 SetLimitExceeded",
    facts: answered(429, { code: "SetLimitExceeded", type: "TooManyRequests" }),
    category: "quota_exceeded",
  },
  {
    name: "SiliconFlow 200 code 30001",
    facts: answered(200, { code: "30001", message: "Sorry, your account balance is insufficient" }),
    category: "quota_exceeded",
  },
  {
    name: "Zhipu 429 code 1113 账户已欠费",
    facts: answered(429, { code: "1113", message: "您的账户已欠费，请充值后重试。" }),
    category: "quota_exceeded",
  },
  {
    name: "Zhipu 429 code 1304 daily call cap",
    facts: answered(429, {
      code: "1304",
      message: "该 API 已达今日调用次数限额，如有更多需求，请联系客服购买",
    }),
    category: "quota_exceeded",
  },
  {
    name: "new-api 429 English rewrite of an upstream 429",
    facts: answered(429, {
      code: "429",
      message:
        "The upstream load for the current group is saturated. Please try again later or switch to another group.",
    }),
    category: "rate_limited",
    reason: /every upstream 429/,
  },
  {
    name: "Cloudflare AI Gateway 2017 response blocked",
    facts: answered(400, {
      code: "2017",
      message: "Response blocked due to security configurations",
    }),
    category: "content_rejected",
  },
];

const LOCAL_CASES: Case[] = [
  { name: "cancelled while waiting", facts: local("request", "cancelled"), category: "cancelled" },
  {
    name: "cancelled while downloading",
    facts: local("download", "cancelled"),
    category: "cancelled",
  },
  {
    name: "cancelled after a 502 arrived",
    facts: local("request", "cancelled", 502),
    category: "cancelled",
  },
  {
    name: "deadline passed while waiting",
    facts: local("request", "timeout"),
    category: "timeout",
  },
  {
    name: "deadline passed while downloading",
    facts: local("download", "timeout"),
    category: "timeout",
  },
  {
    name: "connection refused, DNS or TLS failure",
    facts: local("request", "network"),
    category: "network_error",
  },
  {
    name: "the image host reset the connection",
    facts: local("download", "network"),
    category: "download_failed",
  },
  {
    name: "the image host answered 403 (expired link)",
    facts: local("download", null, 403),
    category: "download_failed",
  },
  { name: "invalid parameters", facts: local("input", null), category: "invalid_input" },
  { name: "a 2xx without an image", facts: local("response", null, 200), category: "bad_response" },
  { name: "bytes that are not an image", facts: local("decode", null), category: "bad_response" },
  { name: "output_dir not writable", facts: local("save", null), category: "save_failed" },
];

for (
  const { name, facts, category, reason } of [
    ...UPSTREAM_CASES,
    ...ERRORS_WITH_HTTP_200,
    ...GATEWAY_CASES,
  ]
) {
  Deno.test(`diagnose() gives ${category} for ${name}`, () => {
    assert.equal(diagnose(facts, "zh").category, category);
    if (reason) assert.match(diagnose(facts, "en").human_reason, reason);
  });
}

for (const { name, facts, category } of LOCAL_CASES) {
  Deno.test(`diagnose() gives ${category} when ${name}`, () => {
    assert.equal(diagnose(facts, "zh").category, category);
  });
}

Deno.test("diagnose() gives the seed's diagnosis for its 502 upstream_error example", () => {
  const facts = answered(502, { type: "upstream_error", message: "Upstream request failed" });
  assert.deepEqual(diagnose(facts, "zh"), {
    category: "upstream_failure",
    human_reason: "图片模型上游服务失败或临时不可用;不是本地脚本问题。",
    retryable: true,
  });
});

Deno.test("diagnose() sets retryable from the category", () => {
  for (const { facts } of [...UPSTREAM_CASES, ...ERRORS_WITH_HTTP_200, ...LOCAL_CASES]) {
    const diagnosis = diagnose(facts, "zh");
    const expected = CATEGORIES.find((entry) => entry.category === diagnosis.category);
    assert.equal(diagnosis.retryable, expected?.retryable, JSON.stringify(facts));
  }
});

Deno.test("diagnose() marks the categories the issue names as retryable, and only those", () => {
  const retryable = CATEGORIES.filter((entry) => entry.retryable).map((entry) => entry.category);
  assert.deepEqual(retryable.sort(), [
    "bad_response",
    "download_failed",
    "network_error",
    "rate_limited",
    "timeout",
    "upstream_failure",
  ]);
});

Deno.test("diagnose() answers in English with lang en and in Chinese with lang zh", () => {
  const facts = answered(401, { type: "new_api_error", message: "无效的令牌" });
  const zh = diagnose(facts, "zh");
  const en = diagnose(facts, "en");
  assert.equal(zh.category, en.category);
  assert.match(zh.human_reason, /[\u4e00-\u9fff]/);
  assert.doesNotMatch(en.human_reason, /[\u4e00-\u9fff]/);
  assert.match(en.human_reason, /token/);
});

Deno.test("diagnose() passes retry_after_ms through when the upstream gave one", () => {
  const limited = answered(
    429,
    { type: "requests", code: "rate_limit_exceeded", message: "Rate limit reached" },
    6000,
  );
  assert.equal(diagnose(limited, "zh").retry_after_ms, 6000);
  const overloaded = answered(503, { message: "503 Service Temporarily Unavailable" }, 30000);
  assert.equal(diagnose(overloaded, "en").retry_after_ms, 30000);
});

Deno.test("diagnose() gives retry_after_ms only with a retryable failure", () => {
  const quota = diagnose(answered(429, { code: "insufficient_quota" }, 1000), "zh");
  assert.equal(quota.retryable, false);
  assert.equal("retry_after_ms" in quota, false);
  const refused = diagnose(
    { ...answered(503, { message: "busy" }, 1000), retryRefused: true },
    "en",
  );
  assert.equal("retry_after_ms" in refused, false);
});

Deno.test("diagnose() makes nothing retryable that the upstream said not to retry", () => {
  const facts = { ...answered(429, { code: "rate_limit_exceeded" }), retryRefused: true };
  const diagnosis = diagnose(facts, "en");
  assert.equal(diagnosis.category, "rate_limited");
  assert.equal(diagnosis.retryable, false);
  assert.match(diagnosis.human_reason, /x-should-retry: false/);
  const quota = diagnose({ ...answered(402, {}), retryRefused: true }, "en");
  assert.doesNotMatch(quota.human_reason, /x-should-retry/);
});

Deno.test("diagnose() says a 524 or 504 cut a long generation that may be billed, and how to avoid it", () => {
  for (const status of [524, 504]) {
    for (const lang of ["en", "zh"] as const) {
      const diagnosis = diagnose(answered(status, { message: "A timeout occurred" }), lang);
      assert.equal(diagnosis.category, "upstream_failure");
      assert.match(diagnosis.human_reason, /stream: true/);
      assert.match(diagnosis.human_reason, lang === "en" ? /bill/ : /计费/);
      assert.match(diagnosis.human_reason, lang === "en" ? /gateway timeout/ : /超时/);
    }
  }
});

Deno.test("diagnose() leaves retry_after_ms out when the upstream gave none", () => {
  const diagnosis = diagnose(answered(429, { message: "Too Many Requests" }), "zh");
  assert.equal("retry_after_ms" in diagnosis, false);
});

Deno.test("diagnose() takes a 429 insufficient_quota as quota_exceeded, not rate_limited", () => {
  const facts = answered(429, { type: "insufficient_quota", code: "insufficient_quota" });
  assert.equal(diagnose(facts, "zh").category, "quota_exceeded");
  assert.equal(diagnose(facts, "zh").retryable, false);
});

Deno.test("diagnose() takes a 404 model_not_found as model_unavailable, not endpoint_not_found", () => {
  const facts = answered(404, {
    code: "model_not_found",
    message: "The model `x` does not exist.",
  });
  assert.equal(diagnose(facts, "zh").category, "model_unavailable");
});

Deno.test("diagnose() takes a 403 该令牌无权访问模型 as model_unavailable, not auth_failed", () => {
  const facts = answered(403, { type: "new_api_error", message: "该令牌无权访问模型 gpt-image-2" });
  assert.equal(diagnose(facts, "zh").category, "model_unavailable");
});

Deno.test("diagnose() takes a 503 无可用渠道 as model_unavailable, not upstream_failure", () => {
  const facts = answered(503, { message: "当前分组 default 下对于模型 gpt-image-2 无可用渠道" });
  assert.equal(diagnose(facts, "zh").category, "model_unavailable");
  assert.equal(diagnose(facts, "zh").retryable, false);
});

Deno.test("diagnose() takes a 401 令牌额度已用尽 as quota_exceeded, not auth_failed", () => {
  const facts = answered(401, { message: "该令牌额度已用尽 TokenStatusExhausted[sk-a***b]" });
  assert.equal(diagnose(facts, "zh").category, "quota_exceeded");
});

Deno.test("diagnose() takes a Cloudflare 524 as a retryable upstream_failure, not a timeout", () => {
  const diagnosis = diagnose(
    answered(524, { message: "x.example | 524: A timeout occurred" }),
    "en",
  );
  assert.equal(diagnosis.category, "upstream_failure");
  assert.equal(diagnosis.retryable, true);
  assert.match(diagnosis.human_reason, /Cloudflare/);
});

Deno.test("diagnose() lets the stage decide over any upstream text after a 2xx", () => {
  const facts: FailureFacts = {
    ...answered(200, { type: "upstream_error", message: "Upstream request failed" }),
    stage: "response",
  };
  assert.equal(diagnose(facts, "zh").category, "bad_response");
});

Deno.test("diagnose() lets a cancellation decide over the status and text it saw", () => {
  const facts: FailureFacts = {
    ...answered(429, { code: "insufficient_quota" }),
    cause: "cancelled",
  };
  assert.equal(diagnose(facts, "zh").category, "cancelled");
});

Deno.test("diagnose() neither changes its facts nor answers differently twice", () => {
  const facts = Object.freeze(answered(403, { message: "用户额度不足, 剩余额度: ¥0" }, 500));
  assert.deepEqual(diagnose(facts, "zh"), diagnose(facts, "zh"));
});

Deno.test("findRule() gives the first matching rule of DIAGNOSIS_RULES", () => {
  const facts = answered(502, { type: "upstream_error", message: "Upstream request failed" });
  const rule = findRule(facts);
  assert.ok(DIAGNOSIS_RULES.includes(rule));
  assert.equal(rule.category, "upstream_failure");
  assert.deepEqual(rule.status, { from: 500, to: 599 });
});

Deno.test("DIAGNOSIS_RULES has a rule for every category", () => {
  const inTable = new Set(DIAGNOSIS_RULES.map((rule) => rule.category));
  for (const { category } of CATEGORIES) assert.ok(inTable.has(category), category);
  assert.equal(CATEGORIES.length, 16);
});

Deno.test("DIAGNOSIS_RULES ends with a rule that matches anything", () => {
  const last = DIAGNOSIS_RULES[DIAGNOSIS_RULES.length - 1];
  assert.ok(last);
  const conditions = ["stage", "cause", "status", "type", "code", "message"] as const;
  for (const condition of conditions) assert.equal(last[condition], undefined);
});

Deno.test("DIAGNOSIS_RULES gives each rule the retryable flag of its category", () => {
  for (const rule of DIAGNOSIS_RULES) {
    const category = CATEGORIES.find((entry) => entry.category === rule.category);
    assert.equal(rule.retryable, category?.retryable, rule.category);
  }
});

Deno.test("DIAGNOSIS_RULES patterns keep no state between tests", () => {
  for (const rule of DIAGNOSIS_RULES) {
    for (const pattern of [rule.type, rule.code, rule.message]) {
      if (pattern) assert.doesNotMatch(pattern.flags, /[gy]/, String(pattern));
    }
  }
});

Deno.test("DIAGNOSIS_RULES reasons are one sentence in each language", () => {
  for (const rule of DIAGNOSIS_RULES) {
    assert.match(rule.reason.zh, /^[^\n]+。$/, rule.reason.zh);
    assert.match(rule.reason.zh, /[\u4e00-\u9fff]/, rule.reason.zh);
    assert.match(rule.reason.en, /^[A-Z][^\n]+\.$/, rule.reason.en);
    assert.doesNotMatch(rule.reason.en, /[\u4e00-\u9fff]/, rule.reason.en);
  }
});

Deno.test("DIAGNOSIS_RULES message patterns cover both English and Chinese gateway texts", () => {
  const messages = DIAGNOSIS_RULES.flatMap((rule) => rule.message ? [rule.message.source] : []);
  assert.ok(messages.some((source) => /[\u4e00-\u9fff]/.test(source)));
  assert.ok(messages.some((source) => /^[\x20-\x7e]+$/.test(source)));
});

Deno.test("diagnose() names every signal that stops a call in the cancelled reason", () => {
  for (const lang of ["en", "zh"] as const) {
    const reason = diagnose(local("request", "cancelled"), lang).human_reason;
    for (const signal of STOP_SIGNALS) assert.ok(reason.includes(signal), `${lang}: ${signal}`);
  }
});

Deno.test("diagnose() reads OpenAI's server_error sent without a failing status as a JSON 500 is read", () => {
  const error = { type: "server_error", message: "The server had an error" };
  const asJson = diagnose(answered(500, error), "en");
  // An error event of a stream, or an error object answered with HTTP 200.
  assert.deepEqual(diagnose(answered(200, error), "en"), asJson);
  assert.equal(asJson.category, "upstream_failure");
  assert.match(asJson.human_reason, /^The image model's upstream service failed/);
  // A status that says more still decides.
  assert.match(diagnose(answered(504, error), "en").human_reason, /gateway/i);
});
