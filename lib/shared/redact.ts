/**
 * Masking secrets in everything shown: the API key and the credentials of base_url, whole, in part
 * and in their encoded forms, before any text is clipped.
 */
import { isJsonObject } from "./json.ts";

const MASK = "***";
/** Below this length a secret is masked only as a whole token, so that words around it survive. */
const SHORT_SECRET_CHARS = 8;
/** A part of a secret beside an ellipsis is masked from this length (see maskablePart). */
const MIN_PART_CHARS = 3;
/** How deep redact() copies; a value nested deeper becomes TOO_DEEP. */
export const MAX_REDACT_DEPTH = 64;
export const TOO_DEEP = "[nested too deep]";

const WORD_CHAR = /[\p{L}\p{N}_]/u;

/**
 * A value that looks like a token rather than a word: 8 or more characters, one of them a digit, _
 * or -, or a capital after a small letter.
 */
const TOKEN = String.raw`(?=[^\s"',;&]*(?:[\d_-]|[a-z][A-Z]))[^\s"',;&]{8,}`;
const AUTH_SCHEME_TOKEN = new RegExp(String.raw`\b((?i:Bearer|Basic)\s+)${TOKEN}`, "g");
/** Header and field names whose value is a credential: `api-key`, `X-Goog-Api-Key`, `api_key`, … */
const KEY_HEADER_NAMES =
  "api[-_]?key|auth[-_]?token|access[-_]?token|subscription[-_]?key|authorization";
const KEY_HEADER_TOKEN = new RegExp(
  String.raw`\b((?i:[\w-]*?(?:${KEY_HEADER_NAMES}))["']?\s*[:=]\s*["']?)${TOKEN}`,
  "g",
);

/**
 * A piece of a secret this long is masked wherever it stands, beside an ellipsis or not: an
 * upstream that echoes 20 characters of a key, or its tail, gives the key away all the same. 12
 * characters of a generated token occur in no other text; those of a word or a URL can.
 */
const MIN_FRAGMENT_CHARS = 12;
/**
 * How far into one secret its pieces are looked for: twice what a valid key or header value may
 * have, so that a pasted megabyte costs no megabyte of pieces. A longer one is still masked whole.
 */
const MAX_FRAGMENT_SOURCE_CHARS = 16384;
/** How much of a key given as an array or object is walked for strings and numbers. */
const MAX_KEY_ITEMS = 256;

/** For a list made by secretsOf(), the secrets whose every piece is masked too. */
const fragmentSources = new WeakMap<readonly string[], readonly string[]>();

/**
 * The values that must never be printed: the API key, any credentials in base_url, and the
 * values of extra_headers (with the tokens inside them).
 *
 * The key is taken as given, whatever it is (untrimmed, not ASCII, too long, a number): it is
 * the caller's secret even when it is refused. Pieces of MIN_FRAGMENT_CHARS are masked for the
 * key and for base_url's credentials, which are secrets through and through; for an extra header
 * only when its name says it holds a credential (`x-portkey-api-key`, `cf-aig-authorization`) or
 * its token looks generated, so that a piece of `HTTP-Referer: https://my-app.example.com` or
 * `X-Title: My Image Studio` in an upstream's message stays readable.
 */
export function secretsOf(
  apiKey: unknown,
  baseUrl: unknown,
  extraHeaders?: unknown,
): readonly string[] {
  const key = memoKey(apiKey, baseUrl, extraHeaders);
  if (key !== null && lastSecrets?.key === key) return lastSecrets.list;
  const list = Object.freeze(findSecrets(apiKey, baseUrl, extraHeaders));
  if (key !== null) lastSecrets = { key, list };
  return list;
}

/**
 * The last list made, by what it was made of: the jobs of a batch share their key, base_url and
 * headers, and making the list (and the masker built for it) for each of 100 000 jobs would cost
 * seconds.
 */
let lastSecrets: { key: string; list: readonly string[] } | null = null;

/** What the list depends on, as one text; null for a key given as an object, not remembered. */
function memoKey(apiKey: unknown, baseUrl: unknown, extraHeaders: unknown): string | null {
  const plain = (value: unknown) =>
    value === undefined || value === null || typeof value === "string" ||
    typeof value === "number";
  if (!plain(apiKey) || !plain(baseUrl)) return null;
  if (!plain(extraHeaders) && !isJsonObject(extraHeaders)) return null;
  try {
    const headers = isJsonObject(extraHeaders) ? extraHeaders : String(extraHeaders);
    return JSON.stringify([
      typeof apiKey,
      String(apiKey),
      typeof baseUrl,
      String(baseUrl),
      headers,
    ]);
  } catch {
    return null;
  }
}

function findSecrets(apiKey: unknown, baseUrl: unknown, extraHeaders?: unknown): string[] {
  const secrets = new Set<string>();
  const pieces = new Set<string>();
  const add = (value: string, inPieces: boolean) => {
    for (const form of formsOf(value)) {
      secrets.add(form);
      if (inPieces) pieces.add(form);
    }
  };
  for (const key of keyValues(apiKey)) {
    // The key is sent trimmed (one read from a file ends in a line break), and echoed so.
    add(key, true);
    add(key.trim(), true);
  }
  if (typeof baseUrl === "string") {
    for (const value of urlCredentials(baseUrl).found) {
      add(value, true);
      add(decodedOrSelf(value), true);
    }
  }
  if (typeof extraHeaders === "object" && extraHeaders !== null) {
    for (const [name, value] of Object.entries(extraHeaders)) {
      if (typeof value !== "string") continue;
      const credential = isCredentialHeader(name);
      add(value, credential);
      // Each token in it too: the part after "Bearer", a key in a JSON config.
      for (const token of value.split(/[\s"'`,;{}[\]]+/)) {
        if (token.length >= SHORT_SECRET_CHARS) add(token, credential || looksRandom(token));
      }
    }
  }
  secrets.delete("");
  // Longest first, so that a secret containing another is masked whole.
  const list = [...secrets].sort((a, b) => b.length - a.length);
  fragmentSources.set(list, [...pieces].filter((piece) => piece.length >= MIN_FRAGMENT_CHARS));
  return list;
}

/** The texts of an api_key as given: a string, a number, or the strings and numbers inside. */
function keyValues(apiKey: unknown): string[] {
  if (typeof apiKey === "string") return [apiKey];
  if (typeof apiKey === "number" || typeof apiKey === "bigint") {
    const text = String(apiKey);
    return text.length >= SHORT_SECRET_CHARS ? [text] : [];
  }
  if (typeof apiKey !== "object" || apiKey === null) return [];
  const found: string[] = [];
  const pending: unknown[] = [apiKey];
  for (let walked = 0; pending.length > 0 && walked < MAX_KEY_ITEMS; walked++) {
    const item = pending.pop();
    if (typeof item === "object" && item !== null) {
      pending.push(...Object.values(item).slice(0, MAX_KEY_ITEMS));
    } else {
      found.push(...keyValues(item));
    }
  }
  return found;
}

/** A header whose name says it carries a credential: `api-key`, `x-portkey-virtual-key`, … */
function isCredentialHeader(name: string): boolean {
  return isSecretName(name) || /(?:auth|authorization|key|token|secret)$/i.test(name);
}

/**
 * A value as it may appear in an echo: as is, URL-encoded (upper- or lower-case hex, a space as
 * "+"), and escaped in a JSON string (also with "\/", and with \u escapes for what is not ASCII).
 */
function formsOf(value: string): string[] {
  const escaped = JSON.stringify(value).slice(1, -1);
  // A lone surrogate has no URL encoding (encodeURIComponent would throw).
  const encoded = value.isWellFormed() ? encodeURIComponent(value) : value;
  return [
    value,
    encoded,
    encoded.replace(/%[0-9A-F]{2}/g, (hex) => hex.toLowerCase()),
    encoded.replaceAll("%20", "+"),
    escaped,
    escaped.replaceAll("/", "\\/"),
    escaped.replace(
      /[^\x20-\x7e]/g,
      (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`,
    ),
  ];
}

/** `text` percent-decoded, or as it is when it holds a malformed escape. */
export function decodedOrSelf(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** base_url as it may be shown: credentials in userinfo, path, query and fragment masked. */
export function maskBaseUrl(baseUrl: string): string {
  return urlCredentials(baseUrl).shown;
}

/**
 * The credentials of a URL and the URL with them masked. A URL that parses is read as fetch reads
 * it, and shown as given when it holds none; one that does not is read piece by piece by hand.
 */
function urlCredentials(baseUrl: string): { shown: string; found: string[] } {
  const text = URL.canParse(baseUrl) ? new URL(baseUrl).href : baseUrl;
  const parts = /^([^:/?#\\]+:)?([/\\]{2}[^/?#\\]*)?([^?#]*)(\?[^#]*)?(#.*)?$/s.exec(text);
  if (parts === null) return { shown: baseUrl, found: [] };
  const [, scheme = "", authority = "", path = "", query = "", fragment = ""] = parts;
  const found: string[] = [];
  const shown = scheme + maskAuthority(authority, found) + maskPath(path, found) +
    (query && "?" + query.slice(1).split("&").map((pair) => maskPair(pair, found)).join("&")) +
    maskFragment(fragment, found);
  return { shown: found.length === 0 ? baseUrl : shown, found };
}

/** `//user:password@host` shows `//***:***@host`. */
function maskAuthority(authority: string, found: string[]): string {
  const at = authority.lastIndexOf("@");
  if (at === -1) return authority;
  const userinfo = authority.slice(2, at);
  const colon = userinfo.indexOf(":");
  const names = colon === -1 ? [userinfo] : [userinfo.slice(0, colon), userinfo.slice(colon + 1)];
  found.push(...names.filter((name) => name !== ""));
  const masked = names.map((name) => (name === "" ? "" : MASK)).join(":");
  return authority.slice(0, 2) + masked + authority.slice(at);
}

/**
 * A path segment is a credential when it follows a secret-named one (`/key/<secret>`,
 * `/token/<secret>`), when it is `name=value` with a secret name, or when it looks random: long,
 * with letters and digits that switch often, as keys and bot tokens do and words and versions do not.
 */
function maskPath(path: string, found: string[]): string {
  const segments = path.split(/(?<=[/\\])/);
  let afterSecretName = false;
  return segments.map((segment) => {
    const [bare = "", slash = ""] = /^(.*?)([/\\]?)$/s.exec(segment)!.slice(1);
    const followsName = afterSecretName;
    afterSecretName = isSecretName(decodedOrSelf(bare));
    if (bare === "") return segment;
    if (followsName || looksRandom(decodedOrSelf(bare))) {
      found.push(bare);
      return MASK + slash;
    }
    if (!bare.includes("=")) return segment;
    return bare.split(";").map((pair) => maskPair(pair, found)).join(";") + slash;
  }).join("");
}

/** `api_key=abc` shows `api_key=***`; a random-looking value is masked whatever its name. */
function maskPair(pair: string, found: string[]): string {
  const equals = pair.indexOf("=");
  if (equals === -1) return pair;
  const value = pair.slice(equals + 1);
  if (value === "") return pair;
  if (!isSecretName(decodedOrSelf(pair.slice(0, equals))) && !looksRandom(decodedOrSelf(value))) {
    return pair;
  }
  // A query value may write a space as "+".
  found.push(value, ...(value.includes("+") ? [value.replaceAll("+", "%20")] : []));
  return `${pair.slice(0, equals + 1)}${MASK}`;
}

/** A fragment is never sent; in a base_url it can only be a mistake or a credential. */
function maskFragment(fragment: string, found: string[]): string {
  if (fragment.length <= 1) return fragment;
  const content = fragment.slice(1);
  found.push(content);
  for (const pair of content.split("&")) maskPair(pair, found);
  return `#${MASK}`;
}

const SECRET_NAMES = new Set([
  "key",
  "sig",
  "auth",
  "code",
  "pwd",
  "pass",
  "jwt",
  "session",
  "sessionid",
  "authorization",
  "bearer",
]);
const SECRET_NAME_ENDINGS =
  /(?:apikey|accesskey|secretkey|privatekey|subscriptionkey|token|secret|password|passwd|signature|credentials?)$/;

/** `key`, `api_key`, `X-API-Key`, `access_token`, `sig`, `client_secret`, … in any case. */
export function isSecretName(name: string): boolean {
  const normal = name.toLowerCase().replace(/^x[-_]/, "").replace(/[^a-z0-9]/g, "");
  return SECRET_NAMES.has(normal) || SECRET_NAME_ENDINGS.test(normal);
}

/**
 * Long, switching often between lower case, upper case and digits, and between letters and digits
 * more than once, as generated tokens do (`MyImageGen2024` does not).
 */
function looksRandom(text: string): boolean {
  if (text.length < 16) return false;
  let switches = 0;
  let letterDigitSwitches = 0;
  for (let i = 1; i < text.length; i++) {
    const previous = charClass(text[i - 1]!);
    const current = charClass(text[i]!);
    if (previous === 0 || current === 0 || previous === current) continue;
    switches++;
    if (previous === DIGIT || current === DIGIT) letterDigitSwitches++;
  }
  return letterDigitSwitches >= 2 && switches >= 0.3 * (text.length - 1);
}

const DIGIT = 3;

function charClass(char: string): number {
  if (char >= "a" && char <= "z") return 1;
  if (char >= "A" && char <= "Z") return 2;
  if (char >= "0" && char <= "9") return DIGIT;
  return 0;
}

/**
 * A copy of `value` in which every string and every object key has the secrets and any token
 * masked. Values nested deeper than MAX_REDACT_DEPTH become TOO_DEEP, so that neither this copy
 * nor the JSON made from it can overflow the stack.
 */
export function redact<T>(value: T, secrets: readonly string[]): T {
  const masker = maskerOf(secrets);
  const copy = (item: unknown, depth: number): unknown => {
    if (typeof item === "string") return masker.mask(item);
    if (typeof item !== "object" || item === null) return item;
    if (depth >= MAX_REDACT_DEPTH) return TOO_DEEP;
    if (Array.isArray(item)) return item.map((inner) => copy(inner, depth + 1));
    return Object.fromEntries(
      Object.entries(item).map(([key, inner]) => [masker.mask(key), copy(inner, depth + 1)]),
    );
  };
  return copy(value, 0) as T;
}

/**
 * `text` with the secrets masked: a secret of 8 characters or more wherever it occurs, a shorter one
 * only as a whole token (`abc` in "key abc!", not in "abcdef"); a part of a secret next to an
 * ellipsis (where a text was clipped, or an upstream shortened the key as `sk-ab…`, `…wxyz` or
 * `sk-ab****wxyz`); and any token after `Bearer`/`Basic` or an `api-key:`-like header name.
 */
export function redactText(text: string, secrets: readonly string[]): string {
  return maskerOf(secrets).mask(text);
}

/**
 * The one way text from outside is shown: the secrets masked first, then clipped to `maxChars`,
 * so that a cut never leaves part of a secret behind.
 */
export function maskThenClip(text: string, secrets: readonly string[], maxChars: number): string {
  return clip(redactText(text, secrets), maxChars);
}

/** Trimmed and at most `max` characters, a cut marked with "…" (which redactText recognises). */
export function clip(text: string, max: number): string {
  const oneLine = text.trim();
  if (oneLine.length <= max) return oneLine;
  let cut = oneLine.slice(0, max - 1);
  // Never end on the first half of a surrogate pair.
  if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1);
  return `${cut}…`;
}

interface Masker {
  mask(text: string): string;
}

const maskers = new WeakMap<readonly string[], Masker>();

function maskerOf(secrets: readonly string[]): Masker {
  let masker = maskers.get(secrets);
  if (masker === undefined) {
    masker = buildMasker(
      secrets.filter((secret) => secret !== ""),
      fragmentSources.get(secrets) ?? [],
    );
    maskers.set(secrets, masker);
  }
  return masker;
}

function buildMasker(secrets: readonly string[], pieceSources: readonly string[]): Masker {
  const longestFirst = [...secrets].sort((a, b) => b.length - a.length);
  // Long secrets are plain text to replace; only short ones need a pattern (whole words only),
  // which keeps the pattern small whatever the length of a key.
  const long = longestFirst.filter((secret) => secret.length >= SHORT_SECRET_CHARS);
  const short = longestFirst.filter((secret) => secret.length < SHORT_SECRET_CHARS);
  const whole = short.length === 0 ? null : new RegExp(short.map(wholePattern).join("|"), "gu");
  const parts: SecretParts[] = longestFirst.map((secret) => ({
    forward: new PartFinder(secret),
    backward: new PartFinder([...secret].reverse().join("")),
  }));
  const fragments = fragmentsOf(pieceSources);
  return {
    mask(text: string): string {
      let result = text;
      for (const secret of long) result = result.replaceAll(secret, MASK);
      if (whole !== null) result = result.replace(whole, MASK);
      if (fragments.size > 0) result = maskFragments(result, fragments);
      if (parts.length > 0 && (result.includes("…") || /\.{3}|\*{3}/.test(result))) {
        result = maskPartsAtEllipses(result, parts);
      }
      // A token after "Bearer" is masked whoever's it is; a plain word ("Bearer auth") is not.
      return result.replace(AUTH_SCHEME_TOKEN, `$1${MASK}`).replace(KEY_HEADER_TOKEN, `$1${MASK}`);
    },
  };
}

/** Every piece of MIN_FRAGMENT_CHARS of the secrets given. */
function fragmentsOf(sources: readonly string[]): Set<string> {
  const fragments = new Set<string>();
  for (const source of sources) {
    const end = Math.min(source.length, MAX_FRAGMENT_SOURCE_CHARS);
    for (let i = 0; i + MIN_FRAGMENT_CHARS <= end; i++) {
      fragments.add(source.slice(i, i + MIN_FRAGMENT_CHARS));
    }
  }
  return fragments;
}

/**
 * `text` with every run of it that is covered by pieces of a secret masked as one: each window
 * of MIN_FRAGMENT_CHARS is looked up once, and overlapping or touching hits are merged.
 */
function maskFragments(text: string, fragments: ReadonlySet<string>): string {
  const ranges: Array<[number, number]> = [];
  for (let i = 0; i + MIN_FRAGMENT_CHARS <= text.length; i++) {
    if (!fragments.has(text.slice(i, i + MIN_FRAGMENT_CHARS))) continue;
    const last = ranges.at(-1);
    if (last !== undefined && i <= last[1]) last[1] = i + MIN_FRAGMENT_CHARS;
    else ranges.push([i, i + MIN_FRAGMENT_CHARS]);
  }
  if (ranges.length === 0) return text;
  let result = "";
  let offset = 0;
  for (const [from, to] of ranges) {
    result += text.slice(offset, from) + MASK;
    offset = to;
  }
  return result + text.slice(offset);
}

function wholePattern(secret: string): string {
  const escaped = secret.replace(/[\\^$.*+?()[\]{}|/]/g, "\\$&");
  const before = WORD_CHAR.test(secret[0]!) ? String.raw`(?<![\p{L}\p{N}_])` : "";
  const after = WORD_CHAR.test(secret.at(-1)!) ? String.raw`(?![\p{L}\p{N}_])` : "";
  return before + escaped + after;
}

/**
 * Masks the longest prefix of a secret that ends at an ellipsis, and the longest suffix of one that
 * starts after it, when maskablePart() says so.
 */
function maskPartsAtEllipses(text: string, parts: readonly SecretParts[]): string {
  const { starts, ends } = ellipsesIn(text);
  const reversed = [...text].reverse().join("");
  // Read backwards, a suffix that starts at `end` is a prefix that ends there.
  const backwardEnds = ends.map((end) => text.length - end).reverse();
  const ranges: Array<[number, number]> = [];
  for (const { forward, backward } of parts) {
    const size = forward.secret.length;
    const befores = forward.lengthsEndingAt(text, starts);
    const afters = backward.lengthsEndingAt(reversed, backwardEnds).reverse();
    for (let index = 0; index < starts.length; index++) {
      const start = starts[index]!;
      const end = ends[index]!;
      for (let length = befores[index]!; length > 0; length = forward.shorter(length)) {
        if (maskablePart(length, size, startsToken(text, start - length))) {
          ranges.push([start - length, start]);
          break;
        }
      }
      for (let length = afters[index]!; length > 0; length = backward.shorter(length)) {
        if (maskablePart(length, size, endsToken(text, end + length))) {
          ranges.push([end, end + length]);
          break;
        }
      }
    }
  }
  ranges.sort((a, b) => a[0] - b[0]);
  let result = "";
  let offset = 0;
  for (const [from, to] of ranges) {
    if (to <= offset) continue;
    result += text.slice(offset, Math.max(from, offset)) + (from >= offset ? MASK : "");
    offset = to;
  }
  return result + text.slice(offset);
}

/** Where the text has "…", or a run of three or more dots or asterisks. */
function ellipsesIn(text: string): { starts: number[]; ends: number[] } {
  const starts: number[] = [];
  const ends: number[] = [];
  for (let i = 0; i < text.length;) {
    const code = text.charCodeAt(i);
    let end = i + 1;
    if (code === 0x2e || code === 0x2a) {
      while (end < text.length && text.charCodeAt(end) === code) end++;
    }
    if (code === 0x2026 || end - i >= 3) {
      starts.push(i);
      ends.push(end);
    }
    i = end;
  }
  return { starts, ends };
}

/**
 * Whether a part of a secret beside an ellipsis is masked: of a long secret, when it starts (or
 * ends) a word or has MIN_PART_CHARS; of a short one, only when it does both.
 */
function maskablePart(length: number, secretLength: number, atWordEdge: boolean): boolean {
  if (secretLength >= SHORT_SECRET_CHARS) return atWordEdge || length >= MIN_PART_CHARS;
  return atWordEdge && length >= MIN_PART_CHARS;
}

function startsToken(text: string, at: number): boolean {
  return at === 0 || !isWordChar(text, at - 1) || !isWordChar(text, at);
}

function endsToken(text: string, at: number): boolean {
  return at === text.length || !isWordChar(text, at) || !isWordChar(text, at - 1);
}

function isWordChar(text: string, at: number): boolean {
  const code = text.charCodeAt(at);
  if (code >= 128) return WORD_CHAR.test(text[at]!);
  return (code >= 48 && code <= 57) || (code >= 65 && code <= 90) || (code >= 97 && code <= 122) ||
    code === 95;
}

interface SecretParts {
  forward: PartFinder;
  backward: PartFinder;
}

/** Finds, in one pass over a text (Knuth-Morris-Pratt), the prefixes of a secret ending anywhere. */
class PartFinder {
  readonly secret: string;
  /** borders[i]: the longest proper prefix of secret[0..i] that is also its suffix. */
  readonly #borders: Int32Array;

  constructor(secret: string) {
    this.secret = secret;
    this.#borders = new Int32Array(secret.length);
    for (let i = 1, length = 0; i < secret.length; i++) {
      while (length > 0 && secret[i] !== secret[length]) length = this.#borders[length - 1]!;
      if (secret[i] === secret[length]) length++;
      this.#borders[i] = length;
    }
  }

  /** For each of `positions` (ascending), the longest prefix of the secret ending there. */
  lengthsEndingAt(text: string, positions: readonly number[]): number[] {
    const lengths: number[] = [];
    let length = 0;
    let next = 0;
    for (let i = 0; next < positions.length; i++) {
      while (next < positions.length && positions[next] === i) {
        lengths.push(length);
        next++;
      }
      if (i >= text.length) break;
      while (length > 0 && (length === this.secret.length || this.secret[length] !== text[i])) {
        length = this.#borders[length - 1]!;
      }
      if (this.secret[length] === text[i]) length++;
    }
    return lengths;
  }

  /** The next shorter prefix that ends where one of `length` ends. */
  shorter(length: number): number {
    return this.#borders[length - 1]!;
  }
}
