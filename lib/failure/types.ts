/** Where a call ended: every result names the last stage it reached. */
export type Stage = "input" | "request" | "response" | "download" | "decode" | "save" | "done";

/** What went wrong, in words a workflow can branch on. */
export type Category =
  | "invalid_input"
  | "auth_failed"
  | "quota_exceeded"
  | "rate_limited"
  | "content_rejected"
  | "model_unavailable"
  | "bad_request"
  | "endpoint_not_found"
  | "upstream_failure"
  | "timeout"
  | "network_error"
  | "bad_response"
  | "download_failed"
  | "save_failed"
  | "cancelled"
  | "internal_error";

export type Lang = "zh" | "en";

/**
 * What this side saw when there was no upstream verdict to read: the deadline passed, the
 * connection failed (or dropped after the request was sent), the caller cancelled, or this
 * program itself failed.
 */
export type LocalCause = "timeout" | "network" | "dropped" | "cancelled" | "internal";

export interface Diagnosis {
  category: Category;
  human_reason: string;
  retryable: boolean;
  retry_after_ms?: number;
}

/** Everything known about a failure that the diagnosis may look at. */
export interface FailureFacts {
  stage: Exclude<Stage, "done">;
  httpStatus: number | null;
  upstreamType: string | null;
  upstreamMessage: string | null;
  upstreamCode: string | null;
  cause: LocalCause | null;
  retryAfterMs: number | null;
  /** The upstream said not to repeat this request (`x-should-retry: false`). */
  retryRefused: boolean;
}

/** One attempt of the request: the status it got and, unless it succeeded, how it failed. */
export interface Attempt {
  http_status: number | null;
  /** null for the attempt that succeeded */
  category: Category | null;
}
