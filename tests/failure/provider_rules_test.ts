/**
 * The rules for the providers beside OpenAI, read from their real bodies as the command reads
 * them (parseUpstreamError, then diagnose), whatever the status they come with.
 */
import assert from "node:assert/strict";
import { diagnose } from "../../lib/failure/diagnosis.ts";
import type { Category, FailureFacts } from "../../lib/failure/types.ts";
import { parseUpstreamError } from "../../lib/upstream/upstream_error.ts";

function factsOf(status: number, body: string): FailureFacts {
  const upstream = parseUpstreamError(body);
  return {
    stage: "request",
    httpStatus: status,
    upstreamType: upstream.type,
    upstreamMessage: upstream.message,
    upstreamCode: upstream.code,
    cause: null,
    retryAfterMs: null,
    retryRefused: false,
  };
}

const CASES: [string, number, string, Category][] = [
  [
    "DashScope data_inspection_failed (camel-ai/owl#432)",
    400,
    `{"error":{"code":"data_inspection_failed","param":null,"message":"Input data may contain inappropriate content.","type":"data_inspection_failed"},"id":"chatcmpl-deab386b","request_id":"deab386b"}`,
    "content_rejected",
  ],
  [
    "DashScope's filter inside a relay's 500 (anomalyco/opencode#46561)",
    500,
    `{"error":{"message":"Upstream request failed: [data_inspection_failed] <400> InternalError.Algo.DataInspectionFailed: Input text data may contain inappropriate content."}}`,
    "content_rejected",
  ],
  [
    "a gateway's 500 around Gemini IMAGE_SAFETY",
    500,
    `{"error":{"message":"Gemini image generation blocked [IMAGE_SAFETY]: The generated image was blocked due to safety policy violation, please modify your prompt and try again","type":"channel_error","code":"channel:image_generation_failed"}}`,
    "content_rejected",
  ],
  [
    "a gateway's 500 around Gemini IMAGE_PROHIBITED_CONTENT",
    500,
    `{"error":{"message":"Gemini image generation blocked [IMAGE_PROHIBITED_CONTENT]: The generated image contains prohibited content, please modify your prompt and try again","type":"channel_error","code":"channel:image_generation_failed"}}`,
    "content_rejected",
  ],
  [
    "Fireworks 412 PRECONDITION_FAILED suspended account (pollinations/pollinations#12136)",
    412,
    `{"error":{"message":"Account pollinations is suspended, possibly due to reaching the monthly spending limit or failure to pay past invoices. Please go to https://fireworks.ai/account/billing for more information.","param":null,"code":"PRECONDITION_FAILED","type":"error"},"request_id":"11650e2f"}`,
    "quota_exceeded",
  ],
  [
    "Fireworks' suspension relayed by LiteLLM as a 412 with code 412 (FerroxLabs/wayland#545)",
    412,
    `{"error":{"message":"Flux.APIError: APIError: Fireworks_aiException - Account ferroxlabs is suspended, possibly due to reaching the monthly spending limit or failure to pay past invoices.","type":null,"param":null,"code":"412"}}`,
    "quota_exceeded",
  ],
  [
    "Gemini Imagen for billed users only (ammaarreshi/openjourney#1)",
    400,
    `{"error":{"code":400,"message":"Imagen API is only accessible to billed users at this time.","status":"INVALID_ARGUMENT"}}`,
    "quota_exceeded",
  ],
  [
    "DashScope 404 model_not_supported",
    404,
    `{"error":{"code":"model_not_supported","message":"Unsupported model \`text-embedding-async-v2\` for OpenAI compatibility mode."}}`,
    "model_unavailable",
  ],
  [
    "xAI Argument not supported, code beside a string error (rikkahub/rikkahub#1602)",
    400,
    `{"code":"400","error":"Argument not supported: size"}`,
    "bad_request",
  ],
  [
    "xAI 403 a new team without credits (griptape-ai/griptape-nodes-engine#1079)",
    403,
    `{"code":"The caller does not have permission to execute the specified operation","error":"Your newly created teams doesn't have any credits yet. You can purchase credits on https://console.x.ai/team/c853730f."}`,
    "quota_exceeded",
  ],
  [
    "xAI 429 credits or monthly spending limit used up (continuedev/continue#10373)",
    429,
    `{"code":"Some resource has been exhausted","error":"Your team 16f2151a has either used all available credits or reached its monthly spending limit. To continue making API requests, please purchase more credits or raise your spending limit."}`,
    "quota_exceeded",
  ],
  [
    "Together 402 credit_limit (expectedparrot/edsl#2098)",
    402,
    `{"id":"o3LiXw4-62bZhn","error":{"message":"Credit limit exceeded. Please navigate to https://api.together.xyz/settings/billing to add credit or upgrade your plan.","type":"credit_limit","param":null,"code":null}}`,
    "quota_exceeded",
  ],
  [
    "Gemini 400 API key not valid, in a one-element list",
    400,
    `[{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT"}}]`,
    "auth_failed",
  ],
  [
    "Gemini 400 Imagen for billed users only, in a one-element list",
    400,
    `[{"error":{"code":400,"message":"Imagen API is only accessible to billed users at this time.","status":"INVALID_ARGUMENT"}}]`,
    "quota_exceeded",
  ],
  [
    "OpenAI 404 model_not_found for dall-e-3",
    404,
    `{"error":{"message":"The model \`dall-e-3\` does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}}`,
    "model_unavailable",
  ],
];

for (const [name, status, body, category] of CASES) {
  Deno.test(`diagnose() gives ${category} for ${name}`, () => {
    const diagnosis = diagnose(factsOf(status, body), "en");
    assert.equal(diagnosis.category, category, diagnosis.human_reason);
    assert.equal(diagnosis.retryable, false);
  });
}

Deno.test("diagnose() names the current model for a retired one, and only for one", () => {
  const said = (model: string) =>
    diagnose(
      factsOf(
        404,
        JSON.stringify({
          error: {
            message: `The model \`${model}\` does not exist or you do not have access to it.`,
            code: "model_not_found",
          },
        }),
      ),
      "en",
    ).human_reason;
  for (const model of ["dall-e-2", "dall-e-3", "gpt-image-1"]) {
    assert.match(said(model), /retired.*gpt-image-2/);
  }
  for (const model of ["gpt-image-1.5", "gpt-image-1-mini", "gpt-image-9"]) {
    assert.doesNotMatch(said(model), /retired/);
  }
});
