import { safeFileStem } from "../image/output_file.ts";
import type { GenerationParams } from "../params/params.ts";
import { authHeaderOf, maskedHeaderValues } from "../params/headers.ts";
import { maskBaseUrl, redact, redactText, secretsOf } from "../shared/redact.ts";
import { endpointOf, requestBody, requestHeaders } from "../upstream/request.ts";

export interface DryRunReport {
  ok: true;
  dry_run: true;
  request: { method: "POST"; url: string; headers: Record<string, string>; body: unknown };
  image_path_pattern: string;
}

/**
 * What a call would send and where it would save, with the key, every extra header's value and
 * the credentials of base_url masked wherever they occur (a careless extra_body may repeat them);
 * nothing is sent.
 */
export function dryRunReport(params: GenerationParams): DryRunReport {
  const headers = requestHeaders(params, params.stream);
  const [keyHeader, maskedKey] = authHeaderOf(params.auth_header, "***");
  headers[keyHeader] = maskedKey;
  Object.assign(headers, maskedHeaderValues(params.extra_headers));
  const secrets = secretsOf(params.api_key, params.base_url, params.extra_headers);
  const report: DryRunReport = {
    ok: true,
    dry_run: true,
    request: {
      method: "POST",
      url: redactText(maskBaseUrl(endpointOf(params.base_url).href), secrets),
      headers,
      body: redact(requestBody(params), secrets),
    },
    image_path_pattern: `${params.output_dir}/${
      safeFileStem(params.task_name)
    }-YYYYMMDD-HHMMSS.{png,jpg,webp,gif}`,
  };
  return report;
}
