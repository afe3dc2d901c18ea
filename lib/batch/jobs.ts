import {
  callContext,
  errorMessage,
  failureResult,
  type GenerationInput,
  type GenerationParams,
  type GenerationResult,
  InputError,
  isJsonObject,
  safeFileStem,
  validateParams,
  withoutQuotedInput,
} from "../mod.ts";

/** Parameters that ask for the image in the answer: a batch saves every image and records each result. */
const ANSWER_ONLY_PARAMS = ["return_base64", "media_line"] as const;

/** An input error tied to a line of the jobs file (or an index of its JSON array). */
export class JobInputError extends InputError {
  readonly line: number | null;
  /** The job's parameters, for the context of the error result (base_url, model, lang …). */
  readonly input: GenerationInput;
  constructor(message: string, line: number | null = null, input: GenerationInput = {}) {
    super(message);
    this.line = line;
    this.input = input;
  }
}

/** A job ready to run: its parameters merged and validated, exactly as img2-generate would take them. */
export interface Job {
  id: string;
  line: number;
  input: GenerationInput;
  params: GenerationParams;
}

/** A job that failed validation, kept only with --skip-invalid. */
export interface InvalidJob {
  id: string;
  line: number;
  taskName: string | null;
  result: GenerationResult;
}

export interface JobList {
  jobs: Job[];
  invalid: InvalidJob[];
}

/** One object of the jobs content, with where it came from. */
interface RawJob {
  line: number;
  value: unknown;
  parseError?: string;
}

/**
 * Reads the jobs content (JSONL, or a JSON array when it starts with "["), merges each job over
 * the shared parameters and validates it. `stem` names jobs without a task_name: `{stem}-{line}`.
 */
export function readJobs(
  text: string,
  stem: string,
  shared: GenerationInput,
  options: { skipInvalid: boolean },
): JobList {
  const list: JobList = { jobs: [], invalid: [] };
  const ids = new Map<string, number>();
  /** By the file-name stem the images get: "a/b" and "a_b" would share it. */
  const names = new Map<string, { line: number; taskName: string }>();
  for (const raw of rawJobs(text)) {
    const fail = (message: string, input: GenerationInput = {}) => {
      if (!options.skipInvalid) throw new JobInputError(message, raw.line, input);
      const error = new InputError(message);
      const taskName = typeof input.task_name === "string" ? input.task_name : null;
      list.invalid.push({
        id: String(input.id ?? taskName ?? `${stem}-${raw.line}`),
        line: raw.line,
        taskName,
        result: failureResult(error, callContext(input)),
      });
    };
    if (raw.parseError !== undefined) {
      fail(raw.parseError);
      continue;
    }
    if (!isJsonObject(raw.value)) {
      fail(`Expected a JSON object for the job`);
      continue;
    }
    const { id, ...own } = raw.value as GenerationInput;
    const input: GenerationInput = { ...shared, ...own };
    input.task_name ??= `${stem}-${raw.line}`;
    if (
      id !== undefined && !(typeof id === "string" && id.trim() !== "") && !Number.isInteger(id)
    ) {
      fail(`Invalid id ${JSON.stringify(id)}: expected a non-empty string or an integer`, input);
      continue;
    }
    let params: GenerationParams;
    try {
      params = validateParams(input);
    } catch (error) {
      fail(errorMessage(error), { ...input, id });
      continue;
    }
    const answerOnly = ANSWER_ONLY_PARAMS.find((name) => params[name]);
    if (answerOnly !== undefined) {
      fail(
        `img2-batch saves images; ${answerOnly} is for img2-generate alone, ` +
          `as the journal and the result would otherwise hold every image`,
        { ...input, id },
      );
      continue;
    }
    const jobId = id === undefined ? params.task_name : String(id);
    const fileStem = safeFileStem(params.task_name);
    const sameName = names.get(fileStem);
    if (sameName !== undefined) {
      throw new JobInputError(
        sameName.taskName === params.task_name
          ? `Duplicate task_name "${params.task_name}": already used on line ${sameName.line}, and images are named by it`
          : `Task name "${params.task_name}" gives the same file name "${fileStem}" as "${sameName.taskName}" on line ${sameName.line}`,
        raw.line,
        input,
      );
    }
    const sameId = ids.get(jobId);
    if (sameId !== undefined) {
      throw new JobInputError(
        `Duplicate id "${jobId}": already used on line ${sameId}`,
        raw.line,
        input,
      );
    }
    ids.set(jobId, raw.line);
    names.set(fileStem, { line: raw.line, taskName: params.task_name });
    list.jobs.push({ id: jobId, line: raw.line, input, params });
  }
  for (const invalid of list.invalid) {
    if (ids.has(invalid.id)) {
      throw new JobInputError(`Duplicate id "${invalid.id}"`, invalid.line);
    }
    ids.set(invalid.id, invalid.line);
  }
  return list;
}

/** The objects of the content with their 1-based physical line, or 1-based index in an array. */
function rawJobs(text: string): RawJob[] {
  if (text.trimStart().startsWith("[")) {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw new JobInputError(`Cannot parse the jobs as a JSON array: ${shortJsonError(error)}`);
    }
    if (!Array.isArray(value)) throw new JobInputError(`Expected the jobs as a JSON array`);
    return value.map((item, index) => ({ line: index + 1, value: item }));
  }
  const raws: RawJob[] = [];
  const lines = text.split("\n");
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index]!.trim();
    if (line === "" || line.startsWith("#")) continue;
    try {
      raws.push({ line: index + 1, value: JSON.parse(line) });
    } catch (error) {
      raws.push({
        line: index + 1,
        value: null,
        parseError: `Cannot parse the line as JSON: ${shortJsonError(error)}`,
      });
    }
  }
  return raws;
}

/** The parser's message without the text it quotes, which may hold a key. */
function shortJsonError(error: unknown): string {
  return withoutQuotedInput(errorMessage(error));
}
