import { isJsonObject } from "../shared/json.ts";
import { InputError } from "../failure/errors.ts";
import { AUTH_HEADERS, type AuthHeader, extraHeadersProblems } from "./headers.ts";
import { absolutePath } from "../shared/paths.ts";
import { decodedOrSelf, maskThenClip, secretsOf } from "../shared/redact.ts";
import type { Lang } from "../failure/types.ts";

/** Parameters as they arrive: a JSON object, or flags whose values are all strings. */
export type GenerationInput = Record<string, unknown>;

export type ResponseFormat = "b64_json" | "url";

/** Parameters after validation: every value has its final type and its default. */
export interface GenerationParams {
  prompt: string;
  base_url: string;
  api_key: string;
  model: string;
  size: string;
  task_name: string;
  timeout_ms: number;
  output_dir: string;
  response_format: ResponseFormat;
  n: 1;
  return_base64: boolean;
  lang: Lang;
  max_retries: number;
  media_line: boolean;
  stream: boolean;
  /** Partial images asked of a stream, 0 to 3; null when not given (not sent). */
  partial_images: number | null;
  save_partials: boolean;
  /** OpenAI's optional request fields that were given, in the order of PASSTHROUGH_NAMES. */
  passthrough: Record<string, string | number>;
  extra_body: Record<string, unknown>;
  /** The header that carries api_key. */
  auth_header: AuthHeader;
  /** Sent with the request as given; never printed. */
  extra_headers: Record<string, string>;
}

export const DEFAULT_OUTPUT_DIR = "/tmp/generated-images";
const MAX_PROMPT_CHARS = 32000;
/** Keys are tens of characters, signed tokens a few thousand; a header line is at most 8 KiB. */
const MAX_API_KEY_CHARS = 8192;
const MAX_RETRIES = 10;
/** Deep enough for any gateway's fields, shallow enough to walk and print without a deep stack. */
const MAX_EXTRA_BODY_DEPTH = 32;
/** More than 1 MiB of JSON can hold; met only by an object built in code that shares its parts. */
const MAX_EXTRA_BODY_VALUES = 1024 * 1024;
export const MAX_PARTIAL_IMAGES = 3;
/** The longest timer the runtime can arm. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

type Rule =
  | { kind: "text"; nonBlank?: boolean; maxChars?: number; secret?: boolean }
  | { kind: "url" }
  | { kind: "size" }
  | { kind: "integer"; min: number; max: number }
  | { kind: "boolean" }
  | { kind: "enum"; values: readonly string[] }
  /** A provider's word, sent as given; `known` are examples, for near misses and the help. */
  | { kind: "word"; known: readonly string[] }
  | { kind: "object"; maxDepth: number; secretValues?: boolean }
  | { kind: "folder" };

interface ParamSpec {
  rule: Rule;
  required?: boolean;
  /** Sent to the upstream as is when given. */
  passthrough?: boolean;
  help: string;
}

/** Every parameter the command knows, in the order `--help` lists them. */
export const PARAM_SPECS = {
  prompt: {
    rule: { kind: "text", nonBlank: true, maxChars: MAX_PROMPT_CHARS },
    required: true,
    help: "the image prompt (at most 32000 characters)",
  },
  base_url: {
    rule: { kind: "url" },
    required: true,
    help: "API base, e.g. https://api.example.com/v1 (the command adds /images/generations)",
  },
  api_key: {
    rule: { kind: "text", secret: true, maxChars: MAX_API_KEY_CHARS },
    required: true,
    help: "API key, sent as a Bearer token (safer in the JSON on stdin, with -)",
  },
  model: {
    rule: { kind: "text", nonBlank: true },
    required: true,
    help: "e.g. gpt-image-2 or a gpt-image-2.5 model (dall-e-2, dall-e-3, gpt-image-1 are retired)",
  },
  size: {
    rule: { kind: "size" },
    required: true,
    help: "WIDTHxHEIGHT (1024x1024), auto, or a size word such as 2K (Seedream), sent as given",
  },
  task_name: {
    rule: { kind: "text", nonBlank: true },
    required: true,
    help: "names the file: {task_name}-{YYYYMMDD-HHMMSS}.{ext}",
  },
  timeout_ms: {
    rule: { kind: "integer", min: 1, max: MAX_TIMEOUT_MS },
    required: true,
    help: "bound on the whole call in milliseconds (300000 suits gpt-image-2)",
  },
  output_dir: {
    rule: { kind: "folder" },
    help: `folder for the image, created if missing; ~/ is HOME (default ${DEFAULT_OUTPUT_DIR})`,
  },
  response_format: {
    rule: { kind: "enum", values: ["b64_json", "url"] },
    help: "b64_json (default) or url",
  },
  n: { rule: { kind: "integer", min: 1, max: 1 }, help: "number of images: must be 1" },
  return_base64: {
    rule: { kind: "boolean" },
    help: "also return the image as base64 in `b64` (default false)",
  },
  quality: {
    rule: { kind: "word", known: ["low", "medium", "high", "auto", "standard", "hd"] },
    passthrough: true,
    help: "a provider's word, sent as given, e.g. low, medium, high, auto, standard, hd",
  },
  background: {
    rule: { kind: "word", known: ["transparent", "opaque", "auto"] },
    passthrough: true,
    help: "a provider's word, sent as given, e.g. transparent, opaque, auto",
  },
  output_format: {
    rule: { kind: "word", known: ["png", "jpeg", "webp"] },
    passthrough: true,
    help: "a provider's word, sent as given, e.g. png, jpeg, webp",
  },
  output_compression: {
    rule: { kind: "integer", min: 0, max: 100 },
    passthrough: true,
    help: "0 to 100, for jpeg and webp",
  },
  moderation: {
    rule: { kind: "word", known: ["low", "auto"] },
    passthrough: true,
    help: "a provider's word, sent as given, e.g. low, auto",
  },
  style: {
    rule: { kind: "word", known: ["vivid", "natural"] },
    passthrough: true,
    help: "a provider's word, sent as given, e.g. vivid, natural",
  },
  user: { rule: { kind: "text", nonBlank: true }, passthrough: true, help: "end-user identifier" },
  stream: {
    rule: { kind: "boolean" },
    help: "true streams the answer as server-sent events, past a gateway's cut (default false)",
  },
  partial_images: {
    rule: { kind: "integer", min: 0, max: MAX_PARTIAL_IMAGES },
    help: "0 to 3 partial images sent while the image is made; needs stream true",
  },
  save_partials: {
    rule: { kind: "boolean" },
    help:
      "save each partial image beside the final one as {name}.partial-{i}.{ext} (default false)",
  },
  extra_body: {
    rule: { kind: "object", maxDepth: MAX_EXTRA_BODY_DEPTH },
    help: "JSON object merged into the request body, for gateway-specific fields",
  },
  extra_headers: {
    // Depth 2, so that an object given as a value is refused as not a string, by name.
    rule: { kind: "object", maxDepth: 2, secretValues: true },
    help: "JSON object of header name to value, sent with the request (values never printed)",
  },
  auth_header: {
    rule: { kind: "enum", values: AUTH_HEADERS },
    help: "header for api_key: authorization (Bearer, default) or api-key (Azure OpenAI)",
  },
  lang: {
    rule: { kind: "enum", values: ["zh", "en"] },
    help: "language of human_reason: zh or en",
  },
  max_retries: {
    rule: { kind: "integer", min: 0, max: MAX_RETRIES },
    help: "retries of retryable failures within timeout_ms (default 0)",
  },
  media_line: {
    rule: { kind: "boolean" },
    help: "print MEDIA:<path> after the JSON on success (default false)",
  },
} as const satisfies Record<string, ParamSpec>;

export type ParamName = keyof typeof PARAM_SPECS;
export const PARAM_NAMES = Object.keys(PARAM_SPECS) as ParamName[];
export const REQUIRED_NAMES = PARAM_NAMES.filter((name) => "required" in PARAM_SPECS[name]);
export const PASSTHROUGH_NAMES = PARAM_NAMES.filter((name) => "passthrough" in PARAM_SPECS[name]);

/** Fields the request body always carries, which extra_body may not replace. */
const CORE_BODY_FIELDS = [
  "model",
  "prompt",
  "size",
  "n",
  "response_format",
  "stream",
  "partial_images",
];

export function isParamName(name: string): name is ParamName {
  return Object.hasOwn(PARAM_SPECS, name);
}

/** Checks every parameter, reports every problem at once, and fills in the defaults. */
export function validateParams(input: GenerationInput): GenerationParams {
  const secrets = secretsOf(input.api_key, input.base_url, input.extra_headers);
  const show = (value: unknown) => shownValue(value, secrets);
  const problems: string[] = [];
  const values: Partial<Record<ParamName, unknown>> = {};

  for (const [name, raw] of Object.entries(input)) {
    if (!isParamName(name)) {
      problems.push(unknownParamMessage(name, show));
      continue;
    }
    // A null stands for "not given", as generated JSON often writes it.
    if (raw === null || raw === undefined) continue;
    const spec: ParamSpec = PARAM_SPECS[name];
    const checked = checkValue(name, spec.rule, raw, show);
    if ("problem" in checked) problems.push(checked.problem);
    else values[name] = checked.value;
  }

  const missing = REQUIRED_NAMES.filter((name) =>
    input[name] === undefined || input[name] === null
  );
  if (missing.length > 0) {
    problems.unshift(
      `Missing required parameter${missing.length > 1 ? "s" : ""}: ${missing.join(", ")}`,
    );
  }

  problems.push(...keyInFieldsProblems(input, values));

  const extraBody = (values.extra_body ?? {}) as Record<string, unknown>;
  const sentNames = new Set([...CORE_BODY_FIELDS, ...PASSTHROUGH_NAMES.filter((n) => n in values)]);
  const clashes = Object.keys(extraBody).filter((key) => sentNames.has(key));
  if (clashes.length > 0) {
    problems.push(
      `extra_body may not set ${clashes.map((k) => `"${k}"`).join(", ")}: give ${
        clashes.length > 1 ? "them" : "it"
      } as ${clashes.length > 1 ? "parameters" : "a parameter"} instead`,
    );
  }

  const authHeader = (values.auth_header as AuthHeader | undefined) ?? "authorization";
  const extraHeaders = (values.extra_headers ?? {}) as Record<string, string>;
  problems.push(...extraHeadersProblems(extraHeaders, authHeader));
  problems.push(...streamProblems(values));

  if (problems.length > 0) throw new InputError(problems.join("; "));

  const passthrough: Record<string, string | number> = {};
  for (const name of PASSTHROUGH_NAMES) {
    const value = values[name];
    if (value !== undefined) passthrough[name] = value as string | number;
  }

  return {
    prompt: values.prompt as string,
    base_url: values.base_url as string,
    api_key: values.api_key as string,
    model: values.model as string,
    size: values.size as string,
    task_name: values.task_name as string,
    timeout_ms: values.timeout_ms as number,
    output_dir: (values.output_dir as string | undefined) ?? DEFAULT_OUTPUT_DIR,
    response_format: (values.response_format as ResponseFormat | undefined) ?? "b64_json",
    n: 1,
    return_base64: (values.return_base64 as boolean | undefined) ?? false,
    lang: (values.lang as Lang | undefined) ?? "zh",
    max_retries: (values.max_retries as number | undefined) ?? 0,
    media_line: (values.media_line as boolean | undefined) ?? false,
    stream: (values.stream as boolean | undefined) ?? false,
    partial_images: (values.partial_images as number | undefined) ?? null,
    save_partials: (values.save_partials as boolean | undefined) ?? false,
    passthrough,
    extra_body: extraBody,
    auth_header: authHeader,
    extra_headers: extraHeaders,
  };
}

/**
 * Fields that must not hold the key. The model, size, task name, folder and base_url are shown in
 * every result and name the file; the prompt, user and extra_body go in the request body, and
 * extra_headers in the request, which relays log and providers keep, while the key's own header is
 * neither logged nor kept. None has a use for the key.
 */
const KEY_FREE_FIELDS = [
  "prompt",
  "base_url",
  "model",
  "task_name",
  "output_dir",
  "user",
  "quality",
  "background",
  "output_format",
  "moderation",
  "style",
  "extra_body",
  "extra_headers",
] as const;
/**
 * Real keys are longer; a shorter one (`EMPTY`, `anything`, `lm-studio`, `not-needed`) is a
 * placeholder for a local server, which a prompt may hold as a word.
 */
const MIN_REFUSED_KEY_CHARS = 16;

/**
 * Each field that holds the api_key, named but not quoted. A field is refused rather than masked
 * so that a success shows what was given, exactly. The objects are read once validated, so that
 * their size is already bounded.
 */
function keyInFieldsProblems(
  input: GenerationInput,
  values: Partial<Record<ParamName, unknown>>,
): string[] {
  if (typeof input.api_key !== "string") return [];
  const key = input.api_key.trim();
  if (key.length < MIN_REFUSED_KEY_CHARS) return [];
  const escapedKey = JSON.stringify(key).slice(1, -1);
  return KEY_FREE_FIELDS.filter((name) => {
    if (name === "extra_body" || name === "extra_headers") {
      return values[name] !== undefined && JSON.stringify(values[name]).includes(escapedKey);
    }
    const value = input[name];
    if (typeof value !== "string") return false;
    return value.includes(key) || (name === "base_url" && decodedOrSelf(value).includes(key));
  }).map((name) => `Invalid ${name}: it contains the api_key; give the key only as api_key`);
}

/** partial_images and save_partials mean something only for a stream that sends partial images. */
function streamProblems(values: Partial<Record<ParamName, unknown>>): string[] {
  const problems: string[] = [];
  if (values.partial_images !== undefined && values.stream !== true) {
    problems.push(`partial_images needs stream: true (partial images come only in a stream)`);
  }
  if (values.save_partials === true && !((values.partial_images as number | undefined) ?? 0)) {
    problems.push(`save_partials needs partial_images from 1 to ${MAX_PARTIAL_IMAGES}`);
  }
  return problems;
}

type Checked = { value: unknown } | { problem: string };

type Show = (value: unknown) => string;

function checkValue(name: string, rule: Rule, raw: unknown, show: Show): Checked {
  switch (rule.kind) {
    case "text":
      return checkText(name, rule, raw, show);
    case "url":
      return checkUrl(name, raw);
    case "size":
      return checkSize(name, raw, show);
    case "integer":
      return checkInteger(name, rule.min, rule.max, raw, show);
    case "boolean":
      return checkBoolean(name, raw, show);
    case "enum":
      return typeof raw === "string" && rule.values.includes(raw)
        ? { value: raw }
        : { problem: `Invalid ${name} ${show(raw)}: expected one of ${rule.values.join(", ")}` };
    case "word":
      return checkWord(name, rule.known, raw, show);
    case "object":
      if (!isJsonObject(raw)) {
        const shown = rule.secretValues ? "" : ` ${show(raw)}`;
        return { problem: `Invalid ${name}${shown}: expected a JSON object` };
      }
      return objectShapeProblem(raw, rule.maxDepth, name) ?? { value: raw };
    case "folder":
      return checkFolder(name, raw, show);
  }
}

function checkText(
  name: string,
  rule: { nonBlank?: boolean; maxChars?: number; secret?: boolean },
  raw: unknown,
  show: Show,
): Checked {
  if (typeof raw !== "string") {
    // Quoted only in the error: masking every valid prompt costs a batch of 100 000 jobs seconds.
    const shown = rule.secret ? "" : ` ${show(raw)}`;
    return { problem: `Invalid ${name}${shown}: expected a string` };
  }
  // A key read from a file or pasted from a web page often ends in a line break or a space.
  const text = rule.secret ? raw.trim() : raw;
  if (text === "" || (rule.nonBlank && text.trim() === "")) {
    return { problem: `Invalid ${name}: it is empty` };
  }
  if (rule.secret) {
    // Sent in an HTTP header, which carries bytes: the runtime would throw on anything else.
    const bad = /[^\x21-\x7e]/.exec(text);
    if (bad !== null) {
      const what = /[\s\p{Cc}]/u.test(bad[0])
        ? "a space, line break or control character"
        : "a character that is not printable ASCII";
      return { problem: `Invalid ${name}: it contains ${what} (at position ${bad.index + 1})` };
    }
  }
  // No text has more characters than UTF-16 code units: only a long one needs counting.
  if (rule.maxChars !== undefined && text.length > rule.maxChars) {
    let chars = 0;
    for (const _ of text) chars++;
    if (chars > rule.maxChars) {
      return { problem: `Invalid ${name}: ${chars} characters, at most ${rule.maxChars} allowed` };
    }
  }
  return { value: text };
}

function checkUrl(name: string, raw: unknown): Checked {
  // Not quoted back: a base_url may carry credentials, and one that does not parse cannot be masked.
  if (typeof raw === "string" && URL.canParse(raw)) {
    const { protocol, username, password } = new URL(raw);
    if ((protocol === "http:" || protocol === "https:") && (username !== "" || password !== "")) {
      // The runtime would send them as `Authorization: Basic …` beside the key's own header.
      return {
        problem: `Invalid ${name}: it holds a user name or password before "@", which would be ` +
          `sent as a second Authorization header; give the key as api_key, and any other ` +
          `credential of a gateway in extra_headers`,
      };
    }
    if (protocol === "http:" || protocol === "https:") return { value: raw };
  }
  if (typeof raw === "string" && !raw.includes("://")) {
    return {
      problem: `Invalid ${name}: it has no scheme; begin it with "https://" ` +
        `(or "http://" for a server without TLS)`,
    };
  }
  return { problem: `Invalid ${name}: expected an http or https URL` };
}

const SIZE_PATTERN = /^([1-9]\d{0,5})x([1-9]\d{0,5})$/;
/** A resolution word: Seedream's 1K, 2K, 4K, TokenHub's 1.5K and 3K. */
const SIZE_WORD = /^[1-9]\d?(\.5)?K$/;

function isSize(text: string): boolean {
  return text === "auto" || SIZE_PATTERN.test(text) || SIZE_WORD.test(text);
}

function checkSize(name: string, raw: unknown, show: Show): Checked {
  if (typeof raw === "string" && isSize(raw)) return { value: raw };
  const near = typeof raw === "string" ? nearestSize(raw) : null;
  return {
    problem: `Invalid ${name} ${show(raw)}: expected WIDTHxHEIGHT with positive integers, auto, ` +
      `or a size word such as 2K` + (near === null ? "" : `; did you mean "${near}"?`),
  };
}

/**
 * The size a near miss stands for: `1024X1024`, `1024×1024`, `1024 x 1024`, `１０２４ｘ１０２４`,
 * `Auto`, `2k`.
 */
function nearestSize(raw: string): string | null {
  if (raw.length > 40) return null;
  const size = raw.normalize("NFKC").toLowerCase().replace(/\s+|px/g, "").replace(/[×*✕✖]/g, "x");
  if (size === "auto" || SIZE_PATTERN.test(size)) return size;
  const word = size.toUpperCase();
  return SIZE_WORD.test(word) ? word : null;
}

/**
 * What looks like a provider's word: a short lowercase ASCII token (`high`, `xhigh`, `1080p`,
 * `ultra_hd`). Providers name new levels with each model, so any such token is sent as given and
 * the upstream judges it; its refusal comes before any image is made.
 */
const WORD_PATTERN = /^[a-z0-9][a-z0-9._-]{0,31}$/;

function checkWord(name: string, known: readonly string[], raw: unknown, show: Show): Checked {
  const examples = known.join(", ");
  if (typeof raw !== "string") {
    return { problem: `Invalid ${name} ${show(raw)}: expected a word such as ${examples}` };
  }
  const near = nearestWord(raw, known);
  if (WORD_PATTERN.test(raw) && (near === null || near === raw)) return { value: raw };
  return {
    problem: `Invalid ${name} ${show(raw)}: expected a short lowercase word such as ${examples}` +
      (near === null || near === raw ? "" : `; did you mean "${near}"?`),
  };
}

/**
 * The known word a value is a clear typo of: the same word in other case or with spaces, or one
 * letter off (`hight`, `mediun`, `jpg`) or two letters swapped (`hihg`). A word with something
 * put before a known one (`xhigh`, `ultrahd`) is read as a new word, not a typo.
 */
function nearestWord(raw: string, known: readonly string[]): string | null {
  if (raw.length > 40) return null;
  const word = raw.normalize("NFKC").trim().toLowerCase();
  if (known.includes(word)) return word;
  if (!WORD_PATTERN.test(word)) return null;
  return known.find((candidate) =>
    candidate.length >= 3 && !word.endsWith(candidate) &&
    (editDistance(word, candidate) === 1 || isSwap(word, candidate))
  ) ?? null;
}

/** Whether `a` is `b` with two neighbouring letters swapped. */
function isSwap(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  const differ = [...a].flatMap((char, i) => char === b[i] ? [] : [i]);
  const [i, j] = differ;
  return differ.length === 2 && j === i! + 1 && a[i!] === b[j] && a[j] === b[i!];
}

function checkInteger(name: string, min: number, max: number, raw: unknown, show: Show): Checked {
  const value = typeof raw === "string" && /^\s*-?\d+\s*$/.test(raw) ? Number(raw) : raw;
  const integer = typeof value === "number" && Number.isInteger(value);
  if (integer && value >= min && value <= max) return { value };
  let expected = min === max ? `${min}` : `an integer from ${min} to ${max}`;
  if (max === MAX_TIMEOUT_MS) {
    expected = integer && value > max
      ? `at most ${max} (about 24.8 days), the longest timer the runtime can arm`
      : "a positive integer";
  }
  return { problem: `Invalid ${name} ${show(raw)}: expected ${expected}` };
}

function checkBoolean(name: string, raw: unknown, show: Show): Checked {
  if (typeof raw === "boolean") return { value: raw };
  if (raw === "true" || raw === "false") return { value: raw === "true" };
  return { problem: `Invalid ${name} ${show(raw)}: expected true or false` };
}

/** An absolute folder: `~` expanded, and nothing a file name cannot hold or a system folder. */
function checkFolder(name: string, raw: unknown, show: Show): Checked {
  const invalid = (why: string) => ({ problem: `Invalid ${name} ${show(raw)}: ${why}` });
  if (typeof raw !== "string") return invalid("expected a string");
  if (raw.trim() === "") return { problem: `Invalid ${name}: it is empty` };
  if (!raw.isWellFormed()) return invalid("it contains a lone surrogate, which no path can hold");
  if (/[\p{Cc}\u2028\u2029]/u.test(raw)) {
    return invalid("it contains a line break or another control character");
  }
  let path = raw;
  if (raw === "~" || raw.startsWith("~/")) {
    const home = Deno.env.get("HOME");
    if (!home?.startsWith("/")) {
      return invalid(`"~" stands for HOME, which is not set; give the folder as an absolute path`);
    }
    path = home + raw.slice(1);
  } else if (raw.startsWith("~")) {
    return invalid(`only "~" and "~/…" are expanded, to HOME; give the folder as an absolute path`);
  }
  const folder = absolutePath(path);
  const system = /^\/(proc|dev|sys)(?:\/|$)/.exec(folder)?.[1];
  if (system !== undefined) {
    return invalid(
      `it is under /${system}, which holds the system's own files; choose another folder`,
    );
  }
  return { value: folder };
}

/** A folder parameter as validation resolves it (`~` expanded, made absolute), or an InputError. */
export function resolveFolder(name: string, raw: unknown): string {
  const checked = checkFolder(name, raw, (value) => shownValue(value, []));
  if ("problem" in checked) throw new InputError(checked.problem);
  return checked.value as string;
}

/**
 * An object too deep to print or send without a deep stack (a cycle is endlessly deep), or too
 * large to walk, found by a walk without recursion.
 */
function objectShapeProblem(root: object, maxDepth: number, name: string): Checked | null {
  const pending: [object, number][] = [[root, 1]];
  let values = 0;
  while (pending.length > 0) {
    const [value, depth] = pending.pop()!;
    if (depth > maxDepth) {
      return { problem: `Invalid ${name}: nested more than ${maxDepth} levels deep` };
    }
    for (const child of Object.values(value)) {
      if (++values > MAX_EXTRA_BODY_VALUES) {
        return { problem: `Invalid ${name}: it holds more than ${MAX_EXTRA_BODY_VALUES} values` };
      }
      if (typeof child === "object" && child !== null) pending.push([child, depth + 1]);
    }
  }
  return null;
}

const MAX_QUOTED_CHARS = 60;

/** A value as an error quotes it: secrets masked before it is shortened, so no part is left. */
function shownValue(value: unknown, secrets: readonly string[]): string {
  return maskThenClip(String(JSON.stringify(value)), secrets, MAX_QUOTED_CHARS);
}

/** `Unknown parameter "timeout": did you mean "timeout_ms"?` */
export function unknownParamMessage(name: string, show: Show = JSON.stringify): string {
  const suggestion = nearestParamName(name);
  return `Unknown parameter ${show(name)}` + (suggestion ? `: did you mean "${suggestion}"?` : "");
}

/** No name this much longer than every parameter's is near one: its distance is not computed. */
const MAX_NEAR_NAME_CHARS = 2 * Math.max(...Object.keys(PARAM_SPECS).map((name) => name.length));

export function nearestParamName(name: string): ParamName | null {
  if (name.length > MAX_NEAR_NAME_CHARS) return null;
  const wanted = name.toLowerCase().replaceAll("-", "_");
  if (isParamName(wanted)) return wanted;
  let best: ParamName | null = null;
  let bestScore = Infinity;
  for (const candidate of PARAM_NAMES) {
    const score = candidate.startsWith(wanted) && wanted.length >= 3
      ? 1
      : editDistance(wanted, candidate);
    if (score < bestScore) [best, bestScore] = [candidate, score];
  }
  return bestScore <= Math.max(2, Math.floor(wanted.length / 3)) ? best : null;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length]!;
}
