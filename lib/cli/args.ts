import { concat } from "../shared/bytes.ts";
import { isJsonObject } from "../shared/json.ts";
import { errorMessage, InputError } from "../failure/errors.ts";
import {
  type GenerationInput,
  isParamName,
  PARAM_SPECS,
  unknownParamMessage,
} from "../params/params.ts";

/** What the command line asks for, before the parameters are validated. */
export interface Invocation {
  input: GenerationInput;
  help: boolean;
  version: boolean;
  dryRun: boolean;
}

/** Where the JSON forms of the input come from; injected so that tests need no real stdin. */
export interface InputSources {
  /** Standard input, for "-". */
  stdin(): ReadableStream<Uint8Array>;
  /** The `--input` file; rejects when it cannot be opened. */
  openFile(path: string): Promise<ReadableStream<Uint8Array>>;
}

/**
 * The most each JSON form may hold, in UTF-8 bytes: a 32000-character prompt written entirely as
 * `\uXXXX\uXXXX` escapes takes 384000, which leaves more than 600 KiB for the other fields.
 */
export const MAX_INPUT_BYTES = 1024 * 1024;
export const MAX_INPUT_LABEL = `1 MiB (${MAX_INPUT_BYTES} bytes)`;

const TOOL_FLAGS = {
  help: ["--help", "-h"],
  version: ["--version", "-V"],
  dryRun: ["--dry-run", "--dry_run"],
} as const;

/**
 * Merges the three input forms, a later one overriding an earlier one field by field: the JSON
 * argument, then JSON from stdin (`-`) or `--input FILE`, then one flag per parameter.
 * `--help` and `--version` win over everything else, mistakes included, and read no input.
 */
export async function parseInvocation(argv: string[], sources: InputSources): Promise<Invocation> {
  const invocation: Invocation = { input: {}, help: false, version: false, dryRun: false };
  const options = argv.includes("--") ? argv.slice(0, argv.indexOf("--")) : argv;
  if (options.some((arg) => toolFlag(arg) === "help")) return { ...invocation, help: true };
  if (options.some((arg) => toolFlag(arg) === "version")) return { ...invocation, version: true };

  const positionals: string[] = [];
  const flagValues: GenerationInput = {};
  let inputFile: string | null = null;

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    const tool = toolFlag(arg);
    if (tool) {
      invocation[tool] = true;
      continue;
    }
    if (!arg.startsWith("-") || arg === "-") {
      positionals.push(arg);
      continue;
    }
    if (!arg.startsWith("--")) throw new InputError(unknownOptionMessage(arg));

    const equals = arg.indexOf("=");
    if ((equals === -1 ? arg.slice(2) : arg.slice(2, equals)).replaceAll("-", "_") === "input") {
      if (inputFile !== null) throw new InputError(`Option "${flagOf(arg)}" is given twice`);
      inputFile = equals === -1 ? takeValue(argv, ++i, arg) : arg.slice(equals + 1);
      continue;
    }
    i = readParamFlag(argv, i, flagValues);
  }

  const stray = positionals.find((arg) => arg !== "-" && !looksLikeJson(arg));
  if (stray !== undefined) throw new InputError(strayArgumentMessage(stray));
  if (positionals.length > 1) {
    throw new InputError(
      `Expected at most one argument (a JSON object or "-"), got ${positionals.length}`,
    );
  }
  const positional = positionals[0];
  if (positional !== undefined && positional !== "-") {
    const text = cappedArgument(positional, "the JSON argument");
    Object.assign(invocation.input, parseJsonObject(text, "the JSON argument"));
  }
  if (positional === "-") {
    if (inputFile !== null) throw new InputError(`Give either "-" or --input, not both`);
    const text = utf8Text(await readCapped(sources.stdin(), "standard input"), "standard input");
    Object.assign(invocation.input, parseJsonObject(text, "standard input"));
  }
  if (inputFile !== null) {
    const source = `--input file "${inputFile}"`;
    let stream: ReadableStream<Uint8Array>;
    try {
      stream = await sources.openFile(inputFile);
    } catch (error) {
      throw new InputError(`Cannot read ${source}: ${errorMessage(error)}`);
    }
    const text = utf8Text(await readCapped(stream, source), source);
    Object.assign(invocation.input, parseJsonObject(text, source));
  }
  Object.assign(invocation.input, flagValues);
  return invocation;
}

function toolFlag(arg: string): keyof typeof TOOL_FLAGS | null {
  for (const [key, spellings] of Object.entries(TOOL_FLAGS)) {
    if ((spellings as readonly string[]).includes(arg)) return key as keyof typeof TOOL_FLAGS;
  }
  return null;
}

function takeValue(argv: string[], index: number, flag: string): string {
  const value = argv[index];
  if (value === undefined) throw new InputError(`Option "${flag}" needs a value`);
  return value;
}

/**
 * Reads the parameter flag at `argv[index]` (`--size 1024x1024`, `--output-dir=out`,
 * `--return-base64 [true|false]`, `--extra-headers '{…}'`) into `values`, and returns the index of
 * the last argument it took. A name that is no parameter, or one given twice, is an InputError
 * that quotes no more of the argument than is safe.
 */
export function readParamFlag(argv: string[], index: number, values: GenerationInput): number {
  const arg = argv[index]!;
  const equals = arg.indexOf("=");
  const flag = flagOf(arg);
  const name = flag.slice(2).replaceAll("-", "_");
  const inline = equals === -1 ? null : arg.slice(equals + 1);
  if (!isParamName(name)) throw new InputError(unknownOptionMessage(flag));
  if (Object.hasOwn(values, name)) throw new InputError(`Option "${flag}" is given twice`);

  let i = index;
  if (PARAM_SPECS[name].rule.kind === "boolean" && inline === null) {
    // `--return-base64` alone means true; an explicit true/false may follow it.
    const next = argv[i + 1];
    values[name] = next === "true" || next === "false" ? argv[++i] : "true";
  } else if (PARAM_SPECS[name].rule.kind === "object") {
    const text = inline ?? takeValue(argv, ++i, arg);
    values[name] = parseJsonObject(cappedArgument(text, flag), flag);
  } else {
    values[name] = inline ?? takeValue(argv, ++i, arg);
  }
  return i;
}

/** `--output-dir=out` → `--output-dir`. */
function flagOf(arg: string): string {
  const equals = arg.indexOf("=");
  return equals === -1 ? arg : arg.slice(0, equals);
}

/** How much an input may hold, and how an error names that limit. */
export interface ByteLimit {
  bytes: number;
  /** Completes "it is larger than …". */
  label: string;
}

const PARAMETERS_LIMIT: ByteLimit = {
  bytes: MAX_INPUT_BYTES,
  label: `${MAX_INPUT_LABEL}, the limit for the parameters`,
};

/**
 * The bytes of a stream, read no further than `limit`, so that `/dev/zero` or a gigabyte piped in
 * costs no more memory than the limit. `signal` gives the read up (a stop signal), and the stream
 * is cancelled on every failure.
 */
export async function readCapped(
  stream: ReadableStream<Uint8Array>,
  source: string,
  limit: ByteLimit = PARAMETERS_LIMIT,
  signal?: AbortSignal,
): Promise<Uint8Array> {
  const reader = stream.getReader();
  const stop = () => reader.cancel().catch(() => {});
  signal?.addEventListener("abort", stop, { once: true });
  const chunks: Uint8Array[] = [];
  let received = 0;
  try {
    while (true) {
      if (signal?.aborted) throw new InputError(`Cannot read ${source}: cancelled`);
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (error) {
        throw new InputError(`Cannot read ${source}: ${errorMessage(error)}`);
      }
      if (signal?.aborted) throw new InputError(`Cannot read ${source}: cancelled`);
      if (chunk.done) return concat(chunks);
      received += chunk.value.length;
      if (received > limit.bytes) {
        throw new InputError(`Cannot read ${source}: it is larger than ${limit.label}`);
      }
      chunks.push(chunk.value);
    }
  } catch (error) {
    await stop();
    throw error;
  } finally {
    signal?.removeEventListener("abort", stop);
    reader.releaseLock();
  }
}

/**
 * The UTF-8 text of `bytes`, a byte order mark dropped; bytes that are not UTF-8 are refused
 * rather than silently replaced.
 */
export function utf8Text(bytes: Uint8Array, source: string): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new InputError(`Cannot read ${source}: it is not UTF-8 text`);
  }
}

/** An argument's text, refused over MAX_INPUT_BYTES in UTF-8 like the other forms. */
function cappedArgument(text: string, source: string): string {
  // A UTF-16 unit takes one to three UTF-8 bytes: only the lengths in between need counting.
  const over = text.length > MAX_INPUT_BYTES ||
    (text.length * 3 > MAX_INPUT_BYTES && new TextEncoder().encode(text).length > MAX_INPUT_BYTES);
  if (over) throw new InputError(tooLargeMessage(source));
  return text;
}

function tooLargeMessage(source: string): string {
  return `Cannot read ${source}: it is larger than ${PARAMETERS_LIMIT.label}`;
}

/** `text` as a JSON object; the parser's reason is kept, the text it quotes is not. */
export function parseJsonObject(text: string, source: string): GenerationInput {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new InputError(
      `Cannot parse ${source} as JSON: ${withoutQuotedInput(errorMessage(error))}`,
    );
  }
  if (!isJsonObject(value)) {
    throw new InputError(`Expected ${source} to be a JSON object`);
  }
  return value as GenerationInput;
}

/**
 * The parser quotes the text around the error (`Unexpected token 's', ..."api_key": sk-…"... is
 * not valid JSON`), and that text may hold the API key: only the words before the quote are kept.
 */
export function withoutQuotedInput(message: string): string {
  return message.replace(/,\s*(?:\.\.\.)?".*$/s, "");
}

/** Meant as JSON, however broken: it opens an object, an array or a string, or is a literal. */
function looksLikeJson(arg: string): boolean {
  return /^\s*(?:[{["]|(?:true|false|null)\s*$|$)/.test(arg);
}

/**
 * What an error may quote of an argument: a flag name, or a word too short to be a key. Anything
 * else might be JSON or hold the key (`--api-key sk-…` as one argument), and is only described.
 */
const FLAG_NAME = /^--[A-Za-z][\w-]{0,31}$/;
const SHORT_WORD = /^-?[\p{L}\p{N}][\p{L}\p{N}._-]{0,11}$/u;

/** `Unknown option "-x"`, or, for `--timeout`, the parameter it most likely means. */
export function unknownOptionMessage(arg: string): string {
  if (FLAG_NAME.test(arg)) return unknownParamMessage(arg.slice(2));
  if (SHORT_WORD.test(arg)) return `Unknown option "${arg}"`;
  const known = /^--([A-Za-z][\w-]*)/.exec(arg)?.[1];
  if (known !== undefined && isParamName(known.replaceAll("-", "_"))) {
    return `Unknown option "--${known}…" (${arg.length} characters, not shown): ` +
      `give its value as the next argument or after "="`;
  }
  return `Unknown option: an argument of ${arg.length} characters starting with "-" (not shown)`;
}

/** `img2-generate --prompt a cat` leaves "cat" behind: say so, rather than fail to parse JSON. */
function strayArgumentMessage(arg: string): string {
  const shown = SHORT_WORD.test(arg) ? `"${arg}"` : `of ${arg.length} characters (not shown)`;
  return `Unexpected argument ${shown}: expected one JSON object or "-" besides the options ` +
    `(quote a value that has spaces)`;
}
