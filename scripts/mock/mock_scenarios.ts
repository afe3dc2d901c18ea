/**
 * Every answer the offline upstream can give besides its rendered images, in one list: the
 * failures real upstreams send (status line, headers and body copied from OpenAI, one-api,
 * new-api, nginx, Cloudflare, Azure Blob Storage, with `source` naming where the wording comes
 * from) and the odd but valid answer shapes that gateways send, each carrying {@link SAMPLE_PNG}.
 *
 * Choose one with the path prefix `/<name>/v1` as base_url, the header `x-mock-scenario: <name>`,
 * or, for a failure, the model name `mock-fail-<name>`.
 *
 * Bodies and header values may hold placeholders that the server fills per request, escaped for
 * the body's content type:
 * `{{model}}`, `{{size}}` (as requested), `{{api_key}}` (the bearer token, whole),
 * `{{api_key_masked}}` (the token as OpenAI quotes it back), `{{openai_request_id}}` (`req_…`),
 * `{{request_id}}` (a one-api/new-api request id), `{{created}}` (Unix seconds),
 * `{{now}}` (ISO time), `{{uuid}}`, `{{ray_id}}` (a Cloudflare ray id), `{{host}}` (the Host the
 * client used). A body is sent compressed when its headers name a `content-encoding`.
 */
import type { Category } from "../../lib/failure/types.ts";
import { encodePng, renderPicture } from "./png.ts";

export type MockScenarioKind =
  /** answer at once with `status`, `headers` and `body` */
  | "respond"
  /** refuse `response_format` as the official API does for GPT image models, else as `respond` */
  | "strict"
  /**
   * accept the request and send nothing until the stall ends (the server's cap, the request's
   * `x-mock-stall-ms`, or shutdown); then answer as `respond`
   */
  | "stall_headers"
  /** send the status, the headers and the start of `body`; at the stall's end drop the connection */
  | "stall_body"
  /** send the status and headers and the start of `body`, then drop the connection */
  | "reset"
  /** answer 200 with a `url` whose download fails with `status`, `headers` and `body` */
  | "missing_download"
  /**
   * a generation that takes longer than the gateway in front waits for an answer: a streamed
   * request gets its events (the image in the end), any other `status`, `headers` and `body`
   * when the gateway's wait ends (the server's `cutMs`, or the request's `x-mock-cut-ms`)
   */
  | "cut";

export interface MockScenario {
  kind: MockScenarioKind;
  /** One line saying what the scenario rehearses */
  summary: string;
  /** The category a correct diagnosis gives the whole call; null when the image must be saved */
  expectedCategory: Category | null;
  /** HTTP status of the answer (for `missing_download`, of the failed download) */
  status: number;
  headers: Readonly<Record<string, string>>;
  body: string;
  /** Where the status and wording were checked */
  source: string;
  /** Other names that select the same scenario */
  aliases?: readonly string[];
}

/** The image every answer shape carries: a 64x48 landscape. */
export const SAMPLE_PNG = encodePng(64, 48, renderPicture(64, 48, "fixture"));

/** A JPEG's signature, an APP0 segment, a baseline frame header for 32x16, and its end. */
const SAMPLE_JPEG = Uint8Array.fromHex(
  "ffd8ffe000104a46494600010100000100010000ffc00011080010002003012200021101031101ffd9",
);

const SAMPLE_B64 = SAMPLE_PNG.toBase64();

/** An images answer, `data` as given. */
const imageAnswer = (data: unknown) => JSON.stringify({ data });

const SAMPLE_ANSWER = imageAnswer([{ b64_json: SAMPLE_B64 }]);

/** One event of a streamed answer, as OpenAI sends it: its type as the event and in the data. */
function imageEvent(type: string, fields: Record<string, unknown>): string {
  const settings = {
    size: "1024x1024",
    quality: "high",
    background: "opaque",
    output_format: "png",
  };
  const data = { type, b64_json: SAMPLE_B64, created_at: 1760000000, ...settings, ...fields };
  return `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
}

const SAMPLE_PARTIAL_EVENT = imageEvent("image_generation.partial_image", {
  partial_image_index: 0,
});

const EVENT_STREAM_HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "x-request-id": "{{openai_request_id}}",
};

/** An answer that must be saved: HTTP 200 with a JSON body. */
function answerShape(
  fields: Pick<MockScenario, "summary" | "body" | "source"> & Partial<MockScenario>,
): MockScenario {
  const { headers, ...rest } = fields;
  return {
    kind: "respond",
    expectedCategory: null,
    status: 200,
    headers: { "content-type": "application/json", ...headers },
    ...rest,
  };
}

const CRLF = "\r\n";

const JSON_UTF8 = "application/json; charset=utf-8";

/** OpenAI's error envelope as the API prints it: four-space indent, trailing newline. */
function openaiError(
  message: string,
  type: string,
  param: string | null,
  code: string | null,
): string {
  return JSON.stringify({ error: { message, type, param, code } }, null, 4) + "\n";
}

const OPENAI_HEADERS = {
  "content-type": "application/json; charset=utf-8",
  "x-request-id": "{{openai_request_id}}",
  "openai-version": "2020-10-01",
} as const;

/** one-api `abortWithMessage`: compact JSON, message suffixed with the request id. */
function oneApiError(message: string): string {
  return JSON.stringify({
    error: { message: `${message} (request id: {{request_id}})`, type: "one_api_error" },
  });
}

/** new-api `NewAPIError.ToOpenAIError()`: message, type, param "" and code, compact. */
function newApiError(message: string, code: string): string {
  return JSON.stringify({
    error: {
      message: `${message} (request id: {{request_id}})`,
      type: "new_api_error",
      param: "",
      code,
    },
  });
}

const GATEWAY_HEADERS = {
  "content-type": JSON_UTF8,
  "x-oneapi-request-id": "{{request_id}}",
} as const;

/** nginx's built-in error page (`ngx_http_special_response.c`, `server_tokens off`). */
function nginxPage(status: string): string {
  return [
    "<html>",
    `<head><title>${status}</title></head>`,
    "<body>",
    `<center><h1>${status}</h1></center>`,
    "<hr><center>nginx</center>",
    "</body>",
    "</html>",
    "",
  ].join(CRLF);
}

const NGINX_HEADERS = { "content-type": "text/html", server: "nginx" } as const;

/** Cloudflare's 524 page, trimmed of styles and scripts; title, headings and footer as served. */
const CLOUDFLARE_HEADERS = {
  "content-type": "text/html; charset=UTF-8",
  server: "cloudflare",
  "cf-ray": "{{ray_id}}",
  "cache-control":
    "private, max-age=0, no-store, no-cache, must-revalidate, post-check=0, pre-check=0",
};

const CLOUDFLARE_524 = `<!DOCTYPE html>
<!--[if lt IE 7]> <html class="no-js ie6 oldie" lang="en-US"> <![endif]-->
<!--[if IE 7]>    <html class="no-js ie7 oldie" lang="en-US"> <![endif]-->
<!--[if IE 8]>    <html class="no-js ie8 oldie" lang="en-US"> <![endif]-->
<!--[if gt IE 8]><!--> <html class="no-js" lang="en-US"> <!--<![endif]-->
<head>
<title>{{host}} | 524: A timeout occurred</title>
<meta charset="UTF-8" />
<meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
<meta http-equiv="X-UA-Compatible" content="IE=Edge" />
<meta name="robots" content="noindex, nofollow" />
<meta name="viewport" content="width=device-width,initial-scale=1" />
</head>
<body>
<div id="cf-wrapper">
  <div id="cf-error-details" class="p-0">
    <header class="mx-auto pt-10 lg:pt-6 lg:px-8 w-240 lg:w-full mb-8">
      <h1 class="inline-block sm:block sm:mb-2 font-light text-60 lg:text-4xl text-black-dark leading-tight mr-2">
        <span class="inline-block">A timeout occurred</span>
        <span class="code-label">Error code 524</span>
      </h1>
      <div>Visit <a href="https://www.cloudflare.com/5xx-error-landing?utm_source=errorcode_524&amp;utm_campaign={{host}}" target="_blank" rel="noopener noreferrer">cloudflare.com</a> for more information.</div>
    </header>
    <div class="w-240 lg:w-full mx-auto mb-8 lg:px-8">
      <div class="clearfix">
        <div class="w-1/2 md:w-full float-left pr-6 md:pb-10 md:pr-0 leading-relaxed">
          <h2 class="text-3xl font-normal leading-1.3 mb-4">What happened?</h2>
          <p>The origin web server timed out responding to this request.</p>
        </div>
        <div class="w-1/2 md:w-full float-left leading-relaxed">
          <h2 class="text-3xl font-normal leading-1.3 mb-4">What can I do?</h2>
          <h3 class="text-15 font-semibold mb-2">If you're a visitor of this website:</h3>
          <p class="mb-6">Please try again in a few minutes.</p>
        </div>
      </div>
    </div>
    <div class="cf-error-footer cf-wrapper w-240 lg:w-full py-10 sm:py-4 sm:px-8 mx-auto text-center sm:text-left border-solid border-0 border-t border-gray-300">
      <p class="text-13">
        <span class="cf-footer-item sm:block sm:mb-1">Cloudflare Ray ID: <strong class="font-semibold">{{ray_id}}</strong></span>
        <span class="cf-footer-separator sm:hidden">&bull;</span>
        <span class="cf-footer-item sm:block sm:mb-1"><span>Performance &amp; security by</span> <a rel="noopener noreferrer" href="https://www.cloudflare.com/5xx-error-landing?utm_source=errorcode_524&amp;utm_campaign={{host}}" id="brand_link" target="_blank">Cloudflare</a></span>
      </p>
    </div>
  </div>
</div>
</body>
</html>
`;

/** The start of a successful answer, as far as a cut-off body gets. */
const PARTIAL_IMAGE_BODY =
  '{"created":{{created}},"data":[{"url":"","b64_json":"iVBORw0KGgoAAAANSUhEUgAABAAAAAQACAIAAADwf7zUAAEAAElEQVR4nOy9';

export const MOCK_SCENARIOS = {
  "401": {
    kind: "respond",
    summary: "OpenAI rejects the API key",
    expectedCategory: "auth_failed",
    status: 401,
    headers: OPENAI_HEADERS,
    body: openaiError(
      "Incorrect API key provided: {{api_key_masked}}. You can find your API key at https://platform.openai.com/account/api-keys.",
      "invalid_request_error",
      null,
      "invalid_api_key",
    ),
    source: "OpenAI 401 invalid_api_key, as quoted by openai-python AuthenticationError reports",
  },
  "401-gateway": {
    kind: "respond",
    summary: "A one-api gateway does not know the token",
    expectedCategory: "auth_failed",
    status: 401,
    headers: GATEWAY_HEADERS,
    body: oneApiError("无效的令牌"),
    source:
      'songquanpeng/one-api model/token.go ValidateUserToken ("无效的令牌"), middleware/auth.go → abortWithMessage(401)',
  },
  "echo-key": {
    kind: "respond",
    summary: "The upstream quotes the whole Authorization token back in its message",
    expectedCategory: "auth_failed",
    status: 401,
    headers: OPENAI_HEADERS,
    body: openaiError(
      "Incorrect API key provided: {{api_key}}. You can find your API key at https://platform.openai.com/account/api-keys.",
      "invalid_request_error",
      null,
      "invalid_api_key",
    ),
    source:
      'OpenAI 401 invalid_api_key; short keys come back unmasked ("Incorrect API key provided: dummy")',
  },
  quota: {
    kind: "respond",
    summary: "The OpenAI account has no credit left",
    expectedCategory: "quota_exceeded",
    status: 429,
    headers: OPENAI_HEADERS,
    body: openaiError(
      "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
      "insufficient_quota",
      null,
      "insufficient_quota",
    ),
    source: "OpenAI 429 insufficient_quota (error-codes guide; widely quoted body)",
  },
  "quota-gateway": {
    kind: "respond",
    summary: "A new-api gateway user has run out of quota",
    expectedCategory: "quota_exceeded",
    status: 403,
    headers: GATEWAY_HEADERS,
    body: newApiError("用户额度不足, 剩余额度: ＄0.000000", "insufficient_user_quota"),
    source:
      "QuantumNous/new-api service billing: ErrorCodeInsufficientUserQuota, http.StatusForbidden; types/error.go ToOpenAIError",
  },
  "429": {
    kind: "respond",
    summary: "OpenAI rate limit, with Retry-After",
    expectedCategory: "rate_limited",
    status: 429,
    headers: {
      ...OPENAI_HEADERS,
      "retry-after": "2",
      "x-ratelimit-limit-requests": "5",
      "x-ratelimit-remaining-requests": "0",
      "x-ratelimit-reset-requests": "2s",
    },
    body: openaiError(
      "Rate limit reached for {{model}} in organization org-mock on images per min (IPM): Limit 5, Used 5, Requested 1. Please try again in 2s. Visit https://platform.openai.com/account/rate-limits to learn more.",
      "requests",
      null,
      "rate_limit_exceeded",
    ),
    source: "OpenAI 429 rate_limit_exceeded (type requests), Retry-After in seconds",
  },
  "429-gateway": {
    kind: "respond",
    summary: "A gateway relays an upstream 429 with its own wording and no Retry-After",
    expectedCategory: "rate_limited",
    status: 429,
    headers: GATEWAY_HEADERS,
    body: JSON.stringify({
      error: {
        message: "当前分组上游负载已饱和，请稍后再试 (request id: {{request_id}})",
        type: "requests",
        param: "",
        code: "rate_limit_exceeded",
      },
    }),
    source: "one-api/new-api relay: a 429 message replaced by 当前分组上游负载已饱和，请稍后再试",
  },
  "rate-limited": {
    kind: "respond",
    summary:
      "A 429 that asks for a retry after 40 ms in retry-after-ms, for quick retry rehearsals",
    expectedCategory: "rate_limited",
    status: 429,
    headers: { ...OPENAI_HEADERS, "retry-after-ms": "40" },
    body: openaiError("Rate limit reached for images", "requests", null, "rate_limit_exceeded"),
    source: "Azure OpenAI and openai-python: retry-after-ms, read before Retry-After",
  },
  moderation: {
    kind: "respond",
    summary: "GPT image moderation blocks the prompt",
    expectedCategory: "content_rejected",
    status: 400,
    headers: OPENAI_HEADERS,
    body: openaiError(
      "Your request was rejected by the safety system. If you believe this is an error, contact us at help.openai.com and include the request ID {{openai_request_id}}.",
      "image_generation_user_error",
      null,
      "moderation_blocked",
    ),
    source: "OpenAI 400 moderation_blocked (type image_generation_user_error)",
  },
  "stream-error": {
    kind: "respond",
    summary: "A stream that sends a partial image, then a moderation error event",
    expectedCategory: "content_rejected",
    status: 200,
    headers: EVENT_STREAM_HEADERS,
    body: SAMPLE_PARTIAL_EVENT +
      `event: error\ndata: ${
        JSON.stringify({
          type: "error",
          error: {
            type: "image_generation_user_error",
            code: "moderation_blocked",
            message: "Your request was rejected by the safety system.",
            param: null,
          },
        })
      }\n\n`,
    source:
      "OpenAI's error object sent as an `event: error`, as the openai-python SDK's stream reads it",
  },
  "content-policy": {
    kind: "respond",
    summary: "The content policy refuses the prompt",
    expectedCategory: "content_rejected",
    status: 400,
    headers: OPENAI_HEADERS,
    body: openaiError(
      "Your request was rejected as a result of our safety system. Your prompt may contain text that is not allowed by our safety system.",
      "invalid_request_error",
      null,
      "content_policy_violation",
    ),
    source: "OpenAI 400 content_policy_violation (the DALL·E models, retired 2026-05-12)",
  },
  "model-not-found": {
    kind: "respond",
    summary: "The model does not exist or the key has no access to it",
    expectedCategory: "model_unavailable",
    status: 404,
    headers: OPENAI_HEADERS,
    body: openaiError(
      "The model `{{model}}` does not exist or you do not have access to it.",
      "invalid_request_error",
      null,
      "model_not_found",
    ),
    source: "OpenAI 404 model_not_found",
  },
  "no-channel": {
    kind: "respond",
    summary: "A one-api gateway has no channel serving the model",
    expectedCategory: "model_unavailable",
    status: 503,
    headers: GATEWAY_HEADERS,
    body: oneApiError("当前分组 default 下对于模型 {{model}} 无可用渠道"),
    source: "songquanpeng/one-api middleware/distributor.go → abortWithMessage(503)",
  },
  "bad-size": {
    kind: "respond",
    summary: "The size is not one the model accepts",
    expectedCategory: "bad_request",
    status: 400,
    headers: OPENAI_HEADERS,
    body: openaiError(
      "Invalid value: '{{size}}'. Supported values are: '1024x1024', '1024x1536', '1536x1024', and 'auto'.",
      "invalid_request_error",
      "size",
      "invalid_value",
    ),
    source: "OpenAI 400 invalid_value, param size (GPT image models)",
  },
  "404": {
    kind: "respond",
    summary: "nginx answers 404: the base_url points at the wrong path",
    expectedCategory: "endpoint_not_found",
    status: 404,
    headers: NGINX_HEADERS,
    body: nginxPage("404 Not Found"),
    source: "nginx src/http/ngx_http_special_response.c",
  },
  "405-nginx": {
    kind: "respond",
    summary: "nginx serving a static site refuses the POST",
    expectedCategory: "endpoint_not_found",
    status: 405,
    headers: NGINX_HEADERS,
    body: nginxPage("405 Not Allowed"),
    source: "nginx src/http/ngx_http_special_response.c",
  },
  redirect: {
    kind: "respond",
    summary: "base_url answers with a permanent redirect elsewhere",
    expectedCategory: "endpoint_not_found",
    status: 301,
    headers: { location: "https://elsewhere.invalid/v1" },
    body: "",
    source: "A host moved to another address (HTTP 301 with Location)",
  },
  "500": {
    kind: "respond",
    summary: "OpenAI internal server error",
    expectedCategory: "upstream_failure",
    status: 500,
    headers: OPENAI_HEADERS,
    body: openaiError(
      "The server had an error processing your request. Sorry about that! You can retry your request, or contact us through our help center at help.openai.com if you keep seeing this error. (Please include the request ID {{openai_request_id}} in your email.)",
      "server_error",
      null,
      null,
    ),
    source: "OpenAI 500 server_error",
  },
  "502": {
    kind: "respond",
    aliases: ["seed-502"],
    summary: "The gateway's upstream failed (the example in the skill document)",
    expectedCategory: "upstream_failure",
    status: 502,
    headers: { "content-type": JSON_UTF8 },
    body: '{"error":{"message":"Upstream request failed","type":"upstream_error"}}',
    source: "The original skill document's failure example",
  },
  "503": {
    kind: "respond",
    summary: "OpenAI is overloaded",
    expectedCategory: "upstream_failure",
    status: 503,
    headers: OPENAI_HEADERS,
    body: openaiError(
      "Our servers are currently overloaded. Please try again later.",
      "service_unavailable_error",
      null,
      "server_is_overloaded",
    ),
    source: "OpenAI 503 service_unavailable_error server_is_overloaded",
  },
  "502-nginx": {
    kind: "respond",
    summary: "nginx in front of the gateway cannot reach it",
    expectedCategory: "upstream_failure",
    status: 502,
    headers: NGINX_HEADERS,
    body: nginxPage("502 Bad Gateway"),
    source: "nginx src/http/ngx_http_special_response.c",
  },
  "504-nginx": {
    kind: "respond",
    aliases: ["nginx-504"],
    summary: "nginx gave up waiting for the gateway",
    expectedCategory: "upstream_failure",
    status: 504,
    headers: NGINX_HEADERS,
    body: nginxPage("504 Gateway Time-out"),
    source: "nginx src/http/ngx_http_special_response.c",
  },
  "524": {
    kind: "respond",
    summary: "Cloudflare gave up waiting for the origin (100 s)",
    expectedCategory: "upstream_failure",
    status: 524,
    headers: CLOUDFLARE_HEADERS,
    body: CLOUDFLARE_524,
    source: 'Cloudflare 524 error page ("<host> | 524: A timeout occurred")',
  },
  "cut-after-100s": {
    kind: "cut",
    summary: "Cloudflare cuts a generation longer than 100 s; with stream: true it succeeds",
    expectedCategory: "upstream_failure",
    status: 524,
    headers: CLOUDFLARE_HEADERS,
    body: CLOUDFLARE_524,
    source:
      "Cloudflare's 100-second proxy read timeout (524), which a streamed answer's first bytes avoid",
  },
  "error-200": {
    kind: "respond",
    summary: "A gateway answers HTTP 200 with an error object: the token's quota is used up",
    expectedCategory: "quota_exceeded",
    status: 200,
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      error: { message: "该令牌额度已用尽 (request id: 20261125abc)", type: "new_api_error" },
    }),
    source:
      'one-api/new-api model/token.go ValidateUserToken ("该令牌额度已用尽"), in the HTTP 200 envelope of early one-api',
  },
  "error-200-auth": {
    kind: "respond",
    summary: "An older one-api answers HTTP 200 with an error object: the token is unknown",
    expectedCategory: "auth_failed",
    status: 200,
    headers: { "content-type": JSON_UTF8 },
    body: JSON.stringify({ error: { message: "无效的 token", type: "one_api_error" } }),
    source:
      'songquanpeng/one-api (early) middleware/auth.go TokenAuth: c.JSON(http.StatusOK, …) with "无效的 token"',
  },
  "html-200": {
    kind: "respond",
    summary: "base_url without /v1: a one-api gateway answers with its web page",
    expectedCategory: "bad_response",
    status: 200,
    headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-cache" },
    body:
      '<!doctype html><html lang="zh"><head><meta charset="utf-8"/><link rel="icon" href="/favicon.ico"/><meta name="viewport" content="width=device-width,initial-scale=1"/><meta name="theme-color" content="#ffffff"/><meta name="description" content="OpenAI 接口聚合管理，支持多种渠道包括 Azure，可用于二次分发管理 key，仅单可执行文件，已打包好 Docker 镜像，一键部署，开箱即用"/><title>One API</title><script defer="defer" src="/static/js/main.js"></script><link href="/static/css/main.css" rel="stylesheet"></head><body><noscript>You need to enable JavaScript to run this app.</noscript><div id="root"></div></body></html>',
    source:
      "songquanpeng/one-api router/web-router.go NoRoute: c.Data(http.StatusOK, text/html, indexPage)",
  },
  empty: {
    kind: "respond",
    summary: "HTTP 200 whose only item has neither b64_json nor url",
    expectedCategory: "bad_response",
    status: 200,
    headers: GATEWAY_HEADERS,
    body: '{"data":[{"url":"","b64_json":"","revised_prompt":""}],"created":{{created}}}',
    source:
      "QuantumNous/new-api dto/openai_image.go ImageResponse/ImageData (fields without omitempty)",
  },
  "no-image": {
    kind: "respond",
    summary: "HTTP 200 with an empty data list",
    expectedCategory: "bad_response",
    status: 200,
    headers: { "content-type": "application/json" },
    body: '{"created":{{created}},"data":[]}',
    source: "OpenAI images response shape with no item",
  },
  malformed: {
    kind: "respond",
    summary: "HTTP 200 whose JSON body is cut short",
    expectedCategory: "bad_response",
    status: 200,
    headers: { "content-type": "application/json" },
    body: PARTIAL_IMAGE_BODY,
    source: "A body truncated by a proxy buffer; complete response, invalid JSON",
  },
  "not-image": {
    kind: "respond",
    summary: "HTTP 200 whose b64_json decodes to something that is not an image",
    expectedCategory: "bad_response",
    status: 200,
    headers: GATEWAY_HEADERS,
    // base64 of "<html><body>Service temporarily unavailable</body></html>\n"
    body:
      '{"data":[{"url":"","b64_json":"PGh0bWw+PGJvZHk+U2VydmljZSB0ZW1wb3JhcmlseSB1bmF2YWlsYWJsZTwvYm9keT48L2h0bWw+Cg==","revised_prompt":""}],"created":{{created}}}',
    source: "new-api response shape carrying bytes that are not PNG, JPEG, WebP or GIF",
  },
  "bad-base64": {
    kind: "respond",
    summary: "HTTP 200 whose b64_json is not base64",
    expectedCategory: "bad_response",
    status: 200,
    headers: { "content-type": "application/json" },
    body: imageAnswer([{ b64_json: "iVBORw0KGgo!!!!" }]),
    source: "A PNG's base64 start followed by bytes outside the alphabet",
  },
  "download-404": {
    kind: "missing_download",
    summary: "The answer's url has expired: downloading it gives 404",
    expectedCategory: "download_failed",
    status: 404,
    headers: {
      "content-type": "application/xml",
      "x-ms-error-code": "BlobNotFound",
      "x-ms-request-id": "{{uuid}}",
      "x-ms-version": "2021-08-06",
    },
    body:
      '\uFEFF<?xml version="1.0" encoding="utf-8"?><Error><Code>BlobNotFound</Code><Message>The specified blob does not exist.\nRequestId:{{uuid}}\nTime:{{now}}</Message></Error>',
    source: "Azure Blob Storage 404 BlobNotFound (where DALL·E image urls live)",
  },
  "stream-cut": {
    kind: "respond",
    summary: "A stream that ends after a partial image, without image_generation.completed",
    expectedCategory: "bad_response",
    status: 200,
    headers: EVENT_STREAM_HEADERS,
    body: ": keep-alive\n\n" + SAMPLE_PARTIAL_EVENT,
    source: "A relay that closes the stream early (the spec's ImageGenStreamEvent never completed)",
  },
  "stall-headers": {
    kind: "stall_headers",
    summary: "The upstream accepts the request and never answers",
    expectedCategory: "timeout",
    status: 504,
    headers: NGINX_HEADERS,
    body: nginxPage("504 Gateway Time-out"),
    source: "After the stall: nginx proxy_read_timeout page",
  },
  "stall-body": {
    kind: "stall_body",
    summary: "The upstream sends headers and part of the body, then nothing",
    expectedCategory: "timeout",
    status: 200,
    headers: GATEWAY_HEADERS,
    body: PARTIAL_IMAGE_BODY,
    source: "A response whose body stops arriving",
  },
  reset: {
    kind: "reset",
    aliases: ["reset-body"],
    summary: "The connection drops after the headers and the first bytes",
    expectedCategory: "network_error",
    status: 200,
    headers: GATEWAY_HEADERS,
    body: PARTIAL_IMAGE_BODY,
    source: "A connection closed mid-body (curl: (18) transfer closed with outstanding read data)",
  },
  ok: answerShape({
    summary: "A gateway's answer: url beside b64_json, revised_prompt and usage",
    headers: { "x-request-id": "req_fake_1" },
    body: JSON.stringify({
      created: 1760000000,
      data: [{ url: "", b64_json: SAMPLE_B64, revised_prompt: "a revised cat" }],
      usage: { total_tokens: 42 },
    }),
    source: "QuantumNous/new-api dto/openai_image.go ImageResponse (fields without omitempty)",
  }),
  "ok-object": answerShape({
    summary: "data as a single object, URL-safe base64 without padding",
    body: JSON.stringify({
      created: 1,
      data: { b64_json: SAMPLE_PNG.toBase64({ alphabet: "base64url", omitPadding: true }) },
    }),
    source: "Hand-written gateways that drop the list and use URL-safe base64",
  }),
  "ok-wrapped": answerShape({
    summary: "A data: URL whose base64 is wrapped at 76 characters",
    body: imageAnswer([{
      b64_json: `data:image/png;base64,${SAMPLE_B64.replace(/.{76}/g, "$&\n")}`,
    }]),
    source: "MIME base64 (RFC 2045 line length) inside a data: URL",
  }),
  "ok-escaped": answerShape({
    summary: "JSON that escapes every slash",
    body: SAMPLE_ANSWER.replaceAll("/", "\\/"),
    source: "PHP json_encode without JSON_UNESCAPED_SLASHES",
  }),
  "ok-data-url-in-url": answerShape({
    summary: "The image as a data: URL in the url field",
    body: imageAnswer([{ url: `data:image/png;base64,${SAMPLE_B64}` }]),
    source: "Gateways that inline the image where a link is expected",
  }),
  "ok-url": answerShape({
    summary: "An image url on the upstream's own origin",
    body: imageAnswer([{ url: "http://{{host}}/files/sample.png" }]),
    source: "OpenAI response_format url, served here by the same server",
  }),
  "ok-gzip": answerShape({
    summary: "A gzip-encoded answer",
    headers: { "content-encoding": "gzip" },
    body: SAMPLE_ANSWER,
    source: "nginx gzip on in front of a gateway",
  }),
  "ok-br": answerShape({
    summary: "A brotli-encoded answer",
    headers: { "content-encoding": "br" },
    body: SAMPLE_ANSWER,
    source: "Cloudflare's brotli compression in front of a gateway",
  }),
  "ok-stream": answerShape({
    summary: "A streamed answer: a comment, a partial image, then image_generation.completed",
    headers: EVENT_STREAM_HEADERS,
    body: ": keep-alive\n\n" + SAMPLE_PARTIAL_EVENT +
      imageEvent("image_generation.completed", {
        usage: { total_tokens: 100, input_tokens: 50, output_tokens: 50 },
      }),
    source: "OpenAI images streaming: ImageGenPartialImageEvent, then ImageGenCompletedEvent",
  }),
  "ok-jpeg": answerShape({
    summary: "A JPEG image where a PNG is usual",
    body: imageAnswer([{ b64_json: SAMPLE_JPEG.toBase64() }]),
    source: "OpenAI output_format jpeg",
  }),
  "refuses-response-format": answerShape({
    kind: "strict",
    summary: "Refuses response_format like the official API, answers without it",
    body: SAMPLE_ANSWER,
    source: "OpenAI 400 unknown_parameter for response_format on GPT image models",
  }),
} as const satisfies Record<string, MockScenario>;

export type MockScenarioName = keyof typeof MOCK_SCENARIOS;

/** Scenario names in catalogue order. */
export const MOCK_SCENARIO_NAMES = Object.keys(MOCK_SCENARIOS) as MockScenarioName[];

/** The scenarios that end in a failure, the ones a `mock-fail-<name>` model selects. */
export const FAILURE_SCENARIO_NAMES = MOCK_SCENARIO_NAMES.filter((name) =>
  MOCK_SCENARIOS[name].expectedCategory !== null
);

const BY_NAME = new Map<string, MockScenario>(
  Object.entries(MOCK_SCENARIOS).flatMap(([name, scenario]: [string, MockScenario]) =>
    [name, ...scenario.aliases ?? []].map((key) => [key, scenario] as const)
  ),
);

/** The model name that selects a failure scenario. */
export function scenarioModel(name: MockScenarioName): string {
  return `mock-fail-${name}`;
}

export function isFailureScenarioName(name: string): name is MockScenarioName {
  return Object.hasOwn(MOCK_SCENARIOS, name) &&
    MOCK_SCENARIOS[name as MockScenarioName].expectedCategory !== null;
}

/** Looks a scenario up by its name or an alias, or returns undefined. */
export function findMockScenario(name: string): MockScenario | undefined {
  return BY_NAME.get(name);
}
