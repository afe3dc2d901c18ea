/**
 * The headers a gateway asks for beyond the key: `extra_headers` checked, and the key sent in
 * the header `auth_header` names.
 */

export const AUTH_HEADERS = ["authorization", "api-key"] as const;
export type AuthHeader = (typeof AUTH_HEADERS)[number];

export const MAX_EXTRA_HEADERS = 64;
export const MAX_HEADER_VALUE_CHARS = 8192;
/** Names and values together: servers refuse large header sections (nginx, lines over 8 KiB). */
const MAX_EXTRA_HEADERS_CHARS = 16384;

/** RFC 9110 token characters, the only ones a header name may have. */
const NAME_CHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;

/** Header names extra_headers may not set (lower case), and why. */
const REFUSED_HEADERS: Record<string, string> = {
  "connection": "a hop-by-hop header, which belongs to the connection",
  "keep-alive": "a hop-by-hop header, which belongs to the connection",
  "te": "a hop-by-hop header, which belongs to the connection",
  "trailer": "a hop-by-hop header, which belongs to the connection",
  "transfer-encoding": "a hop-by-hop header, which belongs to the connection",
  "upgrade": "a hop-by-hop header, which belongs to the connection",
  "content-length": "it is measured from the body",
  "content-encoding": "the body is sent as plain JSON",
  "host": "it comes from base_url",
  "content-type": "the body is always JSON",
  "accept": "the command asks for the answers it can read",
};

/** The header that carries api_key, in the spelling the request uses. */
export function authHeaderOf(authHeader: AuthHeader, apiKey: string): [string, string] {
  return authHeader === "api-key" ? ["api-key", apiKey] : ["Authorization", `Bearer ${apiKey}`];
}

/**
 * The problems of an extra_headers object, each naming the header but never its value, which
 * may be a secret. `authHeader` is refused as well: the key goes there, from api_key.
 */
export function extraHeadersProblems(
  headers: Record<string, unknown>,
  authHeader: AuthHeader,
): string[] {
  const problems: string[] = [];
  const names = Object.keys(headers);
  if (names.length > MAX_EXTRA_HEADERS) {
    // One problem, not one for each of what may be thousands of names.
    return [`extra_headers has ${names.length} headers, at most ${MAX_EXTRA_HEADERS} allowed`];
  }
  const size = Object.entries(headers).reduce(
    (sum, [name, value]) => sum + name.length + (typeof value === "string" ? value.length : 0),
    0,
  );
  if (size > MAX_EXTRA_HEADERS_CHARS) {
    problems.push(
      `extra_headers has ${size} characters of names and values, at most ${MAX_EXTRA_HEADERS_CHARS} allowed`,
    );
  }
  const seen = new Map<string, string>();
  for (const name of names) {
    const lower = name.toLowerCase();
    const invalidAt = [...name].findIndex((char) => !NAME_CHAR.test(char));
    if (name === "" || invalidAt >= 0) {
      // Only the part before the first invalid character is quoted: a whole "Name: value" line
      // given as a name would otherwise print its value.
      const shown = invalidAt > 0 ? `"${name.slice(0, invalidAt)}…"` : "";
      problems.push(
        `Invalid extra_headers name ${shown}`.trimEnd() +
          ": a header name has only letters, digits and !#$%&'*+-.^_`|~",
      );
      continue;
    }
    const earlier = seen.get(lower);
    if (earlier !== undefined) {
      problems.push(`extra_headers sets "${lower}" twice ("${earlier}" and "${name}")`);
      continue;
    }
    seen.set(lower, name);
    const refusal = lower.startsWith("proxy-")
      ? "a proxy's header, which belongs to the connection"
      : lower === authHeader
      ? "the key goes there: give it as api_key"
      : REFUSED_HEADERS[lower];
    if (refusal !== undefined) {
      problems.push(`extra_headers may not set "${name}": ${refusal}`);
      continue;
    }
    const problem = headerValueProblem(headers[name]);
    if (problem !== null) problems.push(`Invalid extra_headers "${name}": ${problem}`);
  }
  return problems;
}

function headerValueProblem(value: unknown): string | null {
  if (typeof value !== "string") return "expected a string value";
  if (value === "") return "its value is empty";
  if (value.length > MAX_HEADER_VALUE_CHARS) {
    return `its value has ${value.length} characters, at most ${MAX_HEADER_VALUE_CHARS} allowed`;
  }
  if (/(?!\t)\p{Cc}/u.test(value)) {
    return "its value contains line breaks or control characters";
  }
  if (/[^\t -~]/.test(value)) return "its value has characters outside ASCII";
  if (value.trim() !== value) return "its value starts or ends with spaces";
  return null;
}

/** The names of `headers`, each value masked: how extra_headers may be shown. */
export function maskedHeaderValues(headers: object): Record<string, string> {
  return Object.fromEntries(Object.keys(headers).map((name) => [name, "***"]));
}

/** `base` with `extra` on top, a name in `extra` replacing the same name in any case. */
export function withHeaders(
  base: Record<string, string>,
  extra: Record<string, string>,
): Record<string, string> {
  const replaced = new Set(Object.keys(extra).map((name) => name.toLowerCase()));
  const merged: Record<string, string> = {};
  for (const [name, value] of Object.entries(base)) {
    if (!replaced.has(name.toLowerCase())) merged[name] = value;
  }
  return { ...merged, ...extra };
}
