import assert from "node:assert/strict";
import { backoffMs, retryWait } from "../lib/retry.ts";
import type { Diagnosis } from "../lib/types.ts";

const retryable: Diagnosis = { category: "rate_limited", human_reason: "", retryable: true };

Deno.test("retryWait() retries nothing that is not retryable, nor past max_retries", () => {
  assert.equal(retryWait({ ...retryable, retryable: false }, 3, 0, 60_000), null);
  assert.equal(retryWait(retryable, 0, 3, 60_000), null);
});

Deno.test("retryWait() waits what the upstream asked, but not past the deadline", () => {
  assert.equal(retryWait({ ...retryable, retry_after_ms: 2500 }, 1, 0, 60_000), 2500);
  assert.equal(retryWait({ ...retryable, retry_after_ms: 2500 }, 1, 0, 2500), null);
});

Deno.test("retryWait() backs off about 1 s, 2 s, 4 s … at most 30 s otherwise", () => {
  for (const [attempt, nominal] of [[0, 1000], [1, 2000], [2, 4000], [10, 30_000]] as const) {
    const wait = retryWait(retryable, 1, attempt, 600_000)!;
    assert.ok(wait >= nominal / 2 && wait <= nominal * 1.5, `${attempt}: ${wait}`);
  }
  assert.equal(backoffMs(3, () => 0.5), 8000);
});
