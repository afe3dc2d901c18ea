import type { GenerationInput, GenerationParams } from "../mod.ts";

export async function sha256Hex(data: string | Uint8Array): Promise<string> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return new Uint8Array(digest).toHex();
}

/** JSON with object keys sorted, so that the same value always hashes the same. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(
    value,
    (_key, item) =>
      typeof item === "object" && item !== null && !Array.isArray(item)
        ? Object.fromEntries(Object.entries(item).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
        : item,
  );
}

/**
 * What a run is asked to do: the jobs file's content and the settings shared by every job, the
 * key left out (a new key is not a new plan).
 */
export function planHash(jobsSha256: string, shared: GenerationInput): Promise<string> {
  const { api_key: _key, ...settings } = shared;
  return sha256Hex(canonicalJson({ jobs_sha256: jobsSha256, settings }));
}

/** One job's resolved parameters, key left out: what decides whether its image is still the one asked for. */
export function paramsHash(params: GenerationParams): Promise<string> {
  const { api_key: _key, ...rest } = params;
  return sha256Hex(canonicalJson(rest));
}
