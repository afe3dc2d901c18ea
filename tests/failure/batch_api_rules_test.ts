/**
 * The rules for what the Batch API and its Files API say: a failed batch's errors.data[] items
 * (a code and a message, no HTTP status), and the answers to an upload or a create.
 */
import assert from "node:assert/strict";
import { diagnose } from "../../lib/failure/diagnosis.ts";
import type { Category, FailureFacts } from "../../lib/failure/types.ts";
import { parseUpstreamError } from "../../lib/upstream/upstream_error.ts";

function facts(status: number | null, code: string | null, message: string | null): FailureFacts {
  return {
    stage: "request",
    httpStatus: status,
    upstreamType: null,
    upstreamMessage: message,
    upstreamCode: code,
    cause: null,
    retryAfterMs: null,
    retryRefused: false,
  };
}

function answered(status: number, body: string): FailureFacts {
  const upstream = parseUpstreamError(body);
  return { ...facts(status, upstream.code, upstream.message), upstreamType: upstream.type };
}

const ENQUEUED =
  "Enqueued token limit reached for gpt-image-1 in organization org-snq6hvcTYRCMyB87hjZjkoFr. Limit: 2,000,000 enqueued tokens. Please try again once some in_progress batches have been completed.";

const CASES: [string, FailureFacts, Category, boolean, RegExp][] = [
  [
    "a line that is no JSON (stdapi-ai/stdapi.ai#240)",
    facts(null, "invalid_json_line", "This line is not parseable as valid JSON."),
    "bad_request",
    false,
    /refused this job's line of the batch input file/,
  ],
  ...["duplicate_custom_id", "url_mismatch", "model_mismatch"].map((code) =>
    [
      `a line refused with ${code}`,
      facts(null, code, `Refused: ${code}.`),
      "bad_request",
      false,
      /refused this job's line/,
    ] as [string, FailureFacts, Category, boolean, RegExp]
  ),
  [
    "a batch's token_limit_exceeded (openai/openai-python#2084)",
    facts(null, "token_limit_exceeded", ENQUEUED),
    "rate_limited",
    true,
    /tokens enqueued in the Batch API/,
  ],
  [
    "a create answered 400 token_limit_exceeded",
    answered(
      400,
      JSON.stringify({
        error: { message: ENQUEUED, type: "invalid_request_error", code: "token_limit_exceeded" },
      }),
    ),
    "rate_limited",
    true,
    /tokens enqueued in the Batch API/,
  ],
  [
    "a create answered 400 with the enqueued-token words and no code",
    answered(400, JSON.stringify({ error: { message: ENQUEUED, code: null } })),
    "rate_limited",
    true,
    /tokens enqueued/,
  ],
  [
    "OpenAI's upload 400 File is too large. (bespokelabsai/curator#111)",
    answered(
      400,
      `{"error":{"message":"File is too large.","type":"invalid_request_error","param":null,"code":null}}`,
    ),
    "bad_request",
    false,
    /batch input file is larger than the provider accepts/,
  ],
  [
    "Azure OpenAI's upload 400 quotaExceeded (Azure/azure-sdk-for-java#47401)",
    answered(
      400,
      `{"error":{"code":"quotaExceeded","message":"The quota for files without expiry is reached. The maximum is 500."}}`,
    ),
    "quota_exceeded",
    false,
    /quota of stored files.*delete the files of old batches/,
  ],
  [
    "OpenAI's upload 400 file storage quota (bespokelabsai/curator#189)",
    answered(
      400,
      `{"error":{"message":"You have exceeded your file storage quota. Organizations are limited to 100 GB of files. Please delete old files or attempt with a smaller file size.","type":"invalid_request_error","param":null,"code":null}}`,
    ),
    "quota_exceeded",
    false,
    /quota of stored files/,
  ],
  [
    "Volcengine Ark's QuotaExceeded, still a money quota",
    answered(
      429,
      `{"error":{"code":"QuotaExceeded","message":"You have exceeded the quota for this model.","type":"TooManyRequests"}}`,
    ),
    "quota_exceeded",
    false,
    /^(?!.*stored files)/,
  ],
  [
    "an Azure quotaExceeded about something else than files",
    answered(400, `{"error":{"code":"quotaExceeded","message":"The quota is reached."}}`),
    "bad_request",
    false,
    /^(?!.*stored files)/,
  ],
];

for (const [name, given, category, retryable, reason] of CASES) {
  Deno.test(`diagnose() gives ${category} for ${name}`, () => {
    const diagnosis = diagnose(given, "en");
    assert.equal(diagnosis.category, category, diagnosis.human_reason);
    assert.equal(diagnosis.retryable, retryable);
    assert.match(diagnosis.human_reason, reason);
  });
}
