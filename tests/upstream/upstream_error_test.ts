import assert from "node:assert/strict";
import type { UpstreamError } from "../../lib/failure/errors.ts";
import { clip, redactText, secretsOf } from "../../lib/shared/redact.ts";
import {
  clipKept,
  errorFromJson,
  htmlSummary,
  MAX_FIELD_CHARS,
  parseUpstreamError,
  requestIdOf,
} from "../../lib/upstream/upstream_error.ts";

function upstream(fields: Partial<UpstreamError>): UpstreamError {
  return { type: null, message: null, code: null, param: null, ...fields };
}

const NGINX_502 = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n" +
  "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.25.3</center>\r\n" +
  "</body>\r\n</html>\r\n";

const CLOUDFLARE_524 = `<!DOCTYPE html>
<!--[if lt IE 7]> <html class="no-js ie6 oldie" lang="en-US"> <![endif]-->
<!--[if gt IE 8]><!--> <html class="no-js" lang="en-US"> <!--<![endif]-->
<head>
<title>api.example.com | 524: A timeout occurred</title>
<meta charset="UTF-8" />
<style>body{margin:0;padding:0}</style>
<script>(function(){window._cf_chl_opt={cType: 'non-interactive'};})();</script>
</head>
<body>
<div id="cf-wrapper"><h1><span class="inline-block">A timeout occurred</span>
<span class="code-label">Error code 524</span></h1></div>
</body>
</html>`;

Deno.test("parseUpstreamError() reads OpenAI's error shape", () => {
  const body = JSON.stringify({
    error: {
      message: "Invalid value: 'response_format'. Supported values are: 'url' and 'b64_json'.",
      type: "invalid_request_error",
      param: "response_format",
      code: "unknown_parameter",
    },
  });
  assert.deepEqual(
    parseUpstreamError(body),
    upstream({
      message: "Invalid value: 'response_format'. Supported values are: 'url' and 'b64_json'.",
      type: "invalid_request_error",
      param: "response_format",
      code: "unknown_parameter",
    }),
  );
});

Deno.test("parseUpstreamError() reads the seed's 502 gateway error", () => {
  assert.deepEqual(
    parseUpstreamError('{"error":{"message":"Upstream request failed","type":"upstream_error"}}'),
    upstream({ message: "Upstream request failed", type: "upstream_error" }),
  );
});

Deno.test("parseUpstreamError() turns a numeric code into text", () => {
  assert.deepEqual(
    parseUpstreamError('{"error":{"message":"Too many requests","code":429}}'),
    upstream({ message: "Too many requests", code: "429" }),
  );
});

Deno.test("parseUpstreamError() takes the type and code from outside the error when missing inside", () => {
  assert.deepEqual(
    parseUpstreamError('{"error":{"message":"no channel"},"type":"new_api_error","code":"x"}'),
    upstream({ message: "no channel", type: "new_api_error", code: "x" }),
  );
});

Deno.test("parseUpstreamError() reads a bare string error", () => {
  assert.deepEqual(
    parseUpstreamError('{"error":"无效的令牌"}'),
    upstream({ message: "无效的令牌" }),
  );
});

Deno.test("parseUpstreamError() reads the first of an errors array", () => {
  assert.deepEqual(
    parseUpstreamError('{"errors":[{"message":"first","code":"a"},{"message":"second"}]}'),
    upstream({ message: "first", code: "a" }),
  );
});

Deno.test("parseUpstreamError() reads a top-level message", () => {
  assert.deepEqual(
    parseUpstreamError('{"message":"Invalid API key","type":"auth_error"}'),
    upstream({ message: "Invalid API key", type: "auth_error" }),
  );
});

Deno.test("parseUpstreamError() reads a top-level detail string", () => {
  assert.deepEqual(
    parseUpstreamError('{"detail":"Not Found"}'),
    upstream({ message: "Not Found" }),
  );
});

Deno.test("parseUpstreamError() reads a detail object", () => {
  assert.deepEqual(
    parseUpstreamError('{"detail":{"message":"model not found","code":"model_not_found"}}'),
    upstream({ message: "model not found", code: "model_not_found" }),
  );
});

Deno.test("parseUpstreamError() reads a top-level msg", () => {
  assert.deepEqual(
    parseUpstreamError('{"code":500,"msg":"上游负载已饱和"}'),
    upstream({ message: "上游负载已饱和", code: "500" }),
  );
});

Deno.test("parseUpstreamError() reads a gateway's success:false answer", () => {
  assert.deepEqual(
    parseUpstreamError('{"success":false,"message":"额度不足","data":null}'),
    upstream({ message: "额度不足" }),
  );
});

Deno.test("parseUpstreamError() keeps unrecognised JSON as the message", () => {
  assert.deepEqual(
    parseUpstreamError(' {"status":"weird"} '),
    upstream({ message: '{"status":"weird"}' }),
  );
  assert.deepEqual(parseUpstreamError("[1,2]"), upstream({ message: "[1,2]" }));
});

Deno.test("parseUpstreamError() reduces an nginx error page to its title", () => {
  assert.deepEqual(parseUpstreamError(NGINX_502), upstream({ message: "502 Bad Gateway" }));
});

Deno.test("parseUpstreamError() reduces a Cloudflare error page to its title", () => {
  assert.deepEqual(
    parseUpstreamError(CLOUDFLARE_524),
    upstream({ message: "api.example.com | 524: A timeout occurred" }),
  );
});

Deno.test("parseUpstreamError() keeps plain text, trimmed", () => {
  assert.deepEqual(
    parseUpstreamError("  upstream connect error or disconnect/reset before headers\n"),
    upstream({ message: "upstream connect error or disconnect/reset before headers" }),
  );
});

Deno.test("parseUpstreamError() reads nothing from an empty body", () => {
  assert.deepEqual(parseUpstreamError(""), upstream({}));
  assert.deepEqual(parseUpstreamError(" \r\n"), upstream({}));
});

Deno.test("parseUpstreamError() keeps at most 8 times what a result shows of a message", () => {
  assert.equal(MAX_FIELD_CHARS, 1000);
  const long = "x".repeat(9000);
  const clipped = "x".repeat(7999) + "…";
  assert.equal(parseUpstreamError(long).message, clipped);
  assert.equal(parseUpstreamError(JSON.stringify({ error: { message: long } })).message, clipped);
  assert.equal(parseUpstreamError(JSON.stringify({ error: long })).message, clipped);
  assert.equal(
    parseUpstreamError(JSON.stringify({ error: { message: "m", type: long, code: long } })).code,
    clipped,
  );
  assert.equal(parseUpstreamError(`<html><title>${long}</title></html>`).message, clipped);
});

Deno.test("parseUpstreamError() keeps a message of exactly 1000 characters whole", () => {
  const exact = "y".repeat(1000);
  assert.equal(parseUpstreamError(exact).message, exact);
});

Deno.test("errorFromJson() finds no error in an images answer", () => {
  assert.equal(errorFromJson({ data: [{ url: "https://x" }] }), null);
  assert.equal(errorFromJson({ message: "ok", data: [] }), null);
  assert.equal(errorFromJson(null), null);
  assert.equal(errorFromJson("error"), null);
  assert.equal(errorFromJson([{ error: "x" }]), null);
  assert.equal(errorFromJson({ error: "  " }), null);
});

Deno.test("errorFromJson() finds an error beside data when the answer says so", () => {
  assert.deepEqual(
    errorFromJson({ data: null, code: "quota", message: "额度不足" }),
    upstream({ message: "额度不足", code: "quota" }),
  );
  assert.deepEqual(
    errorFromJson({ data: [], error: { message: "failed" } }),
    upstream({ message: "failed" }),
  );
});

Deno.test("htmlSummary() falls back to the first heading, then to the text", () => {
  assert.equal(
    htmlSummary("<html><body><h1>Service Unavailable</h1></body></html>"),
    "Service Unavailable",
  );
  assert.equal(
    htmlSummary("<html><title> </title><body><h1 class=x>Busy</h1></body></html>"),
    "Busy",
  );
  assert.equal(
    htmlSummary("<html><body><p>Too   many\nrequests</p><script>var a = 1;</script></body></html>"),
    "Too many requests",
  );
});

// The bodies signed-URL stores send for an expired or refused link, as their documentation shows:
// https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html,
// https://cloud.google.com/storage/docs/xml-api/reference-status,
// https://learn.microsoft.com/rest/api/storageservices/status-and-error-codes2
const STORE_ERRORS = [
  {
    store: "S3",
    body:
      '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Request has expired</Message><X-Amz-Expires>3600</X-Amz-Expires><Expires>2026-11-25T10:00:00Z</Expires><ServerTime>2026-11-25T11:00:00Z</ServerTime><RequestId>4442587FB7D0A2F9</RequestId><HostId>abc=</HostId></Error>',
    summary: "AccessDenied: Request has expired",
  },
  {
    store: "GCS",
    body:
      "<?xml version='1.0' encoding='UTF-8'?><Error><Code>ExpiredToken</Code><Message>Invalid argument.</Message><Details>The provided token has expired. Request signature expired at: 2026-11-25T10:00:00+00:00</Details></Error>",
    summary:
      "ExpiredToken: Invalid argument. (The provided token has expired. Request signature expired at: 2026-11-25T10:00:00+00:00)",
  },
  {
    store: "Azure Blob",
    body:
      '\ufeff<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthenticationFailed</Code><Message>Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.\nRequestId:b3f8a4e2-0000\nTime:2026-11-25T11:00:00.0000000Z</Message><AuthenticationErrorDetail>Signed expiry time [Tue, 25 Nov 2026 10:00:00 GMT] must be after signed start time [Tue, 25 Nov 2026 11:00:00 GMT]</AuthenticationErrorDetail></Error>',
    summary:
      "AuthenticationFailed: Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature. RequestId:b3f8a4e2-0000 Time:2026-11-25T11:00:00.0000000Z (Signed expiry time [Tue, 25 Nov 2026 10:00:00 GMT] must be after signed start time [Tue, 25 Nov 2026 11:00:00 GMT])",
  },
];

for (const { store, body, summary } of STORE_ERRORS) {
  Deno.test(`parseUpstreamError() summarises ${store}'s XML error as its code and message`, () => {
    assert.deepEqual(parseUpstreamError(body), {
      type: null,
      message: summary,
      code: null,
      param: null,
    });
  });
}

Deno.test("htmlSummary() reads an XML error without a message, or falls back to its text", () => {
  assert.equal(htmlSummary("<Error><Code>NoSuchKey</Code></Error>"), "NoSuchKey");
  assert.equal(htmlSummary("<Error><Reason>gone</Reason></Error>"), "gone");
});

Deno.test("htmlSummary() does not take a longer tag name for the one it looks for", () => {
  assert.equal(htmlSummary("<titles>no</titles><title>yes</title>"), "yes");
});

Deno.test("htmlSummary() reads markup of unclosed tags whole, in one pass", () => {
  // Each of these once made a regular expression scan to the end from every "<": minutes for
  // a MiB. An unclosed script runs to the end; a "<" without its ">" is text.
  const unclosed = "<title<h1<script<style<Error<a ".repeat(32 * 1024);
  assert.equal(htmlSummary(unclosed), "<title<h1");
  const lessThans = "<".repeat(1 << 20);
  assert.equal(htmlSummary(`x <b${lessThans}> y`), `x <b${lessThans.slice(1)} y`);
});

Deno.test("htmlSummary() decodes character entities", () => {
  assert.equal(
    htmlSummary(
      "<title>Tom &amp; Jerry &lt;3&gt; &quot;x&quot; &#39;y&#39; &#x4E2D;&nbsp;z</title>",
    ),
    "Tom & Jerry <3> \"x\" 'y' 中 z",
  );
  assert.equal(htmlSummary("<title>&bogus; &#x110000;</title>"), "&bogus; &#x110000;");
});

Deno.test("clip() trims and clips to the limit with an ellipsis", () => {
  assert.equal(clip("  abc  ", 4), "abc");
  assert.equal(clip("abcdef", 4), "abc…");
  assert.equal(clip("abcd", 4), "abcd");
  assert.equal(clip("", 4), "");
});

Deno.test("clip() never cuts a character in half", () => {
  const clipped = clip("🐱".repeat(600), 1000);
  assert.equal(clipped.isWellFormed(), true);
  assert.match(clipped, /^(?:🐱){499,999}…$/u);
});

Deno.test("clipKept() keeps 8 times what a result shows of upstream text", () => {
  assert.equal(clipKept(` ${"x".repeat(8 * MAX_FIELD_CHARS)} `), "x".repeat(8 * MAX_FIELD_CHARS));
  assert.equal(
    clipKept("x".repeat(8 * MAX_FIELD_CHARS + 1)),
    `${"x".repeat(8 * MAX_FIELD_CHARS - 1)}…`,
  );
});

Deno.test("requestIdOf() reads x-request-id", () => {
  assert.equal(requestIdOf(new Headers({ "x-request-id": " req_abc123 " }), null), "req_abc123");
});

Deno.test("requestIdOf() reads the gateways' request id headers", () => {
  assert.equal(requestIdOf(new Headers({ "x-oneapi-request-id": "one-1" }), null), "one-1");
  assert.equal(requestIdOf(new Headers({ "x-new-api-request-id": "new-2" }), null), "new-2");
});

Deno.test("requestIdOf() prefers a header to the message", () => {
  assert.equal(
    requestIdOf(new Headers({ "x-request-id": "from-header" }), "boom (request id: from-message)"),
    "from-header",
  );
});

Deno.test("requestIdOf() reads (request id: …) in a message", () => {
  assert.equal(
    requestIdOf(null, "当前分组上游负载已饱和，请稍后再试 (request id: 2025010112000012345abcdef)"),
    "2025010112000012345abcdef",
  );
  assert.equal(requestIdOf(new Headers(), "failed (Request ID:abc-9)"), "abc-9");
});

Deno.test("requestIdOf() gives null when there is no id", () => {
  assert.equal(requestIdOf(null, null), null);
  assert.equal(requestIdOf(new Headers(), "no id here"), null);
  assert.equal(requestIdOf(new Headers({ "x-request-id": "  " }), null), null);
});

Deno.test("requestIdOf() leaves a long header id whole, for the result to mask, then clip", () => {
  const id = requestIdOf(new Headers({ "x-request-id": "r".repeat(300) }), null);
  assert.equal(id, "r".repeat(300));
});

Deno.test("parseUpstreamError() takes Azure's inner error code when the outer one is missing", () => {
  assert.equal(
    parseUpstreamError(
      '{"error":{"message":"blocked","innererror":{"code":"ResponsibleAIPolicyViolation"}}}',
    ).code,
    "ResponsibleAIPolicyViolation",
  );
  assert.equal(
    parseUpstreamError(
      '{"error":{"code":"contentFilter","message":"x","inner_error":{"code":"ResponsibleAIPolicyViolation"}}}',
    ).code,
    "contentFilter",
  );
});

Deno.test("parseUpstreamError() reads a top-level numeric code with its message (SiliconFlow)", () => {
  assert.deepEqual(
    parseUpstreamError(
      '{"code":30001,"message":"Sorry, your account balance is insufficient","data":null}',
    ),
    upstream({ message: "Sorry, your account balance is insufficient", code: "30001" }),
  );
});

Deno.test("errorFromJson() takes a success code with data for no error", () => {
  assert.equal(errorFromJson({ code: 0, message: "success", data: [] }), null);
  assert.equal(errorFromJson({ code: 200, msg: "ok", data: [] }), null);
  assert.notEqual(errorFromJson({ code: 30001, message: "balance", data: null }), null);
});

Deno.test("a key cut by the kept-text clip leaves no part of it once masked", () => {
  const key = "sk-proj-AbC123xYz789QwErTy";
  const message = `${"x".repeat(7990)} ${key}`;
  const upstream = parseUpstreamError(JSON.stringify({ error: { message } }));
  const shown = redactText(upstream.message ?? "", secretsOf(key, null));
  assert.ok(shown.endsWith(" ***…"), shown.slice(-40));
});

Deno.test("parseUpstreamError() reads an error sent as server-sent events, as its JSON", () => {
  const error = {
    message: "Your request was rejected by the safety system",
    type: "image_generation_user_error",
    code: "moderation_blocked",
  };
  const expected = upstream(error);
  const data = JSON.stringify({ type: "error", error });
  assert.deepEqual(parseUpstreamError(`event: error\ndata: ${data}\n\n`), expected);
  assert.deepEqual(parseUpstreamError(`event: error\r\ndata: ${data}\r\n\r\n`), expected);
  // The error is looked for past a comment and an event without one.
  assert.deepEqual(
    parseUpstreamError(`: ping\n\nevent: ping\ndata: {"type":"ping"}\n\ndata:${data}\n\n`),
    expected,
  );
  // Data split over several lines is joined, as a reader of the stream joins it.
  const spread = JSON.stringify({ error }, null, 1).split("\n").map((l) => `data: ${l}`);
  assert.deepEqual(parseUpstreamError(spread.join("\n")), expected);
});

Deno.test("parseUpstreamError() reads a plain-text error event as its text, never the framing", () => {
  assert.deepEqual(
    parseUpstreamError("event: error\ndata: upstream timed out\n\n"),
    upstream({ message: "upstream timed out" }),
  );
  assert.deepEqual(parseUpstreamError("event: error\n\n"), upstream({}));
});

Deno.test("parseUpstreamError() keeps the code xAI sends beside a string error", () => {
  // obot-platform/obot#2995, rikkahub/rikkahub#1602
  assert.deepEqual(parseUpstreamError('{"code":"400","error":"Argument not supported: quality"}'), {
    type: null,
    message: "Argument not supported: quality",
    code: "400",
    param: null,
  });
});

Deno.test("parseUpstreamError() reads the error inside Gemini's one-element list", () => {
  const body =
    '[{"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT"}}]';
  assert.deepEqual(parseUpstreamError(body), {
    type: null,
    message: "API key not valid. Please pass a valid API key.",
    code: "400",
    param: null,
  });
});
