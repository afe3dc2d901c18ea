const MASK = "***";
/** Query parameters of a base_url whose values are treated as credentials. */
const SECRET_QUERY_NAMES =
  /^(?:key|api[-_]?key|access[-_]?token|token|secret|password|sig|signature|auth|authorization|x-api-key)$/i;

/** The values that must never be printed: the API key and any credentials in base_url. */
export function secretsOf(apiKey: unknown, baseUrl: unknown): string[] {
  const secrets = new Set<string>();
  const add = (value: string) => {
    if (value === "") return;
    secrets.add(value);
    // A lone surrogate has no URL encoding (encodeURIComponent would throw).
    if (value.isWellFormed()) secrets.add(encodeURIComponent(value));
  };
  // The key as it is sent: validation trims the line break a key read from a file ends in.
  if (typeof apiKey === "string") add(apiKey.trim());
  if (typeof baseUrl === "string" && URL.canParse(baseUrl)) {
    const url = new URL(baseUrl);
    add(decodedOrSelf(url.username));
    add(decodedOrSelf(url.password));
    for (const [name, value] of url.searchParams) if (SECRET_QUERY_NAMES.test(name)) add(value);
  } else if (typeof baseUrl === "string") {
    // A base_url that does not parse is still shown in the result: find its credentials by hand.
    const userinfo = /\/\/([^/?#@]*)@/.exec(baseUrl)?.[1];
    if (userinfo) { for (const part of userinfo.split(":")) add(decodedOrSelf(part)); }
    for (const match of baseUrl.matchAll(/[?&]([^=&#]+)=([^&#]*)/g)) {
      if (SECRET_QUERY_NAMES.test(match[1]!)) add(decodedOrSelf(match[2]!));
    }
  }
  // Longest first, so that a secret containing another is masked whole.
  return [...secrets].sort((a, b) => b.length - a.length);
}

function decodedOrSelf(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** base_url as it may be shown: user, password and key-like query values masked. */
export function maskBaseUrl(baseUrl: string): string {
  if (!URL.canParse(baseUrl)) {
    return baseUrl.replace(/\/\/[^/?#@]*@/, `//${MASK}@`).replace(
      /([?&])([^=&#]+)=([^&#]*)/g,
      (whole, separator: string, name: string) =>
        SECRET_QUERY_NAMES.test(name) ? `${separator}${name}=${MASK}` : whole,
    );
  }
  const url = new URL(baseUrl);
  if (
    url.username === "" && url.password === "" &&
    ![...url.searchParams.keys()].some((name) => SECRET_QUERY_NAMES.test(name))
  ) {
    return baseUrl;
  }
  if (url.username !== "") url.username = MASK;
  if (url.password !== "") url.password = MASK;
  for (const name of [...url.searchParams.keys()]) {
    if (SECRET_QUERY_NAMES.test(name)) url.searchParams.set(name, MASK);
  }
  return url.href.replaceAll(encodeURIComponent(MASK), MASK);
}

/** A copy of `value` in which every string has the secrets and any Bearer token masked. */
export function redact<T>(value: T, secrets: readonly string[]): T {
  if (typeof value === "string") return redactText(value, secrets) as T;
  if (Array.isArray(value)) return value.map((item) => redact(item, secrets)) as T;
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, redact(item, secrets)]),
    ) as T;
  }
  return value;
}

export function redactText(text: string, secrets: readonly string[]): string {
  let result = text;
  for (const secret of secrets) result = result.replaceAll(secret, MASK);
  // A token after "Bearer" is masked whoever's it is; a plain word ("Bearer auth") is not.
  return result.replace(/\b(Bearer\s+)(?=[^\s"',;]*[\d_-])[^\s"',;]{8,}/gi, `$1${MASK}`);
}
