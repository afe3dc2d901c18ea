import { type GenerationInput, InputError, readParamFlag, unknownOptionMessage } from "../mod.ts";

/** What `img2-batch` is asked to do, before the jobs are read. */
export interface BatchOptions {
  /** The jobs file, or "-" for standard input; null only with --help or --version. */
  jobsPath: string | null;
  defaultsPath: string | null;
  apiKeyFile: string | null;
  /** Image parameters given as flags, shared by every job. */
  flags: GenerationInput;
  runDir: string | null;
  eventsPath: string | null;
  concurrency: number;
  rpm: number | null;
  maxAttempts: number;
  keepGoing: boolean;
  force: boolean;
  redoMissing: boolean;
  retryFailed: boolean;
  skipInvalid: boolean;
  dryRun: boolean;
  /** --batch-api: through the provider's Batch API (see batch_api_run.ts), and how. */
  batchApi: boolean;
  detach: boolean;
  cancel: boolean;
  pollSeconds: number;
  help: boolean;
  version: boolean;
}

export const DEFAULT_CONCURRENCY = 4;
export const DEFAULT_MAX_ATTEMPTS = 3;
export const DEFAULT_POLL_SECONDS = 30;
export const MIN_POLL_SECONDS = 5;

const SWITCHES = {
  "keep-going": "keepGoing",
  "force": "force",
  "redo-missing": "redoMissing",
  "retry-failed": "retryFailed",
  "skip-invalid": "skipInvalid",
  "dry-run": "dryRun",
  "batch-api": "batchApi",
  "detach": "detach",
  "cancel": "cancel",
  "help": "help",
  "version": "version",
} as const satisfies Record<string, keyof BatchOptions>;

const VALUED = {
  "defaults": "defaultsPath",
  "api-key-file": "apiKeyFile",
  "run-dir": "runDir",
  "events": "eventsPath",
  "concurrency": "concurrency",
  "rpm": "rpm",
  "max-attempts": "maxAttempts",
  "poll-seconds": "pollSeconds",
} as const satisfies Record<string, keyof BatchOptions>;

/** Reads the command line; every problem is an InputError. */
export function parseBatchArgs(
  argv: string[],
  expected = `the jobs file (JSONL, a JSON array, or "-")`,
): BatchOptions {
  const options: BatchOptions = {
    jobsPath: null,
    defaultsPath: null,
    apiKeyFile: null,
    flags: {},
    runDir: null,
    eventsPath: null,
    concurrency: DEFAULT_CONCURRENCY,
    rpm: null,
    maxAttempts: DEFAULT_MAX_ATTEMPTS,
    keepGoing: false,
    force: false,
    redoMissing: false,
    retryFailed: false,
    skipInvalid: false,
    dryRun: false,
    batchApi: false,
    detach: false,
    cancel: false,
    pollSeconds: DEFAULT_POLL_SECONDS,
    help: false,
    version: false,
  };
  // As in img2-generate, --help and --version win over everything else, mistakes included.
  const beforeEnd = argv.includes("--") ? argv.slice(0, argv.indexOf("--")) : argv;
  if (beforeEnd.some((arg) => arg === "--help" || arg === "-h")) return { ...options, help: true };
  if (beforeEnd.some((arg) => arg === "--version" || arg === "-V")) {
    return { ...options, version: true };
  }

  const positionals: string[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      positionals.push(arg);
      continue;
    }
    if (!arg.startsWith("--")) throw new InputError(unknownOptionMessage(arg));
    const equals = arg.indexOf("=");
    const flag = (equals === -1 ? arg.slice(2) : arg.slice(2, equals)).replaceAll("_", "-");
    const inline = equals === -1 ? null : arg.slice(equals + 1);
    if (Object.hasOwn(SWITCHES, flag)) {
      if (inline !== null) throw new InputError(`Option "--${flag}" takes no value`);
      if (seen.has(flag)) throw new InputError(`Option "--${flag}" is given twice`);
      seen.add(flag);
      options[SWITCHES[flag as keyof typeof SWITCHES]] = true;
    } else if (Object.hasOwn(VALUED, flag)) {
      if (seen.has(flag)) throw new InputError(`Option "--${flag}" is given twice`);
      seen.add(flag);
      let value = inline;
      if (value === null) {
        value = argv[++i] ?? null;
        if (value === null) throw new InputError(`Option "--${flag}" needs a value`);
      }
      setValued(options, flag as keyof typeof VALUED, value);
    } else {
      i = readParamFlag(argv, i, options.flags);
    }
  }

  if (options.help || options.version) return options;
  if (positionals.length !== 1) {
    throw new InputError(
      `Expected one argument, ${expected}, got ${positionals.length}`,
    );
  }
  options.jobsPath = positionals[0]!;
  if (options.apiKeyFile !== null && options.flags.api_key !== undefined) {
    throw new InputError(`Give either --api_key or --api-key-file, not both`);
  }
  const batchOnly = (["detach", "cancel", "poll-seconds"] as const).find((flag) => seen.has(flag));
  if (batchOnly !== undefined && !options.batchApi) {
    throw new InputError(`Option "--${batchOnly}" goes with --batch-api`);
  }
  if (options.detach && options.cancel) {
    throw new InputError(`Give either --detach or --cancel, not both`);
  }
  return options;
}

function setValued(options: BatchOptions, flag: keyof typeof VALUED, text: string): void {
  switch (flag) {
    case "concurrency":
      options.concurrency = positiveInteger(flag, text, 1000);
      return;
    case "max-attempts":
      options.maxAttempts = positiveInteger(flag, text, 100);
      return;
    case "poll-seconds":
      options.pollSeconds = positiveInteger(flag, text, 3600, MIN_POLL_SECONDS);
      return;
    case "rpm": {
      const rpm = Number(text);
      if (text.trim() === "" || !Number.isFinite(rpm) || rpm <= 0) {
        throw new InputError(`Invalid --rpm "${text}": expected a positive number`);
      }
      options.rpm = rpm;
      return;
    }
    default:
      options[VALUED[flag]] = text;
  }
}

function positiveInteger(flag: string, text: string, max: number, min = 1): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) {
    throw new InputError(`Invalid --${flag} "${text}": expected an integer from ${min} to ${max}`);
  }
  return value;
}
