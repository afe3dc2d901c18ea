import { errorMessage, InputError } from "./errors.ts";
import { type GenerationInput, isParamName, PARAM_SPECS, unknownParamMessage } from "./params.ts";

/** What the command line asks for, before the parameters are validated. */
export interface Invocation {
  input: GenerationInput;
  help: boolean;
  version: boolean;
  dryRun: boolean;
}

/** Where the JSON forms of the input come from; injected so that tests need no real stdin. */
export interface InputSources {
  readStdin(): Promise<string>;
  readFile(path: string): Promise<string>;
}

const TOOL_FLAGS = {
  help: ["--help", "-h"],
  version: ["--version", "-V"],
  dryRun: ["--dry-run", "--dry_run"],
} as const;

/**
 * Merges the three input forms, a later one overriding an earlier one field by field: the JSON
 * argument, then JSON from stdin (`-`) or `--input FILE`, then one flag per parameter.
 */
export async function parseInvocation(argv: string[], sources: InputSources): Promise<Invocation> {
  const invocation: Invocation = { input: {}, help: false, version: false, dryRun: false };
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
    if (!arg.startsWith("--") || arg === "-") {
      if (arg.startsWith("-") && arg !== "-") throw new InputError(`Unknown option "${arg}"`);
      positionals.push(arg);
      continue;
    }

    const equals = arg.indexOf("=");
    const flag = equals === -1 ? arg.slice(2) : arg.slice(2, equals);
    const name = flag.replaceAll("-", "_");
    const inline = equals === -1 ? null : arg.slice(equals + 1);
    if (name === "input") {
      inputFile = inline ?? takeValue(argv, ++i, arg);
      continue;
    }
    if (!isParamName(name)) throw new InputError(unknownParamMessage(flag));
    if (Object.hasOwn(flagValues, name)) throw new InputError(`Option "--${flag}" is given twice`);

    if (PARAM_SPECS[name].rule.kind === "boolean" && inline === null) {
      // `--return-base64` alone means true; an explicit true/false may follow it.
      const next = argv[i + 1];
      flagValues[name] = next === "true" || next === "false" ? argv[++i] : "true";
    } else if (PARAM_SPECS[name].rule.kind === "object") {
      flagValues[name] = parseJsonObject(inline ?? takeValue(argv, ++i, arg), `--${flag}`);
    } else {
      flagValues[name] = inline ?? takeValue(argv, ++i, arg);
    }
  }

  if (positionals.length > 1) {
    throw new InputError(
      `Expected at most one argument (a JSON object or "-"), got ${positionals.length}`,
    );
  }
  const positional = positionals[0];
  if (positional !== undefined && positional !== "-") {
    Object.assign(invocation.input, parseJsonObject(positional, "the JSON argument"));
  }
  if (positional === "-") {
    if (inputFile !== null) throw new InputError(`Give either "-" or --input, not both`);
    Object.assign(invocation.input, parseJsonObject(await sources.readStdin(), "standard input"));
  }
  if (inputFile !== null) {
    let text: string;
    try {
      text = await sources.readFile(inputFile);
    } catch (error) {
      throw new InputError(`Cannot read --input file "${inputFile}": ${errorMessage(error)}`);
    }
    Object.assign(invocation.input, parseJsonObject(text, `--input file "${inputFile}"`));
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

function parseJsonObject(text: string, source: string): GenerationInput {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new InputError(
      `Cannot parse ${source} as JSON: ${withoutQuotedInput(errorMessage(error))}`,
    );
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new InputError(`Expected ${source} to be a JSON object`);
  }
  return value as GenerationInput;
}

/**
 * The parser quotes the text around the error (`Unexpected token 's', ..."api_key": sk-…"... is
 * not valid JSON`), and that text may hold the API key: only the words before the quote are kept.
 */
function withoutQuotedInput(message: string): string {
  return message.replace(/,\s*(?:\.\.\.)?".*$/s, "");
}
